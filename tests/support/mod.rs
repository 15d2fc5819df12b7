//! Shared by the end-to-end tests: service discovery (skip or fail), running commands with
//! timeouts, psql, and cleanup of topics, slots and schemas the tests create.
#![allow(dead_code)]

use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};

pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/shop";
pub const DEFAULT_BROKERS: &str = "127.0.0.1:9092";

/// `(PG_URL, KAFKA_BROKERS)`, or `None` (after a loud message) when a service is missing and
/// CDCQL_REQUIRE_SERVICES is not set; with it set, a missing service is an error.
pub fn services(test: &str) -> Result<Option<(String, String)>> {
    let pg_url = env_or("PG_URL", DEFAULT_PG_URL);
    let brokers = env_or("KAFKA_BROKERS", DEFAULT_BROKERS);
    if let Some(missing) = missing_prerequisite(&pg_url, &brokers) {
        if std::env::var_os("CDCQL_REQUIRE_SERVICES").is_some() {
            bail!("CDCQL_REQUIRE_SERVICES is set but {missing}");
        }
        eprintln!(
            "\n*** SKIPPED {test}: {missing}.\n*** Start the services with \
             `eval \"$(scripts/services.sh up)\"` or run scripts/test.sh. ***\n"
        );
        return Ok(None);
    }
    Ok(Some((pg_url, brokers)))
}

/// The schema registry's URL when one answers; like `services`, its absence skips `test`, or
/// fails it under CDCQL_REQUIRE_SERVICES.
pub fn registry(test: &str) -> Result<Option<String>> {
    let url = env_or("SCHEMA_REGISTRY_URL", "http://127.0.0.1:8081");
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    if reachable(addr) {
        return Ok(Some(url));
    }
    if std::env::var_os("CDCQL_REQUIRE_SERVICES").is_some() {
        bail!("CDCQL_REQUIRE_SERVICES is set but no schema registry answers at {url}");
    }
    eprintln!("\n*** SKIPPED {test}: no schema registry at {url} ***\n");
    Ok(None)
}

/// Run a Python checker to completion, echoing its output; fails with its stderr.
pub fn python(script: &Path, args: &[&str], timeout: Duration) -> Result<()> {
    let out = run(Command::new("python3").arg(script).args(args), timeout)?;
    eprint!("{}", String::from_utf8_lossy(&out.stdout));
    let name = script
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    expect_success(&format!("{name} {}", args.join(" ")), &out)
}

/// Start a Python workload in the background.
pub fn spawn_python(script: &Path, args: &[&str]) -> Result<Child> {
    Command::new("python3")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .spawn()
        .context("starting the workload")
}

pub fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

pub fn unique_prefix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("e2e{}{}", std::process::id(), nanos)
}

/// Why the test cannot run here, if it cannot: a service down or a client tool missing.
pub fn missing_prerequisite(pg_url: &str, brokers: &str) -> Option<String> {
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
pub fn pg_host_port(url: &str) -> String {
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

pub fn reachable(addr: &str) -> bool {
    addr.to_socket_addrs().is_ok_and(|mut addrs| {
        addrs.any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
    })
}

/// Runs `cmd` to completion with captured output, killing it after `timeout`.
pub fn run(cmd: &mut Command, timeout: Duration) -> Result<Output> {
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

pub fn expect_success(what: &str, out: &Output) -> Result<()> {
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
pub fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let start = text.len().saturating_sub(16 * 1024);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].to_string()
}

pub fn psql(pg_url: &str, sql: &str) -> Result<String> {
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

pub fn replication_slots(pg_url: &str) -> Result<Vec<String>> {
    let names = psql(pg_url, "SELECT slot_name FROM pg_replication_slots")?;
    Ok(names.lines().map(str::to_string).collect())
}

/// Deletes the test's topics and any replication slot the run left behind (an inactive slot
/// makes Postgres keep WAL forever), also when the test fails.
pub struct Cleanup {
    pub pg_url: String,
    pub brokers: String,
    pub topics: Vec<String>,
    pub slots_before: Vec<String>,
    /// SQL run last (e.g. dropping the test's schema and publications).
    pub sql: Vec<String>,
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
        for sql in &self.sql {
            if let Err(e) = psql(&self.pg_url, sql) {
                eprintln!("warning: cleanup `{sql}` failed: {e:#}");
            }
        }
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

/// A running `cdcql apply`, its output appended to a log file; killed when dropped.
pub struct Cdcql {
    pub child: Child,
    pub log: std::path::PathBuf,
}

impl Cdcql {
    pub fn start(
        root: &Path,
        file: &Path,
        env: &[(&str, &str)],
        log: std::path::PathBuf,
    ) -> Result<Self> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cdcql"));
        cmd.current_dir(root)
            .arg("apply")
            .arg(file)
            .env("CDCQL_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Ok(Cdcql {
            child: cmd.spawn().context("starting cdcql apply")?,
            log,
        })
    }

    pub fn log_tail(&self) -> String {
        tail(&std::fs::read(&self.log).unwrap_or_default())
    }

    /// Fails if cdcql already exited (it must keep streaming).
    pub fn expect_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("cdcql exited early ({status}):\n{}", self.log_tail());
        }
        Ok(())
    }

    pub fn kill9(&mut self) -> Result<()> {
        self.expect_running()?;
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// SIGINT, then the process must drain and exit 0.
    pub fn interrupt(&mut self, timeout: Duration) -> Result<()> {
        self.expect_running()?;
        let pid = self.child.id().to_string();
        expect_success(
            "kill -INT",
            &run(
                Command::new("kill").args(["-INT", &pid]),
                Duration::from_secs(5),
            )?,
        )?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!(
                        "cdcql exited with {status} after SIGINT:\n{}",
                        self.log_tail()
                    );
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!(
                    "cdcql did not stop within {timeout:?} of SIGINT:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Cdcql {
    /// Wait until the log contains `needle` `count` times (or fail with the log).
    pub fn wait_for_log(&mut self, needle: &str, count: usize, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let text =
                String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned();
            if text.matches(needle).count() >= count {
                return Ok(());
            }
            self.expect_running()?;
            if Instant::now() > deadline {
                bail!(
                    "no `{needle}` in cdcql's log within {timeout:?}:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait for the process to exit on its own; returns its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!(
                    "cdcql did not exit within {timeout:?}:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Cdcql {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
