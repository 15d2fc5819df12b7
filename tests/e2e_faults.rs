//! Faults survived (issue #7, item 1), against real services: a running `cdcql apply` with a
//! transactional pipeline and an at-least-once pipeline on the same tables, while a workload
//! keeps writing to Postgres, through
//!   - the broker stopped for CDCQL_FAULT_BROKER_DOWN_SECS (60) and started again,
//!   - Postgres stopped for CDCQL_FAULT_PG_DOWN_SECS (10) and started again,
//!   - the data topics deleted underneath,
//!   - the broker frozen with SIGSTOP for CDCQL_FAULT_STALL_SECS (40), longer than the
//!     producer's timeouts (shortened for this test to 15 s / 10 s), then SIGCONT,
//!   - the broker frozen in the middle of a large Kafka transaction (issue #5, "Aborts"),
//!   - the schema registry down at start, and down mid-run while a schema change needs it,
//!   - another writer fencing the transactional producer (the one fault that must stop it).
//!
//! After each, cdcql must still be running, catch up, stop cleanly on SIGINT, and a fresh
//! read_committed consumer (tests/e2e/faults_check.py) must find every committed change, each
//! source transaction whole, and — for the transactional pipeline — none twice.
//!
//! The faults are injected into private services (scripts/faults/services.sh: a Postgres
//! cluster, a broker and a registry on their own ports), never into the shared ones. The tests
//! take turns (one lock), since they stop and start the same private services.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use support::*;

static SERIAL: Mutex<()> = Mutex::new(());

const PG_CTL: &str = "/usr/lib/postgresql/15/bin/pg_ctl";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn env_secs(name: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default),
    )
}

/// The private services' addresses.
struct Private {
    pg_url: String,
    brokers: String,
    registry: String,
}

fn ctl(args: &[&str]) -> Result<()> {
    let out = run(
        Command::new(root().join("scripts/faults/services.sh")).args(args),
        Duration::from_secs(180),
    )?;
    expect_success(
        &format!("scripts/faults/services.sh {}", args.join(" ")),
        &out,
    )
}

/// Starts (or reuses) the private services; `None` after a loud message when this machine
/// cannot run them and CDCQL_REQUIRE_SERVICES is not set.
fn private_services(test: &str) -> Result<Option<Private>> {
    let tools = std::env::var("CDCQL_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/cdcql-tools")
        });
    let registry_script = std::env::var("CDCQL_REGISTRY_SCRIPT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("../shared/tools/schema-registry/schema_registry.py"));
    let python_ok = Command::new("python3")
        .args(["-c", "import confluent_kafka, psycopg, avro"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let missing = if !Path::new(PG_CTL).exists() {
        Some(format!("{PG_CTL} is missing"))
    } else if !tools.join("bin/noida-db").exists() {
        Some(format!(
            "the broker {} is missing",
            tools.join("bin/noida-db").display()
        ))
    } else if !registry_script.exists() {
        Some(format!(
            "the schema registry {} is missing",
            registry_script.display()
        ))
    } else if !python_ok {
        Some("python3 cannot import confluent_kafka, psycopg and avro".to_string())
    } else {
        None
    };
    let started = match missing {
        Some(m) => Err(anyhow::anyhow!(m)),
        None => run(
            Command::new(root().join("scripts/faults/services.sh")).arg("up"),
            Duration::from_secs(300),
        )
        .and_then(|out| {
            expect_success("scripts/faults/services.sh up", &out)?;
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        }),
    };
    // Once per run: a fresh broker (it keeps every message, even of deleted topics, in memory).
    static FRESH_BROKER: std::sync::Once = std::sync::Once::new();
    let started = started.and_then(|exports| {
        let mut reset = Ok(());
        FRESH_BROKER.call_once(|| reset = ctl(&["reset", "broker"]));
        reset.map(|_| exports)
    });
    let exports = match started {
        Ok(out) => out,
        Err(e) => {
            if std::env::var_os("CDCQL_REQUIRE_SERVICES").is_some() {
                bail!("CDCQL_REQUIRE_SERVICES is set but the private fault-test services cannot run: {e:#}");
            }
            eprintln!(
                "\n*** SKIPPED {test}: the private services for fault tests cannot run here: {e:#}.\n\
                 *** Run scripts/services.sh up (installs them) and scripts/test.sh. ***\n"
            );
            return Ok(None);
        }
    };
    let var = |name: &str| {
        exports
            .lines()
            .find_map(|l| l.strip_prefix(&format!("export {name}=")))
            .map(str::to_string)
            .with_context(|| format!("scripts/faults/services.sh up printed no {name}"))
    };
    Ok(Some(Private {
        pg_url: var("PG_URL")?,
        brokers: var("KAFKA_BROKERS")?,
        registry: var("SCHEMA_REGISTRY_URL")?,
    }))
}

/// Retries `psql` while Postgres is restarting.
fn psql_retry(pg_url: &str, sql: &str, timeout: Duration) -> Result<String> {
    let deadline = Instant::now() + timeout;
    loop {
        match psql(pg_url, sql) {
            Ok(out) => return Ok(out),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// Waits until every slot has confirmed the WAL position of now: everything committed so far
/// is in Kafka (and committed there). Returns how long it took.
fn wait_caught_up(
    pg_url: &str,
    slots: &[String],
    cdcql: &mut Cdcql,
    timeout: Duration,
) -> Result<Duration> {
    let started = Instant::now();
    let target = psql_retry(pg_url, "SELECT pg_current_wal_lsn()", timeout)?
        .trim()
        .to_string();
    let names = slots
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(",");
    let sql = format!(
        "SELECT count(*) FILTER (WHERE confirmed_flush_lsn >= '{target}'::pg_lsn) = {} \
         FROM pg_replication_slots WHERE slot_name IN ({names})",
        slots.len()
    );
    loop {
        cdcql.expect_running()?;
        // A pipeline that gave up while the others run on: no point waiting.
        if log_text(cdcql).contains("ERROR failed: ") {
            bail!("a pipeline stopped:\n{}", cdcql.log_tail());
        }
        if psql(pg_url, &sql).is_ok_and(|o| o.trim() == "t") {
            return Ok(started.elapsed());
        }
        if started.elapsed() > timeout {
            bail!(
                "the pipelines did not catch up with {target} within {timeout:?}:\n{}",
                cdcql.log_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn log_text(cdcql: &Cdcql) -> String {
    String::from_utf8_lossy(&std::fs::read(&cdcql.log).unwrap_or_default()).into_owned()
}

const RESTARTING: &str = "restarting from its last committed position";

/// One fault scenario: its names, files, the running cdcql and the workload.
struct Scenario {
    private: Private,
    prefix: String,
    schema: String,
    work: PathBuf,
    file: PathBuf,
    env: Vec<(String, String)>,
    slots: Vec<String>,
    /// `None` with CDCQL_FAULTS_KEEP=1: topics, slots and tables stay for a post-mortem.
    _cleanup: Option<Cleanup>,
}

impl Scenario {
    fn new(
        private: Private,
        template: &str,
        pipelines: &[&str],
        tables: &[&str],
        extra_env: &[(&str, &str)],
    ) -> Result<Self> {
        let prefix = unique_prefix();
        let schema = prefix.clone();
        let work = std::env::temp_dir().join(&prefix);
        std::fs::create_dir_all(&work)?;
        let file = work.join("pipelines.sql");
        let text = std::fs::read_to_string(root().join(template))?;
        std::fs::write(&file, text.replace("__SCHEMA__", &format!("\"{schema}\"")))?;
        let mut env: Vec<(String, String)> = vec![
            ("E2E_PREFIX".into(), prefix.clone()),
            ("PG_URL".into(), private.pg_url.clone()),
            ("KAFKA_BROKERS".into(), private.brokers.clone()),
            ("SCHEMA_REGISTRY_URL".into(), private.registry.clone()),
        ];
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let mut topics = Vec::new();
        let mut sql = vec![format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE")];
        for p in pipelines {
            for t in tables.iter().chain(&["offsets"]) {
                topics.push(format!("{prefix}.{p}.{t}"));
            }
            sql.push(format!("DROP PUBLICATION IF EXISTS {prefix}_{p}"));
        }
        let cleanup = Cleanup {
            pg_url: private.pg_url.clone(),
            brokers: private.brokers.clone(),
            topics,
            slots_before: replication_slots(&private.pg_url)?,
            sql,
        };
        let keep = std::env::var_os("CDCQL_FAULTS_KEEP").is_some();
        if keep {
            eprintln!("CDCQL_FAULTS_KEEP: keeping topics {prefix}.*, slots and schema {schema}");
        }
        Ok(Scenario {
            slots: pipelines.iter().map(|p| format!("{prefix}_{p}")).collect(),
            private,
            prefix,
            schema,
            work,
            file,
            env,
            _cleanup: if keep {
                std::mem::forget(cleanup);
                None
            } else {
                Some(cleanup)
            },
        })
    }

    fn env(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    fn start(&self) -> Result<Cdcql> {
        self.start_logging_to("cdcql.log")
    }

    fn start_logging_to(&self, log: &str) -> Result<Cdcql> {
        Cdcql::start(root(), &self.file, &self.env(), self.work.join(log))
    }

    fn check_script(&self) -> PathBuf {
        root().join("tests/e2e/faults_check.py")
    }

    fn python(&self, args: &[&str], timeout: Duration) -> Result<String> {
        let out = run(
            Command::new("python3").arg(self.check_script()).args(args),
            timeout,
        )?;
        eprint!("{}", String::from_utf8_lossy(&out.stdout));
        expect_success(&format!("faults_check.py {}", args[0]), &out)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// The writer that keeps going through the fault.
struct Workload {
    child: Child,
    stop: PathBuf,
    progress: PathBuf,
    log: PathBuf,
}

impl Workload {
    fn start(s: &Scenario) -> Result<Self> {
        let stop = s.work.join("workload.stop");
        let progress = s.work.join("workload.progress");
        let log = s.work.join("workload.log");
        let out = std::fs::File::create(&log)?;
        let child = Command::new("python3")
            .arg(s.check_script())
            .args([
                "workload",
                &s.private.pg_url,
                &s.schema,
                stop.to_str().context("path")?,
                progress.to_str().context("path")?,
                &(std::process::id() % 1000).to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting the workload")?;
        Ok(Workload {
            child,
            stop,
            progress,
            log,
        })
    }

    /// Stop writing (until `resume`), after the transaction in progress.
    fn pause(&self) -> Result<()> {
        std::fs::write(self.stop.with_extension("stop.pause"), b"")?;
        std::thread::sleep(Duration::from_millis(500));
        Ok(())
    }

    fn resume(&self) -> Result<()> {
        std::fs::remove_file(self.stop.with_extension("stop.pause"))?;
        Ok(())
    }

    /// The last transaction the workload committed.
    fn committed(&self) -> u64 {
        std::fs::read_to_string(&self.progress)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    fn finish(mut self) -> Result<u64> {
        std::fs::write(&self.stop, b"")?;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = self.child.try_wait()? {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                eprint!("{log}");
                if !status.success() {
                    bail!("the workload failed ({status})");
                }
                return Ok(self.committed());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!("the workload did not stop");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.stop, b"");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a JSON fault scenario measured.
struct Outcome {
    restarts: usize,
}

/// Sets up the three tables, starts both pipelines and the workload, lets them stream, runs
/// `fault` (which returns once the fault is lifted), measures how long until both pipelines
/// caught up, lets the workload write a little more, stops everything and verifies both
/// pipelines' topics. `fault` gets the scenario, the running cdcql and the workload, and may
/// return a table whose topics it deleted together with the last transaction before that.
fn json_scenario(
    test: &str,
    extra_env: &[(&str, &str)],
    fault: impl FnOnce(&Scenario, &mut Cdcql, &Workload) -> Result<Option<(String, u64)>>,
    after: impl FnOnce(&Scenario) -> Result<()>,
) -> Result<Option<Outcome>> {
    let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let Some(private) = private_services(test)? else {
        return Ok(None);
    };
    let s = Scenario::new(
        private,
        "tests/e2e/faults_pipelines.sql",
        &["tx", "alo"],
        &["acct", "evt", "wlog"],
        extra_env,
    )?;
    s.python(
        &["setup", &s.private.pg_url, &s.schema],
        Duration::from_secs(120),
    )?;
    let mut cdcql = s.start()?;
    cdcql.wait_for_log("snapshot delivered; streaming", 2, Duration::from_secs(120))?;
    let workload = Workload::start(&s)?;
    std::thread::sleep(Duration::from_secs(4));
    wait_caught_up(
        &s.private.pg_url,
        &s.slots,
        &mut cdcql,
        Duration::from_secs(60),
    )?;
    let before_fault = workload.committed();
    let deleted = fault(&s, &mut cdcql, &workload)?;
    let during = workload.committed().saturating_sub(before_fault);
    eprintln!("{test}: the workload committed {during} transactions during the fault");
    let recovery = wait_caught_up(
        &s.private.pg_url,
        &s.slots,
        &mut cdcql,
        Duration::from_secs(300),
    )?;
    eprintln!("{test}: caught up {recovery:.1?} after the fault was lifted");
    std::thread::sleep(Duration::from_secs(3));
    let transactions = workload.finish()?;
    wait_caught_up(
        &s.private.pg_url,
        &s.slots,
        &mut cdcql,
        Duration::from_secs(300),
    )?;
    cdcql.interrupt(Duration::from_secs(120))?;
    let log = log_text(&cdcql);
    let restarts = most_restarts(&log);
    for (pipeline, mode) in [("tx", "exactly_once"), ("alo", "at_least_once")] {
        let mut args = vec![
            "verify".to_string(),
            s.private.pg_url.clone(),
            s.private.brokers.clone(),
            s.schema.clone(),
            format!("{}.{pipeline}", s.prefix),
            mode.to_string(),
        ];
        if let Some((table, since)) = &deleted {
            args.push(table.clone());
            args.push(since.to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        s.python(&args, Duration::from_secs(600)).with_context(|| {
            format!(
                "pipeline {pipeline}; cdcql's log:\n{}",
                tail(log.as_bytes())
            )
        })?;
    }
    if log.contains("panicked") {
        bail!("cdcql panicked:\n{}", tail(log.as_bytes()));
    }
    after(&s)?;
    eprintln!(
        "{test}: {transactions} source transactions, up to {restarts} restarts per pipeline, recovery {recovery:.1?}"
    );
    Ok(Some(Outcome { restarts }))
}

/// The private broker frozen with SIGSTOP; SIGCONT when dropped, whatever happened meanwhile.
struct Frozen;

impl Frozen {
    fn new() -> Result<Self> {
        ctl(&["pause", "broker"])?;
        Ok(Frozen)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if let Err(e) = ctl(&["resume", "broker"]) {
            eprintln!("warning: could not resume the private broker: {e:#}");
        }
    }
}

/// The most restarts one pipeline made (each logs one warning per restart).
fn most_restarts(log: &str) -> usize {
    let mut per_pipeline = std::collections::HashMap::new();
    for line in log.lines().filter(|l| l.contains(RESTARTING)) {
        let pipeline = line
            .split_whitespace()
            .find(|w| w.starts_with("pipeline="))
            .unwrap_or_default();
        *per_pipeline.entry(pipeline.to_string()).or_insert(0) += 1;
    }
    per_pipeline.into_values().max().unwrap_or(0)
}

/// A pipeline restarts once per backoff step at most (1, 2, 4, ... 30 s): no tight crash loop.
fn bounded_restarts(restarts: usize, fault: Duration) -> Result<()> {
    let limit = 6 + fault.as_secs() as usize / 30;
    if restarts > limit {
        bail!("{restarts} restarts of one pipeline for a {fault:?} fault: a crash loop (at most {limit} expected)");
    }
    Ok(())
}

/// The broker is stopped the way an operator stops one: its port and connections close, then
/// it saves its data (noida-db's `stop kafka`; a SIGTERM'd noida-db saves before it stops
/// answering and loses what it acknowledges meanwhile, see scripts/faults/services.sh).
/// The at-least-once pipeline keeps librdkafka's default timeouts (5 min): it rides out the
/// outage in the producer's queue. The transactional one gets a 20 s message timeout, shorter
/// than the outage, so it aborts and restarts with a new producer: the test broker forgets
/// open transactions when it restarts (noida-db's documented limit; Kafka keeps them), so a
/// transaction held open across the restart could not be committed there by any client.
#[test]
fn broker_stopped_and_restarted() -> Result<()> {
    let down = env_secs("CDCQL_FAULT_BROKER_DOWN_SECS", 60);
    let env = [("FAULTS_TX_MESSAGE_TIMEOUT_MS", "20000")];
    let outcome = json_scenario(
        "broker_stopped_and_restarted",
        &env,
        |s, cdcql, workload| {
            // The test broker (noida-db) forgets open transactions when it restarts, and then
            // answers the EndTxn of one that was open across the restart with success while
            // writing no commit markers (Kafka keeps them in __transaction_state): its records
            // would never become visible. So the broker stops while no Kafka transaction is
            // open — everything so far committed — and the workload goes on during the outage.
            workload.pause()?;
            wait_caught_up(&s.private.pg_url, &s.slots, cdcql, Duration::from_secs(60))?;
            std::thread::sleep(Duration::from_secs(1));
            let before = workload.committed();
            ctl(&["stop", "broker"])?;
            workload.resume()?;
            eprintln!("broker stopped for {down:?}");
            std::thread::sleep(down);
            cdcql.expect_running()?;
            if workload.committed() <= before {
                bail!("the workload wrote nothing while the broker was down");
            }
            ctl(&["start", "broker"])?;
            Ok(None)
        },
        |_| Ok(()),
    )?;
    if let Some(o) = outcome {
        bounded_restarts(o.restarts, down)?;
    }
    Ok(())
}

#[test]
fn postgres_restarted() -> Result<()> {
    let down = env_secs("CDCQL_FAULT_PG_DOWN_SECS", 10);
    let outcome = json_scenario(
        "postgres_restarted",
        &[],
        |_, cdcql, _| {
            let restarts_before = log_text(cdcql).matches(RESTARTING).count();
            ctl(&["stop", "pg"])?;
            eprintln!("postgres stopped for {down:?}");
            std::thread::sleep(down);
            cdcql.expect_running()?;
            ctl(&["start", "pg"])?;
            // The lost replication connections must have been noticed.
            cdcql.wait_for_log(RESTARTING, restarts_before + 2, Duration::from_secs(60))?;
            Ok(None)
        },
        |_| Ok(()),
    )?;
    if let Some(o) = outcome {
        bounded_restarts(o.restarts, down)?;
    }
    Ok(())
}

#[test]
fn topic_deleted_underneath() -> Result<()> {
    json_scenario(
        "topic_deleted_underneath",
        &[],
        |s, cdcql, workload| {
            let topics: Vec<String> = ["tx", "alo"]
                .iter()
                .map(|p| format!("{}.{p}.evt", s.prefix))
                .collect();
            let out = run(
                Command::new("python3")
                    .arg(root().join("tests/e2e/verify_snapshot.py"))
                    .args(["--brokers", &s.private.brokers, "--delete-topics"])
                    .args(&topics),
                Duration::from_secs(60),
            )?;
            expect_success("deleting the evt topics", &out)?;
            // Transactions committed from here on must all reach the new topics; +1: the
            // workload records a commit just after making it.
            let since = workload.committed() + 1;
            eprintln!("deleted {topics:?}; transactions after {since} must all arrive");
            std::thread::sleep(Duration::from_secs(20));
            cdcql.expect_running()?;
            Ok(Some(("evt".to_string(), since)))
        },
        |_| Ok(()),
    )?;
    Ok(())
}

#[test]
fn broker_frozen_longer_than_timeouts() -> Result<()> {
    let stall = env_secs("CDCQL_FAULT_STALL_SECS", 40);
    let outcome = json_scenario(
        "broker_frozen_longer_than_timeouts",
        &[
            ("FAULTS_MESSAGE_TIMEOUT_MS", "15000"),
            ("FAULTS_TX_MESSAGE_TIMEOUT_MS", "15000"),
            ("FAULTS_SOCKET_TIMEOUT_MS", "10000"),
        ],
        |_, cdcql, _| {
            let frozen = Frozen::new()?;
            eprintln!("broker frozen (SIGSTOP) for {stall:?}");
            std::thread::sleep(stall);
            let lifted = cdcql.expect_running();
            drop(frozen);
            lifted?;
            Ok(None)
        },
        |_| Ok(()),
    )?;
    if let Some(o) = outcome {
        bounded_restarts(o.restarts, stall)?;
    }
    Ok(())
}

#[test]
fn registry_down_at_start_and_mid_run() -> Result<()> {
    let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let Some(private) = private_services("registry_down_at_start_and_mid_run")? else {
        return Ok(());
    };
    let s = Scenario::new(
        private,
        "tests/e2e/faults_avro_pipelines.sql",
        &["rtx", "ralo"],
        &["reg"],
        &[],
    )?;
    let pg = s.private.pg_url.clone();
    let table = format!("\"{}\".reg", s.schema);
    s.python(&["avro-setup", &pg, &s.schema], Duration::from_secs(60))?;

    // Down at start: a clear message and exit code 1, not a wait of unknown length.
    ctl(&["stop", "registry"])?;
    let result = (|| {
        let mut cdcql = s.start_logging_to("cdcql-registry-down.log")?;
        let started = Instant::now();
        let status = cdcql.wait_exit(Duration::from_secs(120))?;
        let log = log_text(&cdcql);
        eprintln!(
            "registry down at start: exit {status} after {:.1?}",
            started.elapsed()
        );
        if status.code() != Some(1) {
            bail!("cdcql exited with {status}, not 1, with the registry down at start:\n{log}");
        }
        if !log.contains(&format!("schema registry {}: gave up", s.private.registry)) {
            bail!("no clear message naming the registry with it down at start:\n{log}");
        }
        let left: Vec<String> = replication_slots(&s.private.pg_url)?
            .into_iter()
            .filter(|slot| s.slots.contains(slot))
            .collect();
        if !left.is_empty() {
            bail!("a start that failed left replication slots behind: {left:?}");
        }
        anyhow::Ok(())
    })();
    ctl(&["start", "registry"])?;
    result?;

    // Down mid-run: streaming goes on with the schemas it has; a schema change waits for
    // the registry (retrying), then carries on.
    let mut cdcql = s.start()?;
    cdcql.wait_for_log("snapshot delivered; streaming", 2, Duration::from_secs(120))?;
    let insert = |from: u32, to: u32, extra: bool| {
        let sql = if extra {
            format!("INSERT INTO {table} SELECT g, 'row' || g, g * 10 FROM generate_series({from}, {to}) g")
        } else {
            format!("INSERT INTO {table} SELECT g, 'row' || g FROM generate_series({from}, {to}) g")
        };
        psql(&pg, &sql)
    };
    insert(101, 200, false)?;
    wait_caught_up(&pg, &s.slots, &mut cdcql, Duration::from_secs(60))?;
    ctl(&["stop", "registry"])?;
    insert(201, 300, false)?;
    psql(
        &pg,
        &format!("UPDATE {table} SET v = v || '!' WHERE id % 7 = 0"),
    )?;
    let took = wait_caught_up(&pg, &s.slots, &mut cdcql, Duration::from_secs(60))?;
    eprintln!("registry down, no schema change: caught up in {took:.1?}");
    let restarts_before = log_text(&cdcql).matches(RESTARTING).count();
    psql(&pg, &format!("ALTER TABLE {table} ADD COLUMN extra int"))?;
    insert(301, 400, true)?;
    cdcql.wait_for_log(RESTARTING, restarts_before + 2, Duration::from_secs(60))?;
    std::thread::sleep(Duration::from_secs(15));
    cdcql.expect_running()?;
    ctl(&["start", "registry"])?;
    let recovery = wait_caught_up(&pg, &s.slots, &mut cdcql, Duration::from_secs(120))?;
    eprintln!("registry back: caught up {recovery:.1?} later");
    insert(401, 450, true)?;
    psql(
        &pg,
        &format!("UPDATE {table} SET extra = -id WHERE id % 5 = 0"),
    )?;
    wait_caught_up(&pg, &s.slots, &mut cdcql, Duration::from_secs(60))?;
    cdcql.interrupt(Duration::from_secs(60))?;
    let log = log_text(&cdcql);
    bounded_restarts(most_restarts(&log), Duration::from_secs(30))?;
    for p in ["rtx", "ralo"] {
        s.python(
            &[
                "avro-verify",
                &pg,
                &s.private.brokers,
                &s.private.registry,
                &s.schema,
                &format!("{}.{p}.reg", s.prefix),
            ],
            Duration::from_secs(300),
        )
        .with_context(|| format!("pipeline {p}; cdcql's log:\n{}", tail(log.as_bytes())))?;
    }
    Ok(())
}

/// Counts the records in a topic, committed or not (the sum of its high watermarks).
struct TopicEnd {
    consumer: rdkafka::consumer::BaseConsumer,
    topic: String,
    partitions: Vec<i32>,
}

impl TopicEnd {
    fn new(brokers: &str, topic: &str) -> Result<Self> {
        use rdkafka::consumer::Consumer;
        // read_uncommitted: otherwise the "high watermark" is the last stable offset, which
        // an open transaction does not move.
        let consumer: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("isolation.level", "read_uncommitted")
            .create()?;
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        let partitions = metadata
            .topics()
            .iter()
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        Ok(TopicEnd {
            consumer,
            topic: topic.to_string(),
            partitions,
        })
    }

    fn now(&self) -> Result<i64> {
        use rdkafka::consumer::Consumer;
        let mut sum = 0;
        for p in &self.partitions {
            sum += self
                .consumer
                .fetch_watermarks(&self.topic, *p, Duration::from_secs(10))?
                .1;
        }
        Ok(sum)
    }
}

/// Issue #5, "Aborts": a broker failure in the middle of a Kafka transaction. A source
/// transaction of 100,000 rows streams into one open Kafka transaction; once part of it is in
/// the broker, the broker freezes for CDCQL_FAULT_ABORT_STALL_SECS (30), longer than the
/// message timeout (15 s here). The transactional pipeline must abort and redo it: read_committed
/// consumers see it once and whole, and the records of the failed attempt stay hidden (they are
/// in the topic: read_uncommitted shows them).
#[test]
fn broker_frozen_mid_transaction() -> Result<()> {
    let stall = env_secs("CDCQL_FAULT_ABORT_STALL_SECS", 30);
    let big_txn: u64 = 1_000_000;
    let outcome = json_scenario(
        "broker_frozen_mid_transaction",
        &[
            ("FAULTS_MESSAGE_TIMEOUT_MS", "15000"),
            ("FAULTS_TX_MESSAGE_TIMEOUT_MS", "15000"),
            ("FAULTS_SOCKET_TIMEOUT_MS", "10000"),
        ],
        |s, cdcql, _| {
            let end = TopicEnd::new(&s.private.brokers, &format!("{}.tx.evt", s.prefix))?;
            let before = end.now()?;
            let schema = &s.schema;
            psql(
                &s.private.pg_url,
                &format!(
                    "BEGIN; \
                     UPDATE \"{schema}\".acct SET bal = bal + 1, txn = {big_txn} WHERE id <= 1000; \
                     INSERT INTO \"{schema}\".evt (txn, amount) \
                       SELECT {big_txn}, g FROM generate_series(1, 99000) g; \
                     INSERT INTO \"{schema}\".wlog VALUES ({big_txn}, 1000, 99000); \
                     COMMIT"
                ),
            )?;
            // Freeze once part of the big transaction is in the broker.
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                if end.now()? - before > 3000 {
                    break;
                }
                if Instant::now() > deadline {
                    bail!(
                        "the big transaction did not reach the broker:\n{}",
                        cdcql.log_tail()
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let frozen = Frozen::new()?;
            eprintln!("broker frozen mid-transaction for {stall:?}");
            std::thread::sleep(stall);
            let lifted = cdcql.expect_running();
            drop(frozen);
            lifted?;
            Ok(None)
        },
        // The verification found the big transaction once and whole; its first attempt must
        // have been aborted (not just waited out), and be hidden.
        |s| {
            let topic = format!("{}.tx.evt", s.prefix);
            let text = s.python(
                &["aborted", &s.private.brokers, &topic],
                Duration::from_secs(600),
            )?;
            let aborted: i64 = text
                .lines()
                .find_map(|l| l.strip_prefix("aborted="))
                .and_then(|n| n.trim().parse().ok())
                .context("faults_check.py aborted printed no count")?;
            if aborted <= 0 {
                bail!("no aborted records in {topic}: the fault did not land inside a Kafka transaction");
            }
            Ok(())
        },
    )?;
    if let Some(o) = outcome {
        bounded_restarts(o.restarts, stall)?;
    }
    Ok(())
}

/// The one fatal producer error that must stop a pipeline: another writer took its
/// `transactional.id` (fenced it). cdcql exits with code 1 and says so, without retrying.
#[test]
fn fenced_by_another_writer_stops() -> Result<()> {
    let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let Some(private) = private_services("fenced_by_another_writer_stops")? else {
        return Ok(());
    };
    let s = Scenario::new(
        private,
        "tests/e2e/faults_pipelines.sql",
        &["tx", "alo"],
        &["acct", "evt", "wlog"],
        &[],
    )?;
    // The transactional pipeline alone, so that its failure ends the process.
    let text = std::fs::read_to_string(&s.file)?;
    let cut = text
        .find("CREATE PIPELINE alo")
        .context("no pipeline alo in the template")?;
    std::fs::write(&s.file, &text[..cut])?;
    s.python(
        &["setup", &s.private.pg_url, &s.schema],
        Duration::from_secs(120),
    )?;
    let mut cdcql = s.start()?;
    cdcql.wait_for_log("snapshot delivered; streaming", 1, Duration::from_secs(120))?;
    let fence = format!(
        "from confluent_kafka import Producer\n\
         p = Producer({{'bootstrap.servers': '{}', 'transactional.id': 'cdcql-{}'}})\n\
         p.init_transactions(30)\n",
        s.private.brokers, s.slots[0]
    );
    let out = run(
        Command::new("python3").args(["-c", &fence]),
        Duration::from_secs(60),
    )?;
    expect_success(
        "a second producer with the pipeline's transactional.id",
        &out,
    )?;
    psql(
        &s.private.pg_url,
        &format!("INSERT INTO \"{}\".wlog VALUES (1, 0, 0)", s.schema),
    )?;
    let status = cdcql.wait_exit(Duration::from_secs(120))?;
    let log = log_text(&cdcql);
    if status.code() != Some(1) || !log.contains("ERROR failed: ") || !log.contains("fenced") {
        bail!("a fenced pipeline must stop with exit code 1 and say why ({status}):\n{log}");
    }
    if most_restarts(&log) > 0 {
        bail!("a fenced pipeline was restarted:\n{log}");
    }
    Ok(())
}
