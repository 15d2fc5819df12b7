//! `cdcql repl`: the statements of a pipeline file, typed one at a time, plus commands to look
//! at and run what was defined (`SHOW`, `DESCRIBE`, `EXPLAIN`, `PREVIEW`, `APPLY`, `STATUS`,
//! `DROP`). Input comes from rustyline (multi-line until `;`, history, completion); each
//! statement goes to [`session::Session`], which uses the same parser and planner as files.
//!
//! Ctrl-C while a command runs stops that command (its future is dropped) and returns to the
//! prompt, except a streaming `APPLY`, which Ctrl-C asks to stop so that it drains and
//! acknowledges first; at the prompt Ctrl-C clears the line. Ctrl-D or `\q` ends the session.

mod command;
mod complete;
mod lex;
mod session;

use std::path::{Path, PathBuf};

use rustyline::config::Config;
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{CompletionType, Editor};

use crate::cli::CliError;
use crate::parse::SourceFile;
use command::Command;
use complete::ReplHelper;
pub use session::{Completions, Session};

const PROMPT: &str = "cdcql> ";

/// Where history is kept: `$CDCQL_HISTORY` (empty: nowhere), else
/// `$XDG_STATE_HOME/cdcql/history`, else `~/.local/state/cdcql/history`.
fn history_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CDCQL_HISTORY") {
        return (!p.is_empty()).then(|| PathBuf::from(p));
    }
    let state = match std::env::var_os("XDG_STATE_HOME") {
        Some(s) if !s.is_empty() => PathBuf::from(s),
        _ => PathBuf::from(std::env::var_os("HOME")?).join(".local/state"),
    };
    Some(state.join("cdcql/history"))
}

fn save_history(rl: &mut Editor<ReplHelper, FileHistory>, path: Option<&Path>) {
    let Some(path) = path else {
        return;
    };
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = rl.save_history(path) {
        tracing::debug!("cannot save history to {}: {e}", path.display());
    }
}

pub async fn run(files: &[PathBuf]) -> Result<(), CliError> {
    let mut session = Session::new();
    for f in files {
        match session.load_file(f).await {
            Ok(out) => print!("{out}"),
            Err(e) => eprint!("{e}"),
        }
    }
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        .max_history_size(1000)
        .map_err(|e| CliError::Runtime(format!("terminal: {e}")))?
        .build();
    let mut rl: Editor<ReplHelper, FileHistory> = Editor::with_config(config)
        .map_err(|e| CliError::Runtime(format!("cannot use the terminal: {e}")))?;
    rl.set_helper(Some(ReplHelper {
        data: session.completions(),
    }));
    let history = history_path();
    if let Some(h) = &history {
        // A missing history file is the normal first run.
        let _ = rl.load_history(h);
    }
    println!(
        "cdcql {} — statements end with `;`. \\help for help, \\q to quit.",
        env!("CARGO_PKG_VERSION")
    );
    'session: loop {
        let (back, line) = tokio::task::spawn_blocking(move || {
            let line = rl.readline(PROMPT);
            (rl, line)
        })
        .await
        .map_err(|e| CliError::Runtime(format!("reading input failed: {e}")))?;
        rl = back;
        let input = match line {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(CliError::Runtime(format!("reading input failed: {e}"))),
        };
        if input.trim().is_empty() {
            continue;
        }
        let _ = rl.add_history_entry(input.as_str());
        save_history(&mut rl, history.as_deref());
        if lex::is_quit_word(&input) {
            break;
        }
        let split = lex::split(&input);
        for &(start, end) in &split.statements {
            let file = SourceFile::new("input", &input[start..end]);
            let command = match command::parse(&file) {
                Ok(c) => c,
                Err(d) => {
                    eprint!("{}", crate::report::render(&d));
                    continue;
                }
            };
            if command == Command::Quit {
                break 'session;
            }
            let stops_itself = matches!(
                command,
                Command::Apply {
                    snapshot_only: false,
                    ..
                }
            );
            let reply = if stops_itself {
                Some(session.run(&file, &command).await)
            } else {
                tokio::select! {
                    r = session.run(&file, &command) => Some(r),
                    _ = tokio::signal::ctrl_c() => None,
                }
            };
            match reply {
                Some(Ok(out)) => print!("{out}"),
                Some(Err(e)) => eprint!("{e}"),
                None => eprint!("{}", session.interrupted(&command)),
            }
        }
        if let Some(start) = split.unfinished {
            eprintln!(
                "ignored an unfinished statement (no `;`): {}",
                input[start..].trim()
            );
        }
        if let Some(h) = rl.helper_mut() {
            h.data = session.completions();
        }
    }
    save_history(&mut rl, history.as_deref());
    Ok(())
}
