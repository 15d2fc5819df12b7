use std::io::IsTerminal;
use std::process::ExitCode;

use cdcql::cli::progress::LogWriter;
use cdcql::cli::{Cli, Command, LogFormat};
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Logs go to stderr through `tracing`. `CDCQL_LOG` chooses which (an `EnvFilter`); by
/// default `apply`, a long-running service, reports its progress at `info`, and the other
/// commands only say what went wrong.
fn init_logging(cli: &Cli) {
    let default = match cli.command {
        Command::Apply { .. } => "warn,cdcql=info",
        _ => "warn",
    };
    let filter = match std::env::var("CDCQL_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(&spec).unwrap_or_else(|e| {
            eprintln!("warning: CDCQL_LOG={spec:?} is not a valid filter ({e}); using {default:?}");
            EnvFilter::new(default)
        }),
        _ => EnvFilter::new(default),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(LogWriter);
    match cli.log_format {
        LogFormat::Text => builder
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(cdcql::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}
