//! End to end, streaming: a workload changes tables while cdcql snapshots them, keeps changing
//! them while cdcql streams, while it is killed with SIGKILL and restarted, and through
//! ADD COLUMN; then cdcql is stopped with SIGINT and an independent consumer
//! (tests/e2e/stream_check.py: Confluent's client + psycopg) checks that each topic's
//! compacted view equals its table, that every row's versions arrive in order with no gap
//! (nothing lost) and no repeat beyond exact replays, that rows moving across a WHERE become
//! creates and deletes, that unchanged TOASTed values are right, and the 100k-row transaction.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Result};
use support::*;

#[test]
fn stream_handoff_filters_toast_kill9_and_ddl() -> Result<()> {
    let Some((pg_url, brokers)) = services("e2e_stream")? else {
        return Ok(());
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let check = root.join("tests/e2e/stream_check.py");
    let prefix = unique_prefix();
    let schema = prefix.clone();
    let work = std::env::temp_dir().join(&prefix);
    std::fs::create_dir_all(&work)?;
    let template = std::fs::read_to_string(root.join("tests/e2e/stream_pipelines.sql"))?;
    let file = work.join("pipelines.sql");
    std::fs::write(
        &file,
        template.replace("__SCHEMA__", &format!("\"{schema}\"")),
    )?;
    let env = [
        ("E2E_PREFIX", prefix.as_str()),
        ("E2E_SLOT", prefix.as_str()),
        ("PG_URL", pg_url.as_str()),
        ("KAFKA_BROKERS", brokers.as_str()),
    ];
    let _cleanup = Cleanup {
        pg_url: pg_url.clone(),
        brokers: brokers.clone(),
        topics: ["items", "bulk", "toast_default", "f.items"]
            .iter()
            .map(|t| format!("{prefix}.{t}"))
            .chain([format!("__debezium-heartbeat.{prefix}")])
            .collect(),
        slots_before: replication_slots(&pg_url)?,
        sql: vec![
            format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"),
            format!("DROP PUBLICATION IF EXISTS {prefix}_all"),
            format!("DROP PUBLICATION IF EXISTS {prefix}_f"),
        ],
    };

    python(
        &check,
        &["setup", &pg_url, &schema],
        Duration::from_secs(300),
    )?;

    // The workload starts first and runs through the snapshot: the handoff must neither lose
    // nor repeat anything that commits while the snapshot is read.
    let mut workload = spawn_python(&check, &["workload", &pg_url, &schema, "8", "1"])?;
    std::thread::sleep(Duration::from_millis(300));
    let log = work.join("cdcql.log");
    let mut cdcql = Cdcql::start(root, &file, &env, log.clone())?;
    let status = workload.wait()?;
    if !status.success() {
        bail!("workload failed: {status}");
    }
    std::thread::sleep(Duration::from_secs(2));

    // Crash in the middle of a workload; changes made before the crash but not yet
    // acknowledged, and those made while it is down, must arrive after the restart.
    let mut workload = spawn_python(&check, &["workload", &pg_url, &schema, "5", "2"])?;
    std::thread::sleep(Duration::from_millis(1500));
    cdcql.kill9()?;
    std::thread::sleep(Duration::from_millis(1500));
    let mut cdcql = Cdcql::start(root, &file, &env, log.clone())?;
    if !workload.wait()?.success() {
        bail!("workload 2 failed");
    }
    // A 100k-row transaction while streaming, then more small ones.
    python(
        &check,
        &["workload", &pg_url, &schema, "3", "3", "--bulk"],
        Duration::from_secs(300),
    )?;

    // Schema change while streaming: the pipeline re-plans and keeps going.
    python(&check, &["ddl", &pg_url, &schema], Duration::from_secs(60))?;
    std::thread::sleep(Duration::from_secs(4));
    cdcql.interrupt(Duration::from_secs(60))?;
    eprintln!("cdcql log tail:\n{}", cdcql.log_tail());

    python(
        &check,
        &["verify", &pg_url, &brokers, &schema, &prefix],
        Duration::from_secs(600),
    )?;

    // `cdcql drop` removes what apply created.
    for p in ["stream_all", "stream_filtered"] {
        let out = run(
            Command::new(env!("CARGO_BIN_EXE_cdcql"))
                .arg("drop")
                .arg(&file)
                .arg(p)
                .envs(env),
            Duration::from_secs(60),
        )?;
        expect_success(&format!("cdcql drop {p}"), &out)?;
    }
    let slots = replication_slots(&pg_url)?;
    if slots.iter().any(|s| s.starts_with(&prefix)) {
        bail!("cdcql drop left slots behind: {slots:?}");
    }
    Ok(())
}
