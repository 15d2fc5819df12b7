//! Runs a plan. The reading side (async: snapshot COPY, then the replication stream) feeds a
//! bounded channel; one blocking worker (`produce`) evaluates the query, applies the envelope,
//! encodes and hands messages to the Kafka producer. The channel and the producer queue are
//! bounded, so a slow broker slows the reader and memory stays flat. A source position is
//! acknowledged to Postgres only after every message before it is in Kafka.

pub mod changes;
mod chunks;
pub mod metrics;
pub mod offsets;
pub mod poison;
mod produce;
mod stream;
mod txmeta;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use crate::encode::EncodeError;
use crate::envelope::{EnvelopeError, SourcePosition};
use crate::plan::PipelinePlan;
use crate::registry::{RegistryClient, RegistryError};
use crate::sink::kafka::{KafkaSink, SinkError};
use crate::source::postgres::snapshot;
use crate::source::postgres::{self, SourceError};
use metrics::{Metrics, Phase};
use produce::{TableWork, Work};
pub use stream::{run, Replanner, RunContext, RunReport};

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
    #[error("schema registry: {0}")]
    Registry(#[from] RegistryError),
    /// The database or pipeline is not set up the way it must be; the message says how.
    #[error("{0}")]
    Setup(String),
    #[error("table {table} changed while streaming: {change}; {what}")]
    SchemaChange {
        table: String,
        change: String,
        what: String,
    },
    /// A row could not be delivered and the pipeline has `on_error = 'fail'`; the message
    /// names the table, row, column and position, and the option to change.
    #[error("{0}")]
    RejectedRow(String),
    /// The producing side ended first; its own error is reported instead where known.
    #[error("the producing side stopped unexpectedly")]
    WorkerStopped,
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

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Snapshot every table of the pipeline into Kafka and wait until all of it is acknowledged
/// (`--snapshot-only` / `snapshot = 'initial_only'`: no slot, no stream).
pub async fn run_snapshot(plan: &PipelinePlan) -> Result<SnapshotReport, RuntimeError> {
    run_snapshot_with(plan, Arc::new(Metrics::new(plan))).await
}

/// [`run_snapshot`], updating `metrics` as it goes.
pub async fn run_snapshot_with(
    plan: &PipelinePlan,
    shared: Arc<Metrics>,
) -> Result<SnapshotReport, RuntimeError> {
    let result = snapshot_only(plan, &shared).await;
    shared.set_phase(if result.is_ok() {
        Phase::Stopped
    } else {
        Phase::Failed
    });
    result
}

async fn snapshot_only(
    plan: &PipelinePlan,
    shared: &Arc<Metrics>,
) -> Result<SnapshotReport, RuntimeError> {
    let started = Instant::now();
    let client = postgres::connect(&plan.postgres.url).await?;
    let registry = registry_client(plan)?;
    let sink = new_sink(plan)?;
    let topics: Vec<String> = plan.tables.iter().map(|t| t.topic.clone()).collect();
    sink.ensure_topics(&topics, &plan.topic_settings).await?;
    let mut work = Vec::with_capacity(plan.tables.len());
    for t in &plan.tables {
        work.push(TableWork::build(plan, t, registry.as_ref()).await?);
    }

    // One snapshot for every reader: this transaction exports it and stays open meanwhile.
    let point = snapshot::begin(&client, None).await?;
    let name = snapshot::export(&client).await?;
    let position = SourcePosition {
        ts_us: point.ts_us,
        tx_id: Some(point.tx_id),
        lsn: Some(point.lsn),
        last_commit_lsn: None,
        begin_lsn: None,
    };
    let (_, chunks) = chunks::plan_chunks(&client, plan, &Default::default(), None).await?;
    let (tx, rx) = mpsc::channel::<Work>(4);
    shared.set_phase(Phase::Snapshot);
    estimate_rows(&client, plan, shared).await;
    let worker_plan = plan.clone();
    let worker_shared = shared.clone();
    // No progress records: a snapshot-only run does not resume, and must not make a later
    // streaming run believe its snapshot was taken.
    let worker = tokio::task::spawn_blocking(move || {
        produce::run_worker(
            &worker_plan,
            work,
            produce::WorkerStart {
                snapshot_position: Some(position),
                progress: None,
                heartbeats: None,
                transactions: None,
            },
            rx,
            sink,
            worker_shared,
        )
    });
    let read = chunks::read_chunks(plan, &name, chunks, &tx, shared).await;
    drop(tx);
    let result = worker
        .await
        .map_err(|e| RuntimeError::Internal(format!("producer worker failed: {e}")))?;
    let rows_read = match (read, result) {
        (Err(RuntimeError::WorkerStopped), Err(e)) => return Err(e),
        (Err(e), _) => return Err(e),
        (Ok(rows), r) => (rows, r?),
    };
    let (rows_read, mut result) = rows_read;
    snapshot::end(&client).await?;
    for (t, n) in result.tables.iter_mut().zip(rows_read) {
        t.rows_read = n;
    }
    Ok(SnapshotReport {
        tables: result.tables,
        delivered: result.delivered,
        bytes: shared.bytes.load(std::sync::atomic::Ordering::Relaxed),
        elapsed: started.elapsed(),
    })
}

/// The pipeline's producer: transactional when the pipeline asks for it.
fn new_sink(plan: &PipelinePlan) -> Result<KafkaSink, RuntimeError> {
    Ok(if plan.delivery.transactional {
        KafkaSink::new_transactional(&plan.kafka, &plan.delivery.transactional_id)?
    } else {
        KafkaSink::new(&plan.kafka)?
    })
}

/// Row estimates for progress displays (`pg_class.reltuples`; -1 when never analysed).
async fn estimate_rows(client: &tokio_postgres::Client, plan: &PipelinePlan, metrics: &Metrics) {
    for (t, m) in plan.tables.iter().zip(&metrics.tables) {
        let row = client
            .query_opt(
                "SELECT c.reltuples::int8 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2",
                &[&t.table.schema, &t.table.name],
            )
            .await;
        if let Ok(Some(r)) = row {
            m.estimated_rows
                .store(r.get::<_, i64>(0), std::sync::atomic::Ordering::Relaxed);
        }
    }
}

fn registry_client(plan: &PipelinePlan) -> Result<Option<RegistryClient>, RuntimeError> {
    match (&plan.encoding, &plan.kafka.schema_registry) {
        (crate::plan::Encoding::Avro(_), Some(conn)) => Ok(Some(RegistryClient::new(conn)?)),
        _ => Ok(None),
    }
}
