//! Never two writers: while `cdcql apply` runs a transactional pipeline, a second process for
//! the same pipeline refuses to start (its replication slot is in use), says why, and leaves
//! the first one running; the first still stops cleanly.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Result};
use support::*;

#[test]
fn a_second_process_for_the_same_pipeline_refuses_to_start() -> Result<()> {
    let Some((pg_url, brokers)) = services("e2e_fencing")? else {
        return Ok(());
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let prefix = unique_prefix();
    let work = std::env::temp_dir().join(&prefix);
    std::fs::create_dir_all(&work)?;
    let file = work.join("pipelines.sql");
    std::fs::write(
        &file,
        format!(
            "CREATE CONNECTION pg TO POSTGRES (url = '{pg_url}');\n\
             CREATE CONNECTION bus TO KAFKA (brokers = '{brokers}');\n\
             CREATE PIPELINE fence FROM pg INTO bus TOPIC '{prefix}.{{table}}' FORMAT JSON ENVELOPE DEBEZIUM\n\
             WITH (transactional = true, slot_name = '{prefix}', publication_name = '{prefix}',\n\
                   offsets_topic = '{prefix}.offsets')\n\
             TABLES (\"{prefix}\".t);\n"
        ),
    )?;
    let _cleanup = Cleanup {
        pg_url: pg_url.clone(),
        brokers: brokers.clone(),
        topics: vec![format!("{prefix}.t"), format!("{prefix}.offsets")],
        slots_before: replication_slots(&pg_url)?,
        sql: vec![
            format!("DROP SCHEMA IF EXISTS \"{prefix}\" CASCADE"),
            format!("DROP PUBLICATION IF EXISTS {prefix}"),
        ],
    };
    psql(
        &pg_url,
        &format!(
            "CREATE SCHEMA \"{prefix}\"; CREATE TABLE \"{prefix}\".t (id int PRIMARY KEY, v text); \
             INSERT INTO \"{prefix}\".t SELECT g, 'v' || g FROM generate_series(1, 100) g"
        ),
    )?;
    let mut first = Cdcql::start(root, &file, &[], work.join("first.log"))?;
    first.wait_for_log("snapshot delivered; streaming", 1, Duration::from_secs(120))?;

    let second = run(
        Command::new(env!("CARGO_BIN_EXE_cdcql"))
            .arg("apply")
            .arg(&file),
        Duration::from_secs(60),
    )?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&second.stdout),
        String::from_utf8_lossy(&second.stderr)
    );
    if second.status.success() || !text.contains("in use by another process") {
        bail!("the second process should refuse to start because the slot is in use:\n{text}");
    }
    first.expect_running()?;
    psql(
        &pg_url,
        &format!("INSERT INTO \"{prefix}\".t VALUES (1000, 'after')"),
    )?;
    std::thread::sleep(Duration::from_secs(2));
    first.interrupt(Duration::from_secs(60))?;
    let out = run(
        Command::new(env!("CARGO_BIN_EXE_cdcql"))
            .arg("drop")
            .arg(&file)
            .arg("fence"),
        Duration::from_secs(60),
    )?;
    expect_success("cdcql drop fence", &out)?;
    Ok(())
}
