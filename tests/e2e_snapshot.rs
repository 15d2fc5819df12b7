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

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use support::*;

#[test]
fn snapshot_reaches_kafka_in_debezium_json() -> Result<()> {
    let Some((pg_url, brokers)) = services("e2e_snapshot")? else {
        return Ok(());
    };

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
        sql: Vec::new(),
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
