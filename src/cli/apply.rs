//! `cdcql apply`: run pipelines — snapshot, then stream changes until SIGINT/SIGTERM — and
//! `cdcql status` / `cdcql drop` for what a running pipeline leaves in Postgres and Kafka.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::progress::{Display, LogFormat, ProgressMode};
use super::{load, select, serve, CliError};
use crate::plan::PipelinePlan;
use crate::runtime::metrics::Metrics;
use crate::runtime::{self, offsets, Replanner};
use crate::source::postgres::{self, replication};

/// The flags of `cdcql apply`.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub snapshot_only: bool,
    pub pipeline: Option<String>,
    pub metrics_addr: Option<String>,
    pub progress: ProgressMode,
    pub progress_interval: Duration,
    pub log_format: LogFormat,
}

pub async fn run(files: &[PathBuf], options: &ApplyOptions) -> Result<(), CliError> {
    let pipeline = options.pipeline.as_deref();
    let mut plans: Vec<(PathBuf, PipelinePlan)> = Vec::new();
    for f in files {
        let l = load(f).await?;
        let selected = match pipeline {
            Some(name) if !l.plans.iter().any(|p| p.name == name) => continue,
            _ => select(&l.plans, pipeline)?,
        };
        plans.extend(selected.into_iter().map(|p| (f.clone(), p.clone())));
    }
    if let (Some(name), true) = (pipeline, plans.is_empty()) {
        return Err(CliError::User {
            rendered: format!("no pipeline named `{name}` in the given files"),
        });
    }
    for (_, p) in &plans {
        for w in &p.warnings {
            tracing::warn!(pipeline = %p.name, "{w}");
        }
    }
    let metrics: Vec<Arc<Metrics>> = plans
        .iter()
        .map(|(_, p)| Arc::new(Metrics::new(p)))
        .collect();
    // Bound before anything runs, so that a taken port fails the command at once.
    let _server = match &options.metrics_addr {
        Some(addr) => {
            let server = serve::start(addr, metrics.clone())
                .await
                .map_err(|e| CliError::Runtime(format!("cannot serve metrics on {addr}: {e}")))?;
            tracing::info!(
                "serving http://{0}/metrics, http://{0}/healthz and http://{0}/readyz",
                server.addr
            );
            Some(server)
        }
        None => None,
    };
    let display = Display::start(
        metrics.clone(),
        options.progress,
        options.progress_interval,
        options.log_format,
    );
    if options.snapshot_only {
        let mut reports = Vec::new();
        let mut failed = None;
        for ((_, p), m) in plans.iter().zip(&metrics) {
            match runtime::run_snapshot_with(p, m.clone()).await {
                Ok(r) => reports.push((p, r)),
                Err(e) => {
                    failed = Some(CliError::Runtime(format!("pipeline {}: {e}", p.name)));
                    break;
                }
            }
        }
        // The display's last lines first, then the summaries.
        display.finish().await;
        for (p, report) in &reports {
            log_snapshot_report(p, report);
        }
        return failed.map_or(Ok(()), Err);
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("stopping (draining, flushing, acknowledging)...");
        let _ = stop_tx.send(true);
    });
    let runs = plans.iter().zip(&metrics).map(|((file, p), m)| {
        let stop = stop_rx.clone();
        let replan = replanner(file.clone(), p.name.clone());
        async move {
            tracing::info!(
                pipeline = %p.name,
                "starting (slot {}, publication {})",
                p.replication.slot,
                p.replication.publication
            );
            let ctx = runtime::RunContext {
                replan: Some(replan),
                metrics: Some(m.clone()),
            };
            let r = runtime::run(p, stop, ctx).await;
            for t in &m.tables {
                let load =
                    |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
                let (dead, skipped) = (load(&t.dead_lettered), load(&t.skipped));
                if dead + skipped > 0 {
                    tracing::warn!(
                        pipeline = %p.name,
                        "{} → {}: {dead} row(s) dead-lettered, {skipped} skipped (on_error = '{}')",
                        t.table,
                        t.topic,
                        p.errors.on_error.as_str()
                    );
                }
            }
            if let Err(e) = &r {
                // Said at once: the other pipelines keep running until stopped.
                tracing::error!(pipeline = %p.name, "failed: {e}");
            }
            (p, r)
        }
    });
    let results = futures::future::join_all(runs).await;
    display.finish().await;
    let mut failed = Vec::new();
    for (p, r) in results {
        match r {
            Ok(report) => {
                for t in &report.tables {
                    tracing::info!(
                        pipeline = %p.name,
                        "{} → {}: {} messages",
                        t.table,
                        t.topic,
                        t.messages
                    );
                }
                tracing::info!(
                    pipeline = %p.name,
                    "stopped cleanly: {} snapshot rows, {} transactions, {} messages \
                     acknowledged by Kafka, source position {} acknowledged",
                    report.snapshot_rows,
                    report.transactions,
                    report.delivered,
                    report
                        .acked_lsn
                        .map(format_lsn)
                        .unwrap_or_else(|| "-".into())
                );
            }
            Err(e) => failed.push(format!("pipeline {}: {e}", p.name)),
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Runtime(failed.join("\n")))
    }
}

fn log_snapshot_report(p: &PipelinePlan, report: &runtime::SnapshotReport) {
    let rows: u64 = report.tables.iter().map(|t| t.rows_read).sum();
    let secs = report.elapsed.as_secs_f64().max(1e-9);
    for t in &report.tables {
        tracing::info!(
            pipeline = %p.name,
            "{} → {}: {} rows read, {} messages",
            t.table,
            t.topic,
            t.rows_read,
            t.messages
        );
    }
    tracing::info!(
        pipeline = %p.name,
        "snapshot done: {} messages acknowledged ({:.1} MB) in {:.2} s, {:.0} rows/s",
        report.delivered,
        report.bytes as f64 / 1e6,
        secs,
        rows as f64 / secs
    );
}

/// Plans the pipeline again from its file and the current catalog (after a schema change).
fn replanner(file: PathBuf, name: String) -> Replanner {
    Box::new(move || {
        let (file, name) = (file.clone(), name.clone());
        Box::pin(async move {
            let l = load(&file).await.map_err(|e| e.to_string())?;
            l.plans
                .into_iter()
                .find(|p| p.name == name)
                .ok_or_else(|| format!("pipeline `{name}` is no longer in {}", file.display()))
        })
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xffff_ffff)
}

/// `cdcql status FILE`: per pipeline, the slot and what has been produced.
pub async fn status(file: &Path) -> Result<(), CliError> {
    let l = load(&file.to_path_buf()).await?;
    for p in &l.plans {
        let client = postgres::connect(&p.postgres.url).await?;
        let slot = replication::slot_info(&client, &p.replication.slot).await?;
        println!("PIPELINE {}", p.name);
        match slot {
            None => println!("  slot:        {} (not created yet)", p.replication.slot),
            Some(s) => {
                println!(
                    "  slot:        {} ({})",
                    s.name,
                    match s.active_pid {
                        Some(pid) => format!("active, backend pid {pid}"),
                        None => "inactive".into(),
                    }
                );
                println!(
                    "  confirmed:   {}",
                    s.confirmed_flush_lsn
                        .map(format_lsn)
                        .unwrap_or_else(|| "-".into())
                );
                println!(
                    "  retained WAL: {} bytes; not yet acknowledged: {} bytes",
                    s.retained_wal_bytes.unwrap_or(0),
                    s.lag_bytes.unwrap_or(0)
                );
            }
        }
        println!("  publication: {}", p.replication.publication);
        let kafka = p.kafka.clone();
        let (topic, slot) = (
            p.replication.offsets_topic.clone(),
            p.replication.slot.clone(),
        );
        let progress = tokio::task::spawn_blocking(move || offsets::load(&kafka, &topic, &slot))
            .await
            .map_err(|e| CliError::Runtime(e.to_string()))?
            .map_err(|e| CliError::Runtime(e.to_string()))?;
        match &progress {
            None => println!("  produced:    nothing recorded yet"),
            Some(pr) => {
                println!(
                "  produced:    snapshot {}, {} messages, position {} (recorded {} ms since epoch)",
                if pr.snapshot_done { "done" } else { "not finished" },
                pr.messages,
                pr.lsn.map(format_lsn).unwrap_or_else(|| "-".into()),
                pr.updated_ms
            )
            }
        }
        for t in &p.tables {
            // Rows that could not be delivered (`on_error`), as recorded with the progress.
            let rejected = progress
                .as_ref()
                .and_then(|pr| pr.rejected.get(&t.table.to_string()))
                .copied()
                .unwrap_or_default();
            let mut notes = Vec::new();
            if rejected.dead_lettered > 0 || p.dead_letter_topic(t).is_some() {
                notes.push(format!(
                    "{} row(s) dead-lettered{}",
                    rejected.dead_lettered,
                    p.dead_letter_topic(t)
                        .map(|d| format!(" to {d}"))
                        .unwrap_or_default()
                ));
            }
            if rejected.skipped > 0 || p.errors.on_error == crate::plan::OnError::Skip {
                notes.push(format!("{} row(s) skipped", rejected.skipped));
            }
            if notes.is_empty() {
                println!("  table:       {} → {}", t.table, t.topic);
            } else {
                println!(
                    "  table:       {} → {} ({})",
                    t.table,
                    t.topic,
                    notes.join(", ")
                );
            }
        }
    }
    Ok(())
}

/// `cdcql drop FILE PIPELINE`: remove the slot, the publication and the progress record.
pub async fn drop_pipeline(file: &Path, pipeline: &str) -> Result<(), CliError> {
    let l = load(&file.to_path_buf()).await?;
    let p = select(&l.plans, Some(pipeline))?[0];
    let client = postgres::connect(&p.postgres.url).await?;
    let (slot, publication) = replication::drop_slot_and_publication(
        &client,
        &p.replication.slot,
        &p.replication.publication,
    )
    .await?;
    offsets::forget(&p.kafka, &p.replication.offsets_topic, &p.replication.slot)
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    println!(
        "pipeline {}: slot {} {}, publication {} {}, progress record removed (topics and their data are kept)",
        p.name,
        p.replication.slot,
        if slot { "dropped" } else { "did not exist" },
        p.replication.publication,
        if publication { "dropped" } else { "did not exist" },
    );
    Ok(())
}
