//! End to end, monitoring: `cdcql apply --metrics-addr` runs two pipelines against the real
//! Postgres and broker while the test scrapes the endpoint. `/readyz` must answer 503 before
//! the snapshot is delivered and 200 once streaming; the counters on `/metrics` must equal what
//! the tables hold (snapshot rows per table and pipeline, a WHERE applied) and then count
//! exactly the changes the test makes; the acknowledged position must pass the test's last
//! commit. The database password never appears in any response or log line, and with
//! `--log-format json` every log line is a JSON object, progress lines included. A second test
//! runs a pipeline that fails next to one that streams: `/readyz` stays 503 and says which.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, ensure, Context, Result};
use support::*;

/// `GET path` over a fresh connection: (status, body).
fn get(addr: &str, path: &str) -> Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("no end of headers in {text:?}"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("bad status line in {head:?}"))?;
    Ok((status, body.to_string()))
}

/// A series: metric name and its labels.
type Key = (String, BTreeMap<String, String>);

/// Parses the Prometheus text format strictly enough to catch a malformed line: every line is
/// `# HELP`, `# TYPE` or `name{label="value",...} number`.
fn parse_metrics(text: &str) -> Result<BTreeMap<Key, f64>> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .ok_or_else(|| anyhow!("no value: {line:?}"))?;
        let value: f64 = value
            .parse()
            .map_err(|e| anyhow!("bad value in {line:?}: {e}"))?;
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let inner = rest
                    .strip_suffix('}')
                    .ok_or_else(|| anyhow!("unclosed labels: {line:?}"))?;
                (
                    name.to_string(),
                    parse_labels(inner).context(line.to_string())?,
                )
            }
        };
        ensure!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name {name:?}"
        );
        out.insert((name, labels), value);
    }
    Ok(out)
}

fn parse_labels(s: &str) -> Result<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    let mut chars = s.chars().peekable();
    while chars.peek().is_some() {
        let name: String = chars.by_ref().take_while(|&c| c != '=').collect();
        ensure!(
            chars.next() == Some('"'),
            "label {name} has no opening quote"
        );
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('\\') => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c @ ('\\' | '"')) => value.push(c),
                    other => bail!("bad escape \\{other:?}"),
                },
                Some('"') => break,
                Some(c) => value.push(c),
                None => bail!("unterminated value of {name}"),
            }
        }
        labels.insert(name, value);
        match chars.next() {
            None | Some(',') => {}
            Some(c) => bail!("unexpected {c:?} after a label"),
        }
    }
    Ok(labels)
}

struct Scrape(BTreeMap<Key, f64>);

impl Scrape {
    fn take(addr: &str) -> Result<(Self, String)> {
        let (status, body) = get(addr, "/metrics")?;
        ensure!(status == 200, "/metrics answered {status}: {body}");
        Ok((Scrape(parse_metrics(&body)?), body))
    }

    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Result<f64> {
        let key = (
            name.to_string(),
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        self.0
            .get(&key)
            .copied()
            .ok_or_else(|| anyhow!("no series {name}{labels:?} in /metrics"))
    }
}

/// The URL with a password (the one it has, or an invented one that the test server's trust
/// authentication ignores), and that password.
fn with_password(url: &str) -> (String, String) {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let invented = format!("metricsSecret{nanos}");
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_string(), invented);
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((user, _)) if user.contains(':') => {
            let password = user.split_once(':').map(|(_, p)| p).unwrap_or_default();
            (url.to_string(), password.to_string())
        }
        Some((user, host)) => (
            format!(
                "{scheme}://{user}:{invented}@{host}{}",
                &rest[authority_end..]
            ),
            invented,
        ),
        None => (format!("{scheme}://postgres:{invented}@{rest}"), invented),
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `cdcql apply FILE ARGS...` with its output appended to `log`.
fn apply(root: &Path, file: &Path, args: &[&str], log: &Path) -> Result<Cdcql> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let child = Command::new(env!("CARGO_BIN_EXE_cdcql"))
        .current_dir(root)
        .arg("apply")
        .arg(file)
        .args(args)
        .env_remove("CDCQL_LOG")
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

/// Polls until `check` returns `Some`, or fails after `timeout` with the last reason.
fn wait_until<T>(
    cdcql: &mut Cdcql,
    timeout: Duration,
    mut check: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        cdcql.expect_running()?;
        let last = match check() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => String::new(),
            Err(e) => format!("{e:#}"),
        };
        if Instant::now() > deadline {
            bail!(
                "not reached within {timeout:?} ({last}); cdcql log:\n{}",
                cdcql.log_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

struct Setup {
    pg_url: String,
    brokers: String,
    prefix: String,
    schema: String,
    work: std::path::PathBuf,
    root: &'static Path,
}

fn setup(test: &str, rows: (u32, u32)) -> Result<Option<(Setup, Cleanup)>> {
    let Some((pg_url, brokers)) = services(test)? else {
        return Ok(None);
    };
    let prefix = unique_prefix();
    let schema = prefix.clone();
    let work = std::env::temp_dir().join(&prefix);
    std::fs::create_dir_all(&work)?;
    let cleanup = Cleanup {
        pg_url: pg_url.clone(),
        brokers: brokers.clone(),
        topics: ["orders", "customers", "odd.orders"]
            .iter()
            .map(|t| format!("{prefix}.{t}"))
            .collect(),
        slots_before: replication_slots(&pg_url)?,
        sql: vec![
            format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"),
            format!("DROP PUBLICATION IF EXISTS {prefix}_all"),
            format!("DROP PUBLICATION IF EXISTS {prefix}_odd"),
            format!("DROP PUBLICATION IF EXISTS {prefix}_bad"),
        ],
    };
    psql(
        &pg_url,
        &format!(
            "CREATE SCHEMA \"{schema}\";
             CREATE TABLE \"{schema}\".orders (id int PRIMARY KEY, note text NOT NULL);
             INSERT INTO \"{schema}\".orders SELECT g, 'order ' || g FROM generate_series(1, {}) g;
             CREATE TABLE \"{schema}\".customers (id int PRIMARY KEY, name text);
             INSERT INTO \"{schema}\".customers SELECT g, 'c' || g FROM generate_series(1, {}) g;
             ANALYZE \"{schema}\".orders; ANALYZE \"{schema}\".customers;",
            rows.0, rows.1
        ),
    )?;
    let setup = Setup {
        pg_url,
        brokers,
        prefix,
        schema,
        work,
        root: Path::new(env!("CARGO_MANIFEST_DIR")),
    };
    Ok(Some((setup, cleanup)))
}

fn connections(url: &str, brokers: &str) -> String {
    format!(
        "CREATE CONNECTION pg TO POSTGRES (url = '{url}');\n\
         CREATE CONNECTION bus TO KAFKA (brokers = '{brokers}');\n"
    )
}

#[test]
fn metrics_and_health_follow_a_run() -> Result<()> {
    const ORDERS: u32 = 2000;
    const CUSTOMERS: u32 = 150;
    let Some((s, _cleanup)) = setup("e2e_metrics", (ORDERS, CUSTOMERS))? else {
        return Ok(());
    };
    let (pg_url, prefix, schema) = (&s.pg_url, &s.prefix, &s.schema);
    let (url, secret) = with_password(pg_url);
    let file = s.work.join("pipelines.sql");
    std::fs::write(
        &file,
        format!(
            "{}\
             CREATE PIPELINE m_all FROM pg INTO bus TOPIC '{prefix}.{{table}}'\n\
             \x20   FORMAT JSON ENVELOPE DEBEZIUM\n\
             \x20   WITH (slot_name = '{prefix}_all', publication_name = '{prefix}_all')\n\
             \x20   TABLES (\"{schema}\".orders, \"{schema}\".customers);\n\
             CREATE PIPELINE m_odd FROM pg INTO bus TOPIC '{prefix}.odd.{{table}}'\n\
             \x20   FORMAT JSON ENVELOPE DEBEZIUM\n\
             \x20   WITH (slot_name = '{prefix}_odd', publication_name = '{prefix}_odd')\n\
             AS SELECT id, note FROM \"{schema}\".orders WHERE id % 5 = 0;\n",
            connections(&url, &s.brokers)
        ),
    )?;
    let addr = format!("127.0.0.1:{}", free_port()?);
    let log = s.work.join("cdcql.log");
    let mut cdcql = apply(
        s.root,
        &file,
        &[
            "--metrics-addr",
            &addr,
            "--log-format",
            "json",
            "--progress-interval",
            "1",
        ],
        &log,
    )?;

    // The server is up before any pipeline starts, so the first answer is "not ready".
    let mut seen = Vec::new();
    let mut bodies = String::new();
    wait_until(&mut cdcql, Duration::from_secs(180), || {
        let Ok((status, body)) = get(&addr, "/readyz") else {
            return Ok(None);
        };
        if seen.last() != Some(&status) {
            seen.push(status);
        }
        bodies.push_str(&body);
        Ok((status == 200).then_some(()))
    })?;
    ensure!(
        seen == [503, 200],
        "/readyz went {seen:?}, not 503 then 200:\n{bodies}"
    );
    ensure!(
        bodies.contains("m_all: starting (not ready)") || bodies.contains("m_all: snapshot"),
        "{bodies}"
    );
    let (status, body) = get(&addr, "/healthz")?;
    ensure!(status == 200 && body == "ok\n", "/healthz: {status} {body}");
    let (status, _) = get(&addr, "/nothing")?;
    ensure!(status == 404, "/nothing: {status}");

    let orders = format!("{schema}.orders");
    let customers = format!("{schema}.customers");
    let all_orders = [
        ("pipeline", "m_all"),
        ("table", orders.as_str()),
        ("topic", &format!("{prefix}.orders")),
    ];
    let all_customers = [
        ("pipeline", "m_all"),
        ("table", customers.as_str()),
        ("topic", &format!("{prefix}.customers")),
    ];
    let odd_orders = [
        ("pipeline", "m_odd"),
        ("table", orders.as_str()),
        ("topic", &format!("{prefix}.odd.orders")),
    ];
    let (m, text) = Scrape::take(&addr)?;
    let mut bodies = vec![text];
    ensure!(m.get("cdcql_snapshot_rows_total", &all_orders)? == f64::from(ORDERS));
    ensure!(m.get("cdcql_snapshot_rows_total", &all_customers)? == f64::from(CUSTOMERS));
    ensure!(m.get("cdcql_snapshot_rows_total", &odd_orders)? == f64::from(ORDERS / 5));
    ensure!(m.get("cdcql_snapshot_rows_estimated", &all_orders)? == f64::from(ORDERS));
    for labels in [&all_orders, &all_customers, &odd_orders] {
        let rows = m.get("cdcql_snapshot_rows_total", labels)?;
        ensure!(m.get("cdcql_messages_total", labels)? == rows, "{labels:?}");
        ensure!(m.get("cdcql_message_bytes_total", labels)? > rows * 50.0);
        ensure!(m.get("cdcql_snapshot_table_done", labels)? == 1.0);
        ensure!(m.get("cdcql_snapshot_progress_ratio", labels)? == 1.0);
        ensure!(m.get("cdcql_changes_total", labels)? == 0.0);
    }
    for p in ["m_all", "m_odd"] {
        let phase = |name| m.get("cdcql_pipeline_phase", &[("pipeline", p), ("phase", name)]);
        ensure!(
            phase("streaming")? == 1.0 && phase("snapshot")? == 0.0,
            "{p}"
        );
        ensure!(m.get("cdcql_pipeline_ready", &[("pipeline", p)])? == 1.0);
        ensure!(m.get("cdcql_errors_total", &[("pipeline", p)])? == 0.0);
    }

    // Changes: 25 inserts in 5 transactions, 3 updates, 2 deletes. Through `id % 5 = 0`:
    // 5 of the inserts, the updates of 5 and 10 (11 stays outside) and the delete of 15.
    for t in 0..5 {
        let ids = (1..=5).map(|i| ORDERS + t * 5 + i);
        let values: Vec<String> = ids.map(|i| format!("({i}, 'new {i}')")).collect();
        psql(
            pg_url,
            &format!(
                "INSERT INTO \"{schema}\".orders VALUES {}",
                values.join(", ")
            ),
        )?;
    }
    psql(
        pg_url,
        &format!("UPDATE \"{schema}\".orders SET note = 'changed' WHERE id IN (5, 10, 11)"),
    )?;
    let inside = psql(
        pg_url,
        &format!(
            "BEGIN; DELETE FROM \"{schema}\".orders WHERE id IN (1, 15); \
             SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn; COMMIT;"
        ),
    )?;
    let last_lsn: f64 = inside
        .lines()
        .find_map(|l| l.trim().parse().ok())
        .ok_or_else(|| anyhow!("no LSN in {inside:?}"))?;
    let m = wait_until(&mut cdcql, Duration::from_secs(60), || {
        let (m, text) = Scrape::take(&addr)?;
        bodies.push(text);
        let done = m.get("cdcql_changes_total", &all_orders)? >= 30.0
            && m.get("cdcql_changes_total", &odd_orders)? >= 8.0
            && m.get(
                "cdcql_replication_acknowledged_lsn",
                &[("pipeline", "m_all")],
            )? >= last_lsn
            && m.get(
                "cdcql_replication_acknowledged_lsn",
                &[("pipeline", "m_odd")],
            )? >= last_lsn;
        Ok(done.then_some(m))
    })?;
    // Nothing more arrives later: the counts are exact.
    std::thread::sleep(Duration::from_secs(2));
    let (again, text) = Scrape::take(&addr)?;
    bodies.push(text);
    for (labels, changes) in [
        (&all_orders, 30.0),
        (&odd_orders, 8.0),
        (&all_customers, 0.0),
    ] {
        ensure!(
            m.get("cdcql_changes_total", labels)? == changes,
            "{labels:?}"
        );
        ensure!(
            again.get("cdcql_changes_total", labels)? == changes,
            "{labels:?}"
        );
        // Each change is a message; a delete adds its tombstone.
        let messages = again.get("cdcql_messages_total", labels)?;
        let rows = again.get("cdcql_snapshot_rows_total", labels)?;
        ensure!(
            messages >= rows + changes && messages <= rows + changes * 2.0,
            "{labels:?}: {messages} messages for {rows} rows and {changes} changes"
        );
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
    for p in ["m_all", "m_odd"] {
        let pl = [("pipeline", p)];
        ensure!(
            again.get("cdcql_source_transactions_total", &pl)? >= 7.0,
            "{p}"
        );
        let acked = again.get("cdcql_replication_acknowledged_lsn", &pl)?;
        let server = again.get("cdcql_replication_server_lsn", &pl)?;
        ensure!(
            server >= acked && acked >= last_lsn,
            "{p}: {server} {acked}"
        );
        ensure!(
            again.get("cdcql_replication_lag_bytes", &pl)? == server - acked,
            "{p}"
        );
        let lag = again.get("cdcql_replication_lag_seconds", &pl)?;
        ensure!((0.0..600.0).contains(&lag), "{p}: lag {lag}");
        let commit = again.get("cdcql_source_last_commit_timestamp_seconds", &pl)?;
        ensure!(
            (commit - now).abs() < 600.0,
            "{p}: last commit at {commit}, now {now}"
        );
        ensure!(
            again.get(
                "cdcql_kafka_transactions_total",
                &[("pipeline", p), ("outcome", "aborted")]
            )? == 0.0
        );
    }
    let (_, ready) = get(&addr, "/readyz")?;
    bodies.push(ready);

    cdcql.interrupt(Duration::from_secs(60))?;
    let log_text = std::fs::read_to_string(&log)?;
    for text in bodies.iter().chain([&log_text]) {
        ensure!(
            !text.contains(&secret),
            "the database password appears in:\n{text}"
        );
    }
    // JSON logs: one object per line, with progress lines among them.
    let mut streaming_lines = 0;
    let mut table_done = BTreeMap::new();
    for line in log_text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("not JSON: {line}"))?;
        ensure!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
        match v["message"].as_str() {
            Some("streaming") => {
                ensure!(
                    v["lag_bytes"].is_u64() && v["transactions"].is_u64(),
                    "{line}"
                );
                streaming_lines += 1;
            }
            Some("table snapshot done") => {
                table_done.insert(
                    format!("{} {}", v["pipeline"], v["table"].as_str().unwrap_or("")),
                    v["rows"].as_u64(),
                );
            }
            _ => {}
        }
    }
    ensure!(streaming_lines >= 2, "{log_text}");
    ensure!(
        table_done.get(&format!("\"m_all\" {orders}")) == Some(&Some(u64::from(ORDERS))),
        "{table_done:?}"
    );
    ensure!(
        table_done.get(&format!("\"m_odd\" {orders}")) == Some(&Some(u64::from(ORDERS / 5))),
        "{table_done:?}"
    );

    for p in ["m_all", "m_odd"] {
        let out = run(
            Command::new(env!("CARGO_BIN_EXE_cdcql"))
                .arg("drop")
                .arg(&file)
                .arg(p),
            Duration::from_secs(60),
        )?;
        expect_success(&format!("cdcql drop {p}"), &out)?;
    }
    Ok(())
}

#[test]
fn a_failed_pipeline_is_not_ready() -> Result<()> {
    let Some((s, _cleanup)) = setup("e2e_metrics failure", (20, 10))? else {
        return Ok(());
    };
    let (prefix, schema) = (&s.prefix, &s.schema);
    let file = s.work.join("pipelines.sql");
    // `note` is not sent with the old row of an update under REPLICA IDENTITY DEFAULT, so
    // m_bad refuses to start; m_good streams next to it.
    std::fs::write(
        &file,
        format!(
            "{}\
             CREATE PIPELINE m_good FROM pg INTO bus TOPIC '{prefix}.{{table}}'\n\
             \x20   FORMAT JSON ENVELOPE DEBEZIUM\n\
             \x20   WITH (slot_name = '{prefix}_all', publication_name = '{prefix}_all')\n\
             \x20   TABLES (\"{schema}\".customers);\n\
             CREATE PIPELINE m_bad FROM pg INTO bus TOPIC '{prefix}.odd.{{table}}'\n\
             \x20   FORMAT JSON ENVELOPE DEBEZIUM\n\
             \x20   WITH (slot_name = '{prefix}_bad', publication_name = '{prefix}_bad')\n\
             AS SELECT id, note FROM \"{schema}\".orders WHERE note <> '';\n",
            connections(&s.pg_url, &s.brokers)
        ),
    )?;
    let addr = format!("127.0.0.1:{}", free_port()?);
    let log = s.work.join("cdcql.log");
    let mut cdcql = apply(s.root, &file, &["--metrics-addr", &addr], &log)?;
    let m = wait_until(&mut cdcql, Duration::from_secs(180), || {
        let Ok((m, _)) = Scrape::take(&addr) else {
            return Ok(None);
        };
        let phase = |p, name| m.get("cdcql_pipeline_phase", &[("pipeline", p), ("phase", name)]);
        let done = phase("m_good", "streaming")? == 1.0 && phase("m_bad", "failed")? == 1.0;
        Ok(done.then_some(m))
    })?;
    ensure!(m.get("cdcql_errors_total", &[("pipeline", "m_bad")])? == 1.0);
    ensure!(m.get("cdcql_pipeline_ready", &[("pipeline", "m_bad")])? == 0.0);
    ensure!(m.get("cdcql_pipeline_ready", &[("pipeline", "m_good")])? == 1.0);
    let (status, body) = get(&addr, "/readyz")?;
    ensure!(status == 503, "/readyz: {status} {body}");
    ensure!(
        body.contains("m_bad: failed (not ready)") && body.contains("m_good: streaming (ready)"),
        "{body}"
    );
    ensure!(get(&addr, "/healthz")?.0 == 200);
    // The failure is logged when it happens, not only when the process ends.
    cdcql.wait_for_log("REPLICA IDENTITY FULL", 1, Duration::from_secs(10))?;

    // The failed pipeline makes the exit code 1 after a clean stop of the other.
    let pid = cdcql.child.id().to_string();
    run(
        Command::new("kill").args(["-INT", &pid]),
        Duration::from_secs(5),
    )?;
    let status = cdcql.wait_exit(Duration::from_secs(60))?;
    ensure!(status.code() == Some(1), "exit status {status}");
    let out = run(
        Command::new(env!("CARGO_BIN_EXE_cdcql"))
            .arg("drop")
            .arg(&file)
            .arg("m_good"),
        Duration::from_secs(60),
    )?;
    expect_success("cdcql drop m_good", &out)?;
    Ok(())
}

#[test]
fn passwords_are_added_or_found() {
    let (url, secret) = with_password("postgres://postgres@127.0.0.1:5432/shop");
    assert!(url.starts_with(&format!("postgres://postgres:{secret}@127.0.0.1:5432/shop")));
    let (url, secret) = with_password("postgres://u:pw@db/x?sslmode=disable");
    assert_eq!(
        (url.as_str(), secret.as_str()),
        ("postgres://u:pw@db/x?sslmode=disable", "pw")
    );
}
