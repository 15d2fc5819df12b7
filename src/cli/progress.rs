//! Live progress of running pipelines, read from the counters the runtime keeps
//! ([`Metrics`]). On a terminal: a bar per table while the snapshot runs (rows, rows/s, ETA
//! against `pg_class.reltuples`) under one status line per pipeline (its phase; while
//! streaming, lag, messages/s and transactions). Elsewhere: a structured log line per pipeline
//! every few seconds. Log lines written while bars are drawn go through [`LogWriter`], which
//! lifts the bars out of the way so that the two never garble each other.

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::{
    HumanBytes, HumanCount, HumanDuration, MultiProgress, ProgressBar, ProgressDrawTarget,
    ProgressFinish, ProgressStyle,
};
use tokio::sync::watch;

use crate::runtime::metrics::{Metrics, Phase};

/// How log lines look (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One line per event, for people.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// How `apply` shows progress (`--progress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ProgressMode {
    /// Bars when stderr is a terminal and logs are text; log lines otherwise.
    #[default]
    Auto,
    /// Progress bars and a status line (drawn only on a terminal).
    Bars,
    /// A structured log line per pipeline every `--progress-interval` seconds.
    Log,
    /// No progress display.
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolved {
    Bars,
    Log,
    Off,
}

fn resolve(mode: ProgressMode, format: LogFormat, terminal: bool, interval: Duration) -> Resolved {
    match mode {
        ProgressMode::Off => Resolved::Off,
        ProgressMode::Bars => Resolved::Bars,
        ProgressMode::Auto if terminal && format == LogFormat::Text => Resolved::Bars,
        ProgressMode::Auto | ProgressMode::Log if interval.is_zero() => Resolved::Off,
        ProgressMode::Auto | ProgressMode::Log => Resolved::Log,
    }
}

/// The name of a phase as shown in logs and metric labels.
pub fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Starting => "starting",
        Phase::Snapshot => "snapshot",
        Phase::Streaming => "streaming",
        Phase::Stopped => "stopped",
        Phase::Failed => "failed",
    }
}

pub const PHASES: [Phase; 5] = [
    Phase::Starting,
    Phase::Snapshot,
    Phase::Streaming,
    Phase::Stopped,
    Phase::Failed,
];

/// One reading of a pipeline's counters: what displays and `/metrics` show. Plain data, so
/// that rendering can be tested without a running pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub pipeline: String,
    pub phase: Phase,
    pub tables: Vec<TableSample>,
    pub transactions: u64,
    pub acked_lsn: u64,
    pub server_lsn: u64,
    pub lag_bytes: u64,
    /// Age of the last source commit received while the server has WAL that is not yet
    /// acknowledged; 0 when everything is acknowledged.
    pub lag_seconds: f64,
    /// Commit time of the last source transaction (µs since the Unix epoch; 0: none yet).
    pub last_commit_us: i64,
    pub errors: u64,
    pub kafka_transactions_committed: u64,
    pub kafka_transactions_aborted: u64,
    pub dead_lettered: u64,
    pub skipped: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TableSample {
    pub table: String,
    pub topic: String,
    /// `pg_class.reltuples` when the snapshot started; negative when unknown.
    pub estimated_rows: i64,
    pub snapshot_rows: u64,
    pub snapshot_done: bool,
    pub changes: u64,
    pub messages: u64,
    pub bytes: u64,
    /// Rows that could not be delivered (`on_error`): dead-lettered, or skipped.
    pub dead_lettered: u64,
    pub skipped: u64,
}

impl Sample {
    pub fn read(m: &Metrics, now_us: i64) -> Sample {
        let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        // Each counter is read once, so that the lag agrees with the positions shown.
        let (acked_lsn, server_lsn) = (load(&m.acked_lsn), load(&m.server_lsn));
        let lag_bytes = if acked_lsn == 0 || server_lsn == 0 {
            0
        } else {
            server_lsn.saturating_sub(acked_lsn)
        };
        let last_commit_us = m.last_commit_us.load(Ordering::Relaxed);
        Sample {
            pipeline: m.pipeline.clone(),
            phase: m.phase(),
            tables: m
                .tables
                .iter()
                .map(|t| TableSample {
                    table: t.table.clone(),
                    topic: t.topic.clone(),
                    estimated_rows: t.estimated_rows.load(Ordering::Relaxed),
                    snapshot_rows: load(&t.snapshot_rows),
                    snapshot_done: t.snapshot_done.load(Ordering::Relaxed),
                    changes: load(&t.changes),
                    messages: load(&t.messages),
                    bytes: load(&t.bytes),
                    dead_lettered: load(&t.dead_lettered),
                    skipped: load(&t.skipped),
                })
                .collect(),
            transactions: load(&m.transactions),
            acked_lsn,
            server_lsn,
            lag_bytes,
            lag_seconds: lag_seconds(lag_bytes, last_commit_us, now_us),
            last_commit_us,
            errors: load(&m.errors),
            kafka_transactions_committed: load(&m.kafka_transactions_committed),
            kafka_transactions_aborted: load(&m.kafka_transactions_aborted),
            dead_lettered: load(&m.dead_lettered),
            skipped: load(&m.skipped),
        }
    }

    pub fn snapshot_rows(&self) -> u64 {
        self.tables.iter().map(|t| t.snapshot_rows).sum()
    }

    pub fn changes(&self) -> u64 {
        self.tables.iter().map(|t| t.changes).sum()
    }

    pub fn messages(&self) -> u64 {
        self.tables.iter().map(|t| t.messages).sum()
    }

    /// Whether the table's snapshot rows are all counted. The runtime's `snapshot_done` flag
    /// says the table was read, while its last rows may still be in the producer's queue; but
    /// tables are produced one after the other, so a later table with rows means this one is
    /// complete, and the end of the snapshot phase means they all are.
    pub fn table_copied(&self, i: usize) -> bool {
        matches!(self.phase, Phase::Streaming | Phase::Stopped)
            || self.tables[i + 1..].iter().any(|t| t.snapshot_rows > 0)
    }

    /// Ready for `/readyz`: streaming (the snapshot, if any, is in Kafka), or a run that ended
    /// without failing (`--snapshot-only` after its snapshot).
    pub fn ready(&self) -> bool {
        matches!(self.phase, Phase::Streaming | Phase::Stopped)
    }
}

fn lag_seconds(lag_bytes: u64, last_commit_us: i64, now_us: i64) -> f64 {
    if lag_bytes == 0 || last_commit_us <= 0 {
        return 0.0;
    }
    (now_us - last_commit_us).max(0) as f64 / 1e6
}

pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Per-second rate of a counter over a sliding window.
#[derive(Debug)]
struct Rate {
    samples: VecDeque<(Instant, u64)>,
    window: Duration,
}

impl Rate {
    fn new(window: Duration) -> Self {
        Rate {
            samples: VecDeque::new(),
            window,
        }
    }

    fn push(&mut self, at: Instant, value: u64) -> f64 {
        self.samples.push_back((at, value));
        while self.samples.len() > 2
            && self
                .samples
                .get(1)
                .is_some_and(|(t, _)| at.duration_since(*t) >= self.window)
        {
            self.samples.pop_front();
        }
        match (self.samples.front(), self.samples.back()) {
            (Some((t0, v0)), Some((t1, v1))) if t1 > t0 => {
                v1.saturating_sub(*v0) as f64 / t1.duration_since(*t0).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

/// What the display remembers about one pipeline between ticks.
struct Tracked {
    metrics: Arc<Metrics>,
    messages: Rate,
    snapshot_rows: Rate,
    table_rows: Vec<Rate>,
    /// Per table: its snapshot end was already reported.
    reported: Vec<bool>,
    /// The pipeline was seen taking a snapshot.
    saw_snapshot: bool,
    status: Option<ProgressBar>,
    bars: Vec<Option<ProgressBar>>,
    ended: bool,
}

struct Reading {
    sample: Sample,
    messages_per_sec: f64,
    rows_per_sec: f64,
    table_rows_per_sec: Vec<f64>,
}

impl Tracked {
    fn new(metrics: Arc<Metrics>, window: Duration) -> Self {
        let n = metrics.tables.len();
        Tracked {
            metrics,
            messages: Rate::new(window),
            snapshot_rows: Rate::new(window),
            table_rows: (0..n).map(|_| Rate::new(window)).collect(),
            reported: vec![false; n],
            saw_snapshot: false,
            status: None,
            bars: vec![None; n],
            ended: false,
        }
    }

    /// Reads the counters and logs each table whose snapshot ended since the last reading.
    fn read(&mut self) -> Reading {
        let sample = Sample::read(&self.metrics, now_us());
        let now = Instant::now();
        let messages_per_sec = self.messages.push(now, sample.messages());
        let rows_per_sec = self.snapshot_rows.push(now, sample.snapshot_rows());
        let table_rows_per_sec = sample
            .tables
            .iter()
            .zip(&mut self.table_rows)
            .map(|(t, r)| r.push(now, t.snapshot_rows))
            .collect();
        self.saw_snapshot |= sample.phase == Phase::Snapshot;
        for (i, t) in sample.tables.iter().enumerate() {
            let started = t.snapshot_rows > 0 || self.saw_snapshot;
            if !self.reported[i] && started && sample.table_copied(i) {
                self.reported[i] = true;
                tracing::info!(
                    target: "cdcql::progress",
                    pipeline = %sample.pipeline,
                    table = %t.table,
                    topic = %t.topic,
                    rows = t.snapshot_rows,
                    "table snapshot done"
                );
            }
        }
        Reading {
            sample,
            messages_per_sec,
            rows_per_sec,
            table_rows_per_sec,
        }
    }
}

/// The status line of a pipeline: its phase and, while streaming, how far behind it is; and
/// rows that could not be delivered, once there are any.
fn status_line(r: &Reading) -> String {
    let s = &r.sample;
    let mut line = phase_line(r);
    if s.dead_lettered > 0 {
        line.push_str(&format!(" · {} dead-lettered", HumanCount(s.dead_lettered)));
    }
    if s.skipped > 0 {
        line.push_str(&format!(" · {} skipped", HumanCount(s.skipped)));
    }
    line
}

fn phase_line(r: &Reading) -> String {
    let s = &r.sample;
    match s.phase {
        Phase::Starting => "starting".to_string(),
        Phase::Snapshot => {
            let copied = (0..s.tables.len()).filter(|&i| s.table_copied(i)).count();
            format!(
                "snapshot · {copied}/{} tables · {} rows · {} rows/s",
                s.tables.len(),
                HumanCount(s.snapshot_rows()),
                HumanCount(r.rows_per_sec.round() as u64)
            )
        }
        Phase::Streaming => format!(
            "streaming · lag {} / {:.1} s · {} msg/s · {} transactions · {} changes",
            HumanBytes(s.lag_bytes),
            s.lag_seconds,
            HumanCount(r.messages_per_sec.round() as u64),
            HumanCount(s.transactions),
            HumanCount(s.changes())
        ),
        Phase::Stopped => "stopped".to_string(),
        Phase::Failed => "failed".to_string(),
    }
}

/// Seconds left at `rate`, when the estimate says how many rows are left.
fn eta_seconds(t: &TableSample, rows_per_sec: f64) -> Option<u64> {
    let left = t.estimated_rows - t.snapshot_rows as i64;
    (rows_per_sec > 0.0 && left > 0).then(|| (left as f64 / rows_per_sec).ceil() as u64)
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// Bars currently drawn on stderr, so that log lines can be written above them.
static ACTIVE_BARS: RwLock<Option<MultiProgress>> = RwLock::new(None);

fn set_active(bars: Option<MultiProgress>) {
    if let Ok(mut a) = ACTIVE_BARS.write() {
        *a = bars;
    }
}

/// Writes to stderr; when progress bars are drawn, they are lifted for the write and drawn
/// again below it.
pub fn write_stderr(bytes: &[u8]) {
    let write = || {
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(bytes);
        let _ = e.flush();
    };
    let bars = ACTIVE_BARS.read().ok().and_then(|a| a.clone());
    match bars {
        Some(m) => m.suspend(write),
        None => write(),
    }
}

/// The writer for `tracing` events: each event becomes one [`write_stderr`].
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine(Vec::new())
    }
}

/// One event's text, written out when dropped.
pub struct LogLine(Vec<u8>);

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            write_stderr(&self.0);
        }
    }
}

/// A running progress display; [`Display::finish`] (or dropping it) removes it.
pub struct Display {
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    multi: Option<MultiProgress>,
}

impl Display {
    /// Shows the progress of `pipelines` (in the order given) until finished.
    pub fn start(
        pipelines: Vec<Arc<Metrics>>,
        mode: ProgressMode,
        interval: Duration,
        format: LogFormat,
    ) -> Display {
        let (stop, stopped) = watch::channel(false);
        let resolved = resolve(mode, format, std::io::stderr().is_terminal(), interval);
        let (task, multi) = match resolved {
            Resolved::Off => (None, None),
            Resolved::Log => {
                let tracked = pipelines
                    .into_iter()
                    .map(|m| Tracked::new(m, interval.max(Duration::from_secs(1)) * 2))
                    .collect();
                let task = tokio::spawn(log_lines(tracked, interval, stopped));
                (Some(task), None)
            }
            Resolved::Bars => {
                let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8));
                set_active(Some(multi.clone()));
                let tracked = pipelines
                    .into_iter()
                    .map(|m| Tracked::new(m, Duration::from_secs(5)))
                    .collect();
                let task = tokio::spawn(bars(tracked, multi.clone(), stopped));
                (Some(task), Some(multi))
            }
        };
        Display { stop, task, multi }
    }

    /// Stops the display after a last reading (which logs tables finished since the previous
    /// one) and clears the bars.
    pub async fn finish(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if let Some(multi) = self.multi.take() {
            set_active(None);
            let _ = multi.clear();
            multi.set_draw_target(ProgressDrawTarget::hidden());
        }
    }
}

async fn log_lines(mut tracked: Vec<Tracked>, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for t in &mut tracked {
        t.read();
    }
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => {
                for t in &mut tracked {
                    t.read();
                }
                return;
            }
        }
        for t in &mut tracked {
            let r = t.read();
            log_reading(&r);
        }
    }
}

fn log_reading(r: &Reading) {
    let s = &r.sample;
    match s.phase {
        Phase::Snapshot => {
            for (i, t) in s.tables.iter().enumerate() {
                if t.snapshot_rows == 0 || s.table_copied(i) {
                    continue;
                }
                let rate = r.table_rows_per_sec[i];
                let eta = eta_seconds(t, rate);
                tracing::info!(
                    target: "cdcql::progress",
                    pipeline = %s.pipeline,
                    table = %t.table,
                    rows = t.snapshot_rows,
                    estimated_rows = t.estimated_rows,
                    rows_per_sec = rate.round() as u64,
                    eta_seconds = eta,
                    dead_lettered = t.dead_lettered,
                    skipped = t.skipped,
                    "snapshot progress"
                );
            }
        }
        Phase::Streaming => {
            tracing::info!(
                target: "cdcql::progress",
                pipeline = %s.pipeline,
                lag_bytes = s.lag_bytes,
                lag_seconds = (s.lag_seconds * 10.0).round() / 10.0,
                messages_per_sec = r.messages_per_sec.round() as u64,
                transactions = s.transactions,
                changes = s.changes(),
                messages = s.messages(),
                dead_lettered = s.dead_lettered,
                skipped = s.skipped,
                "streaming"
            );
        }
        Phase::Starting | Phase::Stopped | Phase::Failed => {}
    }
}

async fn bars(mut tracked: Vec<Tracked>, multi: MultiProgress, mut stop: watch::Receiver<bool>) {
    let status_style = style("{spinner:.green} {prefix:.bold} {msg}");
    let bar_style = style("  {prefix} [{bar:30.cyan/blue}] {human_pos}/{human_len} rows · {msg}")
        .progress_chars("=> ");
    let unknown_style = style("  {prefix} {spinner} {human_pos} rows · {msg}");
    let waiting_style = style("  {prefix} waiting");
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            _ = stop.changed() => true,
        };
        for t in &mut tracked {
            if t.ended {
                continue;
            }
            let r = t.read();
            let status = t.status.get_or_insert_with(|| {
                multi.add(
                    ProgressBar::new_spinner()
                        .with_style(status_style.clone())
                        .with_prefix(r.sample.pipeline.clone())
                        .with_finish(ProgressFinish::AndClear),
                )
            });
            status.set_message(status_line(&r));
            status.tick();
            let s = &r.sample;
            for (i, table) in s.tables.iter().enumerate() {
                let active = s.phase == Phase::Snapshot && !s.table_copied(i);
                match (&t.bars[i], active) {
                    (None, true) => {
                        let bar = multi.insert_before(
                            status,
                            ProgressBar::no_length()
                                .with_style(waiting_style.clone())
                                .with_prefix(table.table.clone())
                                .with_finish(ProgressFinish::AndClear),
                        );
                        t.bars[i] = Some(bar);
                    }
                    (Some(bar), false) => {
                        bar.finish_and_clear();
                        multi.remove(bar);
                        t.bars[i] = None;
                    }
                    _ => {}
                }
                if let Some(bar) = &t.bars[i] {
                    if table.snapshot_rows > 0 && bar.position() == 0 {
                        bar.set_style(if table.estimated_rows > 0 {
                            bar_style.clone()
                        } else {
                            unknown_style.clone()
                        });
                    }
                    if table.estimated_rows > 0 {
                        bar.set_length((table.estimated_rows as u64).max(table.snapshot_rows));
                    }
                    bar.set_position(table.snapshot_rows);
                    let rate = r.table_rows_per_sec[i];
                    bar.set_message(match eta_seconds(table, rate) {
                        Some(eta) => format!(
                            "{} rows/s · ETA {}",
                            HumanCount(rate.round() as u64),
                            HumanDuration(Duration::from_secs(eta))
                        ),
                        None => format!("{} rows/s", HumanCount(rate.round() as u64)),
                    });
                }
            }
            if matches!(s.phase, Phase::Stopped | Phase::Failed) || stopping {
                for bar in t.bars.iter_mut().filter_map(Option::take) {
                    bar.finish_and_clear();
                    multi.remove(&bar);
                }
                status.finish_and_clear();
                multi.remove(status);
                t.status = None;
                t.ended = true;
            }
        }
        if stopping {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: u64, done: bool) -> TableSample {
        TableSample {
            table: "public.t".into(),
            topic: "t".into(),
            estimated_rows: 100,
            snapshot_rows: rows,
            snapshot_done: done,
            changes: 0,
            messages: rows,
            bytes: 0,
            dead_lettered: 0,
            skipped: 0,
        }
    }

    fn sample(phase: Phase, tables: Vec<TableSample>) -> Sample {
        Sample {
            pipeline: "p".into(),
            phase,
            tables,
            transactions: 0,
            acked_lsn: 0,
            server_lsn: 0,
            lag_bytes: 0,
            lag_seconds: 0.0,
            last_commit_us: 0,
            errors: 0,
            kafka_transactions_committed: 0,
            kafka_transactions_aborted: 0,
            dead_lettered: 0,
            skipped: 0,
        }
    }

    #[test]
    fn ready_once_the_snapshot_is_in_kafka() {
        let copying = vec![table(10, false), table(0, false)];
        assert!(!sample(Phase::Starting, copying.clone()).ready());
        assert!(!sample(Phase::Snapshot, copying.clone()).ready());
        assert!(sample(Phase::Streaming, copying.clone()).ready());
        assert!(sample(Phase::Stopped, copying.clone()).ready());
        assert!(!sample(Phase::Failed, copying).ready());
        // Read to the end, but rows may still be on their way to Kafka.
        let read = vec![table(10, true), table(3, true)];
        assert!(!sample(Phase::Snapshot, read.clone()).ready());
        assert!(!sample(Phase::Failed, read).ready());
    }

    #[test]
    fn a_table_is_copied_once_a_later_one_has_rows() {
        let s = sample(
            Phase::Snapshot,
            vec![table(50, false), table(7, false), table(0, false)],
        );
        assert!(s.table_copied(0));
        assert!(!s.table_copied(1));
        assert!(!s.table_copied(2));
        // The runtime's flag comes before the last rows are counted.
        let s = sample(Phase::Snapshot, vec![table(50, true), table(3, true)]);
        assert!(!s.table_copied(1));
        let s = sample(Phase::Streaming, vec![table(50, true), table(0, true)]);
        assert!(s.table_copied(0) && s.table_copied(1));
    }

    #[test]
    fn status_line_counts_rows_set_aside() {
        let reading = |dead, skipped| Reading {
            sample: Sample {
                dead_lettered: dead,
                skipped,
                ..sample(Phase::Streaming, vec![table(0, true)])
            },
            messages_per_sec: 0.0,
            rows_per_sec: 0.0,
            table_rows_per_sec: vec![0.0],
        };
        let plain = status_line(&reading(0, 0));
        assert!(plain.starts_with("streaming"), "{plain}");
        assert!(!plain.contains("dead-lettered") && !plain.contains("skipped"));
        let line = status_line(&reading(1234, 5));
        assert!(
            line.ends_with(" · 1,234 dead-lettered · 5 skipped"),
            "{line}"
        );
    }

    #[test]
    fn lag_seconds_only_while_behind() {
        assert_eq!(lag_seconds(0, 1_000_000, 3_500_000), 0.0);
        assert_eq!(lag_seconds(10, 0, 3_500_000), 0.0);
        assert_eq!(lag_seconds(10, 1_000_000, 3_500_000), 2.5);
        // A source clock ahead of ours is not negative lag.
        assert_eq!(lag_seconds(10, 4_000_000, 3_500_000), 0.0);
    }

    #[test]
    fn eta_from_the_estimate_and_rate() {
        assert_eq!(eta_seconds(&table(40, false), 20.0), Some(3));
        assert_eq!(eta_seconds(&table(41, false), 20.0), Some(3));
        assert_eq!(eta_seconds(&table(40, false), 0.0), None);
        // More rows than estimated: no ETA rather than a negative one.
        assert_eq!(eta_seconds(&table(150, false), 20.0), None);
        let unknown = TableSample {
            estimated_rows: -1,
            ..table(40, false)
        };
        assert_eq!(eta_seconds(&unknown, 20.0), None);
    }

    #[test]
    fn rate_over_the_window() {
        let mut r = Rate::new(Duration::from_secs(2));
        let t0 = Instant::now();
        assert_eq!(r.push(t0, 100), 0.0);
        assert_eq!(r.push(t0 + Duration::from_secs(1), 300), 200.0);
        assert_eq!(r.push(t0 + Duration::from_secs(2), 400), 150.0);
        // The first sample falls out of the window: only the last two seconds count.
        assert_eq!(r.push(t0 + Duration::from_secs(3), 1400), 550.0);
    }

    #[test]
    fn auto_mode_picks_by_terminal_and_format() {
        let ten = Duration::from_secs(10);
        assert_eq!(
            resolve(ProgressMode::Auto, LogFormat::Text, true, ten),
            Resolved::Bars
        );
        assert_eq!(
            resolve(ProgressMode::Auto, LogFormat::Json, true, ten),
            Resolved::Log
        );
        assert_eq!(
            resolve(ProgressMode::Auto, LogFormat::Text, false, ten),
            Resolved::Log
        );
        assert_eq!(
            resolve(ProgressMode::Log, LogFormat::Text, true, Duration::ZERO),
            Resolved::Off
        );
        assert_eq!(
            resolve(ProgressMode::Off, LogFormat::Text, true, ten),
            Resolved::Off
        );
    }
}
