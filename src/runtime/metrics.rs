//! Live counters of one running pipeline. The runtime updates them with relaxed atomics (no
//! locks on the hot path); progress displays, `/metrics` and health checks only read them.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use crate::plan::PipelinePlan;

/// Where a pipeline is in its life, for health checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Starting,
    Snapshot,
    Streaming,
    Stopped,
    Failed,
}

#[derive(Debug)]
pub struct TableMetrics {
    pub table: String,
    pub topic: String,
    /// `pg_class.reltuples` when the snapshot started (an estimate; -1 when unknown).
    pub estimated_rows: AtomicI64,
    /// Rows read by the snapshot, before the pipeline's WHERE.
    pub rows_read: AtomicU64,
    /// Snapshot rows produced (after the WHERE).
    pub snapshot_rows: AtomicU64,
    pub snapshot_done: AtomicBool,
    pub changes: AtomicU64,
    pub messages: AtomicU64,
    pub bytes: AtomicU64,
    /// Rows that could not be delivered (`on_error`): written to the dead-letter topic, or
    /// dropped.
    pub dead_lettered: AtomicU64,
    pub skipped: AtomicU64,
}

#[derive(Debug)]
pub struct Metrics {
    pub pipeline: String,
    pub tables: Vec<TableMetrics>,
    phase: AtomicU64,
    /// Messages handed to the Kafka producer (data only; delivery is what `acked_lsn` tracks).
    pub messages: AtomicU64,
    pub bytes: AtomicU64,
    /// Source transactions seen in the stream.
    pub transactions: AtomicU64,
    pub kafka_transactions_committed: AtomicU64,
    pub kafka_transactions_aborted: AtomicU64,
    /// Highest source position whose changes are all in Kafka.
    pub acked_lsn: AtomicU64,
    /// Server's WAL end as last reported on the replication connection.
    pub server_lsn: AtomicU64,
    /// Commit time (µs since the Unix epoch) of the last source transaction processed.
    pub last_commit_us: AtomicI64,
    pub errors: AtomicU64,
    /// Rows sent to a dead-letter topic or skipped (`on_error`), all tables together.
    pub dead_lettered: AtomicU64,
    pub skipped: AtomicU64,
}

impl Metrics {
    pub fn new(plan: &PipelinePlan) -> Self {
        Metrics {
            pipeline: plan.name.clone(),
            tables: plan
                .tables
                .iter()
                .map(|t| TableMetrics {
                    table: t.table.to_string(),
                    topic: t.topic.clone(),
                    estimated_rows: AtomicI64::new(-1),
                    rows_read: AtomicU64::new(0),
                    snapshot_rows: AtomicU64::new(0),
                    snapshot_done: AtomicBool::new(false),
                    changes: AtomicU64::new(0),
                    messages: AtomicU64::new(0),
                    bytes: AtomicU64::new(0),
                    dead_lettered: AtomicU64::new(0),
                    skipped: AtomicU64::new(0),
                })
                .collect(),
            phase: AtomicU64::new(Phase::Starting as u64),
            messages: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            transactions: AtomicU64::new(0),
            kafka_transactions_committed: AtomicU64::new(0),
            kafka_transactions_aborted: AtomicU64::new(0),
            acked_lsn: AtomicU64::new(0),
            server_lsn: AtomicU64::new(0),
            last_commit_us: AtomicI64::new(0),
            errors: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
        }
    }

    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            0 => Phase::Starting,
            1 => Phase::Snapshot,
            2 => Phase::Streaming,
            3 => Phase::Stopped,
            _ => Phase::Failed,
        }
    }

    pub fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u64, Ordering::Relaxed);
    }

    /// Bytes of WAL the server has that are not yet acknowledged (0 before streaming).
    pub fn lag_bytes(&self) -> u64 {
        let server = self.server_lsn.load(Ordering::Relaxed);
        let acked = self.acked_lsn.load(Ordering::Relaxed);
        if server == 0 || acked == 0 {
            0
        } else {
            server.saturating_sub(acked)
        }
    }

    pub fn count(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}
