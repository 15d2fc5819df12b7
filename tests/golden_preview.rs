//! Golden output of `cdcql preview` on tables this test seeds with fixed rows in the real
//! Postgres: Debezium JSON (with a WHERE filter and a computed column), Debezium JSON with
//! Connect schemas, and the native envelope (including a table without a primary key).
//!
//! The output is stable: the snapshot position and the processing clock are fixed through
//! `PreviewOptions`, the broker is not asked for partition counts, and the per-run table names
//! are replaced by `RUN` before comparing. The test also checks that preview leaves no trace:
//! no replication slot, no publication, and nothing written to the tables.
//!
//! Needs Postgres (PG_URL, as `scripts/services.sh up` starts it); skips loudly without it
//! unless CDCQL_REQUIRE_SERVICES is set.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use cdcql::cli::preview::{preview, PreviewOptions};
use cdcql::source::postgres::snapshot::SnapshotPoint;
use tokio_postgres::NoTls;

const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/shop";

fn pg_url() -> String {
    std::env::var("PG_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_PG_URL.to_string())
}

/// A connected client, or `None` when the test should skip.
async fn connect(url: &str) -> Result<Option<tokio_postgres::Client>> {
    let attempt = tokio::time::timeout(Duration::from_secs(5), tokio_postgres::connect(url, NoTls));
    match attempt.await {
        Ok(Ok((client, conn))) => {
            tokio::spawn(conn);
            Ok(Some(client))
        }
        failed => {
            let why = match failed {
                Ok(Err(e)) => e.to_string(),
                _ => "timed out".to_string(),
            };
            if std::env::var_os("CDCQL_REQUIRE_SERVICES").is_some() {
                bail!(
                    "CDCQL_REQUIRE_SERVICES is set but Postgres is not reachable at {url}: {why}"
                );
            }
            eprintln!(
                "\n*** SKIPPED golden_preview: Postgres is not reachable at {url} ({why}).\n*** \
                 Start the services with `eval \"$(scripts/services.sh up)\"`. ***\n"
            );
            Ok(None)
        }
    }
}

/// Drops the seeded tables and the pipeline file, whatever happens.
struct Cleanup {
    url: String,
    tables: Vec<String>,
    file: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
        let url = self.url.clone();
        let sql: String = self
            .tables
            .iter()
            .map(|t| format!("DROP TABLE IF EXISTS public.{t};"))
            .collect();
        // Drop runs outside the test's runtime (it may be unwinding): use a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let (client, conn) = tokio_postgres::connect(&url, NoTls).await.ok()?;
                tokio::spawn(conn);
                client.batch_execute(&sql).await.ok()
            })
        })
        .join();
    }
}

async fn count(client: &tokio_postgres::Client, sql: &str) -> Result<i64> {
    Ok(client.query_one(sql, &[]).await?.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_golden() -> Result<()> {
    let url = pg_url();
    let Some(client) = connect(&url).await? else {
        return Ok(());
    };
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let run = format!("gp{}_{nanos}", std::process::id());
    let items = format!("{run}_items");
    let notes = format!("{run}_notes");
    let file = std::env::temp_dir().join(format!("{run}.sql"));
    let _cleanup = Cleanup {
        url: url.clone(),
        tables: vec![items.clone(), notes.clone()],
        file: file.clone(),
    };
    client
        .batch_execute(&format!(
            "CREATE TABLE public.{items} (
                 id integer PRIMARY KEY,
                 name text NOT NULL,
                 price numeric(10,2),
                 in_stock boolean NOT NULL,
                 added timestamp(3) with time zone,
                 attrs jsonb
             );
             INSERT INTO public.{items} VALUES
                 (1, 'apple', 1.50, true, '2024-03-01 10:00:00.123+00', '{{\"color\": \"red\"}}'),
                 (2, 'pear', NULL, false, NULL, NULL),
                 (3, 'fig, \"dried\"', 12.00, true, '2024-03-02 00:00:00+00', '[1, 2]'),
                 (4, 'kiwi', 0.99, true, '2024-03-03 23:59:59.999+00', NULL),
                 (5, 'plum', 2.25, false, '2024-03-04 12:00:00+00', '{{}}');
             CREATE TABLE public.{notes} (body text, n smallint);
             INSERT INTO public.{notes} VALUES ('first', 1), (NULL, 2), ('third', NULL);"
        ))
        .await
        .context("seeding the preview tables")?;

    std::fs::write(
        &file,
        format!(
            "CREATE CONNECTION pg TO POSTGRES (url = '{url}');
             CREATE CONNECTION bus TO KAFKA (brokers = '127.0.0.1:9092');
             CREATE PIPELINE debezium FROM pg INTO bus TOPIC 'preview.{{schema}}.{{table}}'
                 FORMAT JSON ENVELOPE DEBEZIUM WITH (partitions = 3)
                 AS SELECT id, upper(name) AS name, price, added, attrs
                      FROM public.{items} WHERE in_stock;
             -- A fixed topic: with schemas, the key bytes (hashed for the partition) hold the
             -- key schema's name, which is made from the topic.
             CREATE PIPELINE with_schemas FROM pg INTO bus TOPIC 'preview.with_schemas'
                 FORMAT JSON ENVELOPE DEBEZIUM WITH (json_schemas = true, partitions = 4)
                 AS SELECT id, in_stock FROM public.{items};
             CREATE PIPELINE native FROM pg INTO bus TOPIC 'native.{{table}}'
                 FORMAT JSON ENVELOPE NATIVE WITH (partitions = 2)
                 TABLES (public.{items}, public.{notes});"
        ),
    )?;

    let slots = "SELECT count(*) FROM pg_replication_slots";
    let publications = "SELECT count(*) FROM pg_publication";
    let before = (
        count(&client, slots).await?,
        count(&client, publications).await?,
    );

    let loaded = cdcql::cli::load(&file)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let options = |limit| PreviewOptions {
        limit,
        // 2024-05-06T07:08:09.123456789Z
        now_ns: Some(1_714_979_289_123_456_789),
        point: Some(SnapshotPoint {
            ts_us: 1_714_979_288_000_001,
            lsn: 0x16B_3748,
            tx_id: 767,
            xids: "767:767:".into(),
        }),
        ask_broker: false,
    };
    let mut out = String::new();
    for (name, limit) in [("debezium", 3), ("with_schemas", 1), ("native", 4)] {
        let plan = loaded
            .plans
            .iter()
            .find(|p| p.name == name)
            .context("pipeline planned")?;
        out.push_str(&preview(plan, &options(limit)).await?);
        out.push('\n');
    }
    let out = out.replace(&run, "RUN");

    // The filter dropped pear (2), and the limit cut the list at 3 of the 4 rows left.
    assert!(
        out.contains("\"name\": \"KIWI\"") && !out.contains("PEAR"),
        "{out}"
    );
    assert!(!out.contains("PLUM"), "limit not applied:\n{out}");
    let after = (
        count(&client, slots).await?,
        count(&client, publications).await?,
    );
    assert_eq!(before, after, "preview created a slot or publication");
    let rows = count(&client, &format!("SELECT count(*) FROM public.{items}")).await?;
    assert_eq!(rows, 5);

    insta::with_settings!({snapshot_path => "../snapshots/preview", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("preview_golden", out);
    });
    Ok(())
}

/// `cdcql preview` from the command line: exit code 0, and the messages on stdout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_command() -> Result<()> {
    let url = pg_url();
    let Some(client) = connect(&url).await? else {
        return Ok(());
    };
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let run = format!("gpc{}_{nanos}", std::process::id());
    let file = std::env::temp_dir().join(format!("{run}.sql"));
    let _cleanup = Cleanup {
        url: url.clone(),
        tables: vec![run.clone()],
        file: file.clone(),
    };
    client
        .batch_execute(&format!(
            "CREATE TABLE public.{run} (id bigint PRIMARY KEY, v text);
             INSERT INTO public.{run} SELECT g, 'v' || g FROM generate_series(1, 20) g;"
        ))
        .await?;
    std::fs::write(
        &file,
        format!(
            "CREATE CONNECTION pg TO POSTGRES (url = '{url}');
             CREATE CONNECTION bus TO KAFKA (brokers = '${{KAFKA_BROKERS:-127.0.0.1:9092}}');
             CREATE PIPELINE p FROM pg INTO bus TOPIC 't.{{table}}' FORMAT JSON ENVELOPE DEBEZIUM
                 TABLES (public.{run});"
        ),
    )?;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cdcql"))
        .args(["preview"])
        .arg(&file)
        .args(["p", "--limit", "2"])
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "exit {:?}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("message 2") && !stdout.contains("message 3"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\"after\": {\n          \"id\": 2,"),
        "{stdout}"
    );

    // A pipeline that is not in the file is a mistake in the input: exit code 2.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cdcql"))
        .args(["preview"])
        .arg(&file)
        .arg("nope")
        .output()?;
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no pipeline named `nope`"));
    Ok(())
}
