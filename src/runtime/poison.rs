//! Poison rows: rows that cannot be delivered. A value the source decoder or the type mapping
//! rejects (NaN under `decimal_handling = 'precise'`, a multi-dimensional array), a record the
//! encoder refuses, or a message larger than the producer's `message.max.bytes`.
//!
//! The happy path never comes here: batches are decoded, converted and encoded column by
//! column. Only a failing batch takes the slow path. The rows at fault are found from the row
//! numbers the failing stage reports (each confirmed alone, so a wrong number cannot cost a
//! good row), or else by halving the batch. The other rows go on, in order, with an Arrow
//! filter. Each bad row is then treated as the pipeline's `on_error` says: `fail` stops the
//! pipeline before the row's position is acknowledged; `dead_letter` writes the row as plain
//! JSON to the dead-letter topic, with headers saying why, through the same producer (so
//! inside the open Kafka transaction when the pipeline is transactional, and acknowledged
//! only once delivered); `skip` drops it with a rate-limited warning. Counts go to the metrics
//! and the progress record (`cdcql status`).
//!
//! Rows that fail to decode are set aside by the reading side (`split_snapshot`,
//! `split_changes`) and reach the producing side as `Work::Poison`, ahead of the commit or
//! chunk end that covers them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use rdkafka::message::{Header, OwnedHeaders};
use serde_json::Value;

use super::metrics::Metrics;
use super::offsets::{Progress, RejectedRows};
use super::RuntimeError;
use crate::encode::EncodeError;
use crate::envelope::{ChangeBatch, EnvelopeError, Op, TxnRows};
use crate::plan::{Envelope, OnError, PipelinePlan, TablePlan};
use crate::sink::kafka::{KafkaSink, SinkError};
use crate::source::postgres::copy::RowError;

/// librdkafka's default `message.max.bytes`.
const DEFAULT_MESSAGE_MAX_BYTES: usize = 1_000_000;
/// Room left for the record's framing in a dead letter's size budget.
const RECORD_OVERHEAD: usize = 512;
/// At most this many warnings per table and window; the rest are counted and summed up.
const WARNINGS_PER_WINDOW: u32 = 10;
const WARNING_WINDOW: Duration = Duration::from_secs(10);

/// Where in the pipeline a row failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reading the value from Postgres' binary form.
    Decode,
    /// Evaluating the pipeline's query (a CAST that fails, a division by zero).
    Query,
    /// Mapping the value to its Connect form (the type mapping).
    Convert,
    /// Writing the record as JSON or Avro.
    Encode,
    /// Handing the message to Kafka.
    Produce,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Decode => "decode",
            Stage::Query => "query",
            Stage::Convert => "convert",
            Stage::Encode => "encode",
            Stage::Produce => "produce",
        }
    }
}

/// A row set aside: why, where it came from, and its columns as plain JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct PoisonRow {
    pub stage: Stage,
    /// The column at fault, when one is.
    pub column: Option<String>,
    pub error: String,
    pub op: Op,
    /// WAL position of the change; `None` for snapshot rows.
    pub lsn: Option<u64>,
    /// The row image the op describes (the old row for a delete): the source's columns for
    /// rows that failed to decode, the query's output columns (which hold the key unchanged)
    /// for rows that failed later.
    pub row: JsonRow,
}

/// A row's columns as JSON values, in column order (which a JSON object does not keep).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JsonRow(pub Vec<(String, Value)>);

impl JsonRow {
    pub fn get(&self, column: &str) -> Option<&Value> {
        self.0.iter().find(|(c, _)| c == column).map(|(_, v)| v)
    }

    fn get_mut(&mut self, column: &str) -> Option<&mut Value> {
        self.0.iter_mut().find(|(c, _)| c == column).map(|(_, v)| v)
    }

    pub fn set(&mut self, column: &str, value: Value) {
        match self.get_mut(column) {
            Some(v) => *v = value,
            None => self.0.push((column.to_string(), value)),
        }
    }

    /// The row as a JSON object, columns in order.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![b'{'];
        for (i, (c, v)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let _ = serde_json::to_writer(&mut out, c);
            out.push(b':');
            let _ = serde_json::to_writer(&mut out, v);
        }
        out.push(b'}');
        out
    }

    pub fn to_value(&self) -> Value {
        Value::Object(self.0.iter().cloned().collect())
    }
}

// --- rows as JSON ------------------------------------------------------------------------

/// One row of `batch` as a JSON object: numbers and booleans as such, strings as strings,
/// bytes as `\x` hex, lists and structs nested, everything else (decimals, times) as Arrow
/// prints it. Slow, and only ever used for rows that are set aside.
pub fn row_json(batch: &RecordBatch, row: usize) -> JsonRow {
    JsonRow(
        batch
            .schema()
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(f, a)| (f.name().clone(), value_json(a.as_ref(), row)))
            .collect(),
    )
}

fn display(a: &dyn Array, i: usize) -> String {
    let options = FormatOptions::new().with_display_error(true);
    match ArrayFormatter::try_new(a, &options) {
        Ok(f) => {
            let mut s = String::new();
            let _ = write!(s, "{}", f.value(i));
            s
        }
        Err(e) => format!("<{e}>"),
    }
}

fn hex(bytes: &[u8]) -> Value {
    let mut s = String::with_capacity(2 + bytes.len() * 2);
    s.push_str("\\x");
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    Value::String(s)
}

fn value_json(a: &dyn Array, i: usize) -> Value {
    if i >= a.len() || a.is_null(i) {
        return Value::Null;
    }
    let dt = a.data_type();
    match dt {
        DataType::Boolean => Value::Bool(a.as_boolean().value(i)),
        DataType::Utf8 => Value::String(a.as_string::<i32>().value(i).to_string()),
        DataType::LargeUtf8 => Value::String(a.as_string::<i64>().value(i).to_string()),
        DataType::Utf8View => Value::String(a.as_string_view().value(i).to_string()),
        DataType::Binary => hex(a.as_binary::<i32>().value(i)),
        DataType::LargeBinary => hex(a.as_binary::<i64>().value(i)),
        DataType::List(_) => {
            let items = a.as_list::<i32>().value(i);
            Value::Array(
                (0..items.len())
                    .map(|j| value_json(items.as_ref(), j))
                    .collect(),
            )
        }
        DataType::Struct(fields) => {
            let s = a.as_struct();
            Value::Object(
                fields
                    .iter()
                    .zip(s.columns())
                    .map(|(f, c)| (f.name().clone(), value_json(c.as_ref(), i)))
                    .collect(),
            )
        }
        DataType::Map(_, _) => {
            let entries = a.as_map().value(i);
            let (keys, values) = (entries.column(0), entries.column(1));
            Value::Object(
                (0..entries.len())
                    .map(|j| {
                        let key = match value_json(keys.as_ref(), j) {
                            Value::String(s) => s,
                            other => other.to_string(),
                        };
                        (key, value_json(values.as_ref(), j))
                    })
                    .collect(),
            )
        }
        _ if dt.is_integer() => {
            let s = display(a, i);
            s.parse::<i64>()
                .map(Value::from)
                .or_else(|_| s.parse::<u64>().map(Value::from))
                .unwrap_or(Value::String(s))
        }
        // NaN and ±Infinity are not JSON numbers: they stay text.
        _ if dt.is_floating() => {
            let s = display(a, i);
            s.parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or(Value::String(s), Value::Number)
        }
        _ => Value::String(display(a, i)),
    }
}

// --- splitting batches -------------------------------------------------------------------

/// The rows `range` of a change batch (zero-copy slices of its images).
pub fn change_range(change: &ChangeBatch, range: Range<usize>) -> ChangeBatch {
    let len = range.len();
    let slice = |b: &RecordBatch| b.slice(range.start, len);
    ChangeBatch {
        ops: change.ops[range.clone()].to_vec(),
        before: change.before.as_ref().map(slice),
        before_valid: change
            .before_valid
            .as_ref()
            .map(|v| v[range.clone()].to_vec()),
        after: change.after.as_ref().map(slice),
        position: change.position.clone(),
        snapshot_marks: change
            .snapshot_marks
            .as_ref()
            .map(|m| m[range.clone()].to_vec()),
        lsns: change.lsns.as_ref().map(|l| l[range.clone()].to_vec()),
        txns: change.txns.as_ref().map(|t| TxnRows {
            positions: t.positions.clone(),
            row_txn: t.row_txn[range].to_vec(),
        }),
    }
}

/// The rows of a change batch where `keep` is set, in order.
pub fn change_rows(change: &ChangeBatch, keep: &[bool]) -> Result<ChangeBatch, ArrowError> {
    let mask = BooleanArray::from(keep.to_vec());
    let pick = |v: &Vec<bool>| -> Vec<bool> {
        v.iter()
            .zip(keep)
            .filter(|(_, k)| **k)
            .map(|(x, _)| *x)
            .collect()
    };
    Ok(ChangeBatch {
        ops: change
            .ops
            .iter()
            .zip(keep)
            .filter(|(_, k)| **k)
            .map(|(o, _)| *o)
            .collect(),
        before: change
            .before
            .as_ref()
            .map(|b| filter_record_batch(b, &mask))
            .transpose()?,
        before_valid: change.before_valid.as_ref().map(pick),
        after: change
            .after
            .as_ref()
            .map(|b| filter_record_batch(b, &mask))
            .transpose()?,
        position: change.position.clone(),
        snapshot_marks: change.snapshot_marks.as_ref().map(|m| {
            m.iter()
                .zip(keep)
                .filter(|(_, k)| **k)
                .map(|(x, _)| *x)
                .collect()
        }),
        lsns: change.lsns.as_ref().map(|l| {
            l.iter()
                .zip(keep)
                .filter(|(_, k)| **k)
                .map(|(x, _)| *x)
                .collect()
        }),
        txns: change.txns.as_ref().map(|t| TxnRows {
            positions: t.positions.clone(),
            row_txn: t
                .row_txn
                .iter()
                .zip(keep)
                .filter(|(_, k)| **k)
                .map(|(x, _)| *x)
                .collect(),
        }),
    })
}

/// The row image a change's op describes: the old row for a delete, else the new one.
fn image_of(change: &ChangeBatch, row: usize) -> JsonRow {
    let image = if change.ops.get(row) == Some(&Op::Delete) {
        change.before.as_ref().or(change.after.as_ref())
    } else {
        change.after.as_ref().or(change.before.as_ref())
    };
    image.map(|b| row_json(b, row)).unwrap_or_default()
}

/// Rows grouped by row number, in order.
fn by_row(errors: Vec<RowError>) -> BTreeMap<usize, Vec<RowError>> {
    let mut rows: BTreeMap<usize, Vec<RowError>> = BTreeMap::new();
    for e in errors {
        rows.entry(e.row).or_default().push(e);
    }
    rows
}

fn decode_row(
    names: &[String],
    errors: &[RowError],
    mut row: JsonRow,
    op: Op,
    lsn: Option<u64>,
) -> PoisonRow {
    let mut message = String::new();
    for e in errors {
        let name = names.get(e.column).cloned().unwrap_or_default();
        if !message.is_empty() {
            let _ = write!(message, "; column `{name}`: ");
        }
        message.push_str(&e.message);
        if e.old_image {
            message.push_str(" (in the old row image)");
        } else {
            // The decoded row holds a NULL there: show what Postgres has instead.
            row.set(&name, Value::String(e.raw.clone()));
        }
    }
    PoisonRow {
        stage: Stage::Decode,
        column: errors.first().and_then(|e| names.get(e.column).cloned()),
        error: message,
        op,
        lsn,
        row,
    }
}

/// A snapshot batch whose rows `errors` could not be decoded: the batch without them, and
/// them as poison rows.
pub fn split_snapshot(
    table: &TablePlan,
    batch: RecordBatch,
    errors: Vec<RowError>,
) -> Result<(RecordBatch, Vec<PoisonRow>), ArrowError> {
    let names: Vec<String> = table.read_columns.iter().map(|c| c.name.clone()).collect();
    let rows = by_row(errors);
    let poison = rows
        .iter()
        .filter(|(r, _)| **r < batch.num_rows())
        .map(|(r, errs)| decode_row(&names, errs, row_json(&batch, *r), Op::Read, None))
        .collect();
    let keep = BooleanArray::from_iter((0..batch.num_rows()).map(|r| Some(!rows.contains_key(&r))));
    Ok((filter_record_batch(&batch, &keep)?, poison))
}

/// Streamed changes whose rows `errors` could not be decoded (in either image): the batch
/// without them, and them as poison rows. `names` are the read columns.
pub fn split_changes(
    names: &[String],
    change: ChangeBatch,
    errors: Vec<RowError>,
) -> Result<(ChangeBatch, Vec<PoisonRow>), ArrowError> {
    let rows = by_row(errors);
    let poison = rows
        .iter()
        .filter(|(r, _)| **r < change.len())
        .map(|(r, errs)| {
            let op = change.ops[*r];
            let lsn = change.lsns.as_ref().and_then(|l| l.get(*r).copied());
            decode_row(names, errs, image_of(&change, *r), op, lsn)
        })
        .collect();
    let keep: Vec<bool> = (0..change.len()).map(|r| !rows.contains_key(&r)).collect();
    Ok((change_rows(&change, &keep)?, poison))
}

// --- finding the rows at fault -----------------------------------------------------------

/// Where a failure of a whole batch points, when a row is to blame.
enum Located {
    /// These rows (indexes into the batch), with why.
    Rows {
        column: String,
        rows: Vec<(usize, String)>,
    },
    /// Some row, not said which.
    Somewhere {
        stage: Stage,
        column: Option<String>,
        message: String,
    },
}

/// Failures that depend on the values of a row; everything else (a bug, a broken schema)
/// fails for any row and must stop the pipeline as before.
fn locate(e: &RuntimeError) -> Option<Located> {
    match e {
        RuntimeError::Envelope(EnvelopeError::Rows { column, rows }) => Some(Located::Rows {
            column: column.clone(),
            rows: rows.clone(),
        }),
        RuntimeError::Envelope(EnvelopeError::Value { column, message }) if !column.is_empty() => {
            Some(Located::Somewhere {
                stage: Stage::Convert,
                column: Some(column.clone()),
                message: message.clone(),
            })
        }
        RuntimeError::Envelope(EnvelopeError::Arrow(
            a @ (ArrowError::CastError(_)
            | ArrowError::ComputeError(_)
            | ArrowError::ArithmeticOverflow(_)
            | ArrowError::DivideByZero
            | ArrowError::ParseError(_)),
        )) => Some(Located::Somewhere {
            stage: Stage::Convert,
            column: None,
            message: a.to_string(),
        }),
        RuntimeError::Query(e) if query_data_error(e) => Some(Located::Somewhere {
            stage: Stage::Query,
            column: None,
            message: e.to_string(),
        }),
        RuntimeError::Encode(e @ EncodeError::NullNotAllowed { field }) => {
            Some(Located::Somewhere {
                stage: Stage::Encode,
                column: Some(field.clone()),
                message: e.to_string(),
            })
        }
        _ => None,
    }
}

/// Whether the query failed on the values it read (not on its plan).
fn query_data_error(e: &datafusion::error::DataFusionError) -> bool {
    use datafusion::error::DataFusionError as E;
    match e {
        E::ArrowError(a, _) => matches!(
            a.as_ref(),
            ArrowError::CastError(_)
                | ArrowError::ComputeError(_)
                | ArrowError::ArithmeticOverflow(_)
                | ArrowError::DivideByZero
                | ArrowError::ParseError(_)
        ),
        E::Execution(_) => true,
        E::Context(_, inner) => query_data_error(inner),
        _ => false,
    }
}

/// Snapshot rows (before the query) as a change batch of reads, for [`isolate`].
pub fn snapshot_rows(batch: RecordBatch) -> ChangeBatch {
    ChangeBatch {
        ops: vec![Op::Read; batch.num_rows()],
        before: None,
        before_valid: None,
        after: Some(batch),
        position: crate::envelope::SourcePosition {
            ts_us: 0,
            tx_id: None,
            lsn: None,
            last_commit_lsn: None,
            begin_lsn: None,
        },
        snapshot_marks: None,
        lsns: None,
        txns: None,
    }
}

/// A bad row found: its index in the batch searched, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub row: usize,
    pub stage: Stage,
    pub column: Option<String>,
    pub message: String,
}

fn fault(row: usize, located: Located) -> Fault {
    match located {
        Located::Rows { column, rows } => Fault {
            row,
            stage: Stage::Convert,
            column: Some(column),
            message: rows.into_iter().next().map(|(_, m)| m).unwrap_or_default(),
        },
        Located::Somewhere {
            stage,
            column,
            message,
        } => Fault {
            row,
            stage,
            column,
            message,
        },
    }
}

/// Every failing row of `batch` (which fails as a whole), by halving it: `O(n log n)` rows
/// converted at worst, no row converted alone unless it is at fault.
fn bisect(
    batch: &ChangeBatch,
    first: RuntimeError,
    encode: &mut impl FnMut(&ChangeBatch) -> Result<(), RuntimeError>,
) -> Result<Vec<Fault>, RuntimeError> {
    let mut found = Vec::new();
    let mut todo = vec![(0..batch.len(), first)];
    while let Some((range, err)) = todo.pop() {
        if range.len() == 1 {
            match locate(&err) {
                Some(l) => found.push(fault(range.start, l)),
                None => return Err(err),
            }
            continue;
        }
        let mid = range.start + range.len() / 2;
        for part in [range.start..mid, mid..range.end] {
            if let Err(e) = encode(&change_range(batch, part.clone())) {
                if locate(&e).is_none() {
                    return Err(e);
                }
                todo.push((part, e));
            }
        }
    }
    found.sort_by_key(|f| f.row);
    Ok(found)
}

/// The rows of `change` at fault for `error` (how converting or encoding the whole batch
/// failed), with indexes into `change`, and the batch without them (`None` when no row is
/// left). `encode` converts and encodes a batch without sending anything. Fails with the
/// original error when no row is to blame.
pub fn isolate(
    error: RuntimeError,
    change: &ChangeBatch,
    mut encode: impl FnMut(&ChangeBatch) -> Result<(), RuntimeError>,
) -> Result<(Vec<Fault>, Option<ChangeBatch>), RuntimeError> {
    let mut faults = Vec::new();
    // Original indexes of the rows of `current`.
    let mut alive: Vec<usize> = (0..change.len()).collect();
    let mut current = change.clone();
    let mut error = error;
    loop {
        let Some(located) = locate(&error) else {
            return Err(error);
        };
        let mut found = Vec::new();
        if let Located::Rows { column, rows } = &located {
            // Each named row is confirmed alone: a wrong number never costs a good row.
            let mut seen = std::collections::BTreeSet::new();
            for (r, message) in rows {
                if *r >= current.len() || !seen.insert(*r) {
                    continue;
                }
                match encode(&change_range(&current, *r..*r + 1)) {
                    Ok(()) => {}
                    Err(e) if locate(&e).is_some() => found.push(Fault {
                        row: *r,
                        stage: Stage::Convert,
                        column: Some(column.clone()),
                        message: message.clone(),
                    }),
                    Err(e) => return Err(e),
                }
            }
        }
        if found.is_empty() {
            found = bisect(&current, error, &mut encode)?;
            if found.is_empty() {
                return Err(RuntimeError::Internal(
                    "a batch failed to encode, but none of its rows does".into(),
                ));
            }
        }
        let mut keep = vec![true; current.len()];
        for f in &found {
            keep[f.row] = false;
        }
        faults.extend(found.into_iter().map(|f| Fault {
            row: alive[f.row],
            ..f
        }));
        alive = alive
            .into_iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(a, _)| a)
            .collect();
        if alive.is_empty() {
            faults.sort_by_key(|f| f.row);
            return Ok((faults, None));
        }
        current = change_rows(&current, &keep).map_err(EnvelopeError::from)?;
        match encode(&current) {
            Ok(()) => {
                faults.sort_by_key(|f| f.row);
                return Ok((faults, Some(current)));
            }
            Err(e) => error = e,
        }
    }
}

/// Whether Kafka refused a message for its size at `send` (librdkafka checks
/// `message.max.bytes` before queueing it).
pub fn too_large(e: &SinkError) -> bool {
    matches!(
        e,
        SinkError::Produce {
            source: rdkafka::error::KafkaError::MessageProduction(
                rdkafka::error::RDKafkaErrorCode::MessageSizeTooLarge
            ),
            ..
        }
    )
}

/// A delivery the broker refused for its size: librdkafka sends messages in batches, so the
/// broker's refusal cannot be pinned on one row, and retrying would fail the same way.
pub fn fatal_delivery(e: &RuntimeError) -> bool {
    matches!(e, RuntimeError::Sink(SinkError::Delivery { first, .. }) if first.contains("Message size too large"))
}

/// A delivery the broker refused for its size, with what to do about it; other errors as
/// they are.
pub fn explain_delivery(e: RuntimeError) -> RuntimeError {
    if !fatal_delivery(&e) {
        return e;
    }
    RuntimeError::RejectedRow(format!(
        "{e}. The broker (or the topic's max.message.bytes) refused a batch of messages as too \
         large; such a refusal cannot be pinned on one row, so on_error cannot set it aside. \
         Give the Kafka connection 'message.max.bytes' at most the topics' max.message.bytes: \
         then the producer finds a too-large message itself, before sending, and on_error \
         applies to its row"
    ))
}

// --- what happens to them ----------------------------------------------------------------

/// Keeps warnings about rows set aside from flooding the log: a few per window, then a count.
struct Warnings {
    window: Instant,
    shown: u32,
    suppressed: u64,
}

impl Warnings {
    fn new() -> Self {
        Warnings {
            window: Instant::now(),
            shown: 0,
            suppressed: 0,
        }
    }

    /// `Some(rows not shown since the last warning)` when this one may be shown.
    fn allow(&mut self) -> Option<u64> {
        if self.window.elapsed() >= WARNING_WINDOW {
            self.window = Instant::now();
            self.shown = 0;
        }
        if self.shown < WARNINGS_PER_WINDOW {
            self.shown += 1;
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }
}

/// How one table's rows that cannot be delivered are handled, on the producing side.
pub struct TableErrors {
    on_error: OnError,
    pipeline: String,
    table: String,
    topic: String,
    dead_letter_topic: Option<String>,
    /// Output columns forming the key (their names are the same in the source row).
    key: Vec<String>,
    /// Position of the table in the plan, for its counters.
    index: usize,
    /// Debezium envelope writes a tombstone after each delete.
    tombstones: bool,
    /// Native envelope writes a marked row before each delete's tombstone.
    deleted_marker: bool,
    native: bool,
    max_message_bytes: usize,
    warnings: Warnings,
}

impl TableErrors {
    /// The table's handling; with `on_error = 'dead_letter'` its dead-letter topic is created
    /// when it does not exist (like the data topics, with the pipeline's partitions).
    pub async fn build(plan: &PipelinePlan, table: &TablePlan) -> Result<Self, RuntimeError> {
        let dead_letter_topic = plan.dead_letter_topic(table);
        if let Some(topic) = &dead_letter_topic {
            create_topic(plan, topic).await?;
        }
        let (native, tombstones, deleted_marker) = match &plan.envelope {
            Envelope::Debezium(d) => (false, d.tombstones, false),
            Envelope::Native(n) => (true, false, n.deleted_marker),
        };
        Ok(TableErrors {
            on_error: plan.errors.on_error,
            pipeline: plan.name.clone(),
            table: table.table.to_string(),
            topic: table.topic.clone(),
            dead_letter_topic,
            key: table
                .key
                .iter()
                .filter_map(|&i| table.output.get(i).map(|c| c.name.clone()))
                .collect(),
            index: plan
                .tables
                .iter()
                .position(|t| t.table == table.table)
                .unwrap_or(usize::MAX),
            tombstones,
            deleted_marker,
            native,
            max_message_bytes: max_message_bytes(plan),
            warnings: Warnings::new(),
        })
    }

    /// Whether handling a row writes to Kafka (then a Kafka transaction must be open).
    pub fn writes(&self) -> bool {
        self.on_error == OnError::DeadLetter
    }

    /// Poison rows from faults found in `change` (indexes into it).
    pub fn rows_from(&self, change: &ChangeBatch, faults: Vec<Fault>) -> Vec<PoisonRow> {
        faults
            .into_iter()
            .map(|f| PoisonRow {
                stage: f.stage,
                column: f.column,
                error: f.message,
                op: change.ops.get(f.row).copied().unwrap_or(Op::Read),
                lsn: change.lsns.as_ref().and_then(|l| l.get(f.row).copied()),
                row: image_of(change, f.row),
            })
            .collect()
    }

    /// Deal with rows that cannot be delivered, as `on_error` says.
    pub fn handle(
        &mut self,
        sink: &mut KafkaSink,
        rows: Vec<PoisonRow>,
        shared: &Metrics,
    ) -> Result<(), RuntimeError> {
        if self.on_error == OnError::Fail {
            if let Some(row) = rows.first() {
                return Err(RuntimeError::RejectedRow(self.describe(row)));
            }
            return Ok(());
        }
        for row in rows {
            let (counter, total) = match self.on_error {
                OnError::DeadLetter => {
                    self.dead_letter(sink, &row)?;
                    (
                        shared.tables.get(self.index).map(|t| &t.dead_lettered),
                        &shared.dead_lettered,
                    )
                }
                _ => (
                    shared.tables.get(self.index).map(|t| &t.skipped),
                    &shared.skipped,
                ),
            };
            if let Some(c) = counter {
                c.fetch_add(1, Ordering::Relaxed);
            }
            total.fetch_add(1, Ordering::Relaxed);
            if let Some(suppressed) = self.warnings.allow() {
                let at = position_text(row.lsn);
                let column = row.column.as_deref().unwrap_or("-");
                match &self.dead_letter_topic {
                    Some(dlq) => tracing::warn!(
                        pipeline = %self.pipeline, table = %self.table, position = %at,
                        column, stage = row.stage.as_str(), error = %row.error,
                        not_shown_before = suppressed,
                        "row cannot be delivered: written to dead-letter topic {dlq} (on_error = 'dead_letter')"
                    ),
                    None => tracing::warn!(
                        pipeline = %self.pipeline, table = %self.table, position = %at,
                        column, stage = row.stage.as_str(), error = %row.error,
                        not_shown_before = suppressed,
                        "row cannot be delivered: skipped (on_error = 'skip')"
                    ),
                }
            }
        }
        Ok(())
    }

    /// Why the pipeline stops (`on_error = 'fail'`): table, row, column, position, and the
    /// option that lets it go on instead.
    pub fn describe(&self, row: &PoisonRow) -> String {
        let what = match row.lsn {
            None => "a snapshot row".to_string(),
            Some(lsn) => format!(
                "a change (op `{}`) at LSN {}",
                row.op.code(),
                crate::cli::format_lsn(lsn)
            ),
        };
        let key = self
            .key_json(&row.row)
            .map(|k| format!(" with key {}", String::from_utf8_lossy(&k)))
            .unwrap_or_default();
        let column = row
            .column
            .as_ref()
            .map(|c| format!("column `{c}`: "))
            .unwrap_or_default();
        format!(
            "table {}: {what}{key} cannot be delivered ({} failed): {column}{}. on_error = 'fail' \
             (the default) stops the pipeline here, before this row's position is acknowledged; \
             to go on past such rows, set on_error = 'dead_letter' (each goes to a dead-letter \
             topic as JSON) or on_error = 'skip' in the pipeline's WITH (...)",
            self.table,
            row.stage.as_str(),
            row.error
        )
    }

    fn key_json(&self, row: &JsonRow) -> Option<Vec<u8>> {
        if self.key.is_empty() {
            return None;
        }
        let key = JsonRow(
            self.key
                .iter()
                .map(|k| (k.clone(), row.get(k).cloned().unwrap_or(Value::Null)))
                .collect(),
        );
        Some(key.to_bytes())
    }

    /// The dead letter: key = the row's key columns as JSON, value = the row as JSON (long
    /// values cut when it would not fit in a message), headers naming the error, the table,
    /// the position and the pipeline.
    fn dead_letter(&self, sink: &mut KafkaSink, row: &PoisonRow) -> Result<(), RuntimeError> {
        let Some(topic) = &self.dead_letter_topic else {
            return Err(RuntimeError::Internal(
                "on_error = 'dead_letter' without a dead-letter topic".into(),
            ));
        };
        let key = self.key_json(&row.row);
        let mut headers: Vec<(&str, String)> = vec![
            ("cdcql.error", row.error.clone()),
            ("cdcql.error.stage", row.stage.as_str().to_string()),
            ("cdcql.pipeline", self.pipeline.clone()),
            ("cdcql.table", self.table.clone()),
            ("cdcql.topic", self.topic.clone()),
            ("cdcql.lsn", position_text(row.lsn)),
            ("cdcql.op", row.op.code().to_string()),
        ];
        if let Some(c) = &row.column {
            headers.push(("cdcql.error.column", c.clone()));
        }
        let used: usize = headers
            .iter()
            .map(|(k, v)| k.len() + v.len() + 16)
            .sum::<usize>()
            + key.as_ref().map_or(0, Vec::len)
            + RECORD_OVERHEAD;
        let (value, cut) = fit(row.row.clone(), self.max_message_bytes.saturating_sub(used));
        if !cut.is_empty() {
            headers.push(("cdcql.truncated", cut.join(",")));
        }
        let mut owned = OwnedHeaders::new_with_capacity(headers.len());
        for (k, v) in &headers {
            owned = owned.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        sink.send_with_headers(topic, key.as_deref(), Some(&value), Some(owned))?;
        Ok(())
    }

    /// Message `message` of `change`'s messages (`messages` of them) could not be sent. When
    /// Kafka found it too large, its row is set aside and the messages of the row from
    /// `message` on are not to be sent: the returned index is the first message after them.
    /// Any other failure is returned as it is.
    #[allow(clippy::too_many_arguments)]
    pub fn unsendable(
        &mut self,
        error: SinkError,
        message: usize,
        size: usize,
        change: &ChangeBatch,
        messages: usize,
        sink: &mut KafkaSink,
        shared: &Metrics,
    ) -> Result<usize, RuntimeError> {
        if !too_large(&error) {
            return Err(error.into());
        }
        let Some(rows) = self.message_rows(change, messages) else {
            return Err(error.into());
        };
        let row = rows[message];
        let end = rows[message..]
            .iter()
            .position(|r| *r != row)
            .map_or(messages, |p| message + p);
        let fault = Fault {
            row,
            stage: Stage::Produce,
            column: None,
            message: format!(
                "the message is {size} bytes, more than the producer's message.max.bytes ({}) allows: {error}",
                self.max_message_bytes
            ),
        };
        let rows = self.rows_from(change, vec![fault]);
        self.handle(sink, rows, shared)?;
        Ok(end)
    }

    /// For each message of a change batch, the row it comes from (the envelopes add
    /// tombstones and markers for deletes); `None` when the count does not add up.
    fn message_rows(&self, change: &ChangeBatch, messages: usize) -> Option<Vec<usize>> {
        let mut out = Vec::with_capacity(messages);
        for (i, op) in change.ops.iter().enumerate() {
            let n = match (*op == Op::Delete, self.native) {
                (false, _) => 1,
                (true, false) => 1 + usize::from(self.tombstones),
                (true, true) => 1 + usize::from(self.deleted_marker),
            };
            out.extend(std::iter::repeat_n(i, n));
        }
        (out.len() == messages).then_some(out)
    }
}

fn position_text(lsn: Option<u64>) -> String {
    lsn.map_or_else(|| "snapshot".to_string(), crate::cli::format_lsn)
}

/// The producer's `message.max.bytes` (a quoted option of the Kafka connection).
fn max_message_bytes(plan: &PipelinePlan) -> usize {
    plan.kafka
        .client_options
        .iter()
        .find(|(k, _)| k == "message.max.bytes")
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(DEFAULT_MESSAGE_MAX_BYTES)
}

/// The row as JSON, fitting in `budget` bytes: while it does not, the longest string value
/// is cut (and named in the returned list).
fn fit(mut row: JsonRow, budget: usize) -> (Vec<u8>, Vec<String>) {
    let mut cut: Vec<String> = Vec::new();
    loop {
        let bytes = row.to_bytes();
        if bytes.len() <= budget {
            return (bytes, cut);
        }
        let excess = bytes.len() - budget;
        let longest = row
            .0
            .iter_mut()
            .filter_map(|(k, v)| match v {
                Value::String(s) => Some((k, s)),
                _ => None,
            })
            .max_by_key(|(_, s)| s.len());
        match longest {
            Some((name, s)) if s.len() > 32 => {
                let mut keep = s.len().saturating_sub(excess + 32).max(16);
                while !s.is_char_boundary(keep) {
                    keep -= 1;
                }
                s.truncate(keep);
                s.push('…');
                if !cut.contains(name) {
                    cut.push(name.clone());
                }
            }
            // Nothing left to cut: an empty object says so, with the header.
            _ => {
                cut.push("*".into());
                return (b"{}".to_vec(), cut);
            }
        }
    }
}

async fn create_topic(plan: &PipelinePlan, topic: &str) -> Result<(), RuntimeError> {
    let mut config = rdkafka::config::ClientConfig::new();
    config.set("bootstrap.servers", &plan.kafka.brokers);
    for (k, v) in &plan.kafka.client_options {
        config.set(k, v);
    }
    let settings = crate::plan::TopicSettings {
        cleanup_policy: None,
        ..plan.topic_settings.clone()
    };
    crate::sink::kafka::create_topics(&config, &[topic.to_string()], &settings).await?;
    Ok(())
}

// --- counts in the progress record -------------------------------------------------------

/// Keeps the progress record's per-table counts of rows set aside: what earlier runs recorded
/// plus what this run has counted since it started.
pub struct Tally {
    recorded: BTreeMap<String, RejectedRows>,
    names: Vec<String>,
    /// This process's counters when the run started (a restarted run keeps the counters).
    start: Vec<(u64, u64)>,
    start_total: u64,
}

fn total(shared: &Metrics) -> u64 {
    shared
        .tables
        .iter()
        .map(|t| t.dead_lettered.load(Ordering::Relaxed) + t.skipped.load(Ordering::Relaxed))
        .sum()
}

impl Tally {
    pub fn new(plan: &PipelinePlan, progress: &Progress, shared: &Metrics) -> Self {
        Tally {
            recorded: progress.rejected.clone(),
            names: plan.tables.iter().map(|t| t.table.to_string()).collect(),
            start: counts(shared),
            start_total: total(shared),
        }
    }

    /// Called for every progress record: costs a few loads while no row has been set aside.
    pub fn record(&self, progress: &mut Progress, shared: &Metrics) {
        if total(shared) == self.start_total {
            return;
        }
        for ((name, now), start) in self.names.iter().zip(counts(shared)).zip(&self.start) {
            let (dead, skipped) = (now.0.saturating_sub(start.0), now.1.saturating_sub(start.1));
            let base = self.recorded.get(name).copied().unwrap_or_default();
            if dead + skipped + base.dead_lettered + base.skipped == 0 {
                continue;
            }
            progress.rejected.insert(
                name.clone(),
                RejectedRows {
                    dead_lettered: base.dead_lettered + dead,
                    skipped: base.skipped + skipped,
                },
            );
        }
    }
}

fn counts(shared: &Metrics) -> Vec<(u64, u64)> {
    shared
        .tables
        .iter()
        .map(|t| {
            (
                t.dead_lettered.load(Ordering::Relaxed),
                t.skipped.load(Ordering::Relaxed),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests;
