//! The producing side of a running pipeline, on one blocking thread: query → envelope →
//! encoder → Kafka, for snapshot rows and streamed changes alike. It also decides when a
//! source position may be acknowledged: only once every message before it is in Kafka.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, RecordBatch};
use tokio::sync::{mpsc, oneshot};

use super::metrics::Metrics;
use super::offsets::Progress;
use super::{now_ns, RuntimeError, TableReport};
use crate::connect::Schema;
use crate::encode::{EncodedColumn, Encoder};
use crate::envelope::{ChangeBatch, Op, SnapshotMark, SourcePosition, TableEnvelope};
use crate::plan::{AvroOptions, Encoding, PipelinePlan, TablePlan};
use crate::registry::{subject_name, RegistryClient};
use crate::sink::kafka::KafkaSink;
use crate::transform::Transform;

/// What the reading side hands over.
pub(crate) enum Work {
    /// Snapshot rows of `plan.tables[table]`, before the query.
    Snapshot { table: usize, batch: RecordBatch },
    /// The snapshot of a table is complete (its last row gets Debezium's `last` mark).
    EndOfTable(usize),
    /// Streamed changes, before the query.
    Changes { table: usize, batch: ChangeBatch },
    /// Everything up to this source position has been handed over: once delivered, the
    /// position may be acknowledged.
    Commit { lsn: u64 },
    /// Write a progress record after everything before it is delivered, then answer.
    Checkpoint {
        progress: Progress,
        reply: oneshot::Sender<Result<(), RuntimeError>>,
    },
    /// A replacement for one table's plan (schema change); encoders are already registered.
    Replace { table: usize, work: Box<TableWork> },
}

/// Per-table state of the worker.
pub(crate) struct TableWork {
    transform: Transform,
    envelope: TableEnvelope,
    key_encoder: Option<Encoder>,
    value_encoder: Encoder,
    topic: String,
    /// Position of the table in the plan (for per-table counters).
    index: usize,
    /// Held back one batch so that the table's last snapshot row can be marked.
    pending: Option<RecordBatch>,
    emitted_rows: u64,
}

impl TableWork {
    /// Build a table's envelope and encoders; with Avro, register (or look up) the key and
    /// value schemas first, so every message carries a schema id the registry knows.
    pub async fn build(
        plan: &PipelinePlan,
        table: &TablePlan,
        registry: Option<&RegistryClient>,
    ) -> Result<TableWork, RuntimeError> {
        let envelope = TableEnvelope::new(plan, table);
        let schemas = envelope.schemas().clone();
        let mut key_encoder = schemas
            .key
            .as_ref()
            .map(|k| Encoder::new(&plan.encoding, k))
            .transpose()?;
        let mut value_encoder = Encoder::new(&plan.encoding, &schemas.value)?;
        if let Encoding::Avro(opts) = &plan.encoding {
            let registry = registry.ok_or_else(|| {
                RuntimeError::Internal("FORMAT AVRO without a registry client".into())
            })?;
            if let (Some(enc), Some(k)) = (key_encoder.as_mut(), schemas.key.as_ref()) {
                register(registry, opts, &table.topic, enc, k, true).await?;
            }
            register(
                registry,
                opts,
                &table.topic,
                &mut value_encoder,
                &schemas.value,
                false,
            )
            .await?;
        }
        Ok(TableWork {
            transform: Transform::new(table)?,
            envelope,
            key_encoder,
            value_encoder,
            topic: table.topic.clone(),
            index: plan
                .tables
                .iter()
                .position(|t| t.table == table.table)
                .unwrap_or(usize::MAX),
            pending: None,
            emitted_rows: 0,
        })
    }
}

async fn register(
    registry: &RegistryClient,
    opts: &AvroOptions,
    topic: &str,
    encoder: &mut Encoder,
    schema: &Schema,
    is_key: bool,
) -> Result<(), RuntimeError> {
    let subject = subject_name(
        opts.subject_strategy,
        topic,
        is_key,
        schema.name.as_deref().unwrap_or_default(),
    );
    let ours = encoder
        .avro_schema()
        .ok_or_else(|| RuntimeError::Internal("the Avro encoder has no schema".into()))?
        .to_string();
    let registered = registry.ensure_schema(&subject, &ours, opts).await?;
    // With use_latest the registry's schema is used for the id; we can only write with it
    // when it is ours (field for field), otherwise consumers would misread the bytes.
    if opts.use_latest && !same_json(&ours, &registered.schema) {
        return Err(RuntimeError::Setup(format!(
            "use_latest: the latest schema of subject `{subject}` (id {}) differs from the one \
             this pipeline writes; register the pipeline's schema, or turn use_latest off",
            registered.id
        )));
    }
    tracing::info!(subject = %subject, id = registered.id, "schema ready");
    encoder.set_schema_id(registered.id);
    Ok(())
}

fn same_json(a: &str, b: &str) -> bool {
    match (
        serde_json::from_str::<serde_json::Value>(a),
        serde_json::from_str::<serde_json::Value>(b),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

pub(crate) struct WorkerResult {
    pub tables: Vec<TableReport>,
    pub delivered: u64,
}

type Reply = oneshot::Sender<Result<(), RuntimeError>>;

/// Positions and checkpoints waiting for their messages to be delivered, each with the
/// sequence number of the first message after it.
#[derive(Default)]
struct Acks {
    positions: VecDeque<(u64, u64)>,
    checkpoints: VecDeque<(u64, Progress, Reply)>,
}

impl Acks {
    fn is_empty(&self) -> bool {
        self.positions.is_empty() && self.checkpoints.is_empty()
    }

    /// Advance the acknowledged position and write checkpoints whose messages are all in
    /// Kafka.
    fn settle(
        &mut self,
        sink: &mut KafkaSink,
        shared: &Metrics,
        offsets_topic: &str,
    ) -> Result<(), RuntimeError> {
        let below = sink.acknowledged_below()?;
        while let Some(&(seq, lsn)) = self.positions.front() {
            if seq > below {
                break;
            }
            shared.acked_lsn.fetch_max(lsn, Ordering::Relaxed);
            self.positions.pop_front();
        }
        while self
            .checkpoints
            .front()
            .is_some_and(|(seq, _, _)| *seq <= below)
        {
            if let Some((_, mut progress, reply)) = self.checkpoints.pop_front() {
                progress.messages = shared.messages.load(Ordering::Relaxed);
                // Written only now: Kafka orders nothing across topics, so the record must
                // not overtake the data it vouches for.
                let r = sink
                    .send(
                        offsets_topic,
                        Some(progress.slot.as_bytes()),
                        Some(&progress.to_json()),
                    )
                    .map_err(RuntimeError::from);
                let _ = reply.send(r);
            }
        }
        Ok(())
    }
}

pub(crate) fn run_worker(
    plan: &PipelinePlan,
    mut work: Vec<TableWork>,
    snapshot_position: Option<SourcePosition>,
    mut rx: mpsc::Receiver<Work>,
    mut sink: KafkaSink,
    shared: Arc<Metrics>,
) -> Result<WorkerResult, RuntimeError> {
    let mut reports: Vec<TableReport> = plan
        .tables
        .iter()
        .map(|t| TableReport {
            table: t.table.to_string(),
            topic: t.topic.clone(),
            ..Default::default()
        })
        .collect();
    let offsets_topic = plan.replication.offsets_topic.as_str();
    let mut out = Output::default();
    let last_table = plan.tables.len().saturating_sub(1);
    let mut acks = Acks::default();
    let mut last_settle = Instant::now();

    loop {
        let item = match rx.try_recv() {
            Ok(item) => item,
            Err(mpsc::error::TryRecvError::Disconnected) => break,
            Err(mpsc::error::TryRecvError::Empty) => {
                // Idle: settle acknowledgements while waiting for more work.
                acks.settle(&mut sink, &shared, offsets_topic)?;
                if acks.is_empty() {
                    match rx.blocking_recv() {
                        Some(item) => item,
                        None => break,
                    }
                } else {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                }
            }
        };
        match item {
            Work::Snapshot { table, batch } => {
                let rows = work[table].transform.apply(batch)?;
                if rows.num_rows() > 0 {
                    if let Some(prev) = work[table].pending.replace(rows) {
                        let change = snapshot_change(
                            &work[table],
                            table,
                            prev,
                            false,
                            last_table,
                            snapshot_position.as_ref(),
                        );
                        out.emit(
                            &mut work[table],
                            &change,
                            &mut sink,
                            &shared,
                            &mut reports[table],
                        )?;
                    }
                }
            }
            Work::EndOfTable(table) => {
                if let Some(prev) = work[table].pending.take() {
                    let change = snapshot_change(
                        &work[table],
                        table,
                        prev,
                        true,
                        last_table,
                        snapshot_position.as_ref(),
                    );
                    out.emit(
                        &mut work[table],
                        &change,
                        &mut sink,
                        &shared,
                        &mut reports[table],
                    )?;
                }
            }
            Work::Changes { table, batch } => {
                let change = work[table].transform.changes(batch)?;
                if !change.is_empty() {
                    out.emit(
                        &mut work[table],
                        &change,
                        &mut sink,
                        &shared,
                        &mut reports[table],
                    )?;
                }
            }
            Work::Commit { lsn } => acks.positions.push_back((sink.next_seq(), lsn)),
            Work::Checkpoint { progress, reply } => {
                acks.checkpoints
                    .push_back((sink.next_seq(), progress, reply))
            }
            Work::Replace { table, work: w } => work[table] = *w,
        }
        if last_settle.elapsed() > Duration::from_millis(50) {
            acks.settle(&mut sink, &shared, offsets_topic)?;
            last_settle = Instant::now();
        }
    }
    sink.flush(Duration::from_secs(120))?;
    acks.settle(&mut sink, &shared, offsets_topic)?;
    let delivered = sink.flush(Duration::from_secs(30))?;
    Ok(WorkerResult {
        tables: reports,
        delivered,
    })
}

/// Reused encode buffers.
#[derive(Default)]
struct Output {
    keys: EncodedColumn,
    values: EncodedColumn,
}

impl Output {
    fn emit(
        &mut self,
        w: &mut TableWork,
        change: &ChangeBatch,
        sink: &mut KafkaSink,
        shared: &Metrics,
        report: &mut TableReport,
    ) -> Result<(), RuntimeError> {
        let records = w.envelope.records(change, now_ns())?;
        self.keys.clear();
        self.values.clear();
        match (&w.key_encoder, &records.key) {
            (Some(enc), Some(k)) => enc.encode(k, &mut self.keys)?,
            _ => (0..records.value.len()).for_each(|_| self.keys.push_null()),
        }
        w.value_encoder.encode(&records.value, &mut self.values)?;
        for r in 0..self.values.len() {
            sink.send(&w.topic, self.keys.get(r), self.values.get(r))?;
        }
        let n = self.values.len() as u64;
        shared.bytes.fetch_add(
            (self.keys.byte_len() + self.values.byte_len()) as u64,
            Ordering::Relaxed,
        );
        shared.messages.fetch_add(n, Ordering::Relaxed);
        if let Some(t) = shared.tables.get(w.index) {
            t.messages.fetch_add(n, Ordering::Relaxed);
            t.bytes.fetch_add(
                (self.keys.byte_len() + self.values.byte_len()) as u64,
                Ordering::Relaxed,
            );
            if change.snapshot_marks.is_some() {
                t.snapshot_rows
                    .fetch_add(change.len() as u64, Ordering::Relaxed);
            } else {
                t.changes.fetch_add(change.len() as u64, Ordering::Relaxed);
            }
        }
        report.messages += n;
        if change.snapshot_marks.is_some() {
            w.emitted_rows += change.len() as u64;
        }
        Ok(())
    }
}

fn snapshot_change(
    w: &TableWork,
    table: usize,
    batch: RecordBatch,
    is_last: bool,
    last_table: usize,
    position: Option<&SourcePosition>,
) -> ChangeBatch {
    let n = batch.num_rows();
    let marks: Vec<SnapshotMark> = (0..n)
        .map(|r| {
            SnapshotMark::for_row(
                table == 0,
                table == last_table,
                w.emitted_rows == 0 && r == 0,
                is_last && r == n - 1,
            )
        })
        .collect();
    ChangeBatch {
        ops: vec![Op::Read; n],
        before: None,
        before_valid: None,
        after: Some(batch),
        position: position.cloned().unwrap_or(SourcePosition {
            ts_us: now_ns() / 1000,
            tx_id: None,
            lsn: None,
            last_commit_lsn: None,
        }),
        snapshot_marks: Some(marks),
        lsns: None,
    }
}
