//! Exactly once across crashes: a workload of 2,000 source transactions (1 to 10,000 rows,
//! four tables each, one without a primary key) runs while `cdcql apply` (transactional = true, a parallel chunked
//! snapshot) is killed with SIGKILL at random moments, at least 20 times, during the snapshot
//! and during streaming, and restarted each time. A read_committed consumer
//! (tests/e2e/exactly_once_check.py) then checks that every source transaction appears exactly
//! once and whole, in commit order per key, that no snapshot row is read twice, and that each
//! topic's compacted view equals its table.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use support::*;

/// A small deterministic generator, so a failing run can be repeated with its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn between_ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo))
    }
}

#[test]
fn exactly_once_through_sigkill() -> Result<()> {
    let Some((pg_url, brokers)) = services("e2e_exactly_once")? else {
        return Ok(());
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let check = root.join("tests/e2e/exactly_once_check.py");
    let prefix = unique_prefix();
    let schema = prefix.clone();
    let seed = std::env::var("CDCQL_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64 | 1)
                .unwrap_or(0x9e37_79b9)
        });
    eprintln!("crash test seed: {seed} (set CDCQL_CRASH_SEED to repeat)");
    let mut rng = Rng(seed);
    // The first kills are aimed at the snapshot (each run resumes at its first unfinished
    // chunk); CDCQL_CRASH_SNAPSHOT_KILLS changes how many.
    let snapshot_kills: u32 = std::env::var("CDCQL_CRASH_SNAPSHOT_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let work = std::env::temp_dir().join(&prefix);
    std::fs::create_dir_all(&work)?;
    let file = work.join("pipelines.sql");
    let template = std::fs::read_to_string(root.join("tests/e2e/exactly_once_pipelines.sql"))?;
    std::fs::write(
        &file,
        template.replace("__SCHEMA__", &format!("\"{schema}\"")),
    )?;
    let env = [
        ("E2E_PREFIX", prefix.as_str()),
        ("PG_URL", pg_url.as_str()),
        ("KAFKA_BROKERS", brokers.as_str()),
    ];
    let _cleanup = Cleanup {
        pg_url: pg_url.clone(),
        brokers: brokers.clone(),
        topics: ["acct", "evt", "wlog", "bag", "offsets"]
            .iter()
            .map(|t| format!("{prefix}.{t}"))
            .collect(),
        slots_before: replication_slots(&pg_url)?,
        sql: vec![
            format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"),
            format!("DROP PUBLICATION IF EXISTS {prefix}"),
        ],
    };

    let out = run(
        Command::new("python3")
            .arg(&check)
            .args(["setup", &pg_url, &schema]),
        Duration::from_secs(300),
    )?;
    expect_success("exactly_once_check.py setup", &out)?;

    let mut workload = Command::new("python3")
        .arg(&check)
        .args([
            "workload",
            &pg_url,
            &schema,
            "2000",
            &(seed % 1000).to_string(),
        ])
        .stdin(Stdio::null())
        .spawn()
        .context("starting the workload")?;

    let log = work.join("cdcql.log");
    let mut kills = 0;
    let mut during_snapshot = 0;
    let started = Instant::now();
    let mut cdcql = Cdcql::start(root, &file, &env, log.clone())?;
    loop {
        let workload_done = workload.try_wait()?.is_some();
        if kills >= 20 && workload_done && kills - during_snapshot >= 5 {
            break;
        }
        if started.elapsed() > Duration::from_secs(900) {
            bail!("the crash loop did not finish in 15 minutes ({kills} kills)");
        }
        // The first kills land in the snapshot (each resumes at its first unfinished chunk);
        // after those the snapshot is let finish, and the rest land in streaming.
        let delivered = |log: &Path| {
            String::from_utf8_lossy(&std::fs::read(log).unwrap_or_default())
                .contains("snapshot delivered; streaming")
        };
        if kills < snapshot_kills {
            std::thread::sleep(rng.between_ms(400, 2500));
        } else {
            if !delivered(&log) {
                cdcql.wait_for_log("snapshot delivered; streaming", 1, Duration::from_secs(600))?;
            }
            std::thread::sleep(rng.between_ms(300, 2500));
        }
        if !delivered(&log) {
            during_snapshot += 1;
        }
        cdcql.kill9()?;
        kills += 1;
        cdcql = Cdcql::start(root, &file, &env, log.clone())?;
    }
    let status = workload.wait()?;
    if !status.success() {
        bail!("workload failed: {status}");
    }
    eprintln!("{kills} SIGKILLs, {during_snapshot} of them before the snapshot was delivered");

    // Let it catch up with the end of the workload, then stop it cleanly.
    let target = psql(&pg_url, "SELECT pg_current_wal_lsn()")?
        .trim()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        cdcql.expect_running()?;
        let caught_up = psql(
            &pg_url,
            &format!(
                "SELECT coalesce(bool_or(confirmed_flush_lsn >= '{target}'::pg_lsn), false) \
                 FROM pg_replication_slots WHERE slot_name = '{prefix}'"
            ),
        )?;
        if caught_up.trim() == "t" {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "cdcql did not catch up within 5 minutes:\n{}",
                cdcql.log_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    cdcql.interrupt(Duration::from_secs(60))?;

    let verify = run(
        Command::new("python3")
            .arg(&check)
            .args(["verify", &pg_url, &brokers, &schema, &prefix]),
        Duration::from_secs(900),
    )?;
    eprint!("{}", String::from_utf8_lossy(&verify.stdout));
    expect_success("exactly_once_check.py verify", &verify)?;
    if snapshot_kills > 0 && during_snapshot == 0 {
        bail!("no SIGKILL landed during the snapshot; the test did not exercise resuming it");
    }
    let out = run(
        Command::new(env!("CARGO_BIN_EXE_cdcql"))
            .arg("drop")
            .arg(&file)
            .arg("eo")
            .envs(env),
        Duration::from_secs(60),
    )?;
    expect_success("cdcql drop eo", &out)?;
    Ok(())
}
