//! End to end: seed `e2e.type_matrix` and `e2e.type_options` (tests/e2e/type_matrix.sql) in the
//! real Postgres, run `cdcql apply tests/e2e/pipelines.sql --snapshot-only` and
//! `tests/e2e/options_pipelines.sql` (the type options) against the real broker, then let an
//! independent consumer (tests/e2e/verify_snapshot.py: Confluent's client + psycopg) check every
//! message — key bytes, partition, envelope, and each value against Postgres under Debezium's rules.
//! A pipeline with `decimal_handling = 'precise'` over NaN numerics must fail with a clear error.
//!
//! Services come from `scripts/services.sh up` (addresses in PG_URL / KAFKA_BROKERS). Without them
//! the test skips with a loud message, unless CDCQL_REQUIRE_SERVICES is set (scripts/test.sh and
//! .ci/run set it), where a missing service is a failure.

use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};

const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/shop";
const DEFAULT_BROKERS: &str = "127.0.0.1:9092";

#[test]
fn snapshot_reaches_kafka_in_debezium_json() -> Result<()> {
    let pg_url = env_or("PG_URL", DEFAULT_PG_URL);
    let brokers = env_or("KAFKA_BROKERS", DEFAULT_BROKERS);
    if let Some(missing) = missing_prerequisite(&pg_url, &brokers) {
        if std::env::var_os("CDCQL_REQUIRE_SERVICES").is_some() {
            bail!("CDCQL_REQUIRE_SERVICES is set but {missing}");
        }
        eprintln!(
            "\n*** SKIPPED e2e_snapshot: {missing}.\n*** Start the services with \
             `eval \"$(scripts/services.sh up)\"` or run scripts/test.sh. ***\n"
        );
        return Ok(());
    }

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let e2e = root.join("tests/e2e");
    let prefix = unique_prefix();
    let types_topic = format!("{prefix}.e2e.type_matrix");
    let filtered_topic = format!("{prefix}.filtered.type_matrix");
    const OPTION_MODES: [&str; 3] = ["opt_string", "opt_double", "opt_base64"];
    let option_topics: Vec<String> = OPTION_MODES
        .iter()
        .map(|m| format!("{prefix}.{m}.type_options"))
        .collect();
    let precise_topic = format!("{prefix}.opt_precise.type_options");
    let mut topics = vec![
        types_topic.clone(),
        filtered_topic.clone(),
        precise_topic.clone(),
    ];
    topics.extend(option_topics.iter().cloned());
    let _cleanup = Cleanup {
        pg_url: pg_url.clone(),
        brokers: brokers.clone(),
        topics,
        slots_before: replication_slots(&pg_url)?,
    };

    let seed = run(
        Command::new("psql")
            .arg(&pg_url)
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f"])
            .arg(e2e.join("type_matrix.sql")),
        Duration::from_secs(120),
    )?;
    expect_success("psql tests/e2e/type_matrix.sql", &seed)?;

    let started = Instant::now();
    let apply = run(
        Command::new(env!("CARGO_BIN_EXE_cdcql"))
            .current_dir(root)
            .args(["apply", "tests/e2e/pipelines.sql", "--snapshot-only"])
            .env("E2E_PREFIX", &prefix)
            .env("PG_URL", &pg_url)
            .env("KAFKA_BROKERS", &brokers),
        Duration::from_secs(600),
    )?;
    expect_success(
        "cdcql apply tests/e2e/pipelines.sql --snapshot-only",
        &apply,
    )?;
    eprintln!("cdcql apply --snapshot-only took {:.1?}", started.elapsed());

    let options = run(
        Command::new(env!("CARGO_BIN_EXE_cdcql"))
            .current_dir(root)
            .args([
                "apply",
                "tests/e2e/options_pipelines.sql",
                "--snapshot-only",
            ])
            .env("E2E_PREFIX", &prefix)
            .env("PG_URL", &pg_url)
            .env("KAFKA_BROKERS", &brokers),
        Duration::from_secs(300),
    )?;
    expect_success(
        "cdcql apply tests/e2e/options_pipelines.sql --snapshot-only",
        &options,
    )?;

    let mut checks = vec![
        (types_topic.as_str(), "types"),
        (filtered_topic.as_str(), "filtered"),
    ];
    checks.extend(option_topics.iter().map(|t| t.as_str()).zip(OPTION_MODES));
    for (topic, mode) in checks {
        let verify = run(
            Command::new("python3")
                .arg(e2e.join("verify_snapshot.py"))
                .args([topic, &pg_url, &brokers, mode]),
            Duration::from_secs(300),
        )?;
        eprint!("{}", String::from_utf8_lossy(&verify.stdout));
        expect_success(&format!("verify_snapshot.py {topic} {mode}"), &verify)?;
    }

    // Debezium's 'precise' decimals have no value for NaN: the snapshot must stop and say why.
    let precise = std::env::temp_dir().join(format!("{prefix}-precise.sql"));
    std::fs::write(
        &precise,
        "CREATE CONNECTION pg TO POSTGRES (url = '${PG_URL}');\n\
         CREATE CONNECTION bus TO KAFKA (brokers = '${KAFKA_BROKERS}');\n\
         CREATE PIPELINE opt_precise FROM pg INTO bus TOPIC '${E2E_PREFIX}.opt_precise.{table}'\n\
           FORMAT JSON ENVELOPE DEBEZIUM TABLES (e2e.type_options);\n",
    )?;
    let failed = run(
        Command::new(env!("CARGO_BIN_EXE_cdcql"))
            .current_dir(root)
            .arg("apply")
            .arg(&precise)
            .arg("--snapshot-only")
            .env("E2E_PREFIX", &prefix)
            .env("PG_URL", &pg_url)
            .env("KAFKA_BROKERS", &brokers),
        Duration::from_secs(120),
    )?;
    let _ = std::fs::remove_file(&precise);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    if failed.status.success() || !stderr.contains("NaN") || !stderr.contains("decimal_handling") {
        bail!(
            "a precise pipeline over NaN numerics must fail naming NaN and decimal_handling; \
             it exited {} with:\n{}",
            failed.status,
            tail(&failed.stderr)
        );
    }
    Ok(())
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

fn unique_prefix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("e2e{}{}", std::process::id(), nanos)
}

/// Why the test cannot run here, if it cannot: a service down or a client tool missing.
fn missing_prerequisite(pg_url: &str, brokers: &str) -> Option<String> {
    let pg_addr = pg_host_port(pg_url);
    if !reachable(&pg_addr) {
        return Some(format!("Postgres is not reachable at {pg_addr} (PG_URL)"));
    }
    let broker = brokers.split(',').next().unwrap_or(brokers).trim();
    if !reachable(broker) {
        return Some(format!("no Kafka broker at {broker} (KAFKA_BROKERS)"));
    }
    let tools: [(&str, &[&str]); 2] = [
        ("psql", &["--version"]),
        ("python3", &["-c", "import confluent_kafka, psycopg"]),
    ];
    for (tool, args) in tools {
        let ok = Command::new(tool)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Some(format!(
                "`{tool} {}` failed (scripts/services.sh up installs it)",
                args.join(" ")
            ));
        }
    }
    None
}

/// `host:port` of a `postgres://user@host:port/db?...` URL.
fn pg_host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host_port.is_empty() {
        "127.0.0.1:5432".to_string()
    } else if host_port
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        host_port.to_string()
    } else {
        format!("{host_port}:5432")
    }
}

fn reachable(addr: &str) -> bool {
    addr.to_socket_addrs().is_ok_and(|mut addrs| {
        addrs.any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
    })
}

/// Runs `cmd` to completion with captured output, killing it after `timeout`.
fn run(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {what}"))?;
    let collect = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = collect(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = collect(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = stdout
        .join()
        .map_err(|_| anyhow!("stdout reader panicked"))?;
    let stderr = stderr
        .join()
        .map_err(|_| anyhow!("stderr reader panicked"))?;
    match status {
        Some(status) => Ok(Output {
            status,
            stdout,
            stderr,
        }),
        None => bail!(
            "{what} did not finish within {timeout:?}; it was killed.\nstdout:\n{}\nstderr:\n{}",
            tail(&stdout),
            tail(&stderr)
        ),
    }
}

fn expect_success(what: &str, out: &Output) -> Result<()> {
    if out.status.success() {
        return Ok(());
    }
    bail!(
        "{what} failed ({}).\nstdout:\n{}\nstderr:\n{}",
        out.status,
        tail(&out.stdout),
        tail(&out.stderr)
    )
}

/// The last 16 KB of a command's output: enough to see the error, not a 10,000-row dump.
fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let start = text.len().saturating_sub(16 * 1024);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].to_string()
}

fn psql(pg_url: &str, sql: &str) -> Result<String> {
    let out = run(
        Command::new("psql").arg(pg_url).args([
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ]),
        Duration::from_secs(60),
    )?;
    expect_success(&format!("psql -c {sql:?}"), &out)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn replication_slots(pg_url: &str) -> Result<Vec<String>> {
    let names = psql(pg_url, "SELECT slot_name FROM pg_replication_slots")?;
    Ok(names.lines().map(str::to_string).collect())
}

/// Deletes the test's topics and any replication slot the run left behind (an inactive slot
/// makes Postgres keep WAL forever), also when the test fails.
struct Cleanup {
    pg_url: String,
    brokers: String,
    topics: Vec<String>,
    slots_before: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/verify_snapshot.py");
        let deleted = run(
            Command::new("python3")
                .arg(script)
                .args(["--brokers", &self.brokers, "--delete-topics"])
                .args(&self.topics),
            Duration::from_secs(60),
        );
        match deleted {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "warning: could not delete topics {:?}: {}",
                self.topics,
                tail(&out.stderr)
            ),
            Err(e) => eprintln!("warning: could not delete topics {:?}: {e:#}", self.topics),
        }
        let Ok(now) = replication_slots(&self.pg_url) else {
            return;
        };
        for slot in now.iter().filter(|s| !self.slots_before.contains(s)) {
            eprintln!("note: dropping replication slot {slot} left by the run");
            let sql = format!(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                 WHERE slot_name = '{}' AND NOT active",
                slot.replace('\'', "''")
            );
            if let Err(e) = psql(&self.pg_url, &sql) {
                eprintln!("warning: could not drop replication slot {slot}: {e:#}");
            }
        }
    }
}

#[test]
fn pg_host_port_reads_urls() {
    assert_eq!(
        pg_host_port("postgres://postgres@127.0.0.1:5432/shop"),
        "127.0.0.1:5432"
    );
    assert_eq!(
        pg_host_port("postgres://u:p@db.example:6543/x?sslmode=disable"),
        "db.example:6543"
    );
    assert_eq!(
        pg_host_port("postgresql://localhost/shop"),
        "localhost:5432"
    );
}
