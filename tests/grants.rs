//! Least privilege, against the real Postgres: cdcql runs as a role made in the test, with
//! exactly the rights README "Required grants" lists, then with one of them missing.
//! - no REPLICATION attribute → the error names the user and `ALTER ROLE ... WITH REPLICATION`;
//! - no USAGE on the schema → the error names the schema and the GRANT;
//! - no SELECT on a table (streaming, and `--snapshot-only`) → the error names the table and
//!   `GRANT SELECT ON ... TO ...`;
//! - not the tables' owner and no publication → the error says who owns them and gives the
//!   `CREATE PUBLICATION` an administrator can run;
//! - not the owner, with that publication pre-created (`publication_name`) → the pipeline
//!   snapshots and streams a change; `cdcql drop` removes the slot and keeps the publication.
//!
//! Roles, schema and publication have unique names and are dropped at the end.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use support::*;

/// `postgres://user@host:port/db` with another user.
fn as_user(pg_url: &str, user: &str) -> String {
    let (scheme, rest) = pg_url.split_once("://").unwrap_or(("postgres", pg_url));
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{user}@{host}")
}

struct Run {
    code: Option<i32>,
    text: String,
}

fn cdcql(file: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<Run> {
    let out = run(
        Command::new(env!("CARGO_BIN_EXE_cdcql"))
            .args(args)
            .arg(file)
            .envs(env.iter().copied()),
        Duration::from_secs(90),
    )?;
    Ok(Run {
        code: out.status.code(),
        text: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    })
}

/// The run must fail (exit 1) with every one of `needles` in its output.
fn expect_refused(what: &str, r: &Run, needles: &[&str]) -> Result<()> {
    eprintln!("grants: {what}:\n{}", r.text.trim());
    if r.code != Some(1) {
        bail!(
            "{what}: expected exit code 1, got {:?}:\n{}",
            r.code,
            r.text
        );
    }
    for n in needles {
        if !r.text.contains(n) {
            bail!("{what}: the error does not contain `{n}`:\n{}", r.text);
        }
    }
    Ok(())
}

#[test]
fn minimal_grants_and_clear_errors() -> Result<()> {
    let Some((pg_url, brokers)) = services("grants")? else {
        return Ok(());
    };
    let prefix = unique_prefix();
    let schema = format!("{prefix}_s");
    let role = format!("{prefix}_cdc");
    let publication = format!("{prefix}_pub");
    let slot = format!("{prefix}_slot");
    let topic = format!("{prefix}.items");
    let offsets = format!("{prefix}_offsets");
    let work = std::env::temp_dir().join(&prefix);
    std::fs::create_dir_all(&work)?;
    let _cleanup = Cleanup {
        pg_url: pg_url.clone(),
        brokers: brokers.clone(),
        topics: vec![topic.clone(), offsets.clone()],
        slots_before: replication_slots(&pg_url)?,
        sql: vec![
            format!("DROP PUBLICATION IF EXISTS {publication}"),
            format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
            format!("DROP OWNED BY {role}"),
            format!("DROP ROLE IF EXISTS {role}"),
        ],
    };
    // The tables belong to the administrator (postgres); cdcql logs in as `role`.
    psql(
        &pg_url,
        &format!(
            "CREATE SCHEMA {schema}; \
             CREATE TABLE {schema}.items (id int PRIMARY KEY, name text); \
             INSERT INTO {schema}.items SELECT g, 'item ' || g FROM generate_series(1, 5) g; \
             CREATE ROLE {role} LOGIN;"
        ),
    )?;
    let file = work.join("grants.sql");
    std::fs::write(
        &file,
        format!(
            "CREATE CONNECTION pg TO POSTGRES (url = '${{GRANTS_PG_URL}}');\n\
             CREATE CONNECTION k TO KAFKA (brokers = '${{KAFKA_BROKERS}}');\n\
             CREATE PIPELINE items FROM pg INTO k TOPIC '{prefix}.{{table}}' FORMAT JSON \
             ENVELOPE DEBEZIUM WITH (slot_name = '{slot}', publication_name = '{publication}', \
             offsets_topic = '{offsets}') TABLES ({schema}.items);\n"
        ),
    )?;
    let url = as_user(&pg_url, &role);
    let env = [
        ("GRANTS_PG_URL", url.as_str()),
        ("KAFKA_BROKERS", brokers.as_str()),
    ];
    let apply = ["apply", "--pipeline", "items"];

    // 1. No REPLICATION.
    let r = cdcql(&file, &apply, &env)?;
    expect_refused(
        "without REPLICATION",
        &r,
        &[
            &format!("user `{role}`"),
            &format!("ALTER ROLE {role} WITH REPLICATION"),
        ],
    )?;
    psql(&pg_url, &format!("ALTER ROLE {role} WITH REPLICATION"))?;

    // 2. No USAGE on the schema.
    let r = cdcql(&file, &apply, &env)?;
    expect_refused(
        "without USAGE on the schema",
        &r,
        &[&format!("GRANT USAGE ON SCHEMA {schema} TO {role}")],
    )?;
    psql(
        &pg_url,
        &format!("GRANT USAGE ON SCHEMA {schema} TO {role}"),
    )?;

    // 3. No SELECT, streaming and snapshot-only.
    let grant_select = format!("GRANT SELECT ON {schema}.items TO {role}");
    let r = cdcql(&file, &apply, &env)?;
    expect_refused(
        "without SELECT",
        &r,
        &[&format!("{schema}.items"), &grant_select],
    )?;
    let r = cdcql(
        &file,
        &["apply", "--snapshot-only", "--pipeline", "items"],
        &env,
    )?;
    expect_refused(
        "without SELECT, --snapshot-only",
        &r,
        &[&format!("{schema}.items"), &grant_select],
    )?;
    psql(&pg_url, &grant_select)?;

    // 4. Not the owner, and no publication.
    let create = format!("CREATE PUBLICATION {publication} FOR TABLE {schema}.items;");
    let r = cdcql(&file, &apply, &env)?;
    expect_refused(
        "not the owner, no publication",
        &r,
        &[
            &format!("publication `{publication}` does not exist"),
            &format!("{schema}.items is owned by `postgres`"),
            &create,
        ],
    )?;
    if replication_slots(&pg_url)?.contains(&slot) {
        bail!("a refused run left the slot {slot} behind");
    }

    // 5. The administrator creates the publication: now the minimal role runs the pipeline.
    psql(&pg_url, &create)?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut running = Cdcql::start(root, &file, &env, work.join("cdcql.log"))?;
    running.wait_for_log("streaming", 1, Duration::from_secs(120))?;
    psql(
        &pg_url,
        &format!("INSERT INTO {schema}.items VALUES (6, 'six'); UPDATE {schema}.items SET name = 'one!' WHERE id = 1"),
    )?;
    let got = count_messages(&brokers, &topic, 7, Duration::from_secs(60))?;
    running.interrupt(Duration::from_secs(60))?;
    if got < 7 {
        bail!(
            "with the minimal grants: {got} messages in {topic}, want 5 snapshot rows + 2 changes:\n{}",
            running.log_tail()
        );
    }
    let out = run(
        Command::new(env!("CARGO_BIN_EXE_cdcql"))
            .arg("drop")
            .arg(&file)
            .arg("items")
            .envs(env.iter().copied()),
        Duration::from_secs(90),
    )
    .context("cdcql drop")?;
    expect_success("cdcql drop as the minimal role", &out)?;
    eprintln!(
        "grants: cdcql drop:\n{}{}",
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    if replication_slots(&pg_url)?.contains(&slot) {
        bail!("cdcql drop left the slot {slot}");
    }
    let kept = psql(
        &pg_url,
        &format!("SELECT count(*) FROM pg_publication WHERE pubname = '{publication}'"),
    )?;
    if kept.trim() != "1" {
        bail!("cdcql drop removed the administrator's publication");
    }
    Ok(())
}

/// Messages in `topic` once it has `want` of them or `timeout` passed.
fn count_messages(brokers: &str, topic: &str, want: usize, timeout: Duration) -> Result<usize> {
    let script = r#"
import sys, time
from confluent_kafka import Consumer
brokers, topic, want, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
c = Consumer({"bootstrap.servers": brokers, "group.id": "grants-%d" % time.time_ns(),
              "auto.offset.reset": "earliest", "enable.auto.commit": False})
c.subscribe([topic])
n, deadline = 0, time.time() + timeout
while n < want and time.time() < deadline:
    m = c.poll(0.5)
    if m is not None and not m.error() and m.value() is not None:
        n += 1
c.close()
print(n)
"#;
    let out = run(
        Command::new("python3").args([
            "-c",
            script,
            brokers,
            topic,
            &want.to_string(),
            &timeout.as_secs().to_string(),
        ]),
        timeout + Duration::from_secs(30),
    )?;
    expect_success("count messages", &out)?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
}
