//! TLS to Postgres with a CA made in the test: a second Postgres (its own data directory and
//! port, `ssl = on`, and a pg_hba.conf that refuses every connection without TLS) serves a
//! certificate for `localhost` signed by that CA. Then, for both the query connection and the
//! replication connection:
//! - `disable` is refused by the server (so the others really are encrypted);
//! - `prefer`, `require` and `verify-ca` (also at 127.0.0.1, a name the certificate lacks)
//!   connect;
//! - `verify-full` with the CA connects to `localhost`; at `127.0.0.1` it fails naming the host;
//!   with another CA it fails saying the CA is not trusted; without `sslrootcert` it fails
//!   saying what to add;
//! - a wrong password fails (SCRAM over TLS) without showing the password;
//!
//! and `cdcql apply` with `verify-full` snapshots a table and streams a change into Kafka.
//! The instance is stopped and its directory removed at the end, also when the test fails.

mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cdcql::plan::Secret;
use cdcql::source::postgres::{self, replication};
use support::*;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
const PASSWORD: &str = "tls-test-pw";
const WRONG_PASSWORD: &str = "not-the-tls-pw";

fn is_root() -> bool {
    // SAFETY-free way: `id -u` prints 0 for root.
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs a Postgres server program as the `postgres` user when we are root (initdb refuses root).
fn pg_command(program: &str) -> Command {
    let path = format!("{PG_BIN}/{program}");
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &path]);
        c
    } else {
        Command::new(path)
    }
}

fn checked(what: &str, cmd: &mut Command) -> Result<String> {
    let out = run(cmd, Duration::from_secs(120))?;
    expect_success(what, &out)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A throw-away Postgres with TLS; stopped and deleted on drop.
struct TlsPostgres {
    dir: PathBuf,
    data: PathBuf,
    sock: PathBuf,
    port: u16,
}

impl TlsPostgres {
    fn start(dir: &Path) -> Result<Self> {
        let data = dir.join("data");
        let sock = dir.join("sock");
        std::fs::create_dir_all(&sock)?;
        if is_root() {
            checked(
                "chown",
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(dir),
            )?;
        }
        let port = free_port()?;
        let pg = TlsPostgres {
            dir: dir.to_path_buf(),
            data: data.clone(),
            sock: sock.clone(),
            port,
        };
        checked(
            "initdb",
            pg_command("initdb").arg("-D").arg(&data).args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ]),
        )?;
        // Certificates go into the data directory, where the server may read its key.
        for f in ["server.crt", "server.key"] {
            checked(
                "install certificate",
                Command::new("install")
                    .args(["-m", "600"])
                    .args(if is_root() {
                        vec!["-o", "postgres", "-g", "postgres"]
                    } else {
                        vec![]
                    })
                    .arg(dir.join("certs").join(f))
                    .arg(data.join(f)),
            )?;
        }
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n\
             wal_level = logical\nmax_replication_slots = 4\nmax_wal_senders = 4\nfsync = off\n\
             ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n",
            sock.display()
        );
        append(&data.join("postgresql.conf"), &conf)?;
        // Only the socket may skip TLS and passwords; TCP needs both.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all all 127.0.0.1/32 scram-sha-256\n\
             hostssl replication all 127.0.0.1/32 scram-sha-256\n\
             hostnossl all all 0.0.0.0/0 reject\n\
             hostnossl replication all 0.0.0.0/0 reject\n",
        )?;
        checked(
            "pg_ctl start",
            pg_command("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.join("server.log"))
                .args(["-w", "start"]),
        )?;
        pg.sql(&format!("ALTER ROLE postgres PASSWORD '{PASSWORD}'"))?;
        Ok(pg)
    }

    /// Runs SQL over the Unix socket (no TLS, no password).
    fn sql(&self, sql: &str) -> Result<String> {
        checked(
            &format!("psql {sql}"),
            Command::new(format!("{PG_BIN}/psql"))
                .arg("-h")
                .arg(&self.sock)
                .args([
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                ])
                .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql]),
        )
    }

    fn url(&self, host: &str, query: &str) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@{host}:{}/postgres?{query}",
            self.port
        )
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let stopped = run(
            pg_command("pg_ctl")
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "immediate", "-w", "stop"]),
            Duration::from_secs(60),
        );
        if let Err(e) = stopped {
            eprintln!("warning: could not stop the TLS Postgres: {e:#}");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn append(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path)?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// A CA, a server certificate for `localhost` only (no IP address) signed by it, and an
/// unrelated second CA.
fn make_certificates(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let openssl = |args: &[&str]| -> Result<()> {
        checked(
            &format!("openssl {}", args.join(" ")),
            Command::new("openssl").current_dir(dir).args(args),
        )
        .map(|_| ())
    };
    for (name, cn) in [("ca", "cdcql test CA"), ("other_ca", "some other CA")] {
        openssl(&[
            "req",
            "-x509",
            "-new",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={cn}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ])?;
    }
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )?;
    openssl(&[
        "req",
        "-new",
        "-nodes",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ])?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ])?;
    Ok(())
}

/// Both connections with `url`: the query connection (checking that it is encrypted) and the
/// replication connection (up to authentication; no slot is needed for that).
fn try_connect(rt: &tokio::runtime::Runtime, url: &str) -> (Result<()>, Result<()>) {
    let url = Secret(url.to_string());
    rt.block_on(async {
        let query = async {
            let client = postgres::connect(&url).await?;
            let row = client
                .query_one(
                    "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                    &[],
                )
                .await?;
            if !row.get::<_, bool>(0) {
                bail!("connected without TLS");
            }
            Ok(())
        }
        .await;
        let repl = replication::open(replication::SessionRequest {
            url: &url,
            slot: "cdcql_tls_unused",
            publication: "cdcql_tls_unused",
            create: false,
            export_snapshot: false,
        })
        .await
        .map(drop)
        .map_err(anyhow::Error::from);
        (query, repl)
    })
}

fn expect_ok(what: &str, r: (Result<()>, Result<()>)) -> Result<()> {
    if let Err(e) = r.0 {
        bail!("{what}: the query connection failed: {e:#}");
    }
    if let Err(e) = r.1 {
        bail!("{what}: the replication connection failed: {e:#}");
    }
    Ok(())
}

fn expect_err(what: &str, r: (Result<()>, Result<()>), needles: &[&str]) -> Result<()> {
    for (side, result) in [("query", r.0), ("replication", r.1)] {
        match result {
            Ok(()) => bail!("{what}: the {side} connection succeeded, it must fail"),
            Err(e) => {
                let text = format!("{e}");
                eprintln!("{what} ({side}): {text}");
                if !needles.iter().any(|n| text.contains(n)) {
                    bail!("{what}: the {side} connection's error does not say {needles:?}: {text}");
                }
                if text.contains(PASSWORD) {
                    bail!("{what}: the {side} connection's error shows the password: {text}");
                }
            }
        }
    }
    Ok(())
}

/// Polls `topic` until it holds `count` messages; returns their values.
fn read_topic(brokers: &str, topic: &str, count: usize, timeout: Duration) -> Result<Vec<String>> {
    let script = r#"
import json, sys, time
from confluent_kafka import Consumer
brokers, topic, want, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
c = Consumer({"bootstrap.servers": brokers, "group.id": "tls-check-%d" % time.time_ns(),
              "auto.offset.reset": "earliest", "enable.auto.commit": False})
c.subscribe([topic])
out, deadline = [], time.time() + timeout
while len(out) < want and time.time() < deadline:
    m = c.poll(0.5)
    if m is None or m.error():
        continue
    if m.value() is not None:
        out.append(m.value().decode())
c.close()
for v in out:
    print(v)
"#;
    let out = run(
        Command::new("python3").args([
            "-c",
            script,
            brokers,
            topic,
            &count.to_string(),
            &timeout.as_secs().to_string(),
        ]),
        timeout + Duration::from_secs(30),
    )?;
    expect_success("read topic", &out)?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

#[test]
fn postgres_over_tls() -> Result<()> {
    let Some((pg_url, brokers)) = services("tls")? else {
        return Ok(());
    };
    if !Path::new(PG_BIN).join("initdb").exists()
        || Command::new("openssl").arg("version").output().is_err()
    {
        if std::env::var_os("CDCQL_REQUIRE_SERVICES").is_some() {
            bail!("CDCQL_REQUIRE_SERVICES is set but {PG_BIN}/initdb or openssl is missing");
        }
        eprintln!("\n*** SKIPPED tls: needs {PG_BIN}/initdb and openssl ***\n");
        return Ok(());
    }
    let prefix = unique_prefix();
    let dir = std::env::temp_dir().join(format!("cdcql-tls-{prefix}"));
    let certs = dir.join("certs");
    make_certificates(&certs)?;
    let pg = TlsPostgres::start(&dir).context("starting the TLS Postgres")?;
    let ca = certs.join("ca.pem").display().to_string();
    let other_ca = certs.join("other_ca.pem").display().to_string();
    let rt = tokio::runtime::Runtime::new()?;

    expect_err(
        "sslmode=disable",
        try_connect(&rt, &pg.url("127.0.0.1", "sslmode=disable")),
        &["no encryption"],
    )?;
    expect_ok(
        "sslmode=prefer",
        try_connect(&rt, &pg.url("127.0.0.1", "sslmode=prefer")),
    )?;
    expect_ok(
        "no sslmode (prefer)",
        try_connect(&rt, &pg.url("127.0.0.1", "")),
    )?;
    expect_ok(
        "sslmode=require",
        try_connect(&rt, &pg.url("127.0.0.1", "sslmode=require")),
    )?;
    expect_ok(
        "sslmode=verify-ca at an address the certificate does not name",
        try_connect(
            &rt,
            &pg.url("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={ca}")),
        ),
    )?;
    expect_ok(
        "sslmode=verify-full at localhost",
        try_connect(
            &rt,
            &pg.url(
                "localhost",
                &format!("sslmode=verify-full&sslrootcert={ca}"),
            ),
        ),
    )?;
    expect_err(
        "sslmode=verify-full at 127.0.0.1 (not in the certificate)",
        try_connect(
            &rt,
            &pg.url(
                "127.0.0.1",
                &format!("sslmode=verify-full&sslrootcert={ca}"),
            ),
        ),
        &["not valid for the host name `127.0.0.1`"],
    )?;
    expect_err(
        "sslmode=verify-full with another CA",
        try_connect(
            &rt,
            &pg.url(
                "localhost",
                &format!("sslmode=verify-full&sslrootcert={other_ca}"),
            ),
        ),
        &["not signed by a CA in sslrootcert="],
    )?;
    expect_err(
        "sslmode=require with another CA (libpq: a root certificate makes require verify)",
        try_connect(
            &rt,
            &pg.url(
                "localhost",
                &format!("sslmode=require&sslrootcert={other_ca}"),
            ),
        ),
        &["not signed by a CA in sslrootcert="],
    )?;
    // A wrong password fails on both connections, and neither message shows it.
    let wrong = pg
        .url(
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        )
        .replace(PASSWORD, WRONG_PASSWORD);
    let r = try_connect(&rt, &wrong);
    for (side, result) in [("query", &r.0), ("replication", &r.1)] {
        if let Err(e) = result {
            if e.to_string().contains(WRONG_PASSWORD) {
                bail!("the {side} connection's error shows the wrong password: {e}");
            }
        }
    }
    expect_err("a wrong password", r, &["password authentication failed"])?;
    let default_root = std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".postgresql/root.crt"))
        .is_some_and(|p| p.exists());
    if !default_root {
        expect_err(
            "sslmode=verify-full without sslrootcert",
            try_connect(&rt, &pg.url("localhost", "sslmode=verify-full")),
            &["add sslrootcert=/path/to/ca.pem"],
        )?;
    }

    // End to end through the CLI: snapshot and a streamed change under verify-full.
    pg.sql("CREATE TABLE tls_items (id int PRIMARY KEY, v text)")?;
    pg.sql("INSERT INTO tls_items VALUES (1, 'one'), (2, 'two'), (3, 'three')")?;
    let topic = format!("{prefix}.tls_items");
    let offsets = format!("{prefix}_offsets");
    let _cleanup = Cleanup {
        pg_url: pg_url.clone(),
        brokers: brokers.clone(),
        topics: vec![topic.clone(), offsets.clone()],
        slots_before: replication_slots(&pg_url)?,
        sql: vec![],
    };
    let file = dir.join("tls.sql");
    std::fs::write(
        &file,
        format!(
            "CREATE CONNECTION pg TO POSTGRES (url = '${{TLS_PG_URL}}');\n\
             CREATE CONNECTION k TO KAFKA (brokers = '${{KAFKA_BROKERS}}');\n\
             CREATE PIPELINE tls_p FROM pg INTO k TOPIC '{prefix}.{{table}}' FORMAT JSON \
             ENVELOPE DEBEZIUM WITH (offsets_topic = '{offsets}') TABLES (public.tls_items);\n"
        ),
    )?;
    let url = pg.url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let env = [
        ("TLS_PG_URL", url.as_str()),
        ("KAFKA_BROKERS", brokers.as_str()),
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let log = dir.join("cdcql.log");
    let mut cdcql = Cdcql::start(root, &file, &env, log)?;
    cdcql.wait_for_log("streaming", 1, Duration::from_secs(120))?;
    pg.sql("INSERT INTO tls_items VALUES (4, 'four')")?;
    let values = read_topic(&brokers, &topic, 4, Duration::from_secs(60))?;
    cdcql.interrupt(Duration::from_secs(60))?;
    let log_text = cdcql.log_tail();
    if log_text.contains(PASSWORD) {
        bail!("cdcql's log shows the password:\n{log_text}");
    }
    let ops: Vec<(i64, String)> = values
        .iter()
        .map(|v| {
            let j: serde_json::Value = serde_json::from_str(v)?;
            Ok((
                j["after"]["id"].as_i64().context("after.id")?,
                j["op"].as_str().context("op")?.to_string(),
            ))
        })
        .collect::<Result<_>>()?;
    let mut want: Vec<(i64, String)> = (1..=3).map(|i| (i, "r".to_string())).collect();
    want.push((4, "c".into()));
    let mut got = ops.clone();
    got.sort();
    if got != want {
        bail!("messages over TLS: got {ops:?}, want {want:?}");
    }
    let started = Instant::now();
    let dropped = run(
        Command::new(env!("CARGO_BIN_EXE_cdcql"))
            .args(["drop"])
            .arg(&file)
            .arg("tls_p")
            .envs(env),
        Duration::from_secs(60),
    )?;
    expect_success("cdcql drop", &dropped)?;
    eprintln!(
        "tls: all modes checked; cdcql drop took {:?}",
        started.elapsed()
    );
    drop(pg);
    Ok(())
}
