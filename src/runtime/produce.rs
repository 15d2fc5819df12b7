//! The producing side of a running pipeline, on one blocking thread: query → envelope →
//! encoder → Kafka, for snapshot rows and streamed changes alike. It also decides when a
//! source position may be acknowledged: only once every message before it is in Kafka.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, RecordBatch, StructArray};
use tokio::sync::{mpsc, oneshot};

use super::metrics::Metrics;
use super::offsets::Progress;
use super::poison::{self, PoisonRow, TableErrors};
use super::txmeta::{TransactionTopic, TxnEnd};
use super::{now_ns, RuntimeError, TableReport};
use crate::connect::{ConnectType, Field, Schema};
use crate::encode::{EncodedColumn, Encoder};
use crate::envelope::{ChangeBatch, Op, SnapshotMark, SourcePosition, TableEnvelope};
use crate::plan::{AvroOptions, Encoding, PipelinePlan, TablePlan};
use crate::registry::{subject_name, RegistryClient};
use crate::sink::kafka::KafkaSink;
use crate::transform::Transform;

/// What the reading side hands over.
pub(crate) enum Work {
    /// Snapshot rows of one chunk of `plan.tables[table]`, before the query. The chunks of
    /// a table arrive one after the other, never interleaved.
    Snapshot {
        table: usize,
        chunk: u32,
        batch: RecordBatch,
    },
    /// A snapshot chunk is complete; `last` when it is the table's last chunk.
    ChunkDone {
        table: usize,
        chunk: u32,
        last: bool,
    },
    /// Streamed changes, before the query.
    Changes {
        table: usize,
        batch: Box<ChangeBatch>,
    },
    /// Rows of `plan.tables[table]` that could not be decoded, for `on_error`; they come
    /// before the commit or chunk end that covers them.
    Poison { table: usize, rows: Vec<PoisonRow> },
    /// A source transaction ended here (or the server reported an idle position): once its
    /// messages are in Kafka, the position may be acknowledged.
    Commit { lsn: u64 },
    /// Source transactions that ended, in commit order, sent after their last rows and before
    /// their `Commit` (only when the pipeline provides transaction metadata).
    TxnsEnded(Vec<TxnEnd>),
    /// Replace the progress record's snapshot fields and write it once everything before it
    /// is in Kafka; the reply says it is queued (at-least-once) or committed (transactional).
    Checkpoint {
        update: ProgressUpdate,
        reply: Reply,
    },
    /// A replacement for one table's plan (schema change); encoders are already registered.
    Replace { table: usize, work: Box<TableWork> },
    /// Write a Debezium heartbeat record (when the pipeline has a heartbeat topic).
    Heartbeat { ts_ms: i64 },
}

/// Debezium's heartbeat records: key `{serverName}`, value `{ts_ms}`, in the pipeline's format.
pub(crate) struct Heartbeats {
    topic: String,
    server_name: String,
    key: Encoder,
    value: Encoder,
}

impl Heartbeats {
    pub async fn build(
        plan: &PipelinePlan,
        registry: Option<&RegistryClient>,
    ) -> Result<Option<Heartbeats>, RuntimeError> {
        let Some(topic) = plan.replication.heartbeat_topic.clone() else {
            return Ok(None);
        };
        let key_schema = Schema::new(ConnectType::Struct(vec![Field::new(
            "serverName",
            Schema::new(ConnectType::String),
        )]))
        .named("io.debezium.connector.common.ServerNameKey");
        let value_schema = Schema::new(ConnectType::Struct(vec![Field::new(
            "ts_ms",
            Schema::new(ConnectType::Int64),
        )]))
        .named("io.debezium.connector.common.Heartbeat");
        let mut key = Encoder::new(&plan.encoding, &key_schema)?;
        let mut value = Encoder::new(&plan.encoding, &value_schema)?;
        if let (Encoding::Avro(opts), Some(registry)) = (&plan.encoding, registry) {
            register(registry, opts, &topic, &mut key, &key_schema, true).await?;
            register(registry, opts, &topic, &mut value, &value_schema, false).await?;
        }
        let server_name = match &plan.envelope {
            crate::plan::Envelope::Debezium(d) => d.server_name.clone(),
            crate::plan::Envelope::Native(_) => plan.name.clone(),
        };
        Ok(Some(Heartbeats {
            topic,
            server_name,
            key,
            value,
        }))
    }

    fn send(&self, sink: &mut KafkaSink, ts_ms: i64, out: &mut Output) -> Result<(), RuntimeError> {
        use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray, StructArray};
        use datafusion::arrow::datatypes::{DataType, Field as ArrowField};
        let key = StructArray::from(vec![(
            Arc::new(ArrowField::new("serverName", DataType::Utf8, false)),
            Arc::new(StringArray::from(vec![self.server_name.as_str()])) as ArrayRef,
        )]);
        let value = StructArray::from(vec![(
            Arc::new(ArrowField::new("ts_ms", DataType::Int64, false)),
            Arc::new(Int64Array::from(vec![ts_ms])) as ArrayRef,
        )]);
        out.keys.clear();
        out.values.clear();
        self.key.encode(&key, &mut out.keys)?;
        self.value.encode(&value, &mut out.values)?;
        sink.send(&self.topic, out.keys.get(0), out.values.get(0))?;
        Ok(())
    }
}

/// Changes to the progress record that come from the reading side.
pub(crate) enum ProgressUpdate {
    /// The snapshot starts: its position and its chunks.
    SnapshotStarted {
        lsn: u64,
        chunks: std::collections::BTreeMap<String, super::offsets::TableChunks>,
        xids: Option<String>,
    },
    SnapshotDone,
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
    /// Held back one batch so that the chunk's last row can be marked.
    pending: Option<RecordBatch>,
    /// The next snapshot batch emitted starts a chunk.
    pending_first: bool,
    /// What becomes of rows that cannot be delivered (`on_error`).
    poison: TableErrors,
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
            pending_first: true,
            poison: TableErrors::build(plan, table).await?,
        })
    }
}

pub(super) async fn register(
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

pub(crate) type Reply = oneshot::Sender<Result<(), RuntimeError>>;

/// How delivered positions become acknowledged ones.
enum Delivery {
    /// Positions and progress records wait, each with the sequence number of the first
    /// message after it, until every message before them is delivered.
    AtLeastOnce {
        positions: VecDeque<(u64, u64)>,
        records: VecDeque<(u64, Progress)>,
    },
    /// Messages go out in Kafka transactions that each end with the progress record; a
    /// position is acknowledged once its transaction is committed.
    Transactional(TxnState),
}

struct TxnState {
    open: bool,
    began: Instant,
    first_seq: u64,
    /// Source position of the last complete unit (transaction, chunk) in the open Kafka
    /// transaction.
    pending: Option<u64>,
    /// The open Kafka transaction holds part of a source transaction: it cannot end yet.
    dirty: bool,
    max_messages: u64,
    max_ms: u128,
}

struct Worker<'a> {
    plan: &'a PipelinePlan,
    sink: KafkaSink,
    shared: Arc<Metrics>,
    /// Off for snapshot-only runs, which never resume.
    record_progress: bool,
    progress: Progress,
    delivery: Delivery,
    /// Rows set aside per table, for the progress record.
    tally: poison::Tally,
}

impl Worker<'_> {
    fn offsets_topic(&self) -> &str {
        &self.plan.replication.offsets_topic
    }

    /// Make sure a Kafka transaction is open before anything is sent in transactional mode.
    fn before_send(&mut self) -> Result<(), RuntimeError> {
        if let Delivery::Transactional(t) = &mut self.delivery {
            if !t.open {
                self.sink.begin()?;
                t.open = true;
                t.began = Instant::now();
                t.first_seq = self.sink.next_seq();
            }
        }
        Ok(())
    }

    fn after_data(&mut self) {
        if let Delivery::Transactional(t) = &mut self.delivery {
            t.dirty = true;
        }
    }

    fn write_progress(&mut self) -> Result<(), RuntimeError> {
        if !self.record_progress {
            return Ok(());
        }
        self.tally.record(&mut self.progress, &self.shared);
        self.progress.messages = self.shared.messages.load(Ordering::Relaxed);
        self.progress.updated_ms = now_ns() / 1_000_000;
        let topic = self.plan.replication.offsets_topic.clone();
        self.sink.send(
            &topic,
            Some(self.progress.slot.as_bytes()),
            Some(&self.progress.to_json()),
        )?;
        Ok(())
    }

    /// A unit (source transaction, snapshot chunk, checkpoint) is complete at `lsn`.
    fn unit_done(&mut self, lsn: Option<u64>, force: bool) -> Result<(), RuntimeError> {
        self.tally.record(&mut self.progress, &self.shared);
        if let Some(l) = lsn {
            self.progress.lsn = Some(self.progress.lsn.map_or(l, |p| p.max(l)));
        }
        match &mut self.delivery {
            Delivery::AtLeastOnce { positions, records } => {
                let seq = self.sink.next_seq();
                if let Some(l) = lsn {
                    positions.push_back((seq, l));
                }
                if force {
                    records.push_back((seq, self.progress.clone()));
                }
            }
            Delivery::Transactional(t) => {
                t.dirty = false;
                if !t.open && !force {
                    // Nothing written since the last commit: nothing to make durable.
                    if let Some(l) = lsn {
                        self.shared.acked_lsn.fetch_max(l, Ordering::Relaxed);
                    }
                    return Ok(());
                }
                if let Some(l) = lsn {
                    t.pending = Some(l);
                }
                let due = force
                    || self.sink.next_seq() - t.first_seq >= t.max_messages
                    || t.began.elapsed().as_millis() >= t.max_ms;
                if due {
                    self.commit()?;
                }
            }
        }
        Ok(())
    }

    /// End the open Kafka transaction with the progress record.
    fn commit(&mut self) -> Result<(), RuntimeError> {
        self.before_send()?;
        self.write_progress()?;
        if let Err(e) = self.sink.commit() {
            self.shared
                .kafka_transactions_aborted
                .fetch_add(1, Ordering::Relaxed);
            // No abort_transaction here: an abort under the same producer epoch lets a
            // produce request still in flight (e.g. held by a stalled broker) land after the
            // abort marker and join the next transaction, which then commits records of this
            // failed one (found by tests/e2e_faults.rs, broker_frozen_mid_transaction). The
            // pipeline restarts with a new producer, whose init_transactions bumps the epoch
            // (fencing late requests) and aborts this transaction.
            return Err(e.into());
        }
        self.shared
            .kafka_transactions_committed
            .fetch_add(1, Ordering::Relaxed);
        if let Delivery::Transactional(t) = &mut self.delivery {
            t.open = false;
            if let Some(l) = t.pending.take() {
                self.shared.acked_lsn.fetch_max(l, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// Called while idle and now and then: acknowledge what is delivered (at-least-once) or
    /// end a Kafka transaction that has waited long enough (transactional).
    fn settle(&mut self) -> Result<(), RuntimeError> {
        match &mut self.delivery {
            Delivery::AtLeastOnce { positions, records } => {
                let below = self.sink.acknowledged_below()?;
                while let Some(&(seq, lsn)) = positions.front() {
                    if seq > below {
                        break;
                    }
                    self.shared.acked_lsn.fetch_max(lsn, Ordering::Relaxed);
                    positions.pop_front();
                }
                let mut ready = Vec::new();
                while records.front().is_some_and(|(seq, _)| *seq <= below) {
                    if let Some((_, p)) = records.pop_front() {
                        ready.push(p);
                    }
                }
                // Written only now: Kafka orders nothing across topics, so the record must
                // not overtake the data it vouches for.
                let topic = self.offsets_topic().to_string();
                if !self.record_progress {
                    ready.clear();
                }
                for mut p in ready {
                    p.messages = self.shared.messages.load(Ordering::Relaxed);
                    self.sink
                        .send(&topic, Some(p.slot.as_bytes()), Some(&p.to_json()))?;
                }
            }
            Delivery::Transactional(t) => {
                if t.open
                    && !t.dirty
                    && t.pending.is_some()
                    && t.began.elapsed().as_millis() >= t.max_ms
                {
                    self.commit()?;
                }
            }
        }
        Ok(())
    }

    fn idle(&self) -> bool {
        match &self.delivery {
            Delivery::AtLeastOnce { positions, records } => {
                positions.is_empty() && records.is_empty()
            }
            Delivery::Transactional(t) => !(t.open && !t.dirty && t.pending.is_some()),
        }
    }

    /// The reading side is done (shutdown or end of snapshot): make everything complete
    /// durable; a source transaction cut in half is dropped (it is read again next time).
    fn finish(&mut self) -> Result<u64, RuntimeError> {
        match &mut self.delivery {
            Delivery::AtLeastOnce { .. } => {
                self.sink.flush(Duration::from_secs(120))?;
                self.settle()?;
                self.progress.lsn = Some(self.shared.acked_lsn.load(Ordering::Relaxed))
                    .filter(|l| *l > 0)
                    .or(self.progress.lsn);
                self.write_progress()?;
                Ok(self.sink.flush(Duration::from_secs(30))?)
            }
            Delivery::Transactional(t) => {
                if t.open && t.dirty {
                    t.open = false;
                    t.pending = None;
                    self.sink.abort()?;
                    self.shared
                        .kafka_transactions_aborted
                        .fetch_add(1, Ordering::Relaxed);
                } else if t.open {
                    self.commit()?;
                }
                Ok(self.sink.flush(Duration::from_secs(30)).unwrap_or(0))
            }
        }
    }
}

/// What a worker starts from besides its plan, tables, channel and producer.
pub(crate) struct WorkerStart {
    /// Position stamped on snapshot rows.
    pub snapshot_position: Option<SourcePosition>,
    /// The progress record to maintain; `None` writes none (snapshot-only runs).
    pub progress: Option<Progress>,
    pub heartbeats: Option<Heartbeats>,
    /// Debezium's transaction metadata, when the pipeline provides it.
    pub transactions: Option<TransactionTopic>,
}

pub(crate) fn run_worker(
    plan: &PipelinePlan,
    mut work: Vec<TableWork>,
    start: WorkerStart,
    mut rx: mpsc::Receiver<Work>,
    sink: KafkaSink,
    shared: Arc<Metrics>,
) -> Result<WorkerResult, RuntimeError> {
    let WorkerStart {
        snapshot_position,
        progress,
        heartbeats,
        mut transactions,
    } = start;
    let mut reports: Vec<TableReport> = plan
        .tables
        .iter()
        .map(|t| TableReport {
            table: t.table.to_string(),
            topic: t.topic.clone(),
            ..Default::default()
        })
        .collect();
    let delivery = if sink.is_transactional() {
        Delivery::Transactional(TxnState {
            open: false,
            began: Instant::now(),
            first_seq: 0,
            pending: None,
            dirty: false,
            max_messages: plan.delivery.transaction_max_messages,
            max_ms: u128::from(plan.delivery.transaction_max_ms),
        })
    } else {
        Delivery::AtLeastOnce {
            positions: VecDeque::new(),
            records: VecDeque::new(),
        }
    };
    let record_progress = progress.is_some();
    let progress = progress.unwrap_or_default();
    let mut w = Worker {
        plan,
        sink,
        shared: shared.clone(),
        record_progress,
        tally: poison::Tally::new(plan, &progress, &shared),
        progress,
        delivery,
    };
    let mut out = Output::default();
    let last_table = plan.tables.len().saturating_sub(1);
    let mut last_settle = Instant::now();

    loop {
        let item = match rx.try_recv() {
            Ok(item) => item,
            Err(mpsc::error::TryRecvError::Disconnected) => break,
            Err(mpsc::error::TryRecvError::Empty) => {
                w.settle()?;
                if w.idle() {
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
            Work::Snapshot {
                table,
                chunk,
                batch,
            } => {
                let rows = match work[table].transform.apply(batch.clone()) {
                    Ok(rows) => rows,
                    Err(e) => {
                        let input = poison::snapshot_rows(batch.clone());
                        let run = |t: &Transform, c: &ChangeBatch| match &c.after {
                            Some(b) => Ok(t.apply(b.clone())?),
                            None => {
                                Err(RuntimeError::Internal("snapshot rows without rows".into()))
                            }
                        };
                        match query_failed(e.into(), &input, &mut work[table], &mut w, run)? {
                            Some(rows) => rows,
                            None => work[table].transform.apply(batch.slice(0, 0))?,
                        }
                    }
                };
                if rows.num_rows() > 0 {
                    if let Some(prev) = work[table].pending.replace(rows) {
                        let at = SnapshotAt {
                            table,
                            chunk,
                            is_last: false,
                            last_table,
                            position: snapshot_position.as_ref(),
                        };
                        emit_snapshot(
                            &at,
                            prev,
                            &mut work[table],
                            &mut w,
                            &mut out,
                            &mut reports[table],
                        )?;
                    }
                }
            }
            Work::ChunkDone { table, chunk, last } => {
                if let Some(prev) = work[table].pending.take() {
                    let at = SnapshotAt {
                        table,
                        chunk,
                        is_last: last,
                        last_table,
                        position: snapshot_position.as_ref(),
                    };
                    emit_snapshot(
                        &at,
                        prev,
                        &mut work[table],
                        &mut w,
                        &mut out,
                        &mut reports[table],
                    )?;
                }
                work[table].pending_first = true;
                let name = plan.tables[table].table.to_string();
                if let Some(c) = w.progress.chunks.get_mut(&name) {
                    if !c.done.contains(&chunk) {
                        c.done.push(chunk);
                    }
                }
                if let Some(m) = shared.tables.get(table) {
                    if last {
                        m.snapshot_done.store(true, Ordering::Relaxed);
                    }
                }
                w.unit_done(None, true)?;
            }
            Work::Changes { table, batch } => {
                if let Delivery::Transactional(t) = &w.delivery {
                    // A new source transaction may start a new Kafka transaction.
                    if t.open && !t.dirty && t.pending.is_some() {
                        w.settle()?;
                    }
                }
                let change = match work[table].transform.changes(&batch) {
                    Ok(change) => Some(change),
                    Err(e) => {
                        let run = |t: &Transform, c: &ChangeBatch| Ok(t.changes(c)?);
                        query_failed(e.into(), &batch, &mut work[table], &mut w, run)?
                    }
                };
                if let Some(change) = change.filter(|c| !c.is_empty()) {
                    w.before_send()?;
                    out.emit(
                        &mut work[table],
                        &change,
                        transactions.as_mut(),
                        &mut w.sink,
                        &shared,
                        &mut reports[table],
                    )?;
                    w.after_data();
                }
            }
            Work::Poison { table, rows } => set_aside(rows, &mut work[table], &mut w)?,
            Work::Commit { lsn } => w.unit_done(Some(lsn), false)?,
            Work::TxnsEnded(ended) => {
                if let Some(t) = transactions.as_mut() {
                    let ends = t.counter.end(&ended);
                    if !ends.is_empty() {
                        w.before_send()?;
                        t.send(&ends, &mut w.sink)?;
                    }
                }
            }
            Work::Checkpoint { update, reply } => {
                match update {
                    ProgressUpdate::SnapshotStarted { lsn, chunks, xids } => {
                        w.progress.snapshot_lsn = Some(lsn);
                        w.progress.chunks = chunks;
                        w.progress.snapshot_xids = xids;
                    }
                    ProgressUpdate::SnapshotDone => {
                        w.progress.snapshot_done = true;
                        w.progress.chunks.clear();
                    }
                }
                let r = w.unit_done(None, true);
                let failed = r.is_err();
                let _ = reply.send(r);
                if failed {
                    return Err(RuntimeError::Internal(
                        "writing a progress record failed".into(),
                    ));
                }
            }
            Work::Replace { table, work: new } => work[table] = *new,
            Work::Heartbeat { ts_ms } => {
                if let Some(h) = &heartbeats {
                    w.before_send()?;
                    h.send(&mut w.sink, ts_ms, &mut out)?;
                }
            }
        }
        if last_settle.elapsed() > Duration::from_millis(20) {
            w.settle()?;
            last_settle = Instant::now();
        }
    }
    let delivered = w.finish()?;
    Ok(WorkerResult {
        tables: reports,
        delivered,
    })
}

/// Rows that cannot be delivered, as `on_error` says: a dead letter goes into the open Kafka
/// transaction (of the source transaction the row belongs to, when streaming).
fn set_aside(
    rows: Vec<PoisonRow>,
    tw: &mut TableWork,
    w: &mut Worker<'_>,
) -> Result<(), RuntimeError> {
    let streamed = rows.iter().any(|r| r.lsn.is_some());
    if tw.poison.writes() {
        w.before_send()?;
    }
    tw.poison.handle(&mut w.sink, rows, &w.shared)?;
    if streamed && tw.poison.writes() {
        w.after_data();
    }
    Ok(())
}

/// The pipeline's query failed on a batch: the rows it fails on alone are set aside
/// (`on_error`, showing the source row), and it runs again on the others (`None` when no
/// row is left).
fn query_failed<T>(
    error: RuntimeError,
    input: &ChangeBatch,
    tw: &mut TableWork,
    w: &mut Worker<'_>,
    run: impl Fn(&Transform, &ChangeBatch) -> Result<T, RuntimeError>,
) -> Result<Option<T>, RuntimeError> {
    let (faults, rest) = poison::isolate(error, input, |c| run(&tw.transform, c).map(|_| ()))?;
    let rows = tw.poison.rows_from(input, faults);
    set_aside(rows, tw, w)?;
    rest.map(|r| run(&tw.transform, &r)).transpose()
}

/// Reused encode buffers.
#[derive(Default)]
struct Output {
    keys: EncodedColumn,
    values: EncodedColumn,
}

impl Output {
    /// Convert and encode `change` (with its Debezium `transaction` blocks, if any) into the
    /// buffers, sending nothing.
    fn encode(
        &mut self,
        w: &TableWork,
        change: &ChangeBatch,
        transaction: Option<&StructArray>,
    ) -> Result<(), RuntimeError> {
        let records = w.envelope.records_in(change, now_ns(), transaction)?;
        self.keys.clear();
        self.values.clear();
        match (&w.key_encoder, &records.key) {
            (Some(enc), Some(k)) => enc.encode(k, &mut self.keys)?,
            _ => (0..records.value.len()).for_each(|_| self.keys.push_null()),
        }
        w.value_encoder.encode(&records.value, &mut self.values)?;
        Ok(())
    }

    fn emit(
        &mut self,
        w: &mut TableWork,
        change: &ChangeBatch,
        mut txn: Option<&mut TransactionTopic>,
        sink: &mut KafkaSink,
        shared: &Metrics,
        report: &mut TableReport,
    ) -> Result<(), RuntimeError> {
        // Transaction metadata numbers the events that are written: count on a copy first,
        // and keep the counts only if no row of the batch is set aside.
        let numbered = match txn.as_deref() {
            Some(t) => {
                let mut counter = t.counter.clone();
                let n = counter.number(w.index, change)?;
                Some((counter, n))
            }
            None => None,
        };
        // A batch that cannot be converted or encoded takes the slow path: its bad rows are
        // set aside (`on_error`) and the others go on, in order.
        let good;
        let block = numbered.as_ref().map(|(_, n)| &n.block);
        let change = match self.encode(w, change, block) {
            Ok(()) => {
                if let (Some(t), Some((counter, n))) = (txn.as_deref_mut(), numbered) {
                    t.counter = counter;
                    t.send(&n.begins, sink)?;
                }
                change
            }
            Err(e) => {
                let (faults, rest) = poison::isolate(e, change, |c| self.encode(w, c, None))?;
                let rows = w.poison.rows_from(change, faults);
                w.poison.handle(sink, rows, shared)?;
                let Some(rest) = rest else {
                    return Ok(());
                };
                good = rest;
                let block = match txn {
                    Some(t) => Some(t.number(w.index, &good, sink)?),
                    None => None,
                };
                self.encode(w, &good, block.as_ref())?;
                &good
            }
        };
        // A message Kafka refuses for its size sets its row aside too.
        let mut skip_to = 0;
        let (mut unsent, mut unsent_bytes, mut unsent_rows) = (0u64, 0u64, 0u64);
        for r in 0..self.values.len() {
            let size =
                self.keys.get(r).map_or(0, <[u8]>::len) + self.values.get(r).map_or(0, <[u8]>::len);
            if r < skip_to {
                unsent += 1;
                unsent_bytes += size as u64;
                continue;
            }
            if let Err(e) = sink.send(&w.topic, self.keys.get(r), self.values.get(r)) {
                let n = self.values.len();
                skip_to = w.poison.unsendable(e, r, size, change, n, sink, shared)?;
                unsent += 1;
                unsent_bytes += size as u64;
                unsent_rows += 1;
            }
        }
        let n = self.values.len() as u64 - unsent;
        let bytes = (self.keys.byte_len() + self.values.byte_len()) as u64 - unsent_bytes;
        shared.bytes.fetch_add(bytes, Ordering::Relaxed);
        shared.messages.fetch_add(n, Ordering::Relaxed);
        if let Some(t) = shared.tables.get(w.index) {
            t.messages.fetch_add(n, Ordering::Relaxed);
            t.bytes.fetch_add(bytes, Ordering::Relaxed);
            let rows = change.len() as u64 - unsent_rows;
            if change.snapshot_marks.is_some() {
                t.snapshot_rows.fetch_add(rows, Ordering::Relaxed);
            } else {
                t.changes.fetch_add(rows, Ordering::Relaxed);
            }
        }
        report.messages += n;
        Ok(())
    }
}

/// Where a snapshot batch sits: for Debezium's `source.snapshot` marks.
struct SnapshotAt<'a> {
    table: usize,
    chunk: u32,
    /// The batch ends the table's last chunk.
    is_last: bool,
    last_table: usize,
    position: Option<&'a SourcePosition>,
}

fn emit_snapshot(
    at: &SnapshotAt<'_>,
    batch: RecordBatch,
    tw: &mut TableWork,
    w: &mut Worker<'_>,
    out: &mut Output,
    report: &mut TableReport,
) -> Result<(), RuntimeError> {
    let change = snapshot_change(at, batch, tw);
    w.before_send()?;
    let shared = w.shared.clone();
    out.emit(tw, &change, None, &mut w.sink, &shared, report)
}

fn snapshot_change(at: &SnapshotAt<'_>, batch: RecordBatch, w: &mut TableWork) -> ChangeBatch {
    let n = batch.num_rows();
    let first_of_chunk = w.pending_first;
    w.pending_first = false;
    let marks: Vec<SnapshotMark> = (0..n)
        .map(|r| {
            SnapshotMark::for_row(
                at.table == 0,
                at.table == at.last_table,
                at.chunk == 0 && first_of_chunk && r == 0,
                at.is_last && r == n - 1,
            )
        })
        .collect();
    ChangeBatch {
        ops: vec![Op::Read; n],
        before: None,
        before_valid: None,
        after: Some(batch),
        position: at.position.cloned().unwrap_or(SourcePosition {
            ts_us: now_ns() / 1000,
            tx_id: None,
            lsn: None,
            last_commit_lsn: None,
            begin_lsn: None,
        }),
        snapshot_marks: Some(marks),
        lsns: None,
        txns: None,
    }
}
