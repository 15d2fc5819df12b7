//! Secrets never reach the output: a Postgres password (in a URL written in the file, in a URL
//! from `${VAR}`, and as `password=` in the query string), `sasl.password`, and schema registry
//! credentials (in the registry URL and as `schema_registry_user`/`_password` options) are set,
//! then `validate`, `explain`, `preview`, `apply --snapshot-only` and `status` run with
//! `CDCQL_LOG=debug`, and so do failing runs (Postgres unreachable, a bad URL parameter,
//! registry unreachable, SASL against a broker without it). Their stdout and stderr must not
//! contain any of the secret values.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use support::*;

/// Each secret is distinctive, so a match can only be a leak.
const PG_LITERAL: &str = "pgLiteralZ9q";
const PG_ENV: &str = "pgEnvK3w";
const PG_QUERY: &str = "pgQueryV8t";
const SASL: &str = "saslEnvM4x";
const REG_LITERAL: &str = "regLiteralR6y";
const REG_ENV: &str = "regEnvP5u";
const SECRETS: &[&str] = &[PG_LITERAL, PG_ENV, PG_QUERY, SASL, REG_LITERAL, REG_ENV];

/// A closed port on this machine (something is refused there at once).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

struct Outcome {
    what: String,
    code: Option<i32>,
    text: String,
}

/// Runs cdcql with debug logging; kills it after `limit` (a hanging error path still counts:
/// what it printed so far is checked).
fn cdcql(what: &str, args: &[&str], env: &[(&str, String)], limit: Duration) -> Result<Outcome> {
    let dir = std::env::temp_dir();
    let out_path = dir.join(format!(
        "cdcql-secrets-{}-{}.out",
        std::process::id(),
        what.replace(' ', "_")
    ));
    let out = std::fs::File::create(&out_path)?;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cdcql"));
    cmd.args(args)
        .env("CDCQL_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn()?;
    let deadline = Instant::now() + limit;
    let code = loop {
        if let Some(status) = child.try_wait()? {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = String::from_utf8_lossy(&std::fs::read(&out_path)?).into_owned();
    if std::env::var_os("SECRETS_KEEP_OUTPUT").is_none() {
        let _ = std::fs::remove_file(&out_path);
    }
    Ok(Outcome {
        what: what.to_string(),
        code,
        text,
    })
}

fn no_leak(o: &Outcome) -> Result<()> {
    for s in SECRETS {
        if let Some(at) = o.text.find(s) {
            let from = o.text[..at].rfind('\n').map_or(0, |p| p + 1);
            let to = o.text[at..].find('\n').map_or(o.text.len(), |p| at + p);
            bail!(
                "`{}` printed the secret {s}:\n{}\n(exit {:?}, {} bytes of output)",
                o.what,
                &o.text[from..to],
                o.code,
                o.text.len()
            );
        }
    }
    eprintln!(
        "secrets: `{}` exit {:?}, {} bytes of output, no secret",
        o.what,
        o.code,
        o.text.len()
    );
    Ok(())
}

fn expect_code(o: &Outcome, code: i32, needle: &str) -> Result<()> {
    if o.code != Some(code) || !o.text.contains(needle) {
        bail!(
            "`{}`: expected exit {code} and `{needle}`, got exit {:?}:\n{}",
            o.what,
            o.code,
            tail(o.text.as_bytes())
        );
    }
    Ok(())
}

/// `postgres://user@host:port/db` → the same with `:password` after the user.
fn with_password(url: &str, password: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((user, host)) if !user.contains(':') => {
                format!("{scheme}://{user}:{password}@{host}")
            }
            _ => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[test]
fn secrets_stay_out_of_output() -> Result<()> {
    let Some((pg_url, brokers)) = services("secrets")? else {
        return Ok(());
    };
    let Some(registry) = registry("secrets")? else {
        return Ok(());
    };
    let prefix = unique_prefix();
    let schema = prefix.clone();
    let work = std::env::temp_dir().join(&prefix);
    std::fs::create_dir_all(&work)?;
    let _cleanup = Cleanup {
        pg_url: pg_url.clone(),
        brokers: brokers.clone(),
        topics: ["json.items", "avro.items", "avro2.items"]
            .iter()
            .map(|t| format!("{prefix}.{t}"))
            .collect(),
        slots_before: replication_slots(&pg_url)?,
        sql: vec![format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE")],
    };
    psql(
        &pg_url,
        &format!(
            "CREATE SCHEMA \"{schema}\"; CREATE TABLE \"{schema}\".items (id int PRIMARY KEY, \
             name text); INSERT INTO \"{schema}\".items SELECT g, 'n' || g FROM \
             generate_series(1, 5) g;"
        ),
    )?;

    // The Postgres server trusts local connections, so the passwords are accepted and ignored:
    // what matters is that cdcql never prints them.
    let pg_literal = with_password(&pg_url, PG_LITERAL);
    let registry_literal = registry.replacen("://", &format!("://reguser:{REG_LITERAL}@"), 1);
    let sep = if pg_url.contains('?') { '&' } else { '?' };
    let pg_query = format!("{pg_url}{sep}password={PG_QUERY}");
    let file = work.join("secrets.sql");
    let text = format!(
        "CREATE CONNECTION pg_env TO POSTGRES (url = '${{SECRET_PG_URL}}');\n\
         CREATE CONNECTION pg_lit TO POSTGRES (url = '{pg_literal}');\n\
         CREATE CONNECTION pg_query TO POSTGRES (url = '${{SECRET_PG_QUERY_URL}}');\n\
         CREATE CONNECTION k_env TO KAFKA (brokers = '${{KAFKA_BROKERS}}',\n\
             schema_registry = '${{SCHEMA_REGISTRY_URL}}', schema_registry_user = 'reguser',\n\
             schema_registry_password = '${{SECRET_REG_PW}}',\n\
             'sasl.username' = 'bob', 'sasl.password' = '${{SECRET_SASL}}');\n\
         CREATE CONNECTION k_lit TO KAFKA (brokers = '${{KAFKA_BROKERS}}',\n\
             schema_registry = '{registry_literal}');\n\
         CREATE PIPELINE p_json FROM pg_env INTO k_env TOPIC '{prefix}.json.{{table}}'\n\
             FORMAT JSON ENVELOPE DEBEZIUM TABLES (\"{schema}\".items);\n\
         CREATE PIPELINE p_avro FROM pg_lit INTO k_lit TOPIC '{prefix}.avro.{{table}}'\n\
             FORMAT AVRO ENVELOPE DEBEZIUM TABLES (\"{schema}\".items);\n\
         CREATE PIPELINE p_avro2 FROM pg_query INTO k_env TOPIC '{prefix}.avro2.{{table}}'\n\
             FORMAT AVRO ENVELOPE NATIVE TABLES (\"{schema}\".items);\n"
    );
    std::fs::write(&file, &text)?;
    let env = vec![
        ("SECRET_PG_URL", with_password(&pg_url, PG_ENV)),
        ("SECRET_PG_QUERY_URL", pg_query),
        ("SECRET_SASL", SASL.to_string()),
        ("SECRET_REG_PW", REG_ENV.to_string()),
        ("KAFKA_BROKERS", brokers.clone()),
        ("SCHEMA_REGISTRY_URL", registry.clone()),
    ];
    let f = file.to_str().expect("utf-8 path");
    let minute = Duration::from_secs(60);

    let o = cdcql("validate", &["validate", f], &env, minute)?;
    expect_code(&o, 0, "3 pipeline(s)")?;
    no_leak(&o)?;
    let o = cdcql("explain", &["explain", f], &env, minute)?;
    expect_code(&o, 0, "p_avro2")?;
    no_leak(&o)?;
    for p in ["p_json", "p_avro", "p_avro2"] {
        let o = cdcql(&format!("preview {p}"), &["preview", f, p], &env, minute)?;
        expect_code(&o, 0, "")?;
        no_leak(&o)?;
    }
    let o = cdcql(
        "apply --snapshot-only",
        &["apply", f, "--snapshot-only"],
        &env,
        Duration::from_secs(120),
    )?;
    expect_code(&o, 0, "")?;
    no_leak(&o)?;
    let o = cdcql("status", &["status", f], &env, minute)?;
    no_leak(&o)?;

    // Error paths: each must fail, name what failed, and still hide the secrets.
    let port = closed_port();
    let bad = work.join("bad_pg.sql");
    let unreachable = with_password(
        &format!("postgres://postgres@127.0.0.1:{port}/shop"),
        PG_ENV,
    );
    std::fs::write(
        &bad,
        text.replace(
            "${SECRET_PG_URL}",
            &unreachable.replace(PG_ENV, "${SECRET_PW}"),
        ),
    )?;
    let mut env_bad = env.clone();
    env_bad.push(("SECRET_PW", PG_ENV.to_string()));
    let o = cdcql(
        "validate (Postgres unreachable)",
        &["validate", bad.to_str().expect("path")],
        &env_bad,
        minute,
    )?;
    expect_code(&o, 1, "cannot connect to Postgres")?;
    no_leak(&o)?;

    let o = cdcql(
        "validate (bad URL parameter)",
        &["validate", f],
        &[
            env.clone(),
            vec![(
                "SECRET_PG_URL",
                format!("{}{sep}bogus_option=1", with_password(&pg_url, PG_ENV)),
            )],
        ]
        .concat(),
        minute,
    )?;
    expect_code(&o, 1, "bogus_option")?;
    no_leak(&o)?;
    let o = cdcql(
        "validate (bad sslmode)",
        &["validate", f],
        &[
            env.clone(),
            vec![(
                "SECRET_PG_URL",
                format!("{}{sep}sslmode=sometimes", with_password(&pg_url, PG_ENV)),
            )],
        ]
        .concat(),
        minute,
    )?;
    expect_code(&o, 1, "sslmode=sometimes")?;
    no_leak(&o)?;

    let dead_registry = format!("http://127.0.0.1:{}", closed_port());
    let o = cdcql(
        "apply (registry unreachable, credentials as options)",
        &["apply", f, "--snapshot-only", "--pipeline", "p_avro2"],
        &[
            env.clone(),
            vec![("SCHEMA_REGISTRY_URL", dead_registry.clone())],
        ]
        .concat(),
        Duration::from_secs(120),
    )?;
    expect_code(&o, 1, "127.0.0.1")?;
    no_leak(&o)?;
    let bad_reg = work.join("bad_registry.sql");
    std::fs::write(
        &bad_reg,
        text.replace(
            &registry_literal,
            &dead_registry.replacen("://", &format!("://reguser:{REG_LITERAL}@"), 1),
        ),
    )?;
    let o = cdcql(
        "apply (registry unreachable, credentials in the URL)",
        &[
            "apply",
            bad_reg.to_str().expect("path"),
            "--snapshot-only",
            "--pipeline",
            "p_avro",
        ],
        &env,
        Duration::from_secs(120),
    )?;
    expect_code(&o, 1, "127.0.0.1")?;
    no_leak(&o)?;

    // SASL against a broker that does not speak it: librdkafka fails (or retries until
    // killed); either way its messages must not show the password.
    let sasl = work.join("sasl.sql");
    std::fs::write(
        &sasl,
        text.replace(
            "'sasl.username' = 'bob',",
            "'security.protocol' = 'SASL_PLAINTEXT', 'sasl.mechanism' = 'PLAIN', \
             'socket.timeout.ms' = '5000', 'sasl.username' = 'bob',",
        ),
    )?;
    let o = cdcql(
        "apply (SASL refused)",
        &[
            "apply",
            sasl.to_str().expect("path"),
            "--snapshot-only",
            "--pipeline",
            "p_json",
        ],
        &env,
        Duration::from_secs(20),
    )?;
    no_leak(&o)?;

    delete_subjects(&registry, &prefix);
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// Removes the registry subjects the Avro pipelines registered (best effort).
fn delete_subjects(registry: &str, prefix: &str) {
    let script = r#"
import json, sys, urllib.request
base, prefix = sys.argv[1].rstrip("/"), sys.argv[2]
subjects = json.load(urllib.request.urlopen(base + "/subjects", timeout=10))
for s in subjects:
    if s.startswith(prefix):
        for q in ("", "?permanent=true"):
            req = urllib.request.Request(base + "/subjects/" + s + q, method="DELETE")
            try:
                urllib.request.urlopen(req, timeout=10).read()
            except Exception:
                pass
"#;
    let _ = run(
        Command::new("python3").args(["-c", script, registry, prefix]),
        Duration::from_secs(60),
    );
}

#[test]
fn with_password_inserts_after_user() {
    assert_eq!(
        with_password("postgres://postgres@127.0.0.1:5432/shop", "x"),
        "postgres://postgres:x@127.0.0.1:5432/shop"
    );
}
