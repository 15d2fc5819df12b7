//! End to end, poison rows (`on_error`): a table whose snapshot and whose streamed changes hold
//! rows that cannot be delivered — NaN in `numeric(10,2)` (rejected by the source decoder) and
//! in `numeric` (by the type mapping under decimal_handling 'precise'), a two-dimensional array
//! (no Debezium type), a 300,000-character text (more than the connection's
//! 'message.max.bytes' = '200000') — against the real Postgres and broker.
//!
//! - `fail` (the default) stops during the snapshot with an error naming the table, the row's
//!   key, the column and the option to change, exit code 1, no restart loop, and no recorded
//!   snapshot; while streaming it stops at the change, names its LSN, and leaves the slot
//!   before it, so that a restart stops at the same row again;
//! - a query that divides by zero on some rows skips them (`skip`), and only them;
//! - `dead_letter` (transactional) and `skip` (at-least-once) run side by side through the
//!   snapshot and the stream. tests/e2e/poison_check.py then reads the topics with Confluent's
//!   client: every good row exactly once and in order, no poison row, and for `dead_letter`
//!   exactly the poison rows in `<topic>.dlq` with their headers (error, stage, column, table,
//!   topic, LSN or `snapshot`, pipeline) and the value that could not be written; for `skip`
//!   no dead-letter topic. The counts appear per table on `/metrics` and in `cdcql status`.

mod support;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use support::*;

const CONNECTIONS: &str = "
CREATE CONNECTION pg TO POSTGRES (url = '${PG_URL}');
CREATE CONNECTION bus TO KAFKA (brokers = '${KAFKA_BROKERS}', 'message.max.bytes' = '200000');
";

const MAIN: &str = "
CREATE PIPELINE p_dlq FROM pg INTO bus TOPIC '${E2E_PREFIX}.dlq.{table}'
    FORMAT JSON ENVELOPE DEBEZIUM
    WITH (on_error = 'dead_letter', transactional = true,
          slot_name = '${E2E_SLOT}_dlq', publication_name = '${E2E_SLOT}_dlq')
    TABLES (__SCHEMA__.items);
CREATE PIPELINE p_skip FROM pg INTO bus TOPIC '${E2E_PREFIX}.skip.{table}'
    FORMAT JSON ENVELOPE DEBEZIUM
    WITH (on_error = 'skip', slot_name = '${E2E_SLOT}_skip', publication_name = '${E2E_SLOT}_skip')
    TABLES (__SCHEMA__.items);
CREATE PIPELINE p_query FROM pg INTO bus TOPIC '${E2E_PREFIX}.query.{table}'
    FORMAT JSON ENVELOPE DEBEZIUM
    WITH (on_error = 'skip', slot_name = '${E2E_SLOT}_query', publication_name = '${E2E_SLOT}_query')
AS SELECT id, 100 / (id % 50) AS q FROM __SCHEMA__.items;
";

const FAIL_SNAPSHOT: &str = "
CREATE PIPELINE p_fail FROM pg INTO bus TOPIC '${E2E_PREFIX}.fail.{table}'
    FORMAT JSON ENVELOPE DEBEZIUM
    WITH (slot_name = '${E2E_SLOT}_fail', publication_name = '${E2E_SLOT}_fail')
    TABLES (__SCHEMA__.items);
";

const FAIL_STREAM: &str = "
CREATE PIPELINE p_fails FROM pg INTO bus TOPIC '${E2E_PREFIX}.fails.{table}'
    FORMAT JSON ENVELOPE DEBEZIUM
    WITH (on_error = 'fail', slot_name = '${E2E_SLOT}_fails', publication_name = '${E2E_SLOT}_fails')
    TABLES (__SCHEMA__.later);
";

struct Run<'a> {
    root: &'a Path,
    work: std::path::PathBuf,
    schema: String,
    env: Vec<(&'static str, String)>,
}

impl Run<'_> {
    fn file(&self, name: &str, pipelines: &str) -> Result<std::path::PathBuf> {
        let path = self.work.join(name);
        let text = format!("{CONNECTIONS}{pipelines}")
            .replace("__SCHEMA__", &format!("\"{}\"", self.schema));
        std::fs::write(&path, text)?;
        Ok(path)
    }

    fn command(&self, args: &[&str], file: &Path) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cdcql"));
        cmd.current_dir(self.root)
            .arg(args[0])
            .arg(file)
            .args(&args[1..])
            .env("CDCQL_LOG", "info");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// `cdcql apply FILE ARGS...` in the background, its output appended to `log`.
    fn start(&self, file: &Path, args: &[&str], log: &Path) -> Result<Cdcql> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let mut all = vec!["apply"];
        all.extend_from_slice(args);
        let child = self
            .command(&all, file)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting cdcql apply")?;
        Ok(Cdcql {
            child,
            log: log.to_path_buf(),
        })
    }

    fn python(&self, args: &[&str], timeout: Duration) -> Result<String> {
        let script = self.root.join("tests/e2e/poison_check.py");
        let out = run(Command::new("python3").arg(script).args(args), timeout)?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        eprint!("{stdout}");
        expect_success(&format!("poison_check.py {}", args[0]), &out)?;
        Ok(stdout)
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The value of one series on `/metrics`, if present.
fn metric(addr: &str, series: &str) -> Result<Option<f64>> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    }))
}

fn confirmed_lsn(pg_url: &str, slot: &str) -> Result<u64> {
    let text = psql(
        pg_url,
        &format!("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '{slot}'"),
    )?;
    parse_lsn(text.trim()).with_context(|| format!("slot {slot}: {text:?}"))
}

fn parse_lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) + u64::from_str_radix(lo, 16).ok()?)
}

/// The LSN in `... at LSN X/Y ...` of an error message.
fn lsn_in(text: &str) -> Option<u64> {
    let at = text.find("at LSN ")? + "at LSN ".len();
    let word: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || *c == '/')
        .collect();
    parse_lsn(&word)
}

fn expect_all(what: &str, text: &str, needles: &[&str]) -> Result<()> {
    for n in needles {
        ensure!(
            text.contains(n),
            "{what}: no {n:?} in:\n{}",
            tail(text.as_bytes())
        );
    }
    Ok(())
}

#[test]
fn poison_rows_fail_dead_letter_and_skip() -> Result<()> {
    let Some((pg_url, brokers)) = services("e2e_poison")? else {
        return Ok(());
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let prefix = unique_prefix();
    let work = std::env::temp_dir().join(&prefix);
    std::fs::create_dir_all(&work)?;
    let r = Run {
        root,
        work: work.clone(),
        schema: prefix.clone(),
        env: vec![
            ("E2E_PREFIX", prefix.clone()),
            ("E2E_SLOT", prefix.clone()),
            ("PG_URL", pg_url.clone()),
            ("KAFKA_BROKERS", brokers.clone()),
        ],
    };
    let _cleanup = Cleanup {
        pg_url: pg_url.clone(),
        brokers: brokers.clone(),
        topics: [
            "dlq.items",
            "dlq.items.dlq",
            "skip.items",
            "skip.items.dlq",
            "query.items",
            "fail.items",
            "fails.later",
        ]
        .iter()
        .map(|t| format!("{prefix}.{t}"))
        .collect(),
        slots_before: replication_slots(&pg_url)?,
        sql: std::iter::once(format!("DROP SCHEMA IF EXISTS \"{prefix}\" CASCADE"))
            .chain(
                ["dlq", "skip", "query", "fail", "fails"]
                    .iter()
                    .map(|p| format!("DROP PUBLICATION IF EXISTS {prefix}_{p}")),
            )
            .collect(),
    };
    r.python(&["setup", &pg_url, &prefix], Duration::from_secs(120))?;
    let table = format!("{prefix}.items");

    // 1. on_error = 'fail' (the default) stops in the snapshot, at once and for good.
    let fail_file = r.file("fail_snapshot.sql", FAIL_SNAPSHOT)?;
    let started = Instant::now();
    let out = run(
        r.command(&["apply"], &fail_file).stdin(Stdio::null()),
        Duration::from_secs(180),
    )?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        out.status.code() == Some(1),
        "apply with a poison row in the snapshot: {} (expected exit code 1):\n{}",
        out.status,
        tail(text.as_bytes())
    );
    expect_all(
        "fail in the snapshot",
        &text,
        &[
            &format!("table {table}: a snapshot row with key {{\"id\":13}}"),
            "column `amount`",
            "NaN",
            "on_error = 'fail'",
            "on_error = 'dead_letter'",
            "on_error = 'skip'",
        ],
    )?;
    ensure!(
        !text.contains("restarting from its last committed position"),
        "a poison row must not make the pipeline retry:\n{}",
        tail(text.as_bytes())
    );
    eprintln!(
        "fail in the snapshot: stopped after {:?}",
        started.elapsed()
    );
    let status = run(
        r.command(&["status"], &fail_file).stdin(Stdio::null()),
        Duration::from_secs(60),
    )?;
    expect_success("cdcql status", &status)?;
    let status_text = String::from_utf8_lossy(&status.stdout);
    ensure!(
        !status_text.contains("snapshot done"),
        "a failed snapshot is recorded as done:\n{status_text}"
    );

    // 2. dead_letter (transactional) and skip, through the snapshot and the stream.
    let main_file = r.file("main.sql", MAIN)?;
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let log = work.join("main.log");
    let mut cdcql = r.start(&main_file, &["--metrics-addr", &addr], &log)?;
    cdcql.wait_for_log("snapshot delivered; streaming", 3, Duration::from_secs(180))?;
    r.python(&["changes", &pg_url, &prefix], Duration::from_secs(120))?;
    let dead = format!(
        "cdcql_dead_lettered_rows_total{{pipeline=\"p_dlq\",table=\"{table}\",topic=\"{prefix}.dlq.items\"}}"
    );
    let skipped = format!(
        "cdcql_skipped_rows_total{{pipeline=\"p_skip\",table=\"{table}\",topic=\"{prefix}.skip.items\"}}"
    );
    let query_skipped = format!(
        "cdcql_skipped_rows_total{{pipeline=\"p_query\",table=\"{table}\",topic=\"{prefix}.query.items\"}}"
    );
    // 4 poison rows in the snapshot, 4 inserted and 1 updated into poison while streaming;
    // the query divides by zero on 4 snapshot rows and 1 inserted one.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        cdcql.expect_running()?;
        let (d, s) = (metric(&addr, &dead)?, metric(&addr, &skipped)?);
        let q = metric(&addr, &query_skipped)?;
        if d == Some(9.0) && s == Some(9.0) && q == Some(5.0) {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "counts on /metrics: dead-lettered {d:?}, skipped {s:?} and {q:?}, expected 9, 9 and 5:\n{}",
                cdcql.log_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    // Once everything is in, the good changes are delivered and acknowledged too.
    std::thread::sleep(Duration::from_secs(2));
    cdcql.interrupt(Duration::from_secs(60))?;
    let log_text = std::fs::read_to_string(&log)?;
    expect_all(
        "apply log",
        &log_text,
        &[
            &format!("written to dead-letter topic {prefix}.dlq.items.dlq"),
            "skipped (on_error = 'skip')",
            "9 row(s) dead-lettered, 0 skipped (on_error = 'dead_letter')",
            "0 row(s) dead-lettered, 9 skipped (on_error = 'skip')",
        ],
    )?;
    let status = run(
        r.command(&["status"], &main_file).stdin(Stdio::null()),
        Duration::from_secs(60),
    )?;
    expect_success("cdcql status", &status)?;
    expect_all(
        "cdcql status",
        &String::from_utf8_lossy(&status.stdout),
        &[
            &format!("(9 row(s) dead-lettered to {prefix}.dlq.items.dlq)"),
            "(9 row(s) skipped)",
        ],
    )?;
    r.python(
        &["verify", &brokers, &prefix, &prefix, "dead_letter"],
        Duration::from_secs(300),
    )?;
    r.python(
        &["verify", &brokers, &prefix, &prefix, "skip"],
        Duration::from_secs(300),
    )?;
    r.python(
        &["verify", &brokers, &prefix, &prefix, "query"],
        Duration::from_secs(300),
    )?;

    // 3. on_error = 'fail' while streaming: the change's LSN, nothing acknowledged past it.
    let stream_file = r.file("fail_stream.sql", FAIL_STREAM)?;
    let log = work.join("fail_stream.log");
    let mut cdcql = r.start(&stream_file, &[], &log)?;
    cdcql.wait_for_log("snapshot delivered; streaming", 1, Duration::from_secs(180))?;
    // Time to record the snapshot as done (at-least-once writes that record once what comes
    // before it is delivered): the restart below must stream, not snapshot again.
    std::thread::sleep(Duration::from_secs(2));
    r.python(&["later", &pg_url, &prefix], Duration::from_secs(60))?;
    let status = cdcql.wait_exit(Duration::from_secs(120))?;
    let text = cdcql.log_tail();
    ensure!(
        status.code() == Some(1),
        "apply with a poison change: {status} (expected exit code 1):\n{text}"
    );
    let later = format!("{prefix}.later");
    expect_all(
        "fail while streaming",
        &text,
        &[
            &format!("table {later}: a change (op `c`) at LSN "),
            "with key {\"id\":2}",
            "column `tags`",
            "2-dimensional",
            "on_error = 'dead_letter'",
        ],
    )?;
    let poison_lsn = lsn_in(&text).context("no LSN in the error")?;
    let confirmed = confirmed_lsn(&pg_url, &format!("{prefix}_fails"))?;
    ensure!(
        confirmed < poison_lsn,
        "the slot is confirmed at {confirmed:X}, past the poison change at {poison_lsn:X}"
    );
    // The row was not acknowledged: a restart stops at it again.
    let log2 = work.join("fail_stream2.log");
    let mut again = r.start(&stream_file, &[], &log2)?;
    let status = again.wait_exit(Duration::from_secs(180))?;
    let text2 = again.log_tail();
    ensure!(status.code() == Some(1), "restart: {status}:\n{text2}");
    ensure!(
        lsn_in(&text2) == Some(poison_lsn),
        "the restart did not stop at the same change:\n{text2}"
    );
    r.python(
        &["verify-later", &brokers, &prefix, &prefix],
        Duration::from_secs(120),
    )?;
    Ok(())
}
