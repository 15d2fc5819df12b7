//! Command line: `apply`, `status`, `drop`, `validate`, `explain`, `preview`, `repl`. Each
//! command loads its files the same way
//! (read → parse → read the catalog through each Postgres connection → plan), then acts.

mod apply;
mod explain;
pub mod preview;
pub mod progress;
pub mod serve;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::catalog::Catalog;
use crate::parse::{self, SourceFile};
use crate::plan::{self, redact_url, PipelinePlan};
use crate::source::postgres::{self, SourceError};
pub use progress::{LogFormat, ProgressMode};

#[derive(Debug, Parser)]
#[command(
    name = "cdcql",
    version,
    about = "Move PostgreSQL data into Kafka, written as SQL"
)]
pub struct Cli {
    /// How log lines look on stderr. Which lines appear is set by the CDCQL_LOG environment
    /// variable (e.g. `info`, `cdcql=debug`; default: `warn,cdcql=info` for apply, `warn`
    /// otherwise).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run pipelines: create what is missing (publication, slot, topics), snapshot the tables,
    /// then stream changes until SIGINT/SIGTERM.
    Apply {
        /// Pipeline files (.sql).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Only take the initial snapshot (no replication slot, no streaming), then exit.
        #[arg(long)]
        snapshot_only: bool,
        /// Run only this pipeline.
        #[arg(long)]
        pipeline: Option<String>,
        /// Serve Prometheus metrics on http://HOST:PORT/metrics, with /healthz and /readyz.
        #[arg(long, value_name = "HOST:PORT")]
        metrics_addr: Option<String>,
        /// Progress display: auto is bars on a terminal and log lines elsewhere.
        #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
        progress: ProgressMode,
        /// Seconds between progress log lines (when not drawing bars); 0 turns them off.
        #[arg(long, value_name = "SECONDS", default_value_t = 10)]
        progress_interval: u64,
    },
    /// Parse, resolve and plan; report problems. Creates nothing.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Show each pipeline's replication slot, lag, retained WAL and recorded progress.
    Status { file: PathBuf },
    /// Remove a pipeline's replication slot, publication and progress record (not its topics).
    Drop { file: PathBuf, pipeline: String },
    /// Show the plan of each pipeline: query plan, topics, keys and schemas. Creates nothing.
    Explain {
        file: PathBuf,
        /// Only this pipeline.
        pipeline: Option<String>,
    },
    /// Show the messages a pipeline would produce for the first rows of each table.
    /// Reads Postgres in a read-only transaction; sends nothing to Kafka.
    Preview {
        file: PathBuf,
        pipeline: String,
        /// Rows per table.
        #[arg(long, default_value_t = 5)]
        limit: usize,
    },
    /// Interactive session: type CREATE statements, EXPLAIN, PREVIEW and APPLY pipelines.
    Repl {
        /// Files whose statements start the session.
        files: Vec<PathBuf>,
    },
}

/// Why a command failed; decides the exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A mistake in the input files (exit code 2); rendered with source context.
    #[error("{rendered}")]
    User { rendered: String },
    /// Something failed while running (exit code 1).
    #[error("{0}")]
    Runtime(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::User { .. } => 2,
            CliError::Runtime(_) => 1,
        }
    }

    fn user(diag: &dyn miette::Diagnostic) -> Self {
        CliError::User {
            rendered: crate::report::render(diag),
        }
    }
}

/// A file with its plans.
pub struct Loaded {
    pub file: SourceFile,
    pub plans: Vec<PipelinePlan>,
}

/// Read, parse, resolve and plan one file.
pub async fn load(path: &PathBuf) -> Result<Loaded, CliError> {
    let text = std::fs::read(path).map_err(|e| CliError::User {
        rendered: format!("cannot read {}: {e}", path.display()),
    })?;
    let text = String::from_utf8(text).map_err(|e| CliError::User {
        rendered: format!(
            "{} is not valid UTF-8 (byte {}): save it as UTF-8",
            path.display(),
            e.utf8_error().valid_up_to()
        ),
    })?;
    let file = SourceFile::new(path.display().to_string(), text);
    let script = parse::parse(&file).map_err(|e| CliError::user(&e))?;
    let mut catalogs = BTreeMap::new();
    for (name, url) in plan::postgres_urls(&script) {
        let client = postgres::connect(&url)
            .await
            .map_err(|e| CliError::Runtime(e.to_string()))?;
        let catalog = Catalog::load(&client).await.map_err(|e| {
            CliError::Runtime(format!(
                "reading tables through connection `{name}` ({}): {e}",
                redact_url(url.expose())
            ))
        })?;
        catalogs.insert(name, catalog);
    }
    let plans = plan::plan_script(&file, &script, &catalogs).map_err(|e| CliError::user(&e))?;
    Ok(Loaded { file, plans })
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Apply {
            files,
            snapshot_only,
            pipeline,
            metrics_addr,
            progress,
            progress_interval,
        } => {
            let options = apply::ApplyOptions {
                snapshot_only,
                pipeline,
                metrics_addr,
                progress,
                progress_interval: Duration::from_secs(progress_interval),
                log_format: cli.log_format,
            };
            apply::run(&files, &options).await
        }
        Command::Status { file } => apply::status(&file).await,
        Command::Drop { file, pipeline } => apply::drop_pipeline(&file, &pipeline).await,
        Command::Validate { files } => {
            for f in &files {
                let loaded = load(f).await?;
                for p in &loaded.plans {
                    for w in &p.warnings {
                        eprintln!("warning: pipeline {}: {w}", p.name);
                    }
                }
                println!(
                    "{}: ok, {} pipeline(s): {}",
                    f.display(),
                    loaded.plans.len(),
                    loaded
                        .plans
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            Ok(())
        }
        Command::Explain { file, pipeline } => {
            let loaded = load(&file).await?;
            let selected = select(&loaded.plans, pipeline.as_deref())?;
            for p in selected {
                print!("{}", explain::explain(p));
            }
            Ok(())
        }
        Command::Preview {
            file,
            pipeline,
            limit,
        } => {
            let loaded = load(&file).await?;
            let selected = select(&loaded.plans, Some(&pipeline))?;
            for p in selected {
                let shown = preview::preview(p, &preview::PreviewOptions::new(limit))
                    .await
                    .map_err(|e| CliError::Runtime(format!("pipeline {}: {e}", p.name)))?;
                print!("{shown}");
            }
            Ok(())
        }
        Command::Repl { files } => crate::repl::run(&files).await,
    }
}

fn select<'a>(
    plans: &'a [PipelinePlan],
    name: Option<&str>,
) -> Result<Vec<&'a PipelinePlan>, CliError> {
    match name {
        None => Ok(plans.iter().collect()),
        Some(n) => match plans.iter().find(|p| p.name == n) {
            Some(p) => Ok(vec![p]),
            None => Err(CliError::User {
                rendered: format!(
                    "no pipeline named `{n}`; pipelines in this file: {}",
                    plans
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        },
    }
}

impl From<SourceError> for CliError {
    fn from(e: SourceError) -> Self {
        CliError::Runtime(e.to_string())
    }
}

pub use apply::format_lsn;
pub use explain::explain;
