//! The schema registry client against the real registry (SCHEMA_REGISTRY_URL, started by
//! `scripts/services.sh up`) and, for what a real registry cannot be made to do on demand
//! (fail, rate-limit, echo credentials), against a tiny in-process HTTP server.
//!
//! Without SCHEMA_REGISTRY_URL the real-registry tests skip with a message, unless
//! CDCQL_REQUIRE_SERVICES is set, where that is a failure.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context, Result};
use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use cdcql::plan::{AvroOptions, RegistryConnection, Secret, SubjectStrategy};
use cdcql::registry::{RegistryClient, RegistryClientOptions, RegistryError, RetryPolicy};

// ---------------------------------------------------------------------------------------------
// Against the real registry

fn registry_url() -> Result<Option<String>> {
    match std::env::var("SCHEMA_REGISTRY_URL") {
        Ok(url) if !url.trim().is_empty() => Ok(Some(url)),
        _ if std::env::var_os("CDCQL_REQUIRE_SERVICES").is_some() => {
            bail!("CDCQL_REQUIRE_SERVICES is set but SCHEMA_REGISTRY_URL is not")
        }
        _ => {
            eprintln!(
                "\n*** SKIPPED registry test: SCHEMA_REGISTRY_URL is not set.\n*** Start the \
                 services with `eval \"$(scripts/services.sh up)\"` or run scripts/test.sh. ***\n"
            );
            Ok(None)
        }
    }
}

fn real_client(url: &str) -> Result<RegistryClient> {
    Ok(RegistryClient::new(&connection(url, None))?)
}

fn connection(url: &str, basic_auth: Option<(&str, &str)>) -> RegistryConnection {
    RegistryConnection {
        url: Secret(url.to_string()),
        basic_auth: basic_auth.map(|(u, p)| (u.to_string(), Secret(p.to_string()))),
    }
}

fn unique_subject(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("cdcql-test-{}-{nanos}-{tag}-value", std::process::id())
}

fn opts() -> AvroOptions {
    AvroOptions {
        subject_strategy: SubjectStrategy::Topic,
        auto_register: true,
        use_latest: false,
        compatibility: None,
    }
}

/// A record schema with the given extra fields after `id`.
fn schema(extra_fields: &str) -> String {
    format!(
        r#"{{"type":"record","name":"Value","namespace":"cdcql.test","fields":[{{"name":"id","type":"long"}}{extra_fields}]}}"#
    )
}

const OPTIONAL_NOTE: &str = r#",{"name":"note","type":["null","string"],"default":null}"#;

#[tokio::test]
async fn same_schema_from_two_processes_gets_one_id_and_one_version() -> Result<()> {
    let Some(url) = registry_url()? else {
        return Ok(());
    };
    let subject = unique_subject("twice");
    let v1 = schema("");

    let first = real_client(&url)?
        .ensure_schema(&subject, &v1, &opts())
        .await?;
    // A second client is a fresh cache, as after a restart. With auto_register off it can only
    // succeed by looking the schema up, which is what a re-run must do.
    let lookup_only = AvroOptions {
        auto_register: false,
        ..opts()
    };
    let second = real_client(&url)?
        .ensure_schema(&subject, &v1, &lookup_only)
        .await?;
    let third = real_client(&url)?
        .ensure_schema(&subject, &v1, &opts())
        .await?;

    ensure!(
        first.id == second.id && second.id == third.id,
        "{first:?} {second:?} {third:?}"
    );
    ensure!(first.version == Some(1), "{first:?}");
    ensure!(second.version == Some(1), "{second:?}");
    let versions = real_client(&url)?.versions(&subject).await?;
    ensure!(versions == [1], "versions after three runs: {versions:?}");
    let stored = real_client(&url)?.get_by_id(first.id).await?;
    let stored: serde_json::Value = serde_json::from_str(&stored)?;
    let sent: serde_json::Value = serde_json::from_str(&v1)?;
    ensure!(stored == sent, "schema {} is {stored}", first.id);
    Ok(())
}

#[tokio::test]
async fn compatible_evolution_registers_version_two() -> Result<()> {
    let Some(url) = registry_url()? else {
        return Ok(());
    };
    let subject = unique_subject("evolve");
    let client = real_client(&url)?;
    let backward = AvroOptions {
        compatibility: Some("BACKWARD".to_string()),
        ..opts()
    };
    let v1 = client
        .ensure_schema(&subject, &schema(""), &backward)
        .await?;
    let v2 = client
        .ensure_schema(&subject, &schema(OPTIONAL_NOTE), &backward)
        .await?;

    ensure!(v1.id != v2.id, "{v1:?} {v2:?}");
    ensure!(v2.version == Some(2), "{v2:?}");
    let latest = client.latest(&subject).await?;
    ensure!(
        latest.id == v2.id && latest.version == Some(2),
        "{latest:?}"
    );
    ensure!(client.versions(&subject).await? == [1, 2]);
    Ok(())
}

#[tokio::test]
async fn incompatible_change_names_subject_level_and_reason() -> Result<()> {
    let Some(url) = registry_url()? else {
        return Ok(());
    };
    let subject = unique_subject("breaking");
    let client = real_client(&url)?;
    let backward = AvroOptions {
        compatibility: Some("BACKWARD".to_string()),
        ..opts()
    };
    client
        .ensure_schema(&subject, &schema(""), &backward)
        .await?;

    // A new field without a default: the new schema cannot read old records.
    let required = schema(r#",{"name":"extra","type":"int"}"#);
    let err = client
        .ensure_schema(&subject, &required, &backward)
        .await
        .expect_err("a required field without default must be refused under BACKWARD");
    let text = err.to_string();
    let RegistryError::Incompatible { reasons, level, .. } = &err else {
        bail!("expected Incompatible, got {err:?}");
    };
    ensure!(level == "BACKWARD", "{text}");
    ensure!(
        !reasons.is_empty(),
        "the registry's reasons are missing: {text}"
    );
    ensure!(text.contains(&subject), "{text}");
    ensure!(text.contains("BACKWARD"), "{text}");
    for reason in reasons {
        ensure!(text.contains(reason.as_str()), "{text}");
    }
    ensure!(
        client.versions(&subject).await? == [1],
        "nothing may be registered"
    );

    // Without our own level the error names the one in force (subject level set above).
    let err = real_client(&url)?
        .ensure_schema(&subject, &required, &opts())
        .await
        .expect_err("still incompatible");
    ensure!(err.to_string().contains("BACKWARD"), "{err}");
    Ok(())
}

#[tokio::test]
async fn use_latest_writes_with_the_latest_version() -> Result<()> {
    let Some(url) = registry_url()? else {
        return Ok(());
    };
    let subject = unique_subject("latest");
    let client = real_client(&url)?;
    client.ensure_schema(&subject, &schema(""), &opts()).await?;
    let v2 = client
        .ensure_schema(&subject, &schema(OPTIONAL_NOTE), &opts())
        .await?;

    let use_latest = AvroOptions {
        use_latest: true,
        auto_register: false,
        ..opts()
    };
    // Our own schema is v1, but the subject's latest (v2) is what must be written with.
    let got = real_client(&url)?
        .ensure_schema(&subject, &schema(""), &use_latest)
        .await?;
    ensure!(
        got.id == v2.id && got.version == Some(2),
        "{got:?} vs {v2:?}"
    );
    let got_schema: serde_json::Value = serde_json::from_str(&got.schema)?;
    let v2_schema: serde_json::Value = serde_json::from_str(&schema(OPTIONAL_NOTE))?;
    ensure!(got_schema == v2_schema, "{}", got.schema);

    let missing = unique_subject("latest-missing");
    let err = client
        .ensure_schema(&missing, &schema(""), &use_latest)
        .await
        .expect_err("no subject, nothing to use");
    let text = err.to_string();
    ensure!(
        text.contains(&missing) && text.contains("use_latest"),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn auto_register_off_with_unknown_schema_is_a_clear_error() -> Result<()> {
    let Some(url) = registry_url()? else {
        return Ok(());
    };
    let subject = unique_subject("noauto");
    let client = real_client(&url)?;
    let lookup_only = AvroOptions {
        auto_register: false,
        ..opts()
    };

    let err = client
        .ensure_schema(&subject, &schema(""), &lookup_only)
        .await
        .expect_err("unknown subject");
    let text = err.to_string();
    ensure!(
        matches!(err, RegistryError::NotRegistered { .. }),
        "{err:?}"
    );
    ensure!(
        text.contains(&subject)
            && text.contains("does not exist")
            && text.contains("auto_register"),
        "{text}"
    );

    client.ensure_schema(&subject, &schema(""), &opts()).await?;
    let err = client
        .ensure_schema(&subject, &schema(OPTIONAL_NOTE), &lookup_only)
        .await
        .expect_err("unknown schema under a known subject");
    let text = err.to_string();
    ensure!(
        text.contains(&subject)
            && text.contains("no version with this schema")
            && text.contains("auto_register"),
        "{text}"
    );
    ensure!(client.versions(&subject).await? == [1]);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Against an in-process fake

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    /// Path and query, as sent.
    target: String,
    authorization: Option<String>,
    body: String,
}

struct FakeRegistry {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeRegistry {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn requests(&self) -> Vec<String> {
        self.seen()
            .iter()
            .map(|s| format!("{} {}", s.method, s.target))
            .collect()
    }
}

/// An HTTP/1.1 server answering each request with `answer(request) = (status, JSON body)`,
/// one request per connection.
async fn fake_registry<F>(answer: F) -> Result<FakeRegistry>
where
    F: Fn(&Seen) -> (u16, String) + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let answer = Arc::new(answer);
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (log, answer) = (log.clone(), answer.clone());
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut read = BufReader::new(read);
                let mut line = String::new();
                if read.read_line(&mut line).await.is_err() {
                    return;
                }
                let mut words = line.split_whitespace();
                let method = words.next().unwrap_or_default().to_string();
                let target = words.next().unwrap_or_default().to_string();
                let (mut authorization, mut length) = (None, 0usize);
                loop {
                    line.clear();
                    if read.read_line(&mut line).await.unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':') {
                        match name.trim().to_ascii_lowercase().as_str() {
                            "authorization" => authorization = Some(value.trim().to_string()),
                            "content-length" => length = value.trim().parse().unwrap_or(0),
                            _ => {}
                        }
                    }
                }
                let mut body = vec![0; length];
                if read.read_exact(&mut body).await.is_err() {
                    return;
                }
                let request = Seen {
                    method,
                    target,
                    authorization,
                    body: String::from_utf8_lossy(&body).into_owned(),
                };
                let (status, reply) = answer(&request);
                if let Ok(mut log) = log.lock() {
                    log.push(request);
                }
                let response = format!(
                    "HTTP/1.1 {status} Fake\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                    reply.len()
                );
                let _ = write.write_all(response.as_bytes()).await;
                let _ = write.shutdown().await;
            });
        }
    });
    Ok(FakeRegistry { url, seen })
}

fn quick_retries(attempts: u32) -> RegistryClientOptions {
    RegistryClientOptions {
        retry: RetryPolicy {
            attempts,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
        },
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
    }
}

fn basic(user: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

const SCHEMA_ONE: &str = r#"{"schema":"\"string\""}"#;

#[tokio::test]
async fn basic_auth_comes_from_options_or_from_the_url() -> Result<()> {
    let fake = fake_registry(|_| (200, SCHEMA_ONE.to_string())).await?;
    let host = fake.url.trim_start_matches("http://");

    let from_options = RegistryClient::new(&connection(&fake.url, Some(("alice", "opt-secret"))))?;
    from_options.get_by_id(1).await?;
    // `@` and `:` in a URL password are percent-encoded; the header must carry them decoded.
    let from_url = RegistryClient::new(&connection(
        &format!("http://bob:u%40rl%3Asecret@{host}"),
        None,
    ))?;
    ensure!(
        !from_url.url().contains("secret"),
        "credentials must leave the URL: {}",
        from_url.url()
    );
    from_url.get_by_id(1).await?;
    let both = RegistryClient::new(&connection(
        &format!("http://bob:url-secret@{host}"),
        Some(("alice", "opt-secret")),
    ))?;
    both.get_by_id(1).await?;
    let anonymous = RegistryClient::new(&connection(&fake.url, None))?;
    anonymous.get_by_id(1).await?;

    let headers: Vec<Option<String>> = fake.seen().into_iter().map(|s| s.authorization).collect();
    ensure!(
        headers
            == [
                Some(basic("alice", "opt-secret")),
                Some(basic("bob", "u@rl:secret")),
                Some(basic("alice", "opt-secret")),
                None,
            ],
        "{headers:?}"
    );
    let targets = fake.requests();
    ensure!(
        targets.iter().all(|t| t == "GET /schemas/ids/1"),
        "{targets:?}"
    );
    Ok(())
}

#[tokio::test]
async fn errors_never_show_the_password() -> Result<()> {
    const PASSWORD: &str = "Tr0ub4dor-and-3";
    // A badly behaved server that echoes the credentials it got into its error message.
    let fake = fake_registry(|seen| {
        let header = seen.authorization.clone().unwrap_or_default();
        let decoded = header
            .strip_prefix("Basic ")
            .and_then(|t| base64::engine::general_purpose::STANDARD.decode(t).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let body = serde_json::json!({
            "error_code": 40101,
            "message": format!("bad credentials {decoded} in header {header}"),
        });
        (401, body.to_string())
    })
    .await?;
    let host = fake.url.trim_start_matches("http://");

    for conn in [
        connection(&fake.url, Some(("carol", PASSWORD))),
        connection(&format!("http://carol:{PASSWORD}@{host}"), None),
    ] {
        let client = RegistryClient::with_options(&conn, quick_retries(3))?;
        let err = client
            .ensure_schema("s-value", r#""string""#, &opts())
            .await
            .expect_err("401");
        for text in [err.to_string(), format!("{err:?}"), format!("{client:?}")] {
            ensure!(!text.contains(PASSWORD), "password leaked: {text}");
            ensure!(
                !text.contains(&basic("carol", PASSWORD)),
                "auth header leaked: {text}"
            );
        }
        let text = err.to_string();
        ensure!(
            text.contains("HTTP 401") && text.contains("40101") && text.contains("carol"),
            "the registry's answer should still show: {text}"
        );
    }
    // A 401 is not retried.
    ensure!(fake.seen().len() == 2, "{:?}", fake.requests());

    // A registry that cannot be reached, with the password in its URL.
    let closed = closed_port().await?;
    let client = RegistryClient::with_options(
        &connection(&format!("http://carol:{PASSWORD}@127.0.0.1:{closed}"), None),
        quick_retries(2),
    )?;
    let err = client.get_by_id(1).await.expect_err("nobody listens");
    let text = format!("{err} {err:?}");
    ensure!(!text.contains(PASSWORD), "password leaked: {text}");
    Ok(())
}

async fn closed_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    drop(listener);
    Ok(port)
}

#[tokio::test]
async fn registry_down_fails_after_the_configured_retries() -> Result<()> {
    let port = closed_port().await?;
    let url = format!("http://127.0.0.1:{port}");
    let client = RegistryClient::with_options(&connection(&url, None), quick_retries(4))?;

    let started = Instant::now();
    let err = client
        .ensure_schema("down-value", r#""string""#, &opts())
        .await
        .expect_err("nothing listens");
    let elapsed = started.elapsed();

    let text = err.to_string();
    let RegistryError::Unavailable { attempts, .. } = &err else {
        bail!("expected Unavailable, got {err:?}");
    };
    ensure!(*attempts == 4, "{text}");
    ensure!(text.contains(&url), "the URL must be named: {text}");
    ensure!(
        text.to_lowercase().contains("connect"),
        "the cause must be named: {text}"
    );
    // Three waits of 20, 40 and 80 ms between four attempts; well under a second in all.
    ensure!(
        elapsed >= Duration::from_millis(140) && elapsed < Duration::from_secs(3),
        "took {elapsed:?}"
    );
    Ok(())
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_retried() -> Result<()> {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let fake = fake_registry(move |_| match counter.fetch_add(1, Ordering::SeqCst) {
        0 => (
            503,
            r#"{"error_code":50003,"message":"forwarding failed"}"#.to_string(),
        ),
        1 => (
            429,
            r#"{"error_code":42901,"message":"slow down"}"#.to_string(),
        ),
        2 => (500, "<html>proxy error</html>".to_string()),
        _ => (200, SCHEMA_ONE.to_string()),
    })
    .await?;
    let client = RegistryClient::with_options(&connection(&fake.url, None), quick_retries(4))?;
    ensure!(client.get_by_id(1).await? == r#""string""#);
    ensure!(calls.load(Ordering::SeqCst) == 4);

    // One attempt fewer than needed: the last cause is reported.
    calls.store(0, Ordering::SeqCst);
    let client = RegistryClient::with_options(&connection(&fake.url, None), quick_retries(3))?;
    let err = client.get_by_id(1).await.expect_err("three failures");
    let text = err.to_string();
    ensure!(
        text.contains("3 attempt") && text.contains("HTTP 500") && text.contains("proxy error"),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn client_errors_are_not_retried_and_show_the_registry_message() -> Result<()> {
    let fake = fake_registry(|_| {
        (
            422,
            r#"{"error_code":42201,"message":"Invalid schema: no type"}"#.to_string(),
        )
    })
    .await?;
    let client = RegistryClient::with_options(&connection(&fake.url, None), quick_retries(5))?;
    let err = client
        .ensure_schema("bad-value", r#"{"nope":1}"#, &opts())
        .await
        .expect_err("422");
    let text = err.to_string();
    ensure!(
        matches!(
            err,
            RegistryError::Rejected {
                status: 422,
                error_code: Some(42201),
                ..
            }
        ),
        "{err:?}"
    );
    ensure!(
        text.contains("42201")
            && text.contains("Invalid schema: no type")
            && text.contains("POST /subjects/bad-value"),
        "{text}"
    );
    ensure!(fake.seen().len() == 1, "{:?}", fake.requests());
    Ok(())
}

#[tokio::test]
async fn known_schema_costs_one_lookup_then_nothing() -> Result<()> {
    let fake = fake_registry(|seen| match (seen.method.as_str(), seen.target.as_str()) {
        ("POST", "/subjects/t-value") => (
            200,
            r#"{"subject":"t-value","id":7,"version":3,"schema":"\"string\""}"#.to_string(),
        ),
        _ => (
            500,
            r#"{"error_code":50001,"message":"unexpected"}"#.to_string(),
        ),
    })
    .await?;
    let client = RegistryClient::with_options(&connection(&fake.url, None), quick_retries(1))?;
    for _ in 0..3 {
        let got = client
            .ensure_schema("t-value", r#""string""#, &opts())
            .await?;
        ensure!(got.id == 7 && got.version == Some(3), "{got:?}");
    }
    ensure!(
        fake.requests() == ["POST /subjects/t-value"],
        "{:?}",
        fake.requests()
    );
    let body: serde_json::Value = serde_json::from_str(&fake.seen()[0].body)?;
    ensure!(
        body == serde_json::json!({"schema": "\"string\""}),
        "{body}"
    );
    Ok(())
}

#[tokio::test]
async fn new_version_is_checked_then_registered() -> Result<()> {
    let fake = fake_registry(|seen| match (seen.method.as_str(), seen.target.as_str()) {
        ("POST", "/subjects/n-value") => (
            404,
            r#"{"error_code":40403,"message":"Schema not found"}"#.to_string(),
        ),
        ("GET", "/config/n-value") => (200, r#"{"compatibilityLevel":"BACKWARD"}"#.to_string()),
        ("PUT", "/config/n-value") => (200, r#"{"compatibility":"FULL"}"#.to_string()),
        ("POST", "/compatibility/subjects/n-value/versions/latest?verbose=true") => {
            (200, r#"{"is_compatible":true,"messages":[]}"#.to_string())
        }
        ("POST", "/subjects/n-value/versions") => (200, r#"{"id":12,"version":2}"#.to_string()),
        _ => (
            500,
            r#"{"error_code":50001,"message":"unexpected"}"#.to_string(),
        ),
    })
    .await?;
    let client = RegistryClient::with_options(&connection(&fake.url, None), quick_retries(1))?;
    let full = AvroOptions {
        compatibility: Some("FULL".to_string()),
        ..opts()
    };
    let got = client
        .ensure_schema("n-value", r#""string""#, &full)
        .await?;
    ensure!(got.id == 12 && got.version == Some(2), "{got:?}");
    ensure!(
        fake.requests()
            == [
                "POST /subjects/n-value",
                "GET /config/n-value",
                "PUT /config/n-value",
                "POST /compatibility/subjects/n-value/versions/latest?verbose=true",
                "POST /subjects/n-value/versions",
            ],
        "{:?}",
        fake.requests()
    );
    let put: serde_json::Value = serde_json::from_str(&fake.seen()[2].body)?;
    ensure!(put == serde_json::json!({"compatibility": "FULL"}), "{put}");
    Ok(())
}

#[tokio::test]
async fn conflict_on_register_reports_the_global_level_and_message() -> Result<()> {
    // The compatibility check passes but registering conflicts (another writer got there first);
    // the subject has no level of its own, so the global one is in force.
    let fake = fake_registry(|seen| match (seen.method.as_str(), seen.target.as_str()) {
        ("POST", "/subjects/c-value") => (
            404,
            r#"{"error_code":40403,"message":"Schema not found"}"#.to_string(),
        ),
        ("POST", "/compatibility/subjects/c-value/versions/latest?verbose=true") => {
            (200, r#"{"is_compatible":true}"#.to_string())
        }
        ("POST", "/subjects/c-value/versions") => (
            409,
            r#"{"error_code":409,"message":"Schema being registered is incompatible with an earlier schema; field x"}"#
                .to_string(),
        ),
        ("GET", "/config/c-value") => (
            404,
            r#"{"error_code":40408,"message":"Subject 'c-value' does not have subject-level compatibility configured"}"#
                .to_string(),
        ),
        ("GET", "/config") => (200, r#"{"compatibilityLevel":"FULL_TRANSITIVE"}"#.to_string()),
        _ => (500, r#"{"error_code":50001,"message":"unexpected"}"#.to_string()),
    })
    .await?;
    let client = RegistryClient::with_options(&connection(&fake.url, None), quick_retries(1))?;
    let err = client
        .ensure_schema("c-value", r#""string""#, &opts())
        .await
        .expect_err("409");
    let text = err.to_string();
    ensure!(matches!(err, RegistryError::Incompatible { .. }), "{err:?}");
    ensure!(
        text.contains("`c-value`")
            && text.contains("FULL_TRANSITIVE")
            && text.contains("incompatible with an earlier schema; field x"),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn https_urls_speak_tls() -> Result<()> {
    // A plain-TCP peer: a client that really starts a TLS handshake fails with a TLS/connection
    // error (rather than reading an HTTP answer, or not being able to build a TLS client at all).
    let fake = fake_registry(|_| (200, SCHEMA_ONE.to_string())).await?;
    let https = fake.url.replace("http://", "https://");
    let client = RegistryClient::with_options(&connection(&https, None), quick_retries(1))
        .context("an https client must build")?;
    let err = client.get_by_id(1).await.expect_err("not a TLS server");
    ensure!(matches!(err, RegistryError::Unavailable { .. }), "{err:?}");
    ensure!(
        fake.seen().iter().all(|s| s.method != "GET"),
        "{:?}",
        fake.requests()
    );
    Ok(())
}
