//! Client for a Confluent-API schema registry: makes sure the Avro schemas the encoder writes
//! with are registered under the right subject and hands back their ids.
//!
//! Input comes from the plan (`RegistryConnection`, `AvroOptions`) and from the Avro encoder
//! (the schema JSON of a key or value); the ids go into the Confluent wire framing. The runtime
//! calls [`RegistryClient::ensure_schema`] before producing and whenever a table's schema
//! changes; answers are cached per (subject, schema), so steady-state producing costs no HTTP.
//!
//! Follows the Confluent Schema Registry REST API (`/subjects`, `/compatibility`, `/config`,
//! `/schemas/ids`), so it works with Confluent Platform and Cloud as well as compatible servers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::plan::{redact_url, AvroOptions, RegistryConnection, SubjectStrategy};

/// The registry's own media type; Confluent asks clients to prefer it over plain JSON.
const CONTENT_TYPE_V1: &str = "application/vnd.schemaregistry.v1+json";
const ACCEPT_TYPES: &str = "application/vnd.schemaregistry.v1+json, \
                            application/vnd.schemaregistry+json; qs=0.9, application/json; qs=0.5";

/// Confluent's error codes for "subject not found" (as opposed to 40403, "schema not found").
const SUBJECT_NOT_FOUND: i64 = 40401;

/// Longest piece of registry text (one compatibility reason, an unparseable body) kept in an
/// error message: Confluent's verbose reasons include whole old schemas.
const MAX_TEXT: usize = 600;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("schema registry URL `{url}` is not usable: {reason}")]
    InvalidUrl { url: String, reason: String },

    #[error("cannot set up the HTTP client for schema registry {url}: {reason}")]
    Client { url: String, reason: String },

    #[error(
        "schema registry {url}: gave up on {request} after {attempts} attempt(s) over \
         {elapsed:.1?}; last error: {cause}"
    )]
    Unavailable {
        url: String,
        request: String,
        attempts: u32,
        elapsed: Duration,
        cause: String,
    },

    #[error("schema registry {url} refused {request}: HTTP {status}{}: {message}", error_code_text(.error_code))]
    Rejected {
        url: String,
        request: String,
        status: u16,
        /// The registry's `error_code` (e.g. 40401 subject not found, 42201 invalid schema).
        error_code: Option<i64>,
        message: String,
    },

    #[error("schema registry {url}: subject `{subject}` {problem}; {help}")]
    NotRegistered {
        url: String,
        subject: String,
        problem: String,
        help: String,
    },

    #[error("schema registry {url}: subject `{subject}` does not exist")]
    SubjectNotFound { url: String, subject: String },

    #[error(
        "schema registry {url} refused the new schema for subject `{subject}`: it is not \
         compatible with the registered versions under compatibility level {level}: {}",
        reasons_text(.reasons)
    )]
    Incompatible {
        url: String,
        subject: String,
        level: String,
        reasons: Vec<String>,
    },

    #[error("schema registry {url} answered {request} with something unexpected: {reason}")]
    BadResponse {
        url: String,
        request: String,
        reason: String,
    },
}

fn error_code_text(code: &Option<i64>) -> String {
    code.map(|c| format!(" (error code {c})"))
        .unwrap_or_default()
}

fn reasons_text(reasons: &[String]) -> String {
    if reasons.is_empty() {
        "the registry gave no reason".to_string()
    } else {
        reasons.join("; ")
    }
}

/// A schema as the registry knows it under one subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredSchema {
    /// The global id written into each message's Confluent framing.
    pub id: u32,
    /// The schema to write with: the caller's own text, or the registry's for `use_latest`.
    pub schema: String,
    /// The version under the subject, when the registry said.
    pub version: Option<i32>,
}

/// How failed requests are retried: connection errors, timeouts, HTTP 5xx and 429.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, including the first (at least 1).
    pub attempts: u32,
    /// Wait before the second attempt; doubles after each failure.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `failures` (1-based).
    pub fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u32
            .checked_shl(failures.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.initial_backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryClientOptions {
    pub retry: RetryPolicy,
    /// Time allowed to open a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Time allowed for one whole request, connection included.
    pub request_timeout: Duration,
}

impl Default for RegistryClientOptions {
    fn default() -> Self {
        RegistryClientOptions {
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// The subject a schema is registered under (Confluent's `*.subject.name.strategy`).
pub fn subject_name(
    strategy: SubjectStrategy,
    topic: &str,
    is_key: bool,
    record_full_name: &str,
) -> String {
    match strategy {
        SubjectStrategy::Topic => {
            format!("{topic}-{}", if is_key { "key" } else { "value" })
        }
        SubjectStrategy::Record => record_full_name.to_string(),
        SubjectStrategy::TopicRecord => format!("{topic}-{record_full_name}"),
    }
}

struct BasicAuth {
    user: String,
    password: String,
    /// `base64(user:password)` as sent, so that an echo of the header can be scrubbed too.
    token: String,
}

#[derive(Default)]
struct Cache {
    subjects: HashMap<String, SubjectCache>,
    schemas_by_id: HashMap<u32, String>,
}

#[derive(Default)]
struct SubjectCache {
    /// Keyed by the caller's schema text.
    known: HashMap<String, RegisteredSchema>,
    /// `use_latest` answers, keyed by the caller's schema text so that a schema change asks again.
    latest: HashMap<String, RegisteredSchema>,
    /// The compatibility level this client has made sure of.
    compatibility: Option<String>,
}

enum Lookup {
    Found(RegisteredSchema),
    NoSubject,
    NoSchema,
}

/// One schema registry (or several URLs of one cluster, comma-separated, tried in turn).
pub struct RegistryClient {
    http: reqwest::Client,
    bases: Vec<Url>,
    shown_url: String,
    auth: Option<BasicAuth>,
    retry: RetryPolicy,
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("url", &self.shown_url)
            .field("user", &self.auth.as_ref().map(|a| a.user.as_str()))
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct SubjectVersion {
    id: u32,
    version: Option<i32>,
    schema: Option<String>,
}

#[derive(Deserialize)]
struct RegisterAnswer {
    id: u32,
    version: Option<i32>,
}

#[derive(Deserialize)]
struct CompatibilityAnswer {
    is_compatible: bool,
    #[serde(default)]
    messages: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct ConfigAnswer {
    // GET answers `compatibilityLevel`, PUT echoes `compatibility`.
    #[serde(rename = "compatibilityLevel", alias = "compatibility")]
    level: Option<String>,
}

#[derive(Deserialize)]
struct SchemaAnswer {
    schema: String,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error_code: Option<i64>,
    message: Option<String>,
}

impl RegistryClient {
    pub fn new(conn: &RegistryConnection) -> Result<Self, RegistryError> {
        Self::with_options(conn, RegistryClientOptions::default())
    }

    /// Credentials given as options win over `user:password@` in the URL; either way they are
    /// taken out of the URL, which is then safe to show.
    pub fn with_options(
        conn: &RegistryConnection,
        options: RegistryClientOptions,
    ) -> Result<Self, RegistryError> {
        let raw = conn.url.expose();
        let mut bases = Vec::new();
        let mut url_auth = None;
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (base, creds) = parse_base(part).map_err(|reason| RegistryError::InvalidUrl {
                url: redact_url(part),
                reason,
            })?;
            url_auth = url_auth.or(creds);
            bases.push(base);
        }
        if bases.is_empty() {
            return Err(RegistryError::InvalidUrl {
                url: redact_url(raw),
                reason: "it is empty".to_string(),
            });
        }
        let shown_url = bases
            .iter()
            .map(|b| b.as_str().trim_end_matches('/'))
            .collect::<Vec<_>>()
            .join(",");

        let auth = conn
            .basic_auth
            .as_ref()
            .map(|(user, password)| (user.clone(), password.expose().to_string()))
            .or(url_auth)
            .map(|(user, password)| BasicAuth {
                token: base64::engine::general_purpose::STANDARD
                    .encode(format!("{user}:{password}")),
                user,
                password,
            });

        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(ACCEPT_TYPES));
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("cdcql/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            .build()
            .map_err(|e| RegistryError::Client {
                url: shown_url.clone(),
                reason: error_chain(&e.without_url()),
            })?;

        let mut retry = options.retry;
        retry.attempts = retry.attempts.max(1);
        Ok(RegistryClient {
            http,
            bases,
            shown_url,
            auth,
            retry,
            cache: Mutex::new(Cache::default()),
        })
    }

    /// The registry URL(s) without credentials, for messages.
    pub fn url(&self) -> &str {
        &self.shown_url
    }

    /// The id (and schema to write with) for `schema_json` under `subject`, registering it if
    /// the options allow. A schema the registry already has is found by lookup, so re-running
    /// a pipeline registers nothing new.
    pub async fn ensure_schema(
        &self,
        subject: &str,
        schema_json: &str,
        opts: &AvroOptions,
    ) -> Result<RegisteredSchema, RegistryError> {
        if let Some(hit) = self.cached(subject, schema_json, opts.use_latest) {
            return Ok(hit);
        }
        let answer = if opts.use_latest {
            self.latest(subject).await.map_err(|e| match e {
                RegistryError::SubjectNotFound { url, subject } => RegistryError::NotRegistered {
                    url,
                    subject,
                    problem: "does not exist".to_string(),
                    help: "use_latest = true writes with the subject's latest schema, so one \
                           must be registered first"
                        .to_string(),
                },
                e => e,
            })?
        } else {
            match self.lookup(subject, schema_json).await? {
                Lookup::Found(found) => found,
                missing if !opts.auto_register => {
                    let problem = match missing {
                        Lookup::NoSubject => "does not exist",
                        _ => "has no version with this schema",
                    };
                    return Err(RegistryError::NotRegistered {
                        url: self.shown_url.clone(),
                        subject: subject.to_string(),
                        problem: problem.to_string(),
                        help: "auto_register = false, so cdcql does not register it: register \
                               the schema first, or set auto_register = true"
                            .to_string(),
                    });
                }
                missing => {
                    let subject_exists = !matches!(missing, Lookup::NoSubject);
                    self.register(subject, schema_json, opts, subject_exists)
                        .await?
                }
            }
        };
        let mut cache = self.lock_cache();
        let entry = cache.subjects.entry(subject.to_string()).or_default();
        let map = if opts.use_latest {
            &mut entry.latest
        } else {
            &mut entry.known
        };
        map.insert(schema_json.to_string(), answer.clone());
        Ok(answer)
    }

    /// The newest version registered under `subject`.
    pub async fn latest(&self, subject: &str) -> Result<RegisteredSchema, RegistryError> {
        let path = ["subjects", subject, "versions", "latest"];
        let request = describe(&Method::GET, &path, &[]);
        let body = self
            .call(Method::GET, &path, &[], None)
            .await
            .map_err(|e| self.subject_not_found(e, subject))?;
        let answer: SubjectVersion = self.parse(&request, &body)?;
        let schema = answer.schema.ok_or_else(|| RegistryError::BadResponse {
            url: self.shown_url.clone(),
            request: request.clone(),
            reason: "the answer has no `schema`".to_string(),
        })?;
        Ok(RegisteredSchema {
            id: answer.id,
            schema,
            version: answer.version,
        })
    }

    /// The versions registered under `subject`, oldest first.
    pub async fn versions(&self, subject: &str) -> Result<Vec<i32>, RegistryError> {
        let path = ["subjects", subject, "versions"];
        let request = describe(&Method::GET, &path, &[]);
        let body = self
            .call(Method::GET, &path, &[], None)
            .await
            .map_err(|e| self.subject_not_found(e, subject))?;
        self.parse(&request, &body)
    }

    /// The schema text with global id `id`. Ids never change meaning, so answers are cached.
    pub async fn get_by_id(&self, id: u32) -> Result<String, RegistryError> {
        if let Some(schema) = self.lock_cache().schemas_by_id.get(&id) {
            return Ok(schema.clone());
        }
        let id_text = id.to_string();
        let path = ["schemas", "ids", id_text.as_str()];
        let body = self.call(Method::GET, &path, &[], None).await?;
        let answer: SchemaAnswer = self.parse(&describe(&Method::GET, &path, &[]), &body)?;
        self.lock_cache()
            .schemas_by_id
            .insert(id, answer.schema.clone());
        Ok(answer.schema)
    }

    fn cached(&self, subject: &str, schema: &str, latest: bool) -> Option<RegisteredSchema> {
        let cache = self.lock_cache();
        let entry = cache.subjects.get(subject)?;
        let map = if latest { &entry.latest } else { &entry.known };
        map.get(schema).cloned()
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        // The cache holds plain maps that no panic can leave half-updated.
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn subject_not_found(&self, e: RegistryError, subject: &str) -> RegistryError {
        match e {
            RegistryError::Rejected { status: 404, .. } => RegistryError::SubjectNotFound {
                url: self.shown_url.clone(),
                subject: subject.to_string(),
            },
            e => e,
        }
    }

    async fn lookup(&self, subject: &str, schema: &str) -> Result<Lookup, RegistryError> {
        let path = ["subjects", subject];
        match self
            .call(Method::POST, &path, &[], Some(schema_body(schema)))
            .await
        {
            Ok(body) => {
                let answer: SubjectVersion =
                    self.parse(&describe(&Method::POST, &path, &[]), &body)?;
                Ok(Lookup::Found(RegisteredSchema {
                    id: answer.id,
                    schema: schema.to_string(),
                    version: answer.version,
                }))
            }
            Err(RegistryError::Rejected {
                status: 404,
                error_code,
                ..
            }) => Ok(if error_code == Some(SUBJECT_NOT_FOUND) {
                Lookup::NoSubject
            } else {
                Lookup::NoSchema
            }),
            Err(e) => Err(e),
        }
    }

    async fn register(
        &self,
        subject: &str,
        schema: &str,
        opts: &AvroOptions,
        subject_exists: bool,
    ) -> Result<RegisteredSchema, RegistryError> {
        if let Some(level) = &opts.compatibility {
            self.set_compatibility(subject, level).await?;
        }
        if subject_exists {
            // Asking first gives the registry's reasons; a bare 409 from register often has none.
            let path = ["compatibility", "subjects", subject, "versions", "latest"];
            let query = [("verbose", "true")];
            match self
                .call(Method::POST, &path, &query, Some(schema_body(schema)))
                .await
            {
                Ok(body) => {
                    let answer: CompatibilityAnswer =
                        self.parse(&describe(&Method::POST, &path, &query), &body)?;
                    if !answer.is_compatible {
                        let reasons = answer.messages.iter().map(message_text).collect();
                        return Err(self.incompatible(subject, opts, reasons).await);
                    }
                }
                // No live version to compare with (all deleted, or a registry that answers 404).
                Err(RegistryError::Rejected { status: 404, .. }) => {}
                Err(e) => return Err(e),
            }
        }

        let path = ["subjects", subject, "versions"];
        let request = describe(&Method::POST, &path, &[]);
        let body = match self
            .call(Method::POST, &path, &[], Some(schema_body(schema)))
            .await
        {
            Ok(body) => body,
            Err(RegistryError::Rejected {
                status: 409,
                message,
                ..
            }) => return Err(self.incompatible(subject, opts, vec![message]).await),
            Err(e) => return Err(e),
        };
        let answer: RegisterAnswer = self.parse(&request, &body)?;
        let version = match answer.version {
            Some(v) => Some(v),
            // Older registries answer only the id; the version is worth one more request
            // because it goes into logs and `status`.
            None => match self.lookup(subject, schema).await {
                Ok(Lookup::Found(found)) if found.id == answer.id => found.version,
                _ => None,
            },
        };
        tracing::info!(
            registry = %self.shown_url,
            subject,
            id = answer.id,
            version,
            "registered schema"
        );
        Ok(RegisteredSchema {
            id: answer.id,
            schema: schema.to_string(),
            version,
        })
    }

    /// Sets the subject's compatibility level unless it already is `level`; reading first
    /// spares a write (which may need more rights) on every start.
    async fn set_compatibility(&self, subject: &str, level: &str) -> Result<(), RegistryError> {
        let done = self
            .lock_cache()
            .subjects
            .get(subject)
            .and_then(|s| s.compatibility.as_deref())
            .is_some_and(|l| l.eq_ignore_ascii_case(level));
        if done {
            return Ok(());
        }
        let path = ["config", subject];
        let current = match self.call(Method::GET, &path, &[], None).await {
            Ok(body) => {
                self.parse::<ConfigAnswer>(&describe(&Method::GET, &path, &[]), &body)?
                    .level
            }
            Err(RegistryError::Rejected { status: 404, .. }) => None,
            Err(e) => return Err(e),
        };
        if !current.is_some_and(|c| c.eq_ignore_ascii_case(level)) {
            let body = serde_json::json!({ "compatibility": level }).to_string();
            self.call(Method::PUT, &path, &[], Some(body)).await?;
            tracing::info!(registry = %self.shown_url, subject, level, "set compatibility level");
        }
        self.lock_cache()
            .subjects
            .entry(subject.to_string())
            .or_default()
            .compatibility = Some(level.to_string());
        Ok(())
    }

    async fn incompatible(
        &self,
        subject: &str,
        opts: &AvroOptions,
        reasons: Vec<String>,
    ) -> RegistryError {
        let level = match &opts.compatibility {
            Some(level) => level.clone(),
            None => self
                .compatibility_in_force(subject)
                .await
                .unwrap_or_else(|| "unknown (the registry did not say)".to_string()),
        };
        RegistryError::Incompatible {
            url: self.shown_url.clone(),
            subject: subject.to_string(),
            level,
            reasons: reasons
                .into_iter()
                .map(|r| truncate(&self.scrub(r)))
                .collect(),
        }
    }

    /// The subject's own level, else the registry-wide one.
    async fn compatibility_in_force(&self, subject: &str) -> Option<String> {
        for path in [&["config", subject][..], &["config"][..]] {
            if let Ok(body) = self.call(Method::GET, path, &[], None).await {
                if let Ok(ConfigAnswer { level: Some(level) }) = serde_json::from_slice(&body) {
                    return Some(level);
                }
            }
        }
        None
    }

    /// One request, retried on connection errors, timeouts, 5xx and 429. Returns the body of
    /// a 2xx answer; any other answer becomes `Rejected` with the registry's code and message.
    async fn call(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, &str)],
        body: Option<String>,
    ) -> Result<Bytes, RegistryError> {
        let started = Instant::now();
        let mut cause = String::new();
        for attempt in 1..=self.retry.attempts {
            let base = &self.bases[(attempt as usize - 1) % self.bases.len()];
            let mut request = self
                .http
                .request(method.clone(), endpoint(base, path, query));
            if let Some(auth) = &self.auth {
                request = request.basic_auth(&auth.user, Some(&auth.password));
            }
            if let Some(body) = &body {
                request = request
                    .header(CONTENT_TYPE, CONTENT_TYPE_V1)
                    .body(body.clone());
            }
            let mut retry_after = None;
            match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    retry_after = response
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    match response.bytes().await {
                        Ok(bytes) if status.is_success() => return Ok(bytes),
                        Ok(bytes)
                            if status.is_server_error()
                                || status == StatusCode::TOO_MANY_REQUESTS =>
                        {
                            let (code, message) = self.error_body(&bytes);
                            cause = format!(
                                "HTTP {}{}: {message}",
                                status.as_u16(),
                                error_code_text(&code)
                            );
                        }
                        Ok(bytes) => {
                            let (error_code, message) = self.error_body(&bytes);
                            return Err(RegistryError::Rejected {
                                url: self.shown_url.clone(),
                                request: describe(&method, path, query),
                                status: status.as_u16(),
                                error_code,
                                message,
                            });
                        }
                        Err(e) => cause = self.transport_cause(e),
                    }
                }
                Err(e) => cause = self.transport_cause(e),
            }
            if attempt < self.retry.attempts {
                let mut wait = self.retry.backoff(attempt);
                if let Some(asked) = retry_after {
                    wait = wait.max(asked.min(self.retry.max_backoff));
                }
                tracing::warn!(
                    registry = %base.as_str().trim_end_matches('/'),
                    request = %describe(&method, path, query),
                    attempt,
                    cause = %cause,
                    "schema registry request failed; retrying in {wait:?}"
                );
                tokio::time::sleep(wait).await;
            }
        }
        Err(RegistryError::Unavailable {
            url: self.shown_url.clone(),
            request: describe(&method, path, query),
            attempts: self.retry.attempts,
            elapsed: started.elapsed(),
            cause,
        })
    }

    fn transport_cause(&self, e: reqwest::Error) -> String {
        let kind = if e.is_timeout() {
            "timed out: "
        } else if e.is_connect() {
            "cannot connect: "
        } else {
            ""
        };
        self.scrub(format!("{kind}{}", error_chain(&e.without_url())))
    }

    /// The registry's `{"error_code", "message"}`, or the start of whatever else it sent
    /// (a proxy's HTML page, say).
    fn error_body(&self, bytes: &[u8]) -> (Option<i64>, String) {
        let (code, message) = match serde_json::from_slice::<ErrorAnswer>(bytes) {
            Ok(ErrorAnswer {
                error_code,
                message: Some(message),
            }) => (error_code, message),
            Ok(ErrorAnswer { error_code, .. }) => (error_code, String::new()),
            Err(_) => (None, String::from_utf8_lossy(bytes).trim().to_string()),
        };
        let message = if message.is_empty() {
            "(no message)".to_string()
        } else {
            message
        };
        (code, truncate(&self.scrub(message)))
    }

    fn parse<T: DeserializeOwned>(&self, request: &str, body: &[u8]) -> Result<T, RegistryError> {
        serde_json::from_slice(body).map_err(|e| RegistryError::BadResponse {
            url: self.shown_url.clone(),
            request: request.to_string(),
            reason: format!(
                "{e}; the answer was: {}",
                truncate(&self.scrub(String::from_utf8_lossy(body).into_owned()))
            ),
        })
    }

    /// Removes the password (and the header that carries it) from text that came back from
    /// the network: a misbehaving server or proxy may echo them.
    fn scrub(&self, text: String) -> String {
        match &self.auth {
            Some(auth) if !auth.password.is_empty() => text
                .replace(&auth.token, "****")
                .replace(&auth.password, "****"),
            _ => text,
        }
    }
}

fn schema_body(schema: &str) -> String {
    serde_json::json!({ "schema": schema }).to_string()
}

fn message_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(MAX_TEXT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// `METHOD /path?query` as shown in messages.
fn describe(method: &Method, path: &[&str], query: &[(&str, &str)]) -> String {
    let mut s = format!("{method} /{}", path.join("/"));
    for (i, (k, v)) in query.iter().enumerate() {
        s.push(if i == 0 { '?' } else { '&' });
        s.push_str(&format!("{k}={v}"));
    }
    s
}

/// `base` + path segments (each percent-encoded, so a subject may hold any character).
fn endpoint(base: &Url, path: &[&str], query: &[(&str, &str)]) -> Url {
    let mut url = base.clone();
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().extend(path);
    }
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    url
}

/// An http(s) base URL with its `user:password@` taken out (and returned, percent-decoded).
fn parse_base(raw: &str) -> Result<(Url, Option<(String, String)>), String> {
    let mut url = Url::parse(raw).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "it must start with http:// or https://, not `{}:`",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("it has no host".to_string());
    }
    let user = percent_decode(url.username());
    let password = url.password().map(percent_decode);
    let creds =
        (!user.is_empty() || password.is_some()).then(|| (user, password.unwrap_or_default()));
    // Cannot fail for http(s) URLs with a host, checked above.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    Ok((url, creds))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An error and its causes on one line: reqwest's own message ("error sending request")
/// hides the useful part ("Connection refused").
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Secret;

    fn conn(url: &str, basic_auth: Option<(&str, &str)>) -> RegistryConnection {
        RegistryConnection {
            url: Secret(url.to_string()),
            basic_auth: basic_auth.map(|(u, p)| (u.to_string(), Secret(p.to_string()))),
        }
    }

    #[test]
    fn subject_names_follow_confluent_strategies() {
        let name = "shop.public.orders.Value";
        let cases = [
            (SubjectStrategy::Topic, true, "orders-key"),
            (SubjectStrategy::Topic, false, "orders-value"),
            (SubjectStrategy::Record, true, "shop.public.orders.Value"),
            (SubjectStrategy::Record, false, "shop.public.orders.Value"),
            (
                SubjectStrategy::TopicRecord,
                false,
                "orders-shop.public.orders.Value",
            ),
            (
                SubjectStrategy::TopicRecord,
                true,
                "orders-shop.public.orders.Value",
            ),
        ];
        for (strategy, is_key, expected) in cases {
            assert_eq!(
                subject_name(strategy, "orders", is_key, name),
                expected,
                "{strategy:?} key={is_key}"
            );
        }
    }

    #[test]
    fn credentials_come_out_of_the_url_decoded() {
        let (url, creds) = parse_base("https://alice:p%40ss%3Aw%C3%B6rd@sr.example:8081/base/")
            .expect("valid URL");
        assert_eq!(url.as_str(), "https://sr.example:8081/base/");
        assert_eq!(creds, Some(("alice".to_string(), "p@ss:wörd".to_string())));
        let (url, creds) = parse_base("http://127.0.0.1:8081").expect("valid URL");
        assert_eq!(url.as_str(), "http://127.0.0.1:8081/");
        assert_eq!(creds, None);
    }

    #[test]
    fn bad_urls_are_refused_without_showing_the_password() {
        for raw in ["localhost:8081", "ftp://u:hunter22@h", "http://u:hunter22@"] {
            let err = RegistryClient::new(&conn(raw, None)).expect_err(raw);
            let text = err.to_string();
            assert!(matches!(err, RegistryError::InvalidUrl { .. }), "{text}");
            assert!(!text.contains("hunter22"), "{text}");
        }
    }

    #[test]
    fn endpoints_keep_the_base_path_and_encode_subjects() {
        let (base, _) = parse_base("http://h:1/registry/").expect("valid URL");
        let url = endpoint(
            &base,
            &["subjects", "a/b c", "versions"],
            &[("verbose", "true")],
        );
        assert_eq!(
            url.as_str(),
            "http://h:1/registry/subjects/a%2Fb%20c/versions?verbose=true"
        );
    }

    #[test]
    fn several_urls_are_shown_without_credentials() {
        let client = RegistryClient::new(&conn("http://u:hunter22@a:8081, https://b:8082/", None))
            .expect("client");
        assert_eq!(client.url(), "http://a:8081,https://b:8082");
        assert!(!format!("{client:?}").contains("hunter22"));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy {
            attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        };
        let waits: Vec<u128> = (1..=6).map(|n| policy.backoff(n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(policy.backoff(200), Duration::from_secs(1));
    }

    #[test]
    fn long_registry_text_is_cut() {
        let long = "x".repeat(MAX_TEXT * 2);
        assert_eq!(truncate(&long).chars().count(), MAX_TEXT + 1);
        assert_eq!(truncate("short"), "short");
    }
}
