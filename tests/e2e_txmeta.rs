//! End to end, transaction metadata (`transaction_metadata = true`, with `transactional =
//! true`), in JSON with schemas and in Avro with the schema registry: source transactions over
//! two tables (one with a WHERE), transactions that produce no event, a transaction larger
//! than a batch, and bursts of small ones that are handed on together; cdcql is killed with
//! SIGKILL while a workload runs and restarted. Then an independent read_committed consumer
//! (tests/e2e/txmeta_check.py: Confluent's client, its AvroDeserializer, psycopg) checks for
//! every source transaction one BEGIN and one END with the right counts, gap-free orders and
//! Debezium's ids, and none for transactions without events.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Result};
use support::*;

#[test]
fn transaction_metadata_json_and_avro_across_a_crash() -> Result<()> {
    let Some((pg_url, brokers)) = services("e2e_txmeta")? else {
        return Ok(());
    };
    let Some(registry) = registry("e2e_txmeta")? else {
        return Ok(());
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let check = root.join("tests/e2e/txmeta_check.py");
    let prefix = unique_prefix();
    let schema = prefix.clone();
    let work = std::env::temp_dir().join(&prefix);
    std::fs::create_dir_all(&work)?;
    let template = std::fs::read_to_string(root.join("tests/e2e/txmeta_pipelines.sql"))?;
    let file = work.join("pipelines.sql");
    std::fs::write(
        &file,
        template.replace("__SCHEMA__", &format!("\"{schema}\"")),
    )?;
    let env = [
        ("E2E_PREFIX", prefix.as_str()),
        ("PG_URL", pg_url.as_str()),
        ("KAFKA_BROKERS", brokers.as_str()),
        ("SCHEMA_REGISTRY_URL", registry.as_str()),
    ];
    let json_txns = format!("{prefix}.json.transaction");
    let avro_txns = format!("{prefix}.avro.txns");
    let _cleanup = Cleanup {
        pg_url: pg_url.clone(),
        brokers: brokers.clone(),
        topics: ["json.a", "json.b", "avro.a", "avro.b"]
            .iter()
            .map(|t| format!("{prefix}.{t}"))
            .chain([json_txns.clone(), avro_txns.clone()])
            .collect(),
        slots_before: replication_slots(&pg_url)?,
        sql: vec![
            format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"),
            format!("DROP PUBLICATION IF EXISTS {prefix}_json"),
            format!("DROP PUBLICATION IF EXISTS {prefix}_avro"),
        ],
    };
    python(
        &check,
        &["setup", &pg_url, &schema],
        Duration::from_secs(120),
    )?;

    let log = work.join("cdcql.log");
    let expected = work.join("expected.jsonl");
    let expected = expected.to_string_lossy().to_string();
    let mut cdcql = Cdcql::start(root, &file, &env, log.clone())?;
    cdcql.wait_for_log("snapshot delivered; streaming", 2, Duration::from_secs(120))?;
    python(
        &check,
        &[
            "workload", &pg_url, &schema, &expected, "1", "--large", "12000",
        ],
        Duration::from_secs(300),
    )?;

    // Killed while a workload runs: what read_committed consumers see must still hold each
    // source transaction once, whole, with one BEGIN and one END.
    let mut workload = spawn_python(
        &check,
        &[
            "workload", &pg_url, &schema, &expected, "2", "--large", "20000",
        ],
    )?;
    std::thread::sleep(Duration::from_millis(1200));
    cdcql.kill9()?;
    std::thread::sleep(Duration::from_millis(1000));
    let mut cdcql = Cdcql::start(root, &file, &env, log.clone())?;
    if !workload.wait()?.success() {
        bail!("workload 2 failed");
    }
    python(
        &check,
        &["workload", &pg_url, &schema, &expected, "3"],
        Duration::from_secs(300),
    )?;
    std::thread::sleep(Duration::from_secs(4));
    cdcql.interrupt(Duration::from_secs(60))?;
    eprintln!("cdcql log tail:\n{}", cdcql.log_tail());

    for (format, data, txns) in [
        ("json", format!("{prefix}.json"), &json_txns),
        ("avro", format!("{prefix}.avro"), &avro_txns),
    ] {
        python(
            &check,
            &[
                "verify", &brokers, &registry, &schema, &data, txns, format, &expected,
            ],
            Duration::from_secs(600),
        )?;
    }

    for p in ["txmeta_json", "txmeta_avro"] {
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
    Ok(())
}
