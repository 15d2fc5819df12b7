//! `cdcql apply`: run each pipeline's snapshot into Kafka.

use std::path::PathBuf;

use super::{load, select, CliError};
use crate::runtime;

pub async fn run(
    files: &[PathBuf],
    snapshot_only: bool,
    pipeline: Option<&str>,
) -> Result<(), CliError> {
    if !snapshot_only {
        return Err(CliError::User {
            rendered:
                "streaming changes after the snapshot is not built yet: run with --snapshot-only"
                    .to_string(),
        });
    }
    let mut loaded = Vec::new();
    for f in files {
        loaded.push(load(f).await?);
    }
    let mut ran = 0;
    for l in &loaded {
        let plans = match pipeline {
            Some(name) if !l.plans.iter().any(|p| p.name == name) => continue,
            _ => select(&l.plans, pipeline)?,
        };
        for p in plans {
            for w in &p.warnings {
                eprintln!("warning: pipeline {}: {w}", p.name);
            }
            let report = runtime::run_snapshot(p)
                .await
                .map_err(|e| CliError::Runtime(format!("pipeline {}: {e}", p.name)))?;
            let rows: u64 = report.tables.iter().map(|t| t.rows_read).sum();
            let secs = report.elapsed.as_secs_f64().max(1e-9);
            for t in &report.tables {
                eprintln!(
                    "pipeline {}: {} → {}: {} rows read, {} messages",
                    p.name, t.table, t.topic, t.rows_read, t.messages
                );
            }
            eprintln!(
                "pipeline {}: snapshot done: {} messages acknowledged ({:.1} MB) in {:.2} s, {:.0} rows/s",
                p.name,
                report.delivered,
                report.bytes as f64 / 1e6,
                secs,
                rows as f64 / secs
            );
            ran += 1;
        }
    }
    if let (Some(name), 0) = (pipeline, ran) {
        return Err(CliError::User {
            rendered: format!("no pipeline named `{name}` in the given files"),
        });
    }
    Ok(())
}
