//! End to end with Avro and the schema registry: a table is snapshotted and streamed with
//! `FORMAT AVRO` in the Debezium and the native envelope; Confluent's Python
//! `AvroDeserializer` + `SchemaRegistryClient` (tests/e2e/avro_check.py) decodes every message
//! and compares the compacted view with the table. Then: a re-run registers nothing new, and
//! an incompatible change under BACKWARD stops the pipeline with the registry's reason,
//! without acknowledging the change.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Result};
use support::*;

const SETUP: &str = "
CREATE SCHEMA __SCHEMA__;
CREATE TABLE __SCHEMA__.items (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2),
  qty int, ts timestamptz, flag bool, data bytea, meta jsonb, u uuid, n numeric);
INSERT INTO __SCHEMA__.items SELECT g, 'item ' || g, g * 1.25, g % 7,
  timestamptz '2024-01-15 10:30:00.123456+00' + g * interval '1 minute', g % 2 = 0,
  decode(lpad(to_hex(g), 4, '0'), 'hex'), jsonb_build_object('g', g),
  md5(g::text)::uuid, g / 7.0 FROM generate_series(1, 200) g;
";

const CHANGES: &str = "
INSERT INTO __SCHEMA__.items VALUES (1000, 'new', 9.99, 1, now(), true, '\\x00ff', '{\"a\":[1,2]}', gen_random_uuid(), -12.5e-3);
UPDATE __SCHEMA__.items SET price = price + 1, name = name || ' (updated)' WHERE id <= 20;
UPDATE __SCHEMA__.items SET n = NULL, meta = NULL WHERE id = 21;
DELETE FROM __SCHEMA__.items WHERE id BETWEEN 30 AND 35;
";

#[test]
fn avro_with_registry_debezium_and_native() -> Result<()> {
    let Some((pg_url, brokers)) = services("e2e_avro")? else {
        return Ok(());
    };
    let Some(registry) = registry("e2e_avro")? else {
        return Ok(());
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let check = root.join("tests/e2e/avro_check.py");
    let prefix = unique_prefix();
    let schema = prefix.clone();
    let sub = |s: &str| s.replace("__SCHEMA__", &format!("\"{schema}\""));
    let work = std::env::temp_dir().join(&prefix);
    std::fs::create_dir_all(&work)?;
    let file = work.join("pipelines.sql");
    std::fs::write(
        &file,
        sub(&std::fs::read_to_string(
            root.join("tests/e2e/avro_pipelines.sql"),
        )?),
    )?;
    let env = [
        ("E2E_PREFIX", prefix.as_str()),
        ("PG_URL", pg_url.as_str()),
        ("KAFKA_BROKERS", brokers.as_str()),
        ("SCHEMA_REGISTRY_URL", registry.as_str()),
    ];
    let _cleanup = Cleanup {
        pg_url: pg_url.clone(),
        brokers: brokers.clone(),
        topics: vec![format!("{prefix}.dbz.items"), format!("{prefix}.nat.items")],
        slots_before: replication_slots(&pg_url)?,
        sql: vec![
            format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"),
            format!("DROP PUBLICATION IF EXISTS {prefix}_dbz"),
            format!("DROP PUBLICATION IF EXISTS {prefix}_nat"),
        ],
    };
    psql(&pg_url, &sub(SETUP))?;

    let log = work.join("cdcql.log");
    let mut cdcql = Cdcql::start(root, &file, &env, log.clone())?;
    cdcql.wait_for_log("snapshot delivered; streaming", 2, Duration::from_secs(120))?;
    psql(&pg_url, &sub(CHANGES))?;
    std::thread::sleep(Duration::from_secs(3));
    cdcql.interrupt(Duration::from_secs(60))?;

    let verify = run(
        Command::new("python3")
            .arg(&check)
            .args(["verify", &brokers, &registry, &pg_url, &schema, &prefix]),
        Duration::from_secs(300),
    )?;
    eprint!("{}", String::from_utf8_lossy(&verify.stdout));
    expect_success("avro_check.py verify", &verify)?;

    // A second run with the same schemas: lookups only, no new versions.
    let subjects = [
        format!("{prefix}.dbz.items-key"),
        format!("{prefix}.dbz.items-value"),
        format!("{prefix}.nat.items-{prefix}.nat.items.Key"),
        format!("{prefix}.nat.items-{prefix}.nat.items.Value"),
    ];
    let mut cdcql = Cdcql::start(root, &file, &env, log.clone())?;
    cdcql.wait_for_log("starting (slot", 4, Duration::from_secs(60))?;
    std::thread::sleep(Duration::from_secs(3));
    cdcql.interrupt(Duration::from_secs(60))?;
    let versions = run(
        Command::new("python3")
            .arg(&check)
            .arg("versions")
            .arg(&registry)
            .args(&subjects),
        Duration::from_secs(60),
    )?;
    expect_success("avro_check.py versions", &versions)?;
    let text = String::from_utf8_lossy(&versions.stdout);
    for s in &subjects {
        if !text.lines().any(|l| l == format!("{s} 1")) {
            bail!("subject {s} should still have exactly one version after a re-run:\n{text}");
        }
    }

    // A NOT NULL column makes the value schema gain a required field: incompatible under
    // BACKWARD. The pipeline must stop, name the subject and the level, and not acknowledge.
    psql(
        &pg_url,
        &sub("ALTER TABLE __SCHEMA__.items ADD COLUMN must int NOT NULL DEFAULT 0"),
    )?;
    let mut cdcql = Cdcql::start(root, &file, &env, log.clone())?;
    let lsn_before = psql(&pg_url, "SELECT pg_current_wal_lsn()")?
        .trim()
        .to_string();
    psql(
        &pg_url,
        &sub("UPDATE __SCHEMA__.items SET qty = 99 WHERE id = 1"),
    )?;
    let status = cdcql.wait_exit(Duration::from_secs(60))?;
    let log_text = cdcql.log_tail();
    if status.success() {
        bail!("an incompatible schema change must stop the pipeline:\n{log_text}");
    }
    for needle in [format!("{prefix}.dbz.items-value"), "BACKWARD".to_string()] {
        if !log_text.contains(&needle) {
            bail!("the error should name {needle}:\n{log_text}");
        }
    }
    let unacked = psql(
        &pg_url,
        &format!(
            "SELECT confirmed_flush_lsn <= '{lsn_before}'::pg_lsn FROM pg_replication_slots \
             WHERE slot_name = '{prefix}_dbz'"
        ),
    )?;
    if unacked.trim() != "t" {
        bail!("the slot moved past the change that could not be written (confirmed_flush_lsn > {lsn_before})");
    }
    for p in ["avro_dbz", "avro_native"] {
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
