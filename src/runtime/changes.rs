//! Streamed row changes of one table, gathered column by column into Arrow: the stream
//! delivers rows, the rest of the pipeline wants batches. A batch is handed on at each commit
//! and whenever it reaches the batch size, so a large transaction is never held whole.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};

use super::poison::{self, PoisonRow};
use crate::envelope::{ChangeBatch, Op, SourcePosition};
use crate::plan::TablePlan;
use crate::source::postgres::copy::{raw_text, ColumnDecoder, RowError};
use crate::source::postgres::pgoutput::{OldImage, Relation, Tuple, Value};
use crate::source::postgres::SourceError;
use crate::types::PgType;

/// How the server's current shape of a table lines up with what the pipeline reads.
#[derive(Debug, Clone)]
pub struct ColumnMap {
    /// For each read column, its position in the server's tuples.
    pub tuple_index: Vec<usize>,
    /// Positions (in the server's tuples) of the columns whose change is a key change.
    pub identity: Vec<usize>,
}

/// Why a Relation message does not fit the running plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShapeChange {
    Dropped(String),
    TypeChanged {
        column: String,
        was: String,
        now: String,
    },
    Added(Vec<String>),
}

impl std::fmt::Display for ShapeChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShapeChange::Dropped(c) => write!(f, "column `{c}` was dropped"),
            ShapeChange::TypeChanged { column, was, now } => {
                write!(f, "column `{column}` changed type from {was} to {now}")
            }
            ShapeChange::Added(cols) => write!(f, "column(s) {} were added", cols.join(", ")),
        }
    }
}

/// Match a Relation against the plan. `Err` when the plan no longer fits; added columns only
/// matter when the pipeline reads every column (`all_columns`).
pub fn map_columns(
    plan: &TablePlan,
    rel: &Relation,
    all_columns: bool,
) -> Result<ColumnMap, ShapeChange> {
    let mut tuple_index = Vec::with_capacity(plan.read_columns.len());
    for c in &plan.read_columns {
        let Some(pos) = rel.columns.iter().position(|r| r.name == c.name) else {
            return Err(ShapeChange::Dropped(c.name.clone()));
        };
        let now = rel.columns[pos].type_oid;
        if c.type_oid != 0 && now != c.type_oid {
            return Err(ShapeChange::TypeChanged {
                column: c.name.clone(),
                was: c.pg_type.to_string(),
                now: format!("the type with OID {now}"),
            });
        }
        tuple_index.push(pos);
    }
    if all_columns {
        let added: Vec<String> = rel
            .columns
            .iter()
            .filter(|r| !plan.read_columns.iter().any(|c| c.name == r.name))
            .map(|r| r.name.clone())
            .collect();
        if !added.is_empty() {
            return Err(ShapeChange::Added(added));
        }
    }
    // Under REPLICA IDENTITY FULL every column is flagged as identity; a "key change" then
    // means the pipeline's key, found by name.
    let plan_key: Vec<usize> = plan
        .key
        .iter()
        .filter_map(|&i| {
            let name = &plan.output[i].name;
            rel.columns.iter().position(|c| &c.name == name)
        })
        .collect();
    let identity = if rel.replica_identity == b'f' && plan_key.len() == plan.key.len() {
        plan_key
    } else {
        rel.columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.key)
            .map(|(i, _)| i)
            .collect()
    };
    Ok(ColumnMap {
        tuple_index,
        identity,
    })
}

pub struct TableChanges {
    types: Vec<PgType>,
    names: Vec<String>,
    schema: SchemaRef,
    /// Same fields, all nullable: old images under REPLICA IDENTITY DEFAULT hold only the key.
    before_schema: SchemaRef,
    map: ColumnMap,
    placeholder: Vec<u8>,
    ops: Vec<Op>,
    lsns: Vec<u64>,
    /// Source transactions ended since the last hand-over: (rows so far, its position).
    ended: Vec<(usize, SourcePosition)>,
    before: Vec<ColumnDecoder>,
    before_valid: Vec<bool>,
    any_before: bool,
    after: Vec<ColumnDecoder>,
    capacity: usize,
    /// Values of the rows gathered so far that could not be decoded (those rows hold NULLs
    /// there); set aside at [`Self::take`].
    row_errors: Vec<RowError>,
    /// Rows set aside by the last takes: of ended source transactions (for
    /// [`Self::take_poison`]), and of the transaction still open (for
    /// [`Self::take_open_poison`]).
    poison: Vec<PoisonRow>,
    open_poison: Vec<PoisonRow>,
}

impl TableChanges {
    pub fn new(plan: &TablePlan, map: ColumnMap, placeholder: &str, capacity: usize) -> Self {
        let types: Vec<PgType> = plan
            .read_columns
            .iter()
            .map(|c| c.pg_type.clone())
            .collect();
        let decoders = |types: &[PgType]| -> Vec<ColumnDecoder> {
            types
                .iter()
                .map(|t| ColumnDecoder::new(t, capacity))
                .collect()
        };
        let before_schema = Arc::new(Schema::new(
            plan.input_schema
                .fields()
                .iter()
                .map(|f| Field::new(f.name(), f.data_type().clone(), true))
                .collect::<Vec<_>>(),
        ));
        TableChanges {
            names: plan.read_columns.iter().map(|c| c.name.clone()).collect(),
            before: decoders(&types),
            after: decoders(&types),
            types,
            schema: plan.input_schema.clone(),
            before_schema,
            map,
            placeholder: placeholder.as_bytes().to_vec(),
            ops: Vec::with_capacity(capacity),
            lsns: Vec::with_capacity(capacity),
            ended: Vec::new(),
            before_valid: Vec::with_capacity(capacity),
            any_before: false,
            capacity,
            row_errors: Vec::new(),
            poison: Vec::new(),
            open_poison: Vec::new(),
        }
    }

    /// Rows of ended source transactions that could not be decoded, set aside by
    /// [`Self::take`]: they must reach the producing side before the `Commit` that covers
    /// them.
    pub fn take_poison(&mut self) -> Vec<PoisonRow> {
        std::mem::take(&mut self.poison)
    }

    /// Rows of the open source transaction that could not be decoded, set aside by
    /// [`Self::take`]: they go on with the open transaction's rows, after the `Commit` of
    /// the ended ones (a Kafka transaction may close there and must not carry them).
    pub fn take_open_poison(&mut self) -> Vec<PoisonRow> {
        std::mem::take(&mut self.open_poison)
    }

    /// Rows below `end` that [`Self::take`] sets aside.
    fn bad_rows_below(&self, end: usize) -> usize {
        let mut rows: Vec<usize> = self
            .row_errors
            .iter()
            .map(|e| e.row)
            .filter(|r| *r < end)
            .collect();
        rows.dedup();
        rows.len()
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.ops.len() >= self.capacity
    }

    /// The source transaction at `position` has ended: its rows are complete.
    pub fn end_txn(&mut self, position: &SourcePosition) {
        let done = self.ended.last().map_or(0, |(end, _)| *end);
        if self.ops.len() > done {
            self.ended.push((self.ops.len(), position.clone()));
        }
    }

    /// Rows belonging to ended source transactions (the rest belong to the open one), in
    /// the batch [`Self::take`] hands on: without the rows it sets aside.
    pub fn complete_rows(&self) -> usize {
        let end = self.ended.last().map_or(0, |(end, _)| *end);
        end - self.bad_rows_below(end)
    }

    pub fn insert(&mut self, new: &Tuple, lsn: u64) -> Result<(), SourceError> {
        self.push(Op::Create, None, Some(new), lsn)
    }

    pub fn update(
        &mut self,
        old: Option<&(OldImage, Tuple)>,
        new: &Tuple,
        lsn: u64,
    ) -> Result<(), SourceError> {
        // The server sends an old key only when the key changed: like Debezium, that is a
        // delete of the old key followed by a create of the new one.
        if let Some((OldImage::Key, old_key)) = old {
            if self.key_changed(old_key, new) {
                self.push(Op::Delete, old, None, lsn)?;
                return self.push(Op::Create, None, Some(new), lsn);
            }
        }
        if let Some((OldImage::Full, old_row)) = old {
            if self.key_changed(old_row, new) {
                self.push(Op::Delete, old, None, lsn)?;
                return self.push(Op::Create, None, Some(new), lsn);
            }
        }
        self.push(Op::Update, old, Some(new), lsn)
    }

    pub fn delete(&mut self, old: &(OldImage, Tuple), lsn: u64) -> Result<(), SourceError> {
        self.push(Op::Delete, Some(old), None, lsn)
    }

    fn key_changed(&self, old: &Tuple, new: &Tuple) -> bool {
        self.map
            .identity
            .iter()
            .any(|&i| match (old.get(i), new.get(i)) {
                (Some(Value::Binary(a)), Some(Value::Binary(b)))
                | (Some(Value::Text(a)), Some(Value::Text(b))) => a != b,
                (Some(Value::UnchangedToast), _) | (_, Some(Value::UnchangedToast)) => false,
                (a, b) => a != b,
            })
    }

    fn push(
        &mut self,
        op: Op,
        old: Option<&(OldImage, Tuple)>,
        new: Option<&Tuple>,
        lsn: u64,
    ) -> Result<(), SourceError> {
        // A value that cannot be decoded does not stop the stream: the row is kept whole
        // (NULL there) and set aside at `take` (`on_error`).
        let row = self.ops.len();
        let old_tuple = old.map(|(_, t)| t);
        match old_tuple {
            Some(t) => {
                let failed = append_image(
                    &mut self.before,
                    &self.map.tuple_index,
                    t,
                    None,
                    &self.placeholder,
                    &self.types,
                );
                self.record(row, failed, true);
                self.before_valid.push(true);
                self.any_before = true;
            }
            None => {
                self.before.iter_mut().for_each(|d| d.append_null());
                self.before_valid.push(false);
            }
        }
        match new {
            Some(t) => {
                let failed = append_image(
                    &mut self.after,
                    &self.map.tuple_index,
                    t,
                    old_tuple.filter(|_| matches!(old, Some((OldImage::Full, _)))),
                    &self.placeholder,
                    &self.types,
                );
                self.record(row, failed, false);
            }
            None => self.after.iter_mut().for_each(|d| d.append_null()),
        }
        self.ops.push(op);
        self.lsns.push(lsn);
        Ok(())
    }

    fn record(&mut self, row: usize, failed: Vec<(usize, String, String)>, old_image: bool) {
        self.row_errors
            .extend(failed.into_iter().map(|(column, message, raw)| RowError {
                row,
                column,
                message,
                raw,
                old_image,
            }));
    }

    /// Hand over what has been gathered (input-schema images; the query runs later). Rows
    /// of the still open transaction, if any, are at `position`.
    pub fn take(&mut self, position: SourcePosition) -> Result<ChangeBatch, SourceError> {
        let n = self.ops.len();
        let complete = self.ended.last().map_or(0, |(end, _)| *end);
        let bad_complete = self.bad_rows_below(complete);
        let mut ended = std::mem::take(&mut self.ended);
        let position = match ended.last() {
            Some((end, p)) if *end >= n => p.clone(),
            _ => {
                ended.push((n, position.clone()));
                position
            }
        };
        let txns = (ended.len() > 1).then(|| {
            let mut row_txn = Vec::with_capacity(n);
            let mut start = 0;
            for (k, (end, _)) in ended.iter().enumerate() {
                row_txn.extend(std::iter::repeat_n(k as u32, end - start));
                start = *end;
            }
            crate::envelope::TxnRows {
                positions: ended.into_iter().map(|(_, p)| p).collect(),
                row_txn,
            }
        });
        let finish = |decoders: &mut Vec<ColumnDecoder>| -> Vec<ArrayRef> {
            decoders.iter_mut().map(|d| d.finish()).collect()
        };
        let options = RecordBatchOptions::new().with_row_count(Some(n));
        let after_cols = finish(&mut self.after);
        let before_cols = finish(&mut self.before);
        let has_after = self.ops.iter().any(|op| *op != Op::Delete);
        let after = if has_after {
            // Rows without a new image (deletes) are all-null: give them a nullable schema.
            let schema = if self.ops.contains(&Op::Delete) {
                self.before_schema.clone()
            } else {
                self.schema.clone()
            };
            Some(RecordBatch::try_new_with_options(
                schema, after_cols, &options,
            )?)
        } else {
            None
        };
        let before = if self.any_before {
            let before_cols = fill_required(&self.schema, before_cols, &self.before_valid)?;
            Some(RecordBatch::try_new_with_options(
                self.before_schema.clone(),
                before_cols,
                &options,
            )?)
        } else {
            None
        };
        let batch = ChangeBatch {
            ops: std::mem::take(&mut self.ops),
            before,
            before_valid: Some(std::mem::take(&mut self.before_valid)),
            after,
            position,
            snapshot_marks: None,
            lsns: Some(std::mem::take(&mut self.lsns)),
            txns,
        };
        self.any_before = false;
        if self.row_errors.is_empty() {
            return Ok(batch);
        }
        let errors = std::mem::take(&mut self.row_errors);
        let (batch, mut poison) = poison::split_changes(&self.names, batch, errors)?;
        // In row order: those of ended transactions first.
        self.open_poison
            .extend(poison.split_off(bad_complete.min(poison.len())));
        self.poison.extend(poison);
        Ok(batch)
    }
}

/// Append one row image. An unchanged TOASTed value is taken from the full old row when the
/// server sent one (REPLICA IDENTITY FULL), else it becomes the placeholder text — only
/// text-like and bytea columns can be TOASTed and unchanged, and all of them take it.
/// Returns the values that could not be decoded (column, why, the value as text); their
/// decoders hold NULLs, so the columns stay aligned.
fn append_image(
    decoders: &mut [ColumnDecoder],
    index: &[usize],
    tuple: &Tuple,
    old_full: Option<&Tuple>,
    placeholder: &[u8],
    types: &[PgType],
) -> Vec<(usize, String, String)> {
    let mut failed = Vec::new();
    for (j, (d, &pos)) in decoders.iter_mut().zip(index).enumerate() {
        let v = tuple.get(pos).unwrap_or(&Value::Null);
        let v = match (v, old_full) {
            (Value::UnchangedToast, Some(old)) => old.get(pos).unwrap_or(&Value::Null),
            _ => v,
        };
        match v {
            Value::Null => d.append_null(),
            Value::Binary(b) => {
                if let Err(m) = d.append(b) {
                    failed.push((j, m, raw_text(&types[j], b)));
                }
            }
            Value::Text(t) => {
                d.append_null();
                failed.push((
                    j,
                    "the server sent a text value in a binary replication stream".into(),
                    String::from_utf8_lossy(t).into_owned(),
                ));
            }
            Value::UnchangedToast => {
                // A type that cannot hold the placeholder gets NULL: `append` leaves one there
                // on error.
                let _ = match types[j] {
                    // jsonb's binary form starts with a version byte.
                    PgType::Jsonb => {
                        let mut v = Vec::with_capacity(placeholder.len() + 1);
                        v.push(1);
                        v.extend_from_slice(placeholder);
                        d.append(&v)
                    }
                    _ => d.append(placeholder),
                };
            }
        }
    }
    failed
}

/// An old row under REPLICA IDENTITY DEFAULT holds only the key; Debezium fills the other
/// NOT NULL columns with their type's zero value (`""`, `0`, epoch), never null. Rows without
/// an old image stay null.
fn fill_required(
    schema: &SchemaRef,
    columns: Vec<ArrayRef>,
    valid: &[bool],
) -> Result<Vec<ArrayRef>, SourceError> {
    use datafusion::arrow::array::{Array, BooleanArray};
    use datafusion::arrow::compute::kernels::zip::zip;
    use datafusion::common::ScalarValue;
    columns
        .into_iter()
        .zip(schema.fields())
        .map(|(col, field)| {
            if field.is_nullable() || col.null_count() == 0 {
                return Ok(col);
            }
            let zero = match field.data_type() {
                datafusion::arrow::datatypes::DataType::Utf8 => {
                    ScalarValue::Utf8(Some(String::new()))
                }
                datafusion::arrow::datatypes::DataType::Binary => {
                    ScalarValue::Binary(Some(Vec::new()))
                }
                dt => match ScalarValue::new_zero(dt) {
                    Ok(z) => z,
                    // No zero for this type (lists, structs...): leave it null.
                    Err(_) => return Ok(col),
                },
            };
            let Ok(zeros) = zero.to_array_of_size(col.len()) else {
                return Ok(col);
            };
            let mask = BooleanArray::from_iter(
                (0..col.len())
                    .map(|i| Some(valid.get(i).copied().unwrap_or(false) && col.is_null(i))),
            );
            Ok(zip(&mask, &zeros, &col)?)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::postgres::pgoutput::RelationColumn;
    use bytes::Bytes;
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int32Type;

    fn plan() -> TablePlan {
        let file = crate::parse::SourceFile::new(
            "t.sql",
            "CREATE CONNECTION pg TO POSTGRES (url = 'postgres://x@h/shop');
             CREATE CONNECTION k TO KAFKA (brokers = 'b:9092');
             CREATE PIPELINE p FROM pg INTO k TOPIC 't' FORMAT JSON ENVELOPE DEBEZIUM
               WITH (on_error = 'skip') TABLES (public.t);"
                .to_string(),
        );
        let script = crate::parse::parse_with_env(&file, &|_| None).expect("parses");
        let catalog = crate::catalog::Catalog::from_ddl_like(
            "database shop\ntable public.t\n  id integer primary key\n  amount numeric(10,2)\n",
        )
        .expect("catalog");
        let catalogs = std::collections::BTreeMap::from([("pg".to_string(), catalog)]);
        let mut plans = crate::plan::plan_script(&file, &script, &catalogs).expect("plans");
        plans.remove(0).tables.remove(0)
    }

    fn position(xid: i64) -> SourcePosition {
        SourcePosition {
            ts_us: 0,
            tx_id: Some(xid),
            lsn: None,
            last_commit_lsn: None,
            begin_lsn: None,
        }
    }

    fn row(id: i32, amount: &'static [u8]) -> Tuple {
        vec![
            Value::Binary(Bytes::copy_from_slice(&id.to_be_bytes())),
            Value::Binary(Bytes::from_static(amount)),
        ]
    }

    const ONE: &[u8] = &[0, 1, 0, 0, 0, 0, 0, 2, 0, 1];
    const NAN: &[u8] = &[0, 0, 0, 0, 0xC0, 0, 0, 0];

    #[test]
    fn rows_that_cannot_be_decoded_are_set_aside_by_transaction() {
        let plan = plan();
        let rel = Relation {
            id: 1,
            namespace: "public".into(),
            name: "t".into(),
            replica_identity: b'd',
            columns: ["id", "amount"]
                .iter()
                .map(|n| RelationColumn {
                    key: *n == "id",
                    name: n.to_string(),
                    type_oid: 0,
                    typmod: -1,
                })
                .collect(),
        };
        let map = map_columns(&plan, &rel, true).expect("fits");
        let mut acc = TableChanges::new(&plan, map, "__placeholder", 100);
        // Transaction 7 ends; transaction 8 is still open.
        acc.insert(&row(1, ONE), 101).unwrap();
        acc.insert(&row(2, NAN), 102).unwrap();
        acc.end_txn(&position(7));
        acc.insert(&row(3, NAN), 103).unwrap();
        acc.insert(&row(4, ONE), 104).unwrap();
        // The ended transaction's good rows, in the batch that `take` hands on.
        assert_eq!(acc.complete_rows(), 1);
        let batch = acc.take(position(8)).unwrap();
        assert_eq!(batch.lsns.as_deref(), Some(&[101, 104][..]));
        let ids = batch
            .after
            .as_ref()
            .unwrap()
            .column(0)
            .as_primitive::<Int32Type>();
        assert_eq!(ids.values().to_vec(), vec![1, 4]);
        let txns = batch.txns.as_ref().expect("two transactions");
        assert_eq!(txns.row_txn, vec![0, 1]);
        let (ended, open) = batch.split_at(1);
        assert_eq!((ended.len(), open.len()), (1, 1));
        let poison = acc.take_poison();
        assert_eq!(poison.len(), 1);
        assert_eq!((poison[0].lsn, poison[0].op), (Some(102), Op::Create));
        assert_eq!(poison[0].column.as_deref(), Some("amount"));
        assert_eq!(poison[0].row.get("amount"), Some(&serde_json::json!("NaN")));
        let open_poison = acc.take_open_poison();
        assert_eq!(open_poison.len(), 1);
        assert_eq!(open_poison[0].lsn, Some(103));
        assert!(acc.take_poison().is_empty() && acc.take_open_poison().is_empty());
    }
}
