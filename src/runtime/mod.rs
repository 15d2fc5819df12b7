//! Runs a plan: the snapshot reader (async, Postgres) feeds a bounded channel; one blocking
//! worker evaluates the query, applies the envelope, encodes and hands messages to the Kafka
//! producer. The channel and the producer queue are bounded, so a slow broker slows the
//! reader and memory stays flat.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use datafusion::arrow::array::{Array, RecordBatch};
use tokio::sync::mpsc;

use crate::encode::{EncodeError, EncodedColumn, Encoder};
use crate::envelope::{ChangeBatch, Op, SnapshotMark, SourcePosition};
use crate::envelope::{EnvelopeError, TableEnvelope};
use crate::plan::PipelinePlan;
use crate::sink::kafka::{KafkaSink, SinkError};
use crate::source::postgres::snapshot::{self, SnapshotPoint};
use crate::source::postgres::{self, SourceError};
use crate::transform::Transform;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("envelope: {0}")]
    Envelope(#[from] EnvelopeError),
    #[error("encoding: {0}")]
    Encode(#[from] EncodeError),
    #[error("evaluating the pipeline query: {0}")]
    Query(#[from] datafusion::error::DataFusionError),
    #[error("this is a bug in cdcql, please report it: {0}")]
    Internal(String),
}

/// Rows per Arrow batch read from Postgres.
pub const BATCH_ROWS: usize = 8192;

#[derive(Debug, Clone, Default)]
pub struct TableReport {
    pub table: String,
    pub topic: String,
    pub rows_read: u64,
    pub messages: u64,
}

#[derive(Debug, Clone, Default)]
pub struct SnapshotReport {
    pub tables: Vec<TableReport>,
    pub delivered: u64,
    pub bytes: u64,
    pub elapsed: Duration,
}

enum Item {
    Batch(usize, RecordBatch),
    EndOfTable(usize),
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Snapshot every table of the pipeline into Kafka and wait until all of it is acknowledged.
pub async fn run_snapshot(plan: &PipelinePlan) -> Result<SnapshotReport, RuntimeError> {
    let started = Instant::now();
    let client = postgres::connect(&plan.postgres.url).await?;
    let sink = KafkaSink::new(&plan.kafka)?;
    let topics: Vec<String> = plan.tables.iter().map(|t| t.topic.clone()).collect();
    sink.ensure_topics(&topics, &plan.topic_settings).await?;

    let point = snapshot::begin(&client, None).await?;
    let (tx, rx) = mpsc::channel::<Item>(4);
    let worker_plan = plan.clone();
    let worker = tokio::task::spawn_blocking(move || produce_worker(&worker_plan, point, rx, sink));

    let mut rows_read = Vec::new();
    let mut read_error = None;
    for (i, t) in plan.tables.iter().enumerate() {
        tracing::info!(table = %t.table, topic = %t.topic, "snapshot started");
        match snapshot::copy_table(&client, t, BATCH_ROWS, &tx, |b| Item::Batch(i, b)).await {
            Ok(n) => rows_read.push(n),
            Err(e) => {
                read_error = Some(e);
                break;
            }
        }
        if tx.send(Item::EndOfTable(i)).await.is_err() {
            break;
        }
    }
    drop(tx);
    let worker_result = worker
        .await
        .map_err(|e| RuntimeError::Internal(format!("producer worker failed: {e}")))?;
    if let Some(e) = read_error {
        return Err(e.into());
    }
    let (mut report, delivered, bytes) = worker_result?;
    snapshot::end(&client).await?;
    for (t, n) in report.iter_mut().zip(rows_read) {
        t.rows_read = n;
    }
    Ok(SnapshotReport {
        tables: report,
        delivered,
        bytes,
        elapsed: started.elapsed(),
    })
}

/// Per-table state of the worker.
struct TableWork {
    transform: Transform,
    envelope: TableEnvelope,
    key_encoder: Option<Encoder>,
    value_encoder: Encoder,
    /// Held back one batch so that the table's last row can be marked.
    pending: Option<RecordBatch>,
    emitted_rows: u64,
}

fn produce_worker(
    plan: &PipelinePlan,
    point: SnapshotPoint,
    mut rx: mpsc::Receiver<Item>,
    mut sink: KafkaSink,
) -> Result<(Vec<TableReport>, u64, u64), RuntimeError> {
    let mut work = plan
        .tables
        .iter()
        .map(|t| {
            let envelope = TableEnvelope::new(plan, t);
            let schemas = envelope.schemas().clone();
            Ok(TableWork {
                transform: Transform::new(t)?,
                key_encoder: schemas
                    .key
                    .as_ref()
                    .map(|k| Encoder::new(&plan.encoding, k))
                    .transpose()?,
                value_encoder: Encoder::new(&plan.encoding, &schemas.value)?,
                envelope,
                pending: None,
                emitted_rows: 0,
            })
        })
        .collect::<Result<Vec<_>, RuntimeError>>()?;
    let mut reports: Vec<TableReport> = plan
        .tables
        .iter()
        .map(|t| TableReport {
            table: t.table.to_string(),
            topic: t.topic.clone(),
            ..Default::default()
        })
        .collect();
    let position = SourcePosition {
        ts_us: point.ts_us,
        tx_id: Some(point.tx_id),
        lsn: Some(point.lsn),
        last_commit_lsn: None,
    };
    let mut keys = EncodedColumn::default();
    let mut values = EncodedColumn::default();
    let mut bytes = 0u64;
    let last_table = plan.tables.len().saturating_sub(1);
    while let Some(item) = rx.blocking_recv() {
        let (i, batch, is_last) = match item {
            Item::Batch(i, b) => {
                let out = work[i].transform.apply(b)?;
                if out.num_rows() == 0 {
                    continue;
                }
                match work[i].pending.replace(out) {
                    Some(prev) => (i, prev, false),
                    None => continue,
                }
            }
            Item::EndOfTable(i) => match work[i].pending.take() {
                Some(prev) => (i, prev, true),
                None => continue,
            },
        };
        let w = &mut work[i];
        let n = batch.num_rows();
        let marks: Vec<SnapshotMark> = (0..n)
            .map(|r| {
                SnapshotMark::for_row(
                    i == 0,
                    i == last_table,
                    w.emitted_rows == 0 && r == 0,
                    is_last && r == n - 1,
                )
            })
            .collect();
        let change = ChangeBatch {
            ops: vec![Op::Read; n],
            before: None,
            after: Some(batch),
            position: position.clone(),
            snapshot_marks: Some(marks),
            before_valid: None,
            lsns: None,
        };
        let records = w.envelope.records(&change, now_ns())?;
        keys.clear();
        values.clear();
        match (&w.key_encoder, &records.key) {
            (Some(enc), Some(k)) => enc.encode(k, &mut keys)?,
            _ => (0..records.value.len()).for_each(|_| keys.push_null()),
        }
        w.value_encoder.encode(&records.value, &mut values)?;
        let topic = &plan.tables[i].topic;
        for r in 0..values.len() {
            sink.send(topic, keys.get(r), values.get(r))?;
        }
        bytes += (keys.byte_len() + values.byte_len()) as u64;
        w.emitted_rows += n as u64;
        reports[i].messages += values.len() as u64;
    }
    let delivered = sink.flush(Duration::from_secs(120))?;
    Ok((reports, delivered, bytes))
}
