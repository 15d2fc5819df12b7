//! A pipeline's life: publication and slot, the initial snapshot through the slot's exported
//! snapshot, then the change stream until shutdown. At-least-once: the slot is acknowledged
//! only up to positions whose messages are all in Kafka, so a crash replays at most the
//! unacknowledged tail.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pgwire_replication::{Lsn, ReplicationEvent};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::Client;

use super::changes::{map_columns, ShapeChange, TableChanges};
use super::chunks;
use super::metrics::{Metrics, Phase};
use super::offsets;
use super::produce::{self, ProgressUpdate, TableWork, Work};
use super::txmeta::TxnEnd;
use super::{estimate_rows, new_sink, registry_client, RuntimeError, TableReport, BATCH_ROWS};
use crate::catalog::TableName;
use crate::envelope::SourcePosition;
use crate::plan::{Envelope, PipelinePlan, SnapshotMode, TablePlan, TopicSettings};
use crate::registry::RegistryClient;
use crate::source::postgres::pgoutput::{self, Message};
use crate::source::postgres::replication::{self, SessionRequest};
use crate::source::postgres::{self, snapshot};
use crate::types::PgType;

/// Prefix of the WAL messages cdcql emits as heartbeats.
const HEARTBEAT_PREFIX: &str = "cdcql_heartbeat";

/// Re-plans a pipeline after the server announced a changed table (reads the catalog again).
pub type Replanner = Box<
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<PipelinePlan, String>> + Send>> + Send + Sync,
>;

/// What a caller can hand to a run besides the plan.
#[derive(Default)]
pub struct RunContext {
    /// Re-plans the pipeline after a schema change; without one, a change stops the run.
    pub replan: Option<Replanner>,
    /// Counters to update (for progress displays and `/metrics`); a private set when `None`.
    pub metrics: Option<Arc<Metrics>>,
}

#[derive(Debug, Clone, Default)]
pub struct RunReport {
    pub tables: Vec<TableReport>,
    pub snapshot_rows: u64,
    pub delivered: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    /// Position acknowledged to Postgres when the run ended.
    pub acked_lsn: Option<u64>,
    pub transactions: u64,
}

/// Run a pipeline until `shutdown` turns true (or, for `snapshot = 'initial_only'`, until the
/// snapshot is in Kafka).
pub async fn run(
    plan: &PipelinePlan,
    shutdown: watch::Receiver<bool>,
    ctx: RunContext,
) -> Result<RunReport, RuntimeError> {
    let metrics = ctx
        .metrics
        .clone()
        .unwrap_or_else(|| Arc::new(Metrics::new(plan)));
    let replan = ctx.replan.map(Arc::new);
    let mut backoff = Duration::from_secs(1);
    let result = loop {
        let attempt_started = Instant::now();
        metrics.set_phase(Phase::Starting);
        let result = run_inner(plan, shutdown.clone(), replan.clone(), metrics.clone()).await;
        let Err(e) = &result else { break result };
        // A pipeline that got going and then lost Kafka or Postgres starts again from its
        // last committed position (aborting any open Kafka transaction); a pipeline that
        // cannot start at all reports why at once.
        let got_going = metrics.tables.iter().any(|t| {
            t.snapshot_rows.load(Ordering::Relaxed) > 0 || t.changes.load(Ordering::Relaxed) > 0
        }) || metrics.acked_lsn.load(Ordering::Relaxed) > 0;
        if !retriable(e) || !got_going || *shutdown.borrow() {
            break result;
        }
        metrics.errors.fetch_add(1, Ordering::Relaxed);
        if attempt_started.elapsed() > Duration::from_secs(120) {
            backoff = Duration::from_secs(1);
        }
        tracing::warn!(pipeline = %plan.name, error = %e, retry_in = ?backoff, "pipeline failed; restarting from its last committed position");
        let mut stop = shutdown.clone();
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => break result,
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    };
    let result = result.map_err(super::poison::explain_delivery);
    metrics.set_phase(match &result {
        Ok(_) => Phase::Stopped,
        Err(_) => Phase::Failed,
    });
    if result.is_err() {
        metrics.errors.fetch_add(1, Ordering::Relaxed);
    }
    result
}

/// Lost connections and broker trouble; not mistakes in the pipeline or the data.
fn retriable(e: &RuntimeError) -> bool {
    use crate::source::postgres::SourceError;
    // A fenced producer means another instance took over: stop. Any other fatal producer
    // error (the broker lost the producer's sequence state on a restart, a topic was deleted
    // underneath) only ends that producer: a new one resumes from the last committed
    // position. Stopping on those left at-least-once pipelines dead after a broker restart.
    let text = e.to_string();
    if text.to_lowercase().contains("fenced") || super::poison::fatal_delivery(e) {
        return false;
    }
    match e {
        RuntimeError::Sink(crate::sink::kafka::SinkError::Config(_)) => false,
        RuntimeError::Sink(_) => true,
        RuntimeError::Source(SourceError::Connect { .. } | SourceError::Replication(_)) => true,
        RuntimeError::Source(SourceError::Postgres(pg)) => {
            pg.as_db_error().is_none() || pg.is_closed()
        }
        RuntimeError::Registry(crate::registry::RegistryError::Unavailable { .. }) => true,
        _ => false,
    }
}

async fn run_inner(
    plan: &PipelinePlan,
    mut shutdown: watch::Receiver<bool>,
    replan: Option<Arc<Replanner>>,
    shared: Arc<Metrics>,
) -> Result<RunReport, RuntimeError> {
    if plan.snapshot == SnapshotMode::InitialOnly {
        let r = super::run_snapshot_with(plan, shared.clone()).await?;
        return Ok(RunReport {
            snapshot_rows: r.tables.iter().map(|t| t.rows_read).sum(),
            tables: r.tables,
            delivered: r.delivered,
            bytes: r.bytes,
            elapsed: r.elapsed,
            ..Default::default()
        });
    }
    let started = Instant::now();
    let rs = &plan.replication;
    let client = postgres::connect(&plan.postgres.url).await?;
    replication::preflight(&client).await?;
    // Before anything that could disturb a running instance (a transactional producer with
    // the same id would fence it): is the slot already in use?
    // A crashed predecessor's walsender can outlive it by a moment: give it a few seconds.
    let mut slot = replication::slot_info(&client, &rs.slot).await?;
    let in_use_since = Instant::now();
    while slot.as_ref().is_some_and(|s| s.active_pid.is_some())
        && in_use_since.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(250)).await;
        slot = replication::slot_info(&client, &rs.slot).await?;
    }
    if let Some(pid) = slot.as_ref().and_then(|s| s.active_pid) {
        return Err(RuntimeError::Setup(format!(
            "replication slot `{}` is in use by another process (backend pid {pid}): is this \
             pipeline already running?",
            rs.slot
        )));
    }
    for t in &plan.tables {
        check_replica_identity(&client, plan, t).await?;
    }
    let names: Vec<TableName> = plan.tables.iter().map(|t| t.table.clone()).collect();
    replication::ensure_publication(&client, &rs.publication, &names).await?;

    let registry = registry_client(plan)?;
    // Schemas are registered before the slot is created: a registry that is down at start
    // must not leave a new slot behind (an unused slot makes Postgres keep WAL forever).
    let mut work = Vec::with_capacity(plan.tables.len());
    for t in &plan.tables {
        work.push(TableWork::build(plan, t, registry.as_ref()).await?);
    }
    let heartbeats = produce::Heartbeats::build(plan, registry.as_ref()).await?;
    let transactions = super::txmeta::TransactionTopic::build(plan, registry.as_ref()).await?;
    let sink = new_sink(plan)?;
    let topics: Vec<String> = plan.tables.iter().map(|t| t.topic.clone()).collect();
    sink.ensure_topics(&topics, &plan.topic_settings).await?;
    let mut internal = vec![rs.offsets_topic.clone()];
    internal.extend(rs.heartbeat_topic.clone());
    sink.ensure_topics(
        &internal,
        &TopicSettings {
            partitions: 1,
            replication_factor: plan.topic_settings.replication_factor,
            cleanup_policy: Some("compact".into()),
        },
    )
    .await?;
    let kafka = plan.kafka.clone();
    let (offsets_topic, slot_name) = (rs.offsets_topic.clone(), rs.slot.clone());
    let progress =
        tokio::task::spawn_blocking(move || offsets::load(&kafka, &offsets_topic, &slot_name))
            .await
            .map_err(|e| RuntimeError::Internal(format!("reading progress: {e}")))??
            .unwrap_or_default();

    let mut snapshot_wanted = plan.snapshot != SnapshotMode::Never && !progress.snapshot_done;
    if slot.is_none() && progress.snapshot_done && plan.snapshot != SnapshotMode::Never {
        if plan.snapshot == SnapshotMode::WhenNeeded {
            tracing::warn!(slot = %rs.slot, "the replication slot is gone: taking a new snapshot");
            snapshot_wanted = true;
        } else {
            return Err(RuntimeError::Setup(format!(
                "replication slot `{}` no longer exists, but pipeline `{}` already streamed from \
                 it: changes since then may be missing. Set snapshot = 'when_needed' to take a new \
                 snapshot, or run `cdcql drop` and start again",
                rs.slot, plan.name
            )));
        }
    }
    // A snapshot that started but did not finish is resumed at its first unfinished chunk
    // (see `chunks`); one that never recorded its start is taken again from a new slot.
    let resume = slot.is_some() && snapshot_wanted && progress.snapshot_lsn.is_some();
    if slot.is_some() && snapshot_wanted && !resume {
        tracing::warn!(slot = %rs.slot, "the previous snapshot did not record its start: taking it again from a new slot");
        replication::drop_slot(&client, &rs.slot).await?;
        slot = None;
    }
    let create = slot.is_none();
    let mut session = replication::open(SessionRequest {
        url: &plan.postgres.url,
        slot: &rs.slot,
        publication: &rs.publication,
        create,
        export_snapshot: create && snapshot_wanted,
    })
    .await?;

    if let Some(t) = &transactions {
        // One partition: BEGIN, END and their order stay together for consumers.
        sink.ensure_topics(
            &[t.topic().to_string()],
            &TopicSettings {
                partitions: 1,
                replication_factor: plan.topic_settings.replication_factor,
                cleanup_policy: None,
            },
        )
        .await?;
    }
    let ended_txns = transactions.as_ref().map(|_| Vec::new());
    let (tx, rx) = mpsc::channel::<Work>(8);

    // The snapshot's coordinating transaction starts before the worker so that its position
    // is known. First attempt: the slot's exported snapshot, exactly at its consistent point.
    // Resumed attempt: a new snapshot, later than the slot's start (see README, "Resuming a
    // snapshot"): the stream then replays the changes in between, after the chunks.
    let snap = if snapshot_wanted {
        let coordinator = postgres::connect(&plan.postgres.url).await?;
        let exported = session
            .created
            .as_ref()
            .and_then(|c| c.snapshot_name.clone());
        let point = snapshot::begin(&coordinator, exported.as_deref()).await?;
        // What the first attempt saw; a resumed one keeps the first attempt's.
        let xids = if resume {
            progress.snapshot_xids.clone()
        } else {
            Some(point.xids.clone())
        };
        let name = match exported {
            Some(n) => n,
            None => snapshot::export(&coordinator).await?,
        };
        let lsn = session
            .created
            .as_ref()
            .map(|c| c.consistent_point)
            .or(progress.snapshot_lsn)
            .unwrap_or(point.lsn);
        Some((coordinator, point, lsn, name, xids))
    } else {
        None
    };
    let position = snap.as_ref().map(|(_, point, lsn, _, _)| SourcePosition {
        ts_us: point.ts_us,
        tx_id: Some(point.tx_id),
        lsn: Some(*lsn),
        last_commit_lsn: None,
        begin_lsn: None,
    });
    let mut initial = progress.clone();
    initial.pipeline = plan.name.clone();
    initial.slot = rs.slot.clone();
    if plan.snapshot == SnapshotMode::Never {
        initial.snapshot_done = true;
    }
    let worker_plan = plan.clone();
    let worker_shared = shared.clone();
    let mut worker = Some(tokio::task::spawn_blocking(move || {
        produce::run_worker(
            &worker_plan,
            work,
            produce::WorkerStart {
                snapshot_position: position,
                progress: Some(initial),
                heartbeats,
                transactions,
            },
            rx,
            sink,
            worker_shared,
        )
    }));

    let mut snapshot_rows = 0;
    if let Some((coordinator, _, lsn, name, xids)) = snap {
        shared.set_phase(Phase::Snapshot);
        estimate_rows(&coordinator, plan, &shared).await;
        let previous = if resume {
            progress.chunks.clone()
        } else {
            Default::default()
        };
        let first_attempt = if resume { xids.as_deref() } else { None };
        let (record, todo) =
            chunks::plan_chunks(&coordinator, plan, &previous, first_attempt).await?;
        if resume {
            tracing::warn!(
                pipeline = %plan.name,
                chunks_left = todo.len(),
                "resuming the snapshot at its first unfinished chunk, with a newer snapshot"
            );
        }
        let started = ProgressUpdate::SnapshotStarted {
            lsn,
            chunks: record,
            xids,
        };
        if let Err(e) = checkpoint(&tx, started).await {
            return Err(worker_error(worker.take(), e).await);
        }
        let rows = match chunks::read_chunks(plan, &name, todo, &tx, &shared).await {
            Ok(r) => r,
            Err(e) => return Err(worker_error(worker.take(), e).await),
        };
        snapshot::end(&coordinator).await?;
        snapshot_rows = rows.iter().sum();
        if let Err(e) = checkpoint(&tx, ProgressUpdate::SnapshotDone).await {
            return Err(worker_error(worker.take(), e).await);
        }
        tracing::info!(pipeline = %plan.name, rows = snapshot_rows, "snapshot delivered; streaming");
    }

    session.start().await?;
    shared.set_phase(Phase::Streaming);
    let mut stream = Stream {
        plan: plan.clone(),
        tx,
        relations: HashMap::new(),
        txn: None,
        last_commit_lsn: progress.lsn,
        skip_before: progress.lsn.unwrap_or(0),
        skipping: false,
        transactions: 0,
        registry,
        replan,
        pending_commit: None,
        pending_since: None,
        ended_txns,
    };
    let result = stream
        .run(&mut session, &mut shutdown, &client, &shared)
        .await;
    let Stream {
        tx, transactions, ..
    } = stream;
    drop(tx);
    let worker_result = match worker.take() {
        Some(w) => w.await.unwrap_or_else(|e| {
            Err(RuntimeError::Internal(format!(
                "producer worker failed: {e}"
            )))
        }),
        None => Err(RuntimeError::WorkerStopped),
    };
    let acked = shared.acked_lsn.load(Ordering::Relaxed);
    // Report the final position on the replication connection, then, once it is closed,
    // make sure the slot has it even if the last status message did not go out.
    if acked > 0 {
        session.client.update_applied_lsn(Lsn(acked));
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    session.client.stop();
    drop(session);
    if acked > 0 {
        advance_slot(&client, &rs.slot, acked).await;
    }
    let w = match (result, worker_result) {
        // The worker's own error says why it stopped.
        (Err(RuntimeError::WorkerStopped), Err(e)) => return Err(e),
        (Err(e), _) => return Err(e),
        (Ok(()), w) => w?,
    };
    Ok(RunReport {
        tables: w.tables,
        snapshot_rows,
        delivered: w.delivered,
        bytes: shared.bytes.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        acked_lsn: (acked > 0).then_some(acked),
        transactions,
    })
}

/// After the replication connection closed, move the slot to what is in Kafka (never back).
async fn advance_slot(client: &Client, slot: &str, lsn: u64) {
    let target = format!("{:X}/{:X}", lsn >> 32, lsn & 0xffff_ffff);
    for _ in 0..20 {
        match client
            .query_opt(
                "SELECT pg_replication_slot_advance($1, $2::text::pg_lsn) \
                 FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NULL \
                 AND confirmed_flush_lsn < $2::text::pg_lsn",
                &[&slot, &target],
            )
            .await
        {
            Ok(_) => {
                let active = replication::slot_info(client, slot)
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|s| s.active_pid.is_some());
                if !active {
                    return;
                }
            }
            Err(e) => {
                tracing::debug!("advancing slot: {e}");
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Filters need the old row on updates and deletes; the native envelope needs unchanged
/// TOASTed values. Under REPLICA IDENTITY DEFAULT the server sends neither, so refuse (or, when
/// allowed, switch the table to FULL) rather than emit a wrong stream.
async fn check_replica_identity(
    client: &Client,
    plan: &PipelinePlan,
    t: &TablePlan,
) -> Result<(), RuntimeError> {
    let (ident, identity_cols) = replication::replica_identity(client, &t.table).await?;
    if ident == b'f' {
        return Ok(());
    }
    let mut reasons = Vec::new();
    if let Some(filter) = &t.filter {
        let outside: Vec<String> = filter
            .column_refs()
            .into_iter()
            .map(|c| c.name.clone())
            .filter(|c| !identity_cols.contains(c))
            .collect();
        if !outside.is_empty() {
            reasons.push(format!(
                "its WHERE clause reads {}, which Postgres does not send with the old row of an \
                 update or delete under REPLICA IDENTITY {}",
                outside.join(", "),
                identity_name(ident)
            ));
        }
    }
    if matches!(plan.envelope, Envelope::Native(_)) {
        let toastable: Vec<&str> = t
            .read_columns
            .iter()
            .filter(|c| is_toastable(&c.pg_type))
            .map(|c| c.name.as_str())
            .collect();
        if !toastable.is_empty() {
            reasons.push(format!(
                "ENVELOPE NATIVE writes whole rows, and an update leaves large values of {} \
                 unsent under REPLICA IDENTITY {}",
                toastable.join(", "),
                identity_name(ident)
            ));
        }
    }
    if reasons.is_empty() {
        return Ok(());
    }
    if plan.replication.set_replica_identity_full {
        tracing::info!(table = %t.table, "setting REPLICA IDENTITY FULL");
        replication::set_replica_identity_full(client, &t.table).await?;
        return Ok(());
    }
    Err(RuntimeError::Setup(format!(
        "pipeline `{}` needs REPLICA IDENTITY FULL on {}: {}. Add replica_identity = 'full' to \
         the pipeline's WITH (...) to let cdcql set it, or run ALTER TABLE {} REPLICA IDENTITY FULL",
        plan.name,
        t.table,
        reasons.join("; "),
        t.table.quoted()
    )))
}

fn identity_name(ident: u8) -> &'static str {
    match ident {
        b'n' => "NOTHING",
        b'i' => "USING INDEX",
        _ => "DEFAULT",
    }
}

fn is_toastable(t: &PgType) -> bool {
    matches!(
        t,
        PgType::Text
            | PgType::Varchar(_)
            | PgType::Bpchar(_)
            | PgType::Bytea
            | PgType::Json
            | PgType::Jsonb
            | PgType::Numeric(_)
            | PgType::Unsupported { .. }
    )
}

async fn checkpoint(tx: &mpsc::Sender<Work>, update: ProgressUpdate) -> Result<(), RuntimeError> {
    let (reply, answer) = oneshot::channel();
    tx.send(Work::Checkpoint { update, reply })
        .await
        .map_err(|_| RuntimeError::WorkerStopped)?;
    answer.await.map_err(|_| RuntimeError::WorkerStopped)?
}

/// When sending to the worker failed, its own error is the one worth reporting.
async fn worker_error(
    worker: Option<tokio::task::JoinHandle<Result<produce::WorkerResult, RuntimeError>>>,
    fallback: RuntimeError,
) -> RuntimeError {
    match worker {
        Some(w) => match w.await {
            Ok(Err(e)) => e,
            Err(e) => RuntimeError::Internal(format!("producer worker failed: {e}")),
            Ok(Ok(_)) => fallback,
        },
        None => fallback,
    }
}

struct Txn {
    xid: u32,
    commit_ts_us: i64,
    /// Where the server's messages for the transaction start (see `SourcePosition::begin_lsn`).
    begin_lsn: Option<u64>,
}

struct Stream {
    plan: PipelinePlan,
    tx: mpsc::Sender<Work>,
    /// Relation id → (table index, gathered changes); `None` for tables not in the pipeline.
    relations: HashMap<u32, Option<(usize, TableChanges)>>,
    txn: Option<Txn>,
    last_commit_lsn: Option<u64>,
    /// Transactions whose commit record starts before this are already in Kafka (from the
    /// progress record): after a restart they are read again and dropped.
    skip_before: u64,
    skipping: bool,
    transactions: u64,
    registry: Option<RegistryClient>,
    replan: Option<Arc<Replanner>>,
    /// End of the last source transaction whose rows are gathered but not handed on yet:
    /// small transactions are handed on together (see `FLUSH_AFTER`).
    pending_commit: Option<u64>,
    pending_since: Option<Instant>,
    /// With transaction metadata: the transactions ended since the last hand-over.
    ended_txns: Option<Vec<TxnEnd>>,
}

/// How long ended transactions may wait to be handed on together while the server keeps
/// sending more. Handing on one tiny batch per transaction costs more than its rows; an idle
/// stream hands on at once.
const FLUSH_AFTER: Duration = Duration::from_millis(20);

impl Stream {
    async fn run(
        &mut self,
        session: &mut replication::ReplicationSession,
        shutdown: &mut watch::Receiver<bool>,
        client: &Client,
        shared: &Metrics,
    ) -> Result<(), RuntimeError> {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        let heartbeat = self
            .plan
            .replication
            .heartbeat_interval_ms
            .map(Duration::from_millis);
        let mut last_heartbeat = Instant::now();
        let mut acked = 0u64;
        loop {
            tokio::select! {
                biased;
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        tracing::info!(pipeline = %self.plan.name, "stopping: draining and acknowledging");
                        self.flush(false).await?;
                        return Ok(());
                    }
                }
                _ = tick.tick() => {
                    let now_acked = shared.acked_lsn.load(Ordering::Relaxed);
                    if now_acked > acked {
                        acked = now_acked;
                        session.client.update_applied_lsn(Lsn(acked));
                    }
                    if self.tx.is_closed() {
                        return Err(RuntimeError::WorkerStopped);
                    }
                    if let Some(every) = heartbeat {
                        if last_heartbeat.elapsed() >= every {
                            last_heartbeat = Instant::now();
                            if let Err(e) = client
                                .batch_execute(&format!(
                                    "SELECT pg_logical_emit_message(false, '{HEARTBEAT_PREFIX}', '')"
                                ))
                                .await
                            {
                                tracing::warn!("heartbeat: {e}");
                            }
                        }
                    }
                }
                ev = session.client.recv() => {
                    match ev {
                        Err(e) => return Err(crate::source::postgres::SourceError::Replication(e.to_string()).into()),
                        Ok(None) => {
                            self.flush(false).await?;
                            return Ok(());
                        }
                        Ok(Some(ev)) => {
                            match &ev {
                                ReplicationEvent::KeepAlive { wal_end, .. } => {
                                    shared.server_lsn.fetch_max(wal_end.0, Ordering::Relaxed);
                                }
                                ReplicationEvent::Commit { end_lsn, commit_time_micros, .. } => {
                                    shared.server_lsn.fetch_max(end_lsn.0, Ordering::Relaxed);
                                    shared.transactions.fetch_add(1, Ordering::Relaxed);
                                    shared.last_commit_us.store(
                                        commit_time_micros + crate::types::PG_EPOCH_MICROS,
                                        Ordering::Relaxed,
                                    );
                                }
                                _ => {}
                            }
                            self.event(ev).await?
                        }
                    }
                }
                // Nothing more is ready to read: hand on what has ended.
                _ = std::future::ready(()), if self.pending_commit.is_some() => {
                    self.flush(true).await?;
                }
            }
        }
    }

    async fn send(&mut self, work: Work) -> Result<(), RuntimeError> {
        // Rows of ended transactions that could not be decoded go first: the producing side
        // deals with them (`on_error`) before the commit that covers them.
        self.send_poison(false).await?;
        self.tx
            .send(work)
            .await
            .map_err(|_| RuntimeError::WorkerStopped)
    }

    /// Hands on rows that could not be decoded (see `TableChanges::take`): those of ended
    /// transactions, or (`open`) those of the open one.
    async fn send_poison(&mut self, open: bool) -> Result<(), RuntimeError> {
        for (table, acc) in self.relations.values_mut().flatten() {
            let rows = if open {
                acc.take_open_poison()
            } else {
                acc.take_poison()
            };
            if !rows.is_empty() {
                let table = *table;
                self.tx
                    .send(Work::Poison { table, rows })
                    .await
                    .map_err(|_| RuntimeError::WorkerStopped)?;
            }
        }
        Ok(())
    }

    fn position(&self) -> SourcePosition {
        SourcePosition {
            ts_us: self.txn.as_ref().map_or(0, |t| t.commit_ts_us),
            tx_id: self.txn.as_ref().map(|t| t.xid as i64),
            lsn: None,
            last_commit_lsn: self.last_commit_lsn,
            begin_lsn: self.txn.as_ref().and_then(|t| t.begin_lsn),
        }
    }

    async fn event(&mut self, ev: ReplicationEvent) -> Result<(), RuntimeError> {
        match ev {
            ReplicationEvent::Begin {
                xid,
                commit_time_micros,
                final_lsn,
            } => {
                self.skipping = final_lsn.0 < self.skip_before;
                self.txn = Some(Txn {
                    xid,
                    commit_ts_us: commit_time_micros + crate::types::PG_EPOCH_MICROS,
                    begin_lsn: None,
                });
            }
            ReplicationEvent::Commit { end_lsn, .. } if self.skipping => {
                self.skipping = false;
                self.txn = None;
                self.last_commit_lsn = Some(end_lsn.0);
            }
            ReplicationEvent::Commit { end_lsn, .. } => {
                let position = self.position();
                let mut rows = 0;
                for (_, acc) in self.relations.values_mut().flatten() {
                    acc.end_txn(&position);
                    rows += acc.len();
                }
                if let (Some(ended), Some(tx_id)) = (&mut self.ended_txns, position.tx_id) {
                    ended.push(TxnEnd {
                        tx_id,
                        end_lsn: end_lsn.0,
                    });
                }
                self.txn = None;
                self.last_commit_lsn = Some(end_lsn.0);
                self.transactions += 1;
                self.pending_commit = Some(end_lsn.0);
                let since = *self.pending_since.get_or_insert_with(Instant::now);
                if rows >= BATCH_ROWS || since.elapsed() >= FLUSH_AFTER {
                    self.flush(true).await?;
                }
            }
            ReplicationEvent::XLogData {
                wal_start, data, ..
            } => {
                // Postgres 15+ sends BEGIN with its first change, at the change's position:
                // the first message after it starts where BEGIN did.
                if let Some(t) = self.txn.as_mut() {
                    t.begin_lsn.get_or_insert(wal_start.0);
                }
                let msg =
                    pgoutput::decode(data).map_err(crate::source::postgres::SourceError::from)?;
                self.message(msg, wal_start.0).await?;
            }
            ReplicationEvent::KeepAlive { wal_end, .. } => {
                // Between transactions the server's position can be acknowledged as soon as
                // everything before it is delivered: it carries no change of ours.
                if self.txn.is_none() {
                    self.flush(true).await?;
                    self.send(Work::Commit { lsn: wal_end.0 }).await?;
                }
            }
            ReplicationEvent::Message {
                transactional: false,
                lsn,
                prefix,
                ..
            } => {
                if prefix == HEARTBEAT_PREFIX {
                    self.send(Work::Heartbeat {
                        ts_ms: super::now_ns() / 1_000_000,
                    })
                    .await?;
                }
                if self.txn.is_none() {
                    self.flush(true).await?;
                    self.send(Work::Commit { lsn: lsn.0 }).await?;
                }
            }
            ReplicationEvent::Message { .. } | ReplicationEvent::StoppedAt { .. } => {}
        }
        Ok(())
    }

    async fn message(&mut self, msg: Message, lsn: u64) -> Result<(), RuntimeError> {
        if self.skipping && !matches!(msg, Message::Relation(_) | Message::Type { .. }) {
            return Ok(());
        }
        match msg {
            Message::Relation(rel) => self.relation(rel).await?,
            Message::Insert { relation, new } => {
                if let Some((_, acc)) = self.table(relation)? {
                    acc.insert(&new, lsn)?;
                }
                self.flush_if_full(relation).await?;
            }
            Message::Update { relation, old, new } => {
                if let Some((_, acc)) = self.table(relation)? {
                    acc.update(old.as_ref(), &new, lsn)?;
                }
                self.flush_if_full(relation).await?;
            }
            Message::Delete { relation, old } => {
                if let Some((_, acc)) = self.table(relation)? {
                    acc.delete(&old, lsn)?;
                }
                self.flush_if_full(relation).await?;
            }
            Message::Truncate { relations, .. } => {
                // Like Debezium's default (`skipped.operations` includes `t`): a TRUNCATE is
                // not an event downstream; say so rather than drop it silently.
                for r in relations {
                    if let Some(Some((i, _))) = self.relations.get(&r) {
                        tracing::warn!(table = %self.plan.tables[*i].table, "TRUNCATE is not propagated to Kafka");
                    }
                }
            }
            Message::Type { .. } | Message::Origin { .. } | Message::Other(_) => {}
        }
        Ok(())
    }

    fn table(&mut self, relation: u32) -> Result<Option<&mut (usize, TableChanges)>, RuntimeError> {
        match self.relations.get_mut(&relation) {
            Some(entry) => Ok(entry.as_mut()),
            None => Err(RuntimeError::Internal(format!(
                "a change for relation {relation} arrived before its description"
            ))),
        }
    }

    async fn flush_if_full(&mut self, relation: u32) -> Result<(), RuntimeError> {
        if let Some(Some((_, acc))) = self.relations.get(&relation) {
            if acc.is_full() {
                self.flush(true).await?;
            }
        }
        Ok(())
    }

    /// Hand on the gathered rows: those of ended transactions, then the `Commit` that lets
    /// their position be acknowledged, then (`open`) those of the transaction still open. That
    /// order matters: a Kafka transaction may close at a `Commit`, and must not carry part
    /// of a later source transaction along with it.
    async fn flush(&mut self, open: bool) -> Result<(), RuntimeError> {
        let position = self.position();
        let mut ended = Vec::new();
        let mut open_rows = Vec::new();
        for (i, acc) in self.relations.values_mut().flatten() {
            if acc.is_empty() {
                continue;
            }
            let complete = acc.complete_rows();
            let batch = acc.take(position.clone())?;
            if complete >= batch.len() {
                ended.push((*i, batch));
            } else if complete == 0 {
                open_rows.push((*i, batch));
            } else {
                let (head, tail) = batch.split_at(complete);
                ended.push((*i, head));
                open_rows.push((*i, tail));
            }
        }
        let first_lsn =
            |b: &crate::envelope::ChangeBatch| b.lsns.as_ref().and_then(|l| l.first().copied());
        ended.sort_by_key(|(i, b)| (first_lsn(b), *i));
        open_rows.sort_by_key(|(i, b)| (first_lsn(b), *i));
        for (table, batch) in ended {
            self.send(Work::Changes {
                table,
                batch: Box::new(batch),
            })
            .await?;
        }
        if let Some(lsn) = self.pending_commit.take() {
            if let Some(ended) = self.ended_txns.as_mut().filter(|e| !e.is_empty()) {
                let ended = std::mem::take(ended);
                self.send(Work::TxnsEnded(ended)).await?;
            }
            self.send(Work::Commit { lsn }).await?;
        }
        self.pending_since = None;
        if open {
            for (table, batch) in open_rows {
                self.send(Work::Changes {
                    table,
                    batch: Box::new(batch),
                })
                .await?;
            }
            self.send_poison(true).await?;
        }
        Ok(())
    }

    async fn relation(&mut self, rel: pgoutput::Relation) -> Result<(), RuntimeError> {
        let Some(index) = self
            .plan
            .tables
            .iter()
            .position(|t| t.table.schema == rel.namespace && t.table.name == rel.name)
        else {
            self.relations.insert(rel.id, None);
            return Ok(());
        };
        // Changes gathered under the old shape go first.
        if let Some(Some((_, acc))) = self.relations.get(&rel.id) {
            if !acc.is_empty() {
                self.flush(true).await?;
            }
        }
        let all_columns = self.plan.tables[index].logical_plan.is_none();
        let map = match map_columns(&self.plan.tables[index], &rel, all_columns) {
            Ok(m) => m,
            Err(change) => self.replan_table(index, &rel, change).await?,
        };
        let acc = TableChanges::new(
            &self.plan.tables[index],
            map,
            &self.plan.replication.unavailable_value_placeholder,
            BATCH_ROWS,
        );
        self.relations.insert(rel.id, Some((index, acc)));
        Ok(())
    }

    /// The server's table no longer matches the plan: plan the pipeline again from the
    /// current catalog, register the new schemas (a compatibility failure stops here, before
    /// anything of the new shape is produced or acknowledged), and swap the table's work.
    async fn replan_table(
        &mut self,
        index: usize,
        rel: &pgoutput::Relation,
        change: ShapeChange,
    ) -> Result<super::changes::ColumnMap, RuntimeError> {
        let table = self.plan.tables[index].table.to_string();
        let Some(replan) = &self.replan else {
            return Err(RuntimeError::SchemaChange {
                table,
                change: change.to_string(),
                what: "restart the pipeline to pick it up".into(),
            });
        };
        let new_plan = replan().await.map_err(|e| RuntimeError::SchemaChange {
            table: table.clone(),
            change: change.to_string(),
            what: format!("planning the pipeline again failed: {e}"),
        })?;
        let Some(new_table) = new_plan
            .tables
            .iter()
            .find(|t| t.table == self.plan.tables[index].table)
            .cloned()
        else {
            return Err(RuntimeError::SchemaChange {
                table,
                change: change.to_string(),
                what: "the new plan no longer has this table".into(),
            });
        };
        let map = map_columns(&new_table, rel, new_table.logical_plan.is_none()).map_err(|c| {
            RuntimeError::SchemaChange {
                table: table.clone(),
                change: c.to_string(),
                what: "the catalog and the replication stream disagree".into(),
            }
        })?;
        let work = TableWork::build(&self.plan, &new_table, self.registry.as_ref())
            .await
            .map_err(|e| match e {
                // An unreachable registry is no fault of the change: the pipeline restarts
                // from its last committed position (before the change) and registers the new
                // schema once the registry is back, instead of stopping for good.
                e @ RuntimeError::Registry(crate::registry::RegistryError::Unavailable {
                    ..
                }) => e,
                e => RuntimeError::SchemaChange {
                    table: table.clone(),
                    change: change.to_string(),
                    what: format!("stopped without acknowledging it: {e}"),
                },
            })?;
        tracing::info!(table = %table, change = %change, "table changed: pipeline re-planned");
        self.plan.tables[index] = new_table;
        self.send(Work::Replace {
            table: index,
            work: Box::new(work),
        })
        .await?;
        Ok(map)
    }
}
