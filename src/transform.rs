//! The per-row part of a pipeline query, evaluated by DataFusion's physical expressions on
//! each Arrow batch: filter first, then the projection.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch};
use datafusion::arrow::compute::kernels::filter::prep_null_mask_filter;
use datafusion::arrow::compute::{cast, filter_record_batch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::{DFSchema, DataFusionError};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::prelude::SessionContext;

use crate::envelope::{ChangeBatch, Op};
use crate::plan::TablePlan;

pub struct Transform {
    filter: Option<Arc<dyn PhysicalExpr>>,
    projection: Option<Vec<Arc<dyn PhysicalExpr>>>,
    output_schema: SchemaRef,
    /// The same columns, all nullable: a change batch's images have empty rows (no old row
    /// for an insert, no new row for a delete).
    image_schema: SchemaRef,
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
        let output_schema = plan.output_schema();
        let image_schema = Arc::new(datafusion::arrow::datatypes::Schema::new(
            output_schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        ));
        Ok(Transform {
            filter,
            projection,
            output_schema,
            image_schema,
        })
    }

    /// Rows of `batch` that pass the filter, projected to the output columns.
    pub fn apply(&self, batch: RecordBatch) -> Result<RecordBatch, DataFusionError> {
        let batch = match self.matches(&batch)? {
            Some(mask) => filter_record_batch(&batch, &mask)?,
            None => batch,
        };
        self.project(batch)
    }

    /// Per row, whether it passes the WHERE clause (NULL counts as no); `None` without one.
    pub fn matches(&self, batch: &RecordBatch) -> Result<Option<BooleanArray>, DataFusionError> {
        let Some(f) = &self.filter else {
            return Ok(None);
        };
        let mask = f.evaluate(batch)?.into_array(batch.num_rows())?;
        let mask = mask
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or_else(|| {
                DataFusionError::Plan("the WHERE clause is not a boolean expression".into())
            })?;
        // NULL means "does not match"; the kernel below requires a null buffer to exist.
        Ok(Some(if mask.null_count() > 0 {
            prep_null_mask_filter(mask)
        } else {
            mask.clone()
        }))
    }

    /// Apply the query to a batch of changes. With a WHERE clause, a change is judged on both
    /// of its images, so that the downstream view stays `SELECT ... WHERE ...`: an update
    /// whose old row matched and new row does not becomes a delete, the reverse a create, and
    /// changes to rows that never matched disappear.
    pub fn changes(&self, batch: &ChangeBatch) -> Result<ChangeBatch, DataFusionError> {
        let n = batch.len();
        let after_match = match &batch.after {
            Some(a) => self.matches(a)?,
            None => None,
        };
        let before_match = match &batch.before {
            Some(b) => self.matches(b)?,
            None => None,
        };
        let mut ops = batch.ops.clone();
        let mut keep = vec![true; n];
        if self.filter.is_some() {
            let before_valid = |i: usize| {
                batch
                    .before_valid
                    .as_ref()
                    .map_or(batch.before.is_some(), |v| v[i])
            };
            for i in 0..n {
                let a = after_match.as_ref().is_some_and(|m| m.value(i));
                // Without an old image (REPLICA IDENTITY DEFAULT and an unchanged key) the
                // planner has made sure the filter only reads key columns, which did not change.
                let b = if before_valid(i) {
                    before_match.as_ref().is_some_and(|m| m.value(i))
                } else {
                    a
                };
                let (op, k) = match ops[i] {
                    Op::Read | Op::Create => (ops[i], a),
                    Op::Delete => (Op::Delete, b),
                    Op::Update => match (b, a) {
                        (true, true) => (Op::Update, true),
                        (true, false) => (Op::Delete, true),
                        (false, true) => (Op::Create, true),
                        (false, false) => (Op::Update, false),
                    },
                };
                ops[i] = op;
                keep[i] = k;
            }
        }
        let all = keep.iter().all(|k| *k);
        let mask = BooleanArray::from(keep.clone());
        let select = |rb: RecordBatch| -> Result<RecordBatch, DataFusionError> {
            let rb = if all {
                rb
            } else {
                filter_record_batch(&rb, &mask)?
            };
            self.project_as(rb, &self.image_schema)
        };
        let pick = |v: Vec<bool>| -> Vec<bool> {
            v.into_iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(x, _)| x)
                .collect()
        };
        let before_valid = batch.before_valid.clone().map(pick);
        // An update turned into a create has no old image downstream; one turned into a
        // delete has no new image (the envelopes derive that from the op).
        let before_valid = before_valid.map(|v| {
            v.into_iter()
                .zip(ops.iter().zip(&keep).filter(|(_, k)| **k).map(|(o, _)| *o))
                .map(|(valid, op)| valid && op != Op::Create)
                .collect()
        });
        Ok(ChangeBatch {
            ops: ops
                .into_iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(o, _)| o)
                .collect(),
            before: batch.before.clone().map(select).transpose()?,
            after: batch.after.clone().map(select).transpose()?,
            before_valid,
            position: batch.position.clone(),
            snapshot_marks: batch.snapshot_marks.clone(),
            lsns: batch.lsns.as_deref().map(|l| keep_rows(l, &keep)),
            txns: batch.txns.as_ref().map(|t| crate::envelope::TxnRows {
                positions: t.positions.clone(),
                row_txn: keep_rows(&t.row_txn, &keep),
            }),
        })
    }

    /// The output columns of (already filtered) rows.
    pub fn project(&self, batch: RecordBatch) -> Result<RecordBatch, DataFusionError> {
        self.project_as(batch, &self.output_schema)
    }

    fn project_as(
        &self,
        batch: RecordBatch,
        schema: &SchemaRef,
    ) -> Result<RecordBatch, DataFusionError> {
        let Some(projection) = &self.projection else {
            return Ok(batch);
        };
        let arrays = projection
            .iter()
            .zip(schema.fields())
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
            schema.clone(),
            arrays,
            &datafusion::arrow::array::RecordBatchOptions::new()
                .with_row_count(Some(batch.num_rows())),
        )?)
    }
}

fn keep_rows<T: Copy>(v: &[T], keep: &[bool]) -> Vec<T> {
    v.iter()
        .zip(keep)
        .filter(|(_, k)| **k)
        .map(|(x, _)| *x)
        .collect()
}
