//! End to end: seed `e2e.type_matrix` and `e2e.type_options` (tests/e2e/type_matrix.sql) in the
//! real Postgres, run `cdcql apply tests/e2e/pipelines.sql --snapshot-only` and
//! `tests/e2e/options_pipelines.sql` (the type options) against the real broker, then let an
//! independent consumer (tests/e2e/verify_snapshot.py: Confluent's client + psycopg) check every
//! message — key bytes, partition, envelope, and each value against Postgres under Debezium's rules.
//! The same table also goes out with `FORMAT AVRO` in the Debezium and the native envelope; the
//! verifier decodes those with Confluent's `AvroDeserializer` and its `SchemaRegistryClient` and
//! applies the same per-value checks.
//! A pipeline with `decimal_handling = 'precise'` over NaN numerics must fail with a clear error.
//!
//! Services come from `scripts/services.sh up` (addresses in PG_URL / KAFKA_BROKERS /
//! SCHEMA_REGISTRY_URL). Without them the test skips with a loud message (without a registry only
//! the Avro part is skipped), unless CDCQL_REQUIRE_SERVICES is set (scripts/test.sh and .ci/run
//! set it), where a missing service is a failure.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use support::*;

#[test]
fn snapshot_reaches_kafka_in_debezium_json() -> Result<()> {
    let Some((pg_url, brokers)) = services("e2e_snapshot")? else {
        return Ok(());
    };

    let registry = env_or("SCHEMA_REGISTRY_URL", "http://127.0.0.1:8081");
    let with_avro = registry_answers(&registry)?;

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let e2e = root.join("tests/e2e");
    let prefix = unique_prefix();
    // (topic, verifier mode) of the Avro pipelines at the end of pipelines.sql.
    let avro_checks = [
        (format!("{prefix}.avro_dbz.type_matrix"), "avro_types"),
        (format!("{prefix}.avro_native.type_matrix"), "avro_native"),
    ];
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
    topics.extend(avro_checks.iter().map(|(t, _)| t.clone()));
    let _cleanup = Cleanup {
        pg_url: pg_url.clone(),
        brokers: brokers.clone(),
        topics,
        slots_before: replication_slots(&pg_url)?,
        sql: Vec::new(),
    };
    let _subjects = with_avro.then(|| SubjectCleanup {
        registry: registry.clone(),
        prefix: prefix.clone(),
    });

    let seed = run(
        Command::new("psql")
            .arg(&pg_url)
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f"])
            .arg(e2e.join("type_matrix.sql")),
        Duration::from_secs(120),
    )?;
    expect_success("psql tests/e2e/type_matrix.sql", &seed)?;

    let pipelines = if with_avro {
        e2e.join("pipelines.sql")
    } else {
        without_avro(&e2e.join("pipelines.sql"), &prefix)?
    };
    let started = Instant::now();
    let apply = run(
        Command::new(env!("CARGO_BIN_EXE_cdcql"))
            .current_dir(root)
            .arg("apply")
            .arg(&pipelines)
            .arg("--snapshot-only")
            .env("E2E_PREFIX", &prefix)
            .env("PG_URL", &pg_url)
            .env("KAFKA_BROKERS", &brokers)
            .env("SCHEMA_REGISTRY_URL", &registry),
        Duration::from_secs(600),
    )?;
    if !with_avro {
        let _ = std::fs::remove_file(&pipelines);
    }
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

    // The Avro checks decode 2 x 10k messages in Python: run them beside the JSON ones.
    let verify_script = e2e.join("verify_snapshot.py");
    let avro_verifiers: Vec<_> = avro_checks
        .iter()
        .filter(|_| with_avro)
        .map(|(topic, mode)| {
            let (topic, mode) = (topic.clone(), *mode);
            let mut cmd = Command::new("python3");
            cmd.arg(&verify_script)
                .args([topic.as_str(), &pg_url, &brokers, mode])
                .args(["--registry", &registry]);
            let handle = std::thread::spawn(move || run(&mut cmd, Duration::from_secs(600)));
            (topic, mode, handle)
        })
        .collect();

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
    for (topic, mode, handle) in avro_verifiers {
        let verify: Output = match handle.join() {
            Ok(out) => out?,
            Err(_) => bail!("the thread running verify_snapshot.py {topic} {mode} panicked"),
        };
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

/// Whether a schema registry answers at `url`; with CDCQL_REQUIRE_SERVICES set, its absence is
/// an error rather than a reason to skip the Avro pipelines.
fn registry_answers(url: &str) -> Result<bool> {
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    if reachable(&addr) {
        return Ok(true);
    }
    if std::env::var_os("CDCQL_REQUIRE_SERVICES").is_some() {
        bail!("CDCQL_REQUIRE_SERVICES is set but no schema registry answers at {url}");
    }
    eprintln!(
        "\n*** SKIPPED the FORMAT AVRO part of e2e_snapshot: no schema registry at {url} ***\n"
    );
    Ok(false)
}

/// A copy of pipelines.sql without its Avro pipelines (everything from the marker line on).
fn without_avro(pipelines: &Path, prefix: &str) -> Result<std::path::PathBuf> {
    const MARKER: &str = "-- AVRO PIPELINES";
    let text = std::fs::read_to_string(pipelines)?;
    let Some(at) = text.find(MARKER) else {
        bail!("{} has no `{MARKER}` line", pipelines.display());
    };
    let path = std::env::temp_dir().join(format!("{prefix}-pipelines-json.sql"));
    std::fs::write(&path, &text[..at])?;
    Ok(path)
}

/// Deletes the run's registry subjects, also when the test fails.
struct SubjectCleanup {
    registry: String,
    prefix: String,
}

impl Drop for SubjectCleanup {
    fn drop(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/verify_snapshot.py");
        let deleted = run(
            Command::new("python3")
                .arg(script)
                .args(["--registry", &self.registry, "--delete-subjects"])
                .arg(&self.prefix),
            Duration::from_secs(60),
        );
        match deleted {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "warning: could not delete subjects {}*: {}",
                self.prefix,
                tail(&out.stderr)
            ),
            Err(e) => eprintln!("warning: could not delete subjects {}*: {e:#}", self.prefix),
        }
    }
}
