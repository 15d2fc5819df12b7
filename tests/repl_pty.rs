//! `cdcql repl` driven through a pseudo-terminal (rexpect), as a person would use it, against
//! the real Postgres: a multi-line CREATE PIPELINE, EXPLAIN, PREVIEW of 3 rows, a syntax error
//! with its caret under the typed text, a table name completed with TAB, Ctrl-C at the prompt,
//! history on disk, and `\q`. A second test stops a running `APPLY ... SNAPSHOT ONLY` with
//! Ctrl-C (needs the broker too) and checks that the session goes on. A third streams with
//! `APPLY`: rows changed while it runs are counted on its status line, and Ctrl-C stops it
//! cleanly (drained and acknowledged) before the prompt returns.
//!
//! Needs Postgres (and for the second test a Kafka broker), as `scripts/services.sh up` starts
//! them; skips loudly without them unless CDCQL_REQUIRE_SERVICES is set.

use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use rexpect::session::{spawn_with_options, Options, PtySession};

const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/shop";
const DEFAULT_BROKERS: &str = "127.0.0.1:9092";
const PROMPT: &str = "cdcql> ";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

fn reachable(addr: &str) -> bool {
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
}

/// `host:port` of a `postgres://` URL.
fn pg_addr(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:5432")
    }
}

/// True when the test can run; false (after a loud message) when it must skip.
fn services(needed: &[(&str, String)]) -> Result<bool> {
    for (what, addr) in needed {
        if !reachable(addr) {
            if std::env::var_os("CDCQL_REQUIRE_SERVICES").is_some() {
                bail!("CDCQL_REQUIRE_SERVICES is set but {what} is not reachable at {addr}");
            }
            eprintln!(
                "\n*** SKIPPED repl_pty: {what} is not reachable at {addr}.\n*** Start the \
                 services with `eval \"$(scripts/services.sh up)\"`. ***\n"
            );
            return Ok(false);
        }
    }
    Ok(true)
}

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}{}_{nanos}", std::process::id())
}

/// SQL through the Postgres the REPL reads, on a runtime of its own (the test is synchronous).
fn sql(url: &str, statements: &str) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        client.batch_execute(statements).await?;
        Ok(())
    })
}

/// Drops what a test created, whatever happens.
struct Cleanup {
    pg_url: String,
    tables: Vec<String>,
    dir: PathBuf,
    brokers: Option<String>,
    topics: Vec<String>,
    /// Run first (replication slots, publications).
    sql: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for s in &self.sql {
            let _ = sql(&self.pg_url, s);
        }
        let drops: String = self
            .tables
            .iter()
            .map(|t| format!("DROP TABLE IF EXISTS public.{t};"))
            .collect();
        let _ = sql(&self.pg_url, &drops);
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(brokers) = &self.brokers {
            let _ = delete_topics(brokers, &self.topics);
        }
    }
}

fn delete_topics(brokers: &str, topics: &[String]) -> Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::config::ClientConfig;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(admin.delete_topics(&names, &AdminOptions::new()))?;
    Ok(())
}

/// The REPL in a pseudo-terminal, with a history file of its own.
fn spawn_repl(dir: &Path, pg_url: &str, brokers: &str, files: &[&Path]) -> Result<PtySession> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cdcql"));
    cmd.arg("repl")
        .args(files)
        .env("TERM", "xterm")
        .env("CDCQL_HISTORY", dir.join("history"))
        .env("PG_URL", pg_url)
        .env("KAFKA_BROKERS", brokers)
        .env_remove("CDCQL_LOG");
    let opts = Options::new()
        .timeout_ms(Some(60_000))
        .strip_ansi_escape_codes(true);
    spawn_with_options(cmd, opts).map_err(|e| anyhow!("spawning cdcql repl: {e}"))
}

/// Types `text` (each `\n` becomes Enter) and returns the screen text up to the prompt that
/// follows the output. `marker` is a piece of the output that the typed text does not contain:
/// the editor redraws the prompt while a statement is typed, so only a prompt after the output
/// means the command is done.
fn type_and_wait(p: &mut PtySession, text: &str, marker: &str) -> Result<String> {
    p.send(&text.replace('\n', "\r"))
        .map_err(|e| anyhow!("typing: {e}"))?;
    p.flush().map_err(|e| anyhow!("typing: {e}"))?;
    let before = p
        .exp_string(&as_read(marker))
        .map_err(|e| anyhow!("no {marker:?} after typing {text:?}: {e}"))?;
    let after = p
        .exp_string(PROMPT)
        .map_err(|e| anyhow!("no prompt after typing {text:?}: {e}"))?;
    Ok(utf8(&format!("{before}{}{after}", as_read(marker))))
}

/// rexpect turns each byte it reads into one `char`: `s` as it appears in what rexpect reads.
fn as_read(s: &str) -> String {
    s.bytes().map(char::from).collect()
}

/// The text rexpect read, decoded as the UTF-8 the REPL wrote.
fn utf8(read: &str) -> String {
    let bytes: Vec<u8> = read.chars().map(|c| c as u32 as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn repl_session_through_a_terminal() -> Result<()> {
    let pg_url = env_or("PG_URL", DEFAULT_PG_URL);
    let brokers = env_or("KAFKA_BROKERS", DEFAULT_BROKERS);
    if !services(&[("Postgres", pg_addr(&pg_url))])? {
        return Ok(());
    }
    let table = unique("rp");
    let dir = std::env::temp_dir().join(format!("{table}.d"));
    std::fs::create_dir_all(&dir)?;
    let _cleanup = Cleanup {
        pg_url: pg_url.clone(),
        tables: vec![table.clone()],
        dir: dir.clone(),
        brokers: None,
        topics: Vec::new(),
        sql: Vec::new(),
    };
    sql(
        &pg_url,
        &format!(
            "CREATE TABLE public.{table} (id integer PRIMARY KEY, name text NOT NULL, qty int);
             INSERT INTO public.{table} VALUES
                 (1, 'anchor', 10), (2, 'buoy', NULL), (3, 'cleat', 3), (4, 'davit', 7);"
        ),
    )?;
    let conns = dir.join("connections.sql");
    std::fs::write(
        &conns,
        "CREATE CONNECTION pg TO POSTGRES (url = '${PG_URL}');\n\
         CREATE CONNECTION bus TO KAFKA (brokers = '${KAFKA_BROKERS}');\n",
    )?;

    let mut p = spawn_repl(&dir, &pg_url, &brokers, &[&conns])?;
    let start = utf8(
        &p.exp_string(PROMPT)
            .map_err(|e| anyhow!("no first prompt: {e}"))?,
    );
    assert!(start.contains("connection pg defined (database"), "{start}");

    // A statement over three lines: Enter inside it starts a new line.
    let screen = type_and_wait(
        &mut p,
        &format!(
            "CREATE PIPELINE rp FROM pg INTO bus TOPIC 'rp.{{table}}'\n\
             \x20 FORMAT JSON ENVELOPE DEBEZIUM\n\
             \x20 AS SELECT id, upper(name) AS name, qty FROM public.{table};\n"
        ),
        "pipeline rp defined",
    )?;
    assert!(
        screen.contains(&format!("pipeline rp defined: public.{table} → rp.{table}")),
        "{screen}"
    );

    let screen = type_and_wait(&mut p, "EXPLAIN rp;\n", "PIPELINE rp")?;
    for want in [
        "PIPELINE rp".to_string(),
        format!("TABLE public.{table} → topic rp.{table}"),
        "reads:   id, name, qty".to_string(),
        "key:     id".to_string(),
        "upper(".to_string(),
    ] {
        assert!(screen.contains(&want), "EXPLAIN lacks {want:?}:\n{screen}");
    }

    let screen = type_and_wait(&mut p, "PREVIEW rp LIMIT 3;\n", "message 1")?;
    assert!(screen.contains("message 3"), "{screen}");
    assert!(!screen.contains("message 4"), "{screen}");
    assert!(screen.contains("\"name\": \"CLEAT\""), "{screen}");
    assert!(!screen.contains("DAVIT"), "{screen}");
    assert!(screen.contains("key       {\"id\":2}"), "{screen}");

    // A typo: the caret sits under the misspelled word of the typed line.
    let screen = type_and_wait(
        &mut p,
        &format!(
            "CREATE PIPELINE bad FROM pg INTO bus TOPIC 'x' FORMAT JSON ENVELOPE DEBEZUM TABLES (public.{table});\n"
        ),
        "expected DEBEZIUM",
    )?;
    assert!(
        screen.contains("expected DEBEZIUM or NATIVE after ENVELOPE, found `DEBEZUM`"),
        "{screen}"
    );
    let lines: Vec<&str> = screen.lines().collect();
    let source = lines
        .iter()
        .find(|l| l.contains(" 1 │ CREATE PIPELINE bad"))
        .with_context(|| format!("no source line in:\n{screen}"))?;
    let underline = lines
        .iter()
        .find(|l| l.contains('┬'))
        .with_context(|| format!("no underline in:\n{screen}"))?;
    let col = |s: &str, pat: &str| s.find(pat).map(|b| s[..b].chars().count());
    assert_eq!(
        col(source, "DEBEZUM"),
        col(underline, "─"),
        "caret not under the typo:\n{source}\n{underline}"
    );
    assert!(screen.contains("did you mean DEBEZIUM?"), "{screen}");

    // TAB completes the table name (it is unique, so one TAB completes it all).
    let typed = &table[..table.len() - 3];
    let screen = type_and_wait(
        &mut p,
        &format!("DESCRIBE public.{typed}\t;\n"),
        "(connection pg",
    )?;
    assert!(
        screen.contains(&format!("table public.{table} (connection pg, database")),
        "completion did not finish the name:\n{screen}"
    );
    assert!(screen.contains("read by pipeline(s): rp"), "{screen}");

    // Ctrl-C at the prompt drops the half-typed line.
    p.send("SHOW PIP").map_err(|e| anyhow!("{e}"))?;
    p.flush().map_err(|e| anyhow!("{e}"))?;
    p.send_control('c').map_err(|e| anyhow!("{e}"))?;
    p.exp_string(PROMPT).map_err(|e| anyhow!("{e}"))?;
    let screen = type_and_wait(&mut p, "SHOW PIPELINES;\n", "table → topic")?;
    assert!(
        screen
            .lines()
            .any(|l| l.starts_with("rp ") && l.contains("│ pg → bus")),
        "{screen}"
    );

    p.send("\\q\r").map_err(|e| anyhow!("{e}"))?;
    p.flush().map_err(|e| anyhow!("{e}"))?;
    p.exp_eof()
        .map_err(|e| anyhow!("the REPL did not end on \\q: {e}"))?;

    let history = std::fs::read_to_string(dir.join("history"))?;
    assert!(history.contains("EXPLAIN rp;"), "history:\n{history}");
    assert!(
        history.contains("PREVIEW rp LIMIT 3;"),
        "history:\n{history}"
    );
    Ok(())
}

#[test]
fn ctrl_c_stops_a_running_apply() -> Result<()> {
    let pg_url = env_or("PG_URL", DEFAULT_PG_URL);
    let brokers = env_or("KAFKA_BROKERS", DEFAULT_BROKERS);
    let broker = brokers
        .split(',')
        .next()
        .unwrap_or(&brokers)
        .trim()
        .to_string();
    if !services(&[("Postgres", pg_addr(&pg_url)), ("Kafka", broker)])? {
        return Ok(());
    }
    let table = unique("rpc");
    let topic = format!("rpc.{table}");
    let dir = std::env::temp_dir().join(format!("{table}.d"));
    std::fs::create_dir_all(&dir)?;
    let _cleanup = Cleanup {
        pg_url: pg_url.clone(),
        tables: vec![table.clone()],
        dir: dir.clone(),
        brokers: Some(brokers.clone()),
        topics: vec![topic.clone()],
        sql: Vec::new(),
    };
    // Big enough that the snapshot is still running when Ctrl-C arrives.
    sql(
        &pg_url,
        &format!(
            "CREATE TABLE public.{table} (id bigint PRIMARY KEY, body text);
             INSERT INTO public.{table}
                 SELECT g, repeat('x', 20) FROM generate_series(1, 500000) g;"
        ),
    )?;
    let file = dir.join("pipeline.sql");
    std::fs::write(
        &file,
        format!(
            "CREATE CONNECTION pg TO POSTGRES (url = '${{PG_URL}}');\n\
             CREATE CONNECTION bus TO KAFKA (brokers = '${{KAFKA_BROKERS}}');\n\
             CREATE PIPELINE big FROM pg INTO bus TOPIC 'rpc.{{table}}' FORMAT JSON \
             ENVELOPE DEBEZIUM TABLES (public.{table});\n"
        ),
    )?;
    let mut p = spawn_repl(&dir, &pg_url, &brokers, &[&file])?;
    p.exp_string(PROMPT).map_err(|e| anyhow!("{e}"))?;
    p.send("APPLY big SNAPSHOT ONLY;\r")
        .map_err(|e| anyhow!("{e}"))?;
    p.flush().map_err(|e| anyhow!("{e}"))?;
    std::thread::sleep(Duration::from_secs(2));
    p.send_control('c').map_err(|e| anyhow!("{e}"))?;
    let screen = utf8(
        &p.exp_string(PROMPT)
            .map_err(|e| anyhow!("no prompt after Ctrl-C: {e}"))?,
    );
    assert!(screen.contains("APPLY big: stopped."), "{screen}");
    assert!(!screen.contains("snapshot done"), "{screen}");
    let screen = type_and_wait(&mut p, "STATUS;\n", "defined in this session")?;
    assert!(
        screen.contains("big: snapshot stopped by Ctrl-C"),
        "{screen}"
    );
    p.send("\\q\r").map_err(|e| anyhow!("{e}"))?;
    p.flush().map_err(|e| anyhow!("{e}"))?;
    p.exp_eof().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

#[test]
fn apply_streams_until_ctrl_c() -> Result<()> {
    let pg_url = env_or("PG_URL", DEFAULT_PG_URL);
    let brokers = env_or("KAFKA_BROKERS", DEFAULT_BROKERS);
    let broker = brokers
        .split(',')
        .next()
        .unwrap_or(&brokers)
        .trim()
        .to_string();
    if !services(&[("Postgres", pg_addr(&pg_url)), ("Kafka", broker)])? {
        return Ok(());
    }
    let table = unique("rps");
    let topic = format!("rps.{table}");
    let dir = std::env::temp_dir().join(format!("{table}.d"));
    std::fs::create_dir_all(&dir)?;
    let _cleanup = Cleanup {
        pg_url: pg_url.clone(),
        tables: vec![table.clone()],
        dir: dir.clone(),
        brokers: Some(brokers.clone()),
        topics: vec![topic.clone()],
        sql: vec![
            format!(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                 WHERE slot_name = '{table}' AND NOT active"
            ),
            format!("DROP PUBLICATION IF EXISTS {table}"),
        ],
    };
    sql(
        &pg_url,
        &format!(
            "CREATE TABLE public.{table} (id int PRIMARY KEY, name text);
             INSERT INTO public.{table} VALUES (1, 'a'), (2, 'b'), (3, 'c');"
        ),
    )?;
    let file = dir.join("pipeline.sql");
    std::fs::write(
        &file,
        format!(
            "CREATE CONNECTION pg TO POSTGRES (url = '${{PG_URL}}');\n\
             CREATE CONNECTION bus TO KAFKA (brokers = '${{KAFKA_BROKERS}}');\n\
             CREATE PIPELINE s FROM pg INTO bus TOPIC 'rps.{{table}}' FORMAT JSON \
             ENVELOPE DEBEZIUM WITH (slot_name = '{table}', publication_name = '{table}') \
             TABLES (public.{table});\n"
        ),
    )?;
    let mut p = spawn_repl(&dir, &pg_url, &brokers, &[&file])?;
    p.exp_string(PROMPT).map_err(|e| anyhow!("{e}"))?;
    p.send("APPLY s;\r").map_err(|e| anyhow!("{e}"))?;
    p.flush().map_err(|e| anyhow!("{e}"))?;
    p.exp_string("Ctrl-C stops it")
        .map_err(|e| anyhow!("APPLY did not start: {e}"))?;
    // The status line turns to streaming once the snapshot is in Kafka.
    p.exp_string(&as_read("streaming · lag"))
        .map_err(|e| anyhow!("no streaming status line: {e}"))?;
    sql(
        &pg_url,
        &format!(
            "INSERT INTO public.{table} VALUES (4, 'd'), (5, 'e');
             UPDATE public.{table} SET name = 'z' WHERE id = 1;"
        ),
    )?;
    sql(
        &pg_url,
        &format!("DELETE FROM public.{table} WHERE id = 2;"),
    )?;
    p.exp_string(&as_read("2 transactions · 4 changes"))
        .map_err(|e| anyhow!("the status line did not count the changes: {e}"))?;
    p.send_control('c').map_err(|e| anyhow!("{e}"))?;
    let screen = utf8(
        &p.exp_string(PROMPT)
            .map_err(|e| anyhow!("no prompt after Ctrl-C: {e}"))?,
    );
    assert!(screen.contains("APPLY s: stopping (draining"), "{screen}");
    assert!(
        screen.contains("APPLY s: stopped cleanly: 3 snapshot rows, 2 transactions"),
        "{screen}"
    );
    // 3 snapshot rows, 4 changes and the delete's tombstone.
    assert!(
        screen.contains(&format!("public.{table} → {topic}: 8 messages")),
        "{screen}"
    );
    let screen = type_and_wait(&mut p, "STATUS;\n", "defined in this session")?;
    assert!(screen.contains("s: stopped cleanly"), "{screen}");
    p.send("\\q\r").map_err(|e| anyhow!("{e}"))?;
    p.flush().map_err(|e| anyhow!("{e}"))?;
    p.exp_eof().map_err(|e| anyhow!("{e}"))?;
    // Stopped cleanly means acknowledged: the slot has moved past the changes.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let unconsumed: i64 = rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&pg_url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        let row = client
            .query_one(
                "SELECT count(*) FROM pg_logical_slot_peek_binary_changes($1::text::name, \
                 NULL, NULL, 'proto_version', '1', 'publication_names', $1::text)",
                &[&table],
            )
            .await?;
        Ok::<_, anyhow::Error>(row.get(0))
    })?;
    assert_eq!(unconsumed, 0, "the slot still holds changes");
    Ok(())
}
