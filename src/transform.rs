//! The per-row part of a pipeline query, evaluated by DataFusion's physical expressions on
//! each Arrow batch: filter first, then the projection.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::compute::{cast, filter_record_batch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::{DFSchema, DataFusionError};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::prelude::SessionContext;

use crate::plan::TablePlan;

pub struct Transform {
    filter: Option<Arc<dyn PhysicalExpr>>,
    projection: Option<Vec<Arc<dyn PhysicalExpr>>>,
    output_schema: SchemaRef,
}

impl Transform {
    pub fn new(plan: &TablePlan) -> Result<Self, DataFusionError> {
        let state = SessionContext::new().state();
        let df_schema = DFSchema::try_from(plan.input_schema.as_ref().clone())?;
        let filter = plan
            .filter
            .clone()
            .map(|e| state.create_physical_expr(e, &df_schema))
            .transpose()?;
        let projection = plan
            .projection
            .as_ref()
            .map(|exprs| {
                exprs
                    .iter()
                    .map(|e| state.create_physical_expr(e.clone(), &df_schema))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        Ok(Transform {
            filter,
            projection,
            output_schema: plan.output_schema(),
        })
    }

    /// Rows of `batch` that pass the filter, projected to the output columns.
    pub fn apply(&self, batch: RecordBatch) -> Result<RecordBatch, DataFusionError> {
        let batch = match &self.filter {
            Some(f) => {
                let mask = f.evaluate(&batch)?.into_array(batch.num_rows())?;
                let mask = mask
                    .as_any()
                    .downcast_ref::<datafusion::arrow::array::BooleanArray>()
                    .ok_or_else(|| {
                        DataFusionError::Plan("the WHERE clause is not a boolean expression".into())
                    })?;
                filter_record_batch(&batch, mask)?
            }
            None => batch,
        };
        let Some(projection) = &self.projection else {
            return Ok(batch);
        };
        let arrays = projection
            .iter()
            .zip(self.output_schema.fields())
            .map(|(e, field)| {
                let a = e.evaluate(&batch)?.into_array(batch.num_rows())?;
                Ok(if a.data_type() != field.data_type() {
                    cast(&a, field.data_type())?
                } else {
                    a
                })
            })
            .collect::<Result<Vec<ArrayRef>, DataFusionError>>()?;
        Ok(RecordBatch::try_new_with_options(
            self.output_schema.clone(),
            arrays,
            &datafusion::arrow::array::RecordBatchOptions::new()
                .with_row_count(Some(batch.num_rows())),
        )?)
    }
}
