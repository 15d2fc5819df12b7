//! The native envelope: one message per row state, made for upsert consumers (compacted
//! topics, Materialize/Flink upsert sources, JDBC sinks).
//!
//! Key: the primary key (as in the Debezium envelope). Value: the row after the pipeline's
//! query, then four metadata fields named like Debezium's `ExtractNewRecordState` adds them:
//! `__op` (`r`, `c`, `u`, `d`), `__version` (the change's WAL position; 0 for snapshot rows —
//! for one key a higher version is always the newer state, so replays and reorders can be
//! dropped), `__source_ts_ms` (commit time, or snapshot start) and `__deleted`.
//! A delete is a tombstone (null value); with `deleted_marker` it is preceded by the deleted
//! row with `__deleted = true`.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Int64Array, StringArray, StructArray, UInt32Array,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{Field as ArrowField, Fields};

use super::columns::{column_schema, connect_array};
use super::{ChangeBatch, EnvelopeError, Op, RecordSchemas, Records};
use crate::connect::{ConnectType, Field, Schema};
use crate::plan::{NativeOptions, OutputColumn, TablePlan};
use crate::types::TypeOptions;

/// Names of the metadata fields, in value order. A column with one of these names is refused
/// at plan time.
pub const METADATA_FIELDS: [&str; 4] = ["__op", "__version", "__source_ts_ms", "__deleted"];

#[derive(Debug, Clone)]
pub struct NativeTable {
    schemas: RecordSchemas,
    output: Vec<OutputColumn>,
    key: Vec<usize>,
    deleted_marker: bool,
    types: TypeOptions,
}

impl NativeTable {
    pub fn new(plan: &TablePlan, opts: &NativeOptions, types: &TypeOptions) -> Self {
        let topic = &plan.topic;
        let mut fields: Vec<Field> = plan
            .output
            .iter()
            .map(|c| Field::new(&c.name, column_schema(&c.pg_type, c.nullable, types)))
            .collect();
        fields.push(Field::new("__op", Schema::new(ConnectType::String)));
        fields.push(Field::new("__version", Schema::new(ConnectType::Int64)));
        fields.push(Field::new(
            "__source_ts_ms",
            Schema::new(ConnectType::Int64),
        ));
        fields.push(Field::new("__deleted", Schema::new(ConnectType::Boolean)));
        // Required, as Debezium's ExtractNewRecordState makes it: a tombstone is a message
        // without a value, not a null struct, and Avro then writes a plain record.
        let value = Schema::new(ConnectType::Struct(fields)).named(format!("{topic}.Value"));
        let key = (!plan.key.is_empty()).then(|| {
            Schema::new(ConnectType::Struct(
                plan.key
                    .iter()
                    .map(|&i| {
                        let c = &plan.output[i];
                        Field::new(&c.name, column_schema(&c.pg_type, false, types))
                    })
                    .collect(),
            ))
            .named(format!("{topic}.Key"))
        });
        NativeTable {
            schemas: RecordSchemas { key, value },
            output: plan.output.clone(),
            key: plan.key.clone(),
            deleted_marker: opts.deleted_marker,
            types: types.clone(),
        }
    }

    pub fn schemas(&self) -> &RecordSchemas {
        &self.schemas
    }

    pub fn records(&self, batch: &ChangeBatch) -> Result<Records, EnvelopeError> {
        let n = batch.len();
        // Per row, the image that describes it: the old row for deletes, else the new one.
        let use_before =
            BooleanArray::from_iter(batch.ops.iter().map(|op| Some(*op == Op::Delete)));
        let image = match (&batch.before, &batch.after) {
            (Some(b), Some(a)) => super::pick_rows(&use_before, b, a)?,
            (Some(b), None) => b.clone(),
            (None, Some(a)) => a.clone(),
            (None, None) => {
                return Err(EnvelopeError::Value {
                    column: String::new(),
                    message: "a change batch without row images".into(),
                })
            }
        };

        let mut indices: Vec<u32> = Vec::with_capacity(n);
        let mut present: Vec<bool> = Vec::with_capacity(n);
        for (i, op) in batch.ops.iter().enumerate() {
            if *op == Op::Delete {
                if self.deleted_marker {
                    indices.push(i as u32);
                    present.push(true);
                }
                indices.push(i as u32);
                present.push(false);
            } else {
                indices.push(i as u32);
                present.push(true);
            }
        }
        let idx = UInt32Array::from(indices);

        let mut columns: Vec<(String, ArrayRef)> = self
            .output
            .iter()
            .enumerate()
            .map(|(i, c)| {
                Ok((
                    c.name.clone(),
                    connect_array(image.column(i), c, &self.types)?,
                ))
            })
            .collect::<Result<_, EnvelopeError>>()?;
        let versions: Int64Array = match &batch.lsns {
            Some(lsns) => lsns.iter().map(|l| Some(*l as i64)).collect(),
            None => Int64Array::from_value(0, n),
        };
        columns.push((
            "__op".into(),
            Arc::new(StringArray::from_iter_values(
                batch.ops.iter().map(|o| o.code()),
            )),
        ));
        columns.push(("__version".into(), Arc::new(versions)));
        let ts_ms: Int64Array = match &batch.txns {
            Some(_) => (0..n)
                .map(|i| Some(batch.position_of(i).ts_us.div_euclid(1000)))
                .collect(),
            None => Int64Array::from_value(batch.position.ts_us.div_euclid(1000), n),
        };
        columns.push(("__source_ts_ms".into(), Arc::new(ts_ms)));
        columns.push((
            "__deleted".into(),
            Arc::new(BooleanArray::from_iter(
                batch.ops.iter().map(|op| Some(*op == Op::Delete)),
            )),
        ));

        let taken: Vec<(String, ArrayRef)> = columns
            .into_iter()
            .map(|(name, a)| Ok((name, take(&a, &idx, None)?)))
            .collect::<Result<_, EnvelopeError>>()?;
        let value = struct_of(taken, Some(NullBuffer::from(present)))?;

        let key = if self.key.is_empty() {
            None
        } else {
            let cols: Vec<(String, ArrayRef)> = self
                .key
                .iter()
                .map(|&i| {
                    let c = &self.output[i];
                    let a = connect_array(image.column(i), c, &self.types)?;
                    Ok((c.name.clone(), take(&a, &idx, None)?))
                })
                .collect::<Result<_, EnvelopeError>>()?;
            Some(struct_of(cols, None)?)
        };
        Ok(Records { key, value })
    }
}

fn struct_of(
    columns: Vec<(String, ArrayRef)>,
    nulls: Option<NullBuffer>,
) -> Result<StructArray, EnvelopeError> {
    let fields: Vec<ArrowField> = columns
        .iter()
        .map(|(name, a)| ArrowField::new(name, a.data_type().clone(), true))
        .collect();
    let arrays: Vec<ArrayRef> = columns.into_iter().map(|(_, a)| a).collect();
    Ok(StructArray::try_new(Fields::from(fields), arrays, nulls)?)
}
