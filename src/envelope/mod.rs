//! Envelopes turn change batches (rows plus what happened to them) into key and value
//! columns in the Kafka Connect model (`crate::connect`). A null value row is a tombstone.
//! Envelopes never produce bytes; encoders never know which envelope they serve.

pub mod columns;
pub mod debezium;
pub mod native;
pub mod transaction;

use datafusion::arrow::array::{RecordBatch, StructArray};
use datafusion::arrow::error::ArrowError;

use crate::connect::Schema;
use crate::plan::{Envelope, PipelinePlan, TablePlan};

/// What happened to a row, as Debezium's `op` letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Read,
    Create,
    Update,
    Delete,
}

impl Op {
    pub fn code(self) -> &'static str {
        match self {
            Op::Read => "r",
            Op::Create => "c",
            Op::Update => "u",
            Op::Delete => "d",
        }
    }
}

/// Where a snapshot row sits in the snapshot, Debezium's `source.snapshot` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotMark {
    First,
    FirstInDataCollection,
    True,
    LastInDataCollection,
    Last,
}

impl SnapshotMark {
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotMark::First => "first",
            SnapshotMark::FirstInDataCollection => "first_in_data_collection",
            SnapshotMark::True => "true",
            SnapshotMark::LastInDataCollection => "last_in_data_collection",
            SnapshotMark::Last => "last",
        }
    }

    /// Debezium's rule: the very first row of the snapshot is `first`, the very last `last`;
    /// otherwise the first and last rows of each table are marked as such.
    pub fn for_row(first_table: bool, last_table: bool, first_row: bool, last_row: bool) -> Self {
        if first_table && first_row {
            SnapshotMark::First
        } else if last_table && last_row {
            SnapshotMark::Last
        } else if first_row {
            SnapshotMark::FirstInDataCollection
        } else if last_row {
            SnapshotMark::LastInDataCollection
        } else {
            SnapshotMark::True
        }
    }
}

/// Where a change came from: its transaction's commit time, id and the previous commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePosition {
    /// Commit time (streaming) or snapshot start time, µs since the Unix epoch.
    pub ts_us: i64,
    pub tx_id: Option<i64>,
    pub lsn: Option<u64>,
    pub last_commit_lsn: Option<u64>,
    /// Streamed changes: where the server began sending the transaction (its BEGIN message;
    /// Debezium's transaction metadata names BEGIN by it).
    pub begin_lsn: Option<u64>,
}

/// Rows of one table that changed the same way-ish: one op per row, the row images in
/// Arrow (already through the pipeline's query), and where they came from.
#[derive(Debug, Clone)]
pub struct ChangeBatch {
    pub ops: Vec<Op>,
    /// Old row images; `None` when no row of the batch has one.
    pub before: Option<RecordBatch>,
    /// Which rows of `before` hold an image (`None`: all of them, when `before` is set).
    pub before_valid: Option<Vec<bool>>,
    /// New row images; `None` when no row of the batch has one.
    pub after: Option<RecordBatch>,
    pub position: SourcePosition,
    /// Per row, for snapshot batches.
    pub snapshot_marks: Option<Vec<SnapshotMark>>,
    /// Per row, the WAL position of the change (streamed batches); `None` for snapshot rows.
    pub lsns: Option<Vec<u64>>,
    /// A streamed batch may gather several small source transactions (one batch per
    /// transaction costs more than the rows themselves); then each row names its own.
    /// `None`: every row is at `position`.
    pub txns: Option<TxnRows>,
}

fn split_opt<T: Clone>(v: &Option<Vec<T>>, at: usize) -> (Option<Vec<T>>, Option<Vec<T>>) {
    match v {
        Some(v) => (Some(v[..at].to_vec()), Some(v[at..].to_vec())),
        None => (None, None),
    }
}

/// The source transactions of a batch, and which one each row belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnRows {
    pub positions: Vec<SourcePosition>,
    /// Per row, an index into `positions`.
    pub row_txn: Vec<u32>,
}

impl ChangeBatch {
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The source position of row `i`.
    pub fn position_of(&self, i: usize) -> &SourcePosition {
        match &self.txns {
            Some(t) => t
                .row_txn
                .get(i)
                .and_then(|&k| t.positions.get(k as usize))
                .unwrap_or(&self.position),
            None => &self.position,
        }
    }

    /// Rows `..at` and rows `at..`, sharing the Arrow buffers.
    pub fn split_at(self, at: usize) -> (ChangeBatch, ChangeBatch) {
        let n = self.len();
        let at = at.min(n);
        let slice = |rb: &Option<RecordBatch>, off: usize, len: usize| {
            rb.as_ref().map(|rb| rb.slice(off, len))
        };
        let (bv0, bv1) = split_opt(&self.before_valid, at);
        let (lsn0, lsn1) = split_opt(&self.lsns, at);
        let (marks0, marks1) = split_opt(&self.snapshot_marks, at);
        let (tx0, tx1) = match &self.txns {
            Some(t) => (
                Some(TxnRows {
                    positions: t.positions.clone(),
                    row_txn: t.row_txn[..at].to_vec(),
                }),
                Some(TxnRows {
                    positions: t.positions.clone(),
                    row_txn: t.row_txn[at..].to_vec(),
                }),
            ),
            None => (None, None),
        };
        let head = ChangeBatch {
            ops: self.ops[..at].to_vec(),
            before: slice(&self.before, 0, at),
            before_valid: bv0,
            after: slice(&self.after, 0, at),
            position: self.position.clone(),
            snapshot_marks: marks0,
            lsns: lsn0,
            txns: tx0,
        };
        let tail = ChangeBatch {
            ops: self.ops[at..].to_vec(),
            before: slice(&self.before, at, n - at),
            before_valid: bv1,
            after: slice(&self.after, at, n - at),
            position: self.position,
            snapshot_marks: marks1,
            lsns: lsn1,
            txns: tx1,
        };
        (head, tail)
    }
}

/// Key and value columns ready for an encoder. `key` is `None` for tables without a key
/// (every message gets a null key).
#[derive(Debug, Clone)]
pub struct Records {
    pub key: Option<StructArray>,
    pub value: StructArray,
}

/// The Connect schemas of one table's messages, fixed for the life of a plan.
#[derive(Debug, Clone)]
pub struct RecordSchemas {
    pub key: Option<Schema>,
    pub value: Schema,
}

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
    #[error("column `{column}`: {message}")]
    Value { column: String, message: String },
    /// Values of these rows (indexes into the batch, with why) cannot be converted; the
    /// other rows can (see `runtime::poison`).
    #[error("column `{column}`: {}", columns::describe_rows(.rows))]
    Rows {
        column: String,
        rows: Vec<(usize, String)>,
    },
}

/// One table's envelope, as the pipeline chose it.
#[derive(Debug, Clone)]
pub enum TableEnvelope {
    Debezium(debezium::DebeziumTable),
    Native(native::NativeTable),
}

impl TableEnvelope {
    pub fn new(pipeline: &PipelinePlan, table: &TablePlan) -> Self {
        match &pipeline.envelope {
            Envelope::Debezium(opts) => TableEnvelope::Debezium(debezium::DebeziumTable::new(
                table,
                opts,
                &pipeline.database,
                &pipeline.types,
            )),
            Envelope::Native(opts) => {
                TableEnvelope::Native(native::NativeTable::new(table, opts, &pipeline.types))
            }
        }
    }

    pub fn schemas(&self) -> &RecordSchemas {
        match self {
            TableEnvelope::Debezium(e) => e.schemas(),
            TableEnvelope::Native(e) => e.schemas(),
        }
    }

    /// `now_ns` is the processing time, which only the Debezium envelope records.
    pub fn records(&self, batch: &ChangeBatch, now_ns: i64) -> Result<Records, EnvelopeError> {
        self.records_in(batch, now_ns, None)
    }

    /// With the changes' `transaction` blocks (`transaction::block`), which only the Debezium
    /// envelope has.
    pub fn records_in(
        &self,
        batch: &ChangeBatch,
        now_ns: i64,
        transaction: Option<&StructArray>,
    ) -> Result<Records, EnvelopeError> {
        match self {
            TableEnvelope::Debezium(e) => e.records_in(batch, now_ns, transaction),
            TableEnvelope::Native(e) => e.records(batch),
        }
    }
}

/// Row by row, `before` where `mask` is set, else `after` (same schema).
pub(crate) fn pick_rows(
    mask: &datafusion::arrow::array::BooleanArray,
    before: &RecordBatch,
    after: &RecordBatch,
) -> Result<RecordBatch, EnvelopeError> {
    let columns = before
        .columns()
        .iter()
        .zip(after.columns())
        .map(|(b, a)| datafusion::arrow::compute::kernels::zip::zip(mask, b, a))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(after.schema(), columns)?)
}
