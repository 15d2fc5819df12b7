//! Debezium's change-event envelope, byte-compatible with the Debezium PostgreSQL connector
//! (see `shared/reference/debezium-format.md`): key `<topic>.Key`, value `<topic>.Envelope`
//! with `before`/`after`/`source`/`transaction`/`op`/`ts_*`, and Debezium's default type
//! mapping (`decimal.handling.mode=precise`, `time.precision.mode=adaptive`).

use std::fmt::Write as _;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, Int64Array, RecordBatch, StringArray, StringBuilder, StructArray,
};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{DataType, Field as ArrowField, Fields};

use super::columns::{column_schema, connect_array};
pub use super::EnvelopeError;
use super::{ChangeBatch, Op, RecordSchemas, Records, SourcePosition};
use crate::connect::{ConnectType, DefaultValue, Field, Schema};
use crate::plan::{DebeziumOptions, OutputColumn, TablePlan};
use crate::types::TypeOptions;

/// The Debezium release whose layout we follow (envelope v2, source v1 with origin fields).
pub const DEBEZIUM_LAYOUT: &str = "3.6";
const SNAPSHOT_ALLOWED: &str =
    "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental";

fn source_schema() -> Schema {
    let s = |t| Schema::new(t);
    Schema::new(ConnectType::Struct(vec![
        Field::new("version", s(ConnectType::String)),
        Field::new("connector", s(ConnectType::String)),
        Field::new("name", s(ConnectType::String)),
        Field::new("ts_ms", s(ConnectType::Int64)),
        Field::new(
            "snapshot",
            s(ConnectType::String)
                .optional(true)
                .named("io.debezium.data.Enum")
                .version(1)
                .param("allowed", SNAPSHOT_ALLOWED)
                .with_default(DefaultValue::String("false".into())),
        ),
        Field::new("db", s(ConnectType::String)),
        Field::new("sequence", s(ConnectType::String).optional(true)),
        Field::new("ts_us", s(ConnectType::Int64).optional(true)),
        Field::new("ts_ns", s(ConnectType::Int64).optional(true)),
        Field::new("schema", s(ConnectType::String)),
        Field::new("table", s(ConnectType::String)),
        Field::new("txId", s(ConnectType::Int64).optional(true)),
        Field::new("lsn", s(ConnectType::Int64).optional(true)),
        Field::new("xmin", s(ConnectType::Int64).optional(true)),
        Field::new("origin", s(ConnectType::String).optional(true)),
        Field::new("origin_lsn", s(ConnectType::Int64).optional(true)),
    ]))
    .named("io.debezium.connector.postgresql.Source")
    .version(1)
}

fn transaction_schema() -> Schema {
    Schema::new(ConnectType::Struct(vec![
        Field::new("id", Schema::new(ConnectType::String)),
        Field::new("total_order", Schema::new(ConnectType::Int64)),
        Field::new("data_collection_order", Schema::new(ConnectType::Int64)),
    ]))
    .optional(true)
    .named("event.block")
    .version(1)
}

/// Debezium envelope for one table: schemas computed once, batches converted column-wise.
#[derive(Debug, Clone)]
pub struct DebeziumTable {
    schemas: RecordSchemas,
    output: Vec<OutputColumn>,
    key: Vec<usize>,
    server_name: String,
    database: String,
    schema_name: String,
    table_name: String,
    version: String,
    tombstones: bool,
    types: TypeOptions,
}

impl DebeziumTable {
    pub fn new(
        plan: &TablePlan,
        opts: &DebeziumOptions,
        database: &str,
        types: &TypeOptions,
    ) -> Self {
        let topic = &plan.topic;
        let row_fields: Vec<Field> = plan
            .output
            .iter()
            .map(|c| Field::new(&c.name, column_schema(&c.pg_type, c.nullable, types)))
            .collect();
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
        let row = Schema::new(ConnectType::Struct(row_fields))
            .optional(true)
            .named(format!("{topic}.Value"));
        let value = Schema::new(ConnectType::Struct(vec![
            Field::new("before", row.clone()),
            Field::new("after", row),
            Field::new("source", source_schema()),
            Field::new("transaction", transaction_schema()),
            Field::new("op", Schema::new(ConnectType::String)),
            Field::new("ts_ms", Schema::new(ConnectType::Int64).optional(true)),
            Field::new("ts_us", Schema::new(ConnectType::Int64).optional(true)),
            Field::new("ts_ns", Schema::new(ConnectType::Int64).optional(true)),
        ]))
        .named(format!("{topic}.Envelope"))
        .version(2);
        DebeziumTable {
            schemas: RecordSchemas { key, value },
            output: plan.output.clone(),
            key: plan.key.clone(),
            server_name: opts.server_name.clone(),
            database: database.to_string(),
            schema_name: plan.table.schema.clone(),
            table_name: plan.table.name.clone(),
            version: format!("cdcql-{}", env!("CARGO_PKG_VERSION")),
            tombstones: opts.tombstones,
            types: types.clone(),
        }
    }

    pub fn schemas(&self) -> &RecordSchemas {
        &self.schemas
    }

    /// Override `source.version` (tests pin it).
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// Convert one change batch. `now_ns` is the processing time (Debezium's top-level ts).
    pub fn records(&self, batch: &ChangeBatch, now_ns: i64) -> Result<Records, EnvelopeError> {
        let n = batch.len();
        let row = |rb: &Option<RecordBatch>| -> Result<Option<StructArray>, EnvelopeError> {
            rb.as_ref().map(|rb| self.row_struct(rb)).transpose()
        };
        let after = row(&batch.after)?;
        let before = row(&batch.before)?;
        let template = after.as_ref().or(before.as_ref());
        let row_fields = match template {
            Some(s) => s.fields().clone(),
            None => {
                return Err(EnvelopeError::Value {
                    column: String::new(),
                    message: "a change batch without row images".into(),
                })
            }
        };
        // Row images exist where the op says so: no `after` for deletes, no `before` for
        // reads and creates, and for updates only when the server sent the old row.
        let before_valid: Vec<bool> = batch
            .ops
            .iter()
            .enumerate()
            .map(|(i, op)| {
                !matches!(op, Op::Read | Op::Create)
                    && batch
                        .before_valid
                        .as_ref()
                        .map_or(batch.before.is_some(), |v| v[i])
            })
            .collect();
        let after_valid: Vec<bool> = batch.ops.iter().map(|op| *op != Op::Delete).collect();
        let with_validity =
            |image: Option<StructArray>, valid: Vec<bool>| -> Result<StructArray, EnvelopeError> {
                match image {
                    None => Ok(StructArray::new_null(row_fields.clone(), n)),
                    Some(s) => {
                        let (fields, arrays, _) = s.into_parts();
                        Ok(StructArray::try_new(
                            fields,
                            arrays,
                            Some(datafusion::arrow::buffer::NullBuffer::from(valid)),
                        )?)
                    }
                }
            };
        let before = with_validity(before, before_valid)?;
        let after = with_validity(after, after_valid)?;

        // A delete is followed by a tombstone with the same key: build the row order first.
        let tombstone_after: Vec<bool> = batch
            .ops
            .iter()
            .map(|op| self.tombstones && *op == Op::Delete)
            .collect();
        let extra = tombstone_after.iter().filter(|t| **t).count();
        let mut indices: Vec<u32> = Vec::with_capacity(n + extra);
        let mut is_tombstone: Vec<bool> = Vec::with_capacity(n + extra);
        for (i, t) in tombstone_after.iter().enumerate() {
            indices.push(i as u32);
            is_tombstone.push(false);
            if *t {
                indices.push(i as u32);
                is_tombstone.push(true);
            }
        }

        let source = self.source_struct(&batch.position, batch, n)?;
        let op = StringArray::from_iter_values(batch.ops.iter().map(|o| o.code()));
        let now_ms = now_ns.div_euclid(1_000_000);
        let now_us = now_ns.div_euclid(1_000);
        let transaction = StructArray::new_null(
            Fields::from(vec![
                ArrowField::new("id", DataType::Utf8, false),
                ArrowField::new("total_order", DataType::Int64, false),
                ArrowField::new("data_collection_order", DataType::Int64, false),
            ]),
            n,
        );
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("before", Arc::new(before)),
            ("after", Arc::new(after)),
            ("source", Arc::new(source)),
            ("transaction", Arc::new(transaction)),
            ("op", Arc::new(op)),
            ("ts_ms", Arc::new(Int64Array::from_value(now_ms, n))),
            ("ts_us", Arc::new(Int64Array::from_value(now_us, n))),
            ("ts_ns", Arc::new(Int64Array::from_value(now_ns, n))),
        ];
        let value = struct_of(columns, None)?;
        let key = match (&batch.before, &batch.after) {
            (Some(b), Some(a)) if batch.ops.contains(&Op::Delete) => {
                let deletes = datafusion::arrow::array::BooleanArray::from_iter(
                    batch.ops.iter().map(|op| Some(*op == Op::Delete)),
                );
                self.key_struct(&super::pick_rows(&deletes, b, a)?)?
            }
            (_, Some(a)) => self.key_struct(a)?,
            (Some(b), None) => self.key_struct(b)?,
            (None, None) => None,
        };

        if extra == 0 {
            return Ok(Records { key, value });
        }
        let idx = datafusion::arrow::array::UInt32Array::from(indices);
        let value = take(&value, &idx, None)?;
        let value = value
            .as_any()
            .downcast_ref::<StructArray>()
            .expect("take keeps the type")
            .clone();
        let (fields, arrays, _) = value.into_parts();
        let nulls = datafusion::arrow::buffer::NullBuffer::from(
            is_tombstone.iter().map(|t| !t).collect::<Vec<_>>(),
        );
        let value = StructArray::try_new(fields, arrays, Some(nulls))?;
        let key = match key {
            Some(k) => Some(
                take(&k, &idx, None)?
                    .as_any()
                    .downcast_ref::<StructArray>()
                    .expect("take keeps the type")
                    .clone(),
            ),
            None => None,
        };
        Ok(Records { key, value })
    }

    fn row_struct(&self, rb: &RecordBatch) -> Result<StructArray, EnvelopeError> {
        let cols = self
            .output
            .iter()
            .enumerate()
            .map(|(i, c)| {
                Ok((
                    c.name.as_str(),
                    connect_array(rb.column(i), c, &self.types)?,
                ))
            })
            .collect::<Result<Vec<_>, EnvelopeError>>()?;
        struct_of(cols, None)
    }

    fn key_struct(&self, rb: &RecordBatch) -> Result<Option<StructArray>, EnvelopeError> {
        if self.key.is_empty() {
            return Ok(None);
        }
        let cols = self
            .key
            .iter()
            .map(|&i| {
                let c = &self.output[i];
                Ok((
                    c.name.as_str(),
                    connect_array(rb.column(i), c, &self.types)?,
                ))
            })
            .collect::<Result<Vec<_>, EnvelopeError>>()?;
        Ok(Some(struct_of(cols, None)?))
    }

    fn source_struct(
        &self,
        pos: &SourcePosition,
        batch: &ChangeBatch,
        n: usize,
    ) -> Result<StructArray, EnvelopeError> {
        let repeat = |s: &str| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(s, n)))
        };
        let snapshot: ArrayRef = match &batch.snapshot_marks {
            Some(marks) => Arc::new(StringArray::from_iter_values(
                marks.iter().map(|m| m.as_str()),
            )),
            None => repeat("false"),
        };
        let opt_i64 = |v: Option<i64>| -> ArrayRef {
            Arc::new(match v {
                Some(v) => Int64Array::from_value(v, n),
                None => Int64Array::new_null(n),
            })
        };
        // One value per row when the batch spans several source transactions.
        let per_row = |f: &dyn Fn(&SourcePosition) -> Option<i64>| -> ArrayRef {
            match &batch.txns {
                Some(_) => Arc::new(Int64Array::from_iter(
                    (0..n).map(|i| f(batch.position_of(i))),
                )),
                None => opt_i64(f(pos)),
            }
        };
        let sequence: ArrayRef = {
            let mut b = StringBuilder::with_capacity(n, n * 32);
            for i in 0..n {
                let p = batch.position_of(i);
                let lsn = batch
                    .lsns
                    .as_ref()
                    .and_then(|l| l.get(i).copied())
                    .or(p.lsn);
                // Debezium writes both LSNs as JSON strings inside a JSON array.
                let _ = match (p.last_commit_lsn, lsn) {
                    (Some(c), Some(l)) => write!(b, "[\"{c}\",\"{l}\"]"),
                    (None, Some(l)) => write!(b, "[null,\"{l}\"]"),
                    (Some(c), None) => write!(b, "[\"{c}\",null]"),
                    (None, None) => write!(b, "[null,null]"),
                };
                b.append_value("");
            }
            Arc::new(b.finish())
        };
        let lsn: ArrayRef = match &batch.lsns {
            Some(lsns) => Arc::new(Int64Array::from_iter_values(lsns.iter().map(|l| *l as i64))),
            None => opt_i64(pos.lsn.map(|l| l as i64)),
        };
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("version", repeat(&self.version)),
            ("connector", repeat("postgresql")),
            ("name", repeat(&self.server_name)),
            ("ts_ms", per_row(&|p| Some(p.ts_us.div_euclid(1000)))),
            ("snapshot", snapshot),
            ("db", repeat(&self.database)),
            ("sequence", sequence),
            ("ts_us", per_row(&|p| Some(p.ts_us))),
            ("ts_ns", per_row(&|p| Some(p.ts_us.saturating_mul(1000)))),
            ("schema", repeat(&self.schema_name)),
            ("table", repeat(&self.table_name)),
            ("txId", per_row(&|p| p.tx_id)),
            ("lsn", lsn),
            ("xmin", opt_i64(None)),
            ("origin", Arc::new(StringArray::new_null(n))),
            ("origin_lsn", opt_i64(None)),
        ];
        struct_of(columns, None)
    }
}

fn struct_of(
    columns: Vec<(&str, ArrayRef)>,
    nulls: Option<datafusion::arrow::buffer::NullBuffer>,
) -> Result<StructArray, EnvelopeError> {
    let fields: Vec<ArrowField> = columns
        .iter()
        .map(|(name, a)| ArrowField::new(*name, a.data_type().clone(), true))
        .collect();
    let arrays: Vec<ArrayRef> = columns.into_iter().map(|(_, a)| a).collect();
    Ok(StructArray::try_new(Fields::from(fields), arrays, nulls)?)
}
