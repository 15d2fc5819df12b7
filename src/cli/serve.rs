//! `apply --metrics-addr`: a small HTTP/1.1 server for monitoring. `/metrics` renders every
//! running pipeline's counters ([`Metrics`]) in the Prometheus text format, `/healthz` says
//! the process is up, and `/readyz` says whether every pipeline is streaming (its snapshot
//! delivered) or ended without failing (503 while one is starting, snapshotting or has failed). Each request reads the
//! counters afresh; nothing is cached and nothing secret (URLs, credentials) is ever shown.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::progress::{now_us, phase_name, Sample, PHASES};
use crate::runtime::metrics::Metrics;

/// Largest request head read; a scrape request is a few hundred bytes.
const MAX_REQUEST: usize = 16 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The serving task; it ends when dropped.
pub struct MetricsServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `addr` (`HOST:PORT`; port 0 picks a free one) and serves until dropped.
pub async fn start(addr: &str, pipelines: Vec<Arc<Metrics>>) -> std::io::Result<MetricsServer> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let pipelines = Arc::new(pipelines);
    let task = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let pipelines = pipelines.clone();
                    tokio::spawn(async move {
                        if let Err(e) = handle(stream, &pipelines).await {
                            tracing::debug!("metrics endpoint: {e}");
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!("metrics endpoint: accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    });
    Ok(MetricsServer { addr: bound, task })
}

async fn handle(mut stream: TcpStream, pipelines: &[Arc<Metrics>]) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let read = tokio::time::timeout(READ_TIMEOUT, async {
        let mut buf = [0u8; 2048];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
    match read {
        Ok(r) => r?,
        Err(_) => return Ok(()),
    }
    let line = head
        .split(|&b| b == b'\n')
        .next()
        .map(|l| String::from_utf8_lossy(l).trim_end().to_string())
        .unwrap_or_default();
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let now = now_us();
    let samples: Vec<Sample> = pipelines.iter().map(|m| Sample::read(m, now)).collect();
    let response = respond(method, target, &samples);
    stream
        .write_all(&response.to_bytes(method == "HEAD"))
        .await?;
    stream.shutdown().await
}

#[derive(Debug, PartialEq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Response {
    fn text(status: u16, body: impl Into<String>) -> Self {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }

    fn to_bytes(&self, head_only: bool) -> Vec<u8> {
        let reason = match self.status {
            200 => "OK",
            404 => "Not Found",
            405 => "Method Not Allowed",
            503 => "Service Unavailable",
            _ => "Bad Request",
        };
        let mut out = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
             Cache-Control: no-store\r\nConnection: close\r\n",
            self.status,
            self.content_type,
            self.body.len()
        );
        if self.status == 405 {
            out.push_str("Allow: GET, HEAD\r\n");
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        if !head_only {
            bytes.extend_from_slice(self.body.as_bytes());
        }
        bytes
    }
}

/// The answer to one request, from one reading of the counters.
pub fn respond(method: &str, target: &str, samples: &[Sample]) -> Response {
    let path = target.split(['?', '#']).next().unwrap_or("");
    if !matches!(path, "/metrics" | "/healthz" | "/readyz") {
        return Response::text(404, "not found: try /metrics, /healthz or /readyz\n");
    }
    if method != "GET" && method != "HEAD" {
        return Response::text(405, "only GET and HEAD\n");
    }
    match path {
        "/metrics" => Response {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: render(samples),
        },
        "/healthz" => Response::text(200, "ok\n"),
        _ => readiness(samples),
    }
}

/// 200 when every pipeline is ready; the body names each pipeline's phase either way.
pub fn readiness(samples: &[Sample]) -> Response {
    let mut body = String::new();
    for s in samples {
        let _ = writeln!(
            body,
            "{}: {} ({})",
            s.pipeline,
            phase_name(s.phase),
            if s.ready() { "ready" } else { "not ready" }
        );
    }
    let ready = samples.iter().all(Sample::ready);
    Response::text(if ready { 200 } else { 503 }, body)
}

/// Escapes a label value for the Prometheus text format: backslash, double quote and
/// line feed are the three characters it reserves.
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// One metric family: its HELP and TYPE lines, then its series.
struct Family<'a> {
    out: &'a mut String,
}

impl<'a> Family<'a> {
    fn new(out: &'a mut String, name: &str, kind: &str, help: &str) -> Self {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        Family { out }
    }

    fn series(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// Per-pipeline metric: one series per pipeline.
fn per_pipeline(
    out: &mut String,
    samples: &[Sample],
    name: &str,
    kind: &str,
    help: &str,
    value: impl Fn(&Sample) -> Option<f64>,
) {
    let mut f = Family::new(out, name, kind, help);
    for s in samples {
        if let Some(v) = value(s) {
            f.series(name, &[("pipeline", &s.pipeline)], v);
        }
    }
}

/// Per-table metric: one series per table of each pipeline, labelled with its topic.
fn per_table(
    out: &mut String,
    samples: &[Sample],
    name: &str,
    kind: &str,
    help: &str,
    value: impl Fn(&super::progress::TableSample) -> Option<f64>,
) {
    let mut f = Family::new(out, name, kind, help);
    for s in samples {
        for t in &s.tables {
            if let Some(v) = value(t) {
                f.series(
                    name,
                    &[
                        ("pipeline", &s.pipeline),
                        ("table", &t.table),
                        ("topic", &t.topic),
                    ],
                    v,
                );
            }
        }
    }
}

/// The Prometheus text exposition of `samples`.
pub fn render(samples: &[Sample]) -> String {
    let mut out = String::new();
    let out = &mut out;
    let mut f = Family::new(
        out,
        "cdcql_build_info",
        "gauge",
        "Always 1; the version label says which cdcql is running.",
    );
    f.series(
        "cdcql_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );

    let mut f = Family::new(
        out,
        "cdcql_pipeline_phase",
        "gauge",
        "1 for the phase the pipeline is in (starting, snapshot, streaming, stopped, failed), 0 for the others.",
    );
    for s in samples {
        for p in PHASES {
            f.series(
                "cdcql_pipeline_phase",
                &[("pipeline", &s.pipeline), ("phase", phase_name(p))],
                u8::from(s.phase == p),
            );
        }
    }
    per_pipeline(
        out,
        samples,
        "cdcql_pipeline_ready",
        "gauge",
        "1 once streaming has started or the run ended without failing (what /readyz reports), else 0.",
        |s| Some(f64::from(u8::from(s.ready()))),
    );

    per_table(
        out,
        samples,
        "cdcql_snapshot_rows_estimated",
        "gauge",
        "Rows Postgres estimated for the table when its snapshot started (pg_class.reltuples); absent when unknown.",
        |t| (t.estimated_rows >= 0).then_some(t.estimated_rows as f64),
    );
    per_table(
        out,
        samples,
        "cdcql_snapshot_rows_total",
        "counter",
        "Rows of the initial snapshot turned into messages (after the pipeline's WHERE).",
        |t| Some(t.snapshot_rows as f64),
    );
    per_table(
        out,
        samples,
        "cdcql_snapshot_table_done",
        "gauge",
        "1 once the table has been read to its end (its last rows may still be on their way to Kafka), else 0.",
        |t| Some(f64::from(u8::from(t.snapshot_done))),
    );
    per_table(
        out,
        samples,
        "cdcql_snapshot_progress_ratio",
        "gauge",
        "Snapshot rows so far over the estimate (at most 1; 1 when done); absent while the estimate is unknown.",
        |t| {
            if t.snapshot_done {
                Some(1.0)
            } else if t.estimated_rows > 0 {
                Some((t.snapshot_rows as f64 / t.estimated_rows as f64).min(1.0))
            } else {
                None
            }
        },
    );
    per_table(
        out,
        samples,
        "cdcql_changes_total",
        "counter",
        "Row changes (insert, update, delete) from the replication stream turned into messages.",
        |t| Some(t.changes as f64),
    );
    per_table(
        out,
        samples,
        "cdcql_messages_total",
        "counter",
        "Messages produced to the table's topic (snapshot and changes, including tombstones).",
        |t| Some(t.messages as f64),
    );
    per_table(
        out,
        samples,
        "cdcql_message_bytes_total",
        "counter",
        "Bytes of message keys and values produced to the table's topic.",
        |t| Some(t.bytes as f64),
    );

    per_pipeline(
        out,
        samples,
        "cdcql_source_transactions_total",
        "counter",
        "Source transactions received from the replication stream.",
        |s| Some(s.transactions as f64),
    );
    per_pipeline(
        out,
        samples,
        "cdcql_replication_lag_bytes",
        "gauge",
        "WAL bytes the server has sent or reported that are not yet acknowledged (in Kafka).",
        |s| Some(s.lag_bytes as f64),
    );
    per_pipeline(
        out,
        samples,
        "cdcql_replication_lag_seconds",
        "gauge",
        "Age of the last source commit received while WAL is unacknowledged; 0 when caught up.",
        |s| Some(s.lag_seconds),
    );
    per_pipeline(
        out,
        samples,
        "cdcql_replication_acknowledged_lsn",
        "gauge",
        "Source position (LSN as a number) whose changes are all in Kafka and acknowledged to Postgres.",
        |s| Some(s.acked_lsn as f64),
    );
    per_pipeline(
        out,
        samples,
        "cdcql_replication_server_lsn",
        "gauge",
        "The server's WAL end (LSN as a number) as last reported on the replication connection.",
        |s| Some(s.server_lsn as f64),
    );
    per_pipeline(
        out,
        samples,
        "cdcql_source_last_commit_timestamp_seconds",
        "gauge",
        "Commit time of the last source transaction received (Unix time); absent before the first.",
        |s| (s.last_commit_us > 0).then_some(s.last_commit_us as f64 / 1e6),
    );
    per_pipeline(
        out,
        samples,
        "cdcql_errors_total",
        "counter",
        "Errors that stopped the pipeline.",
        |s| Some(s.errors as f64),
    );
    let mut f = Family::new(
        out,
        "cdcql_kafka_transactions_total",
        "counter",
        "Kafka transactions ended, by outcome (committed, aborted).",
    );
    for s in samples {
        for (outcome, n) in [
            ("committed", s.kafka_transactions_committed),
            ("aborted", s.kafka_transactions_aborted),
        ] {
            f.series(
                "cdcql_kafka_transactions_total",
                &[("pipeline", &s.pipeline), ("outcome", outcome)],
                n,
            );
        }
    }
    per_table(
        out,
        samples,
        "cdcql_dead_lettered_rows_total",
        "counter",
        "Rows that could not be delivered and went to the dead-letter topic (on_error = 'dead_letter').",
        |t| Some(t.dead_lettered as f64),
    );
    per_table(
        out,
        samples,
        "cdcql_skipped_rows_total",
        "counter",
        "Rows that could not be delivered and were dropped (on_error = 'skip').",
        |t| Some(t.skipped as f64),
    );
    std::mem::take(out)
}

#[cfg(test)]
mod tests {
    use super::super::progress::TableSample;
    use super::*;
    use crate::runtime::metrics::Phase;

    fn sample(pipeline: &str, phase: Phase) -> Sample {
        Sample {
            pipeline: pipeline.into(),
            phase,
            tables: vec![
                TableSample {
                    table: "public.orders".into(),
                    topic: "shop.orders".into(),
                    estimated_rows: 200,
                    snapshot_rows: 50,
                    snapshot_done: false,
                    changes: 0,
                    messages: 50,
                    bytes: 12_345,
                    dead_lettered: 3,
                    skipped: 0,
                },
                TableSample {
                    table: "public.customers".into(),
                    topic: "shop.customers".into(),
                    estimated_rows: -1,
                    snapshot_rows: 0,
                    snapshot_done: false,
                    changes: 4,
                    messages: 5,
                    bytes: 99,
                    dead_lettered: 0,
                    skipped: 2,
                },
            ],
            transactions: 3,
            acked_lsn: 0x1_0000_0010,
            server_lsn: 0x1_0000_0030,
            lag_bytes: 0x20,
            lag_seconds: 1.5,
            last_commit_us: 1_700_000_000_250_000,
            errors: 0,
            kafka_transactions_committed: 7,
            kafka_transactions_aborted: 1,
            dead_lettered: 0,
            skipped: 2,
        }
    }

    /// `name{labels}` → value, for the series lines of a rendering.
    fn series(text: &str) -> Vec<(String, String)> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let (k, v) = l.rsplit_once(' ').expect("a series line has a value");
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    fn value(text: &str, key: &str) -> Option<String> {
        series(text)
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"plain.name"#), "plain.name");
        assert_eq!(escape_label("a\"b"), "a\\\"b");
        assert_eq!(escape_label("back\\slash"), "back\\\\slash");
        assert_eq!(escape_label("two\nlines"), "two\\nlines");
        assert_eq!(escape_label("ünï \u{1F600}"), "ünï \u{1F600}");
        let mut s = sample("p", Phase::Streaming);
        s.tables[0].table = "odd.\"quoted\\name\"\nx".into();
        let text = render(&[s]);
        assert!(
            text.contains(
                r#"cdcql_messages_total{pipeline="p",table="odd.\"quoted\\name\"\nx",topic="shop.orders"} 50"#
            ),
            "{text}"
        );
        // Every line is a comment or one series: the newline in the name did not split one.
        for line in text.lines() {
            assert!(
                line.starts_with("# HELP cdcql_")
                    || line.starts_with("# TYPE cdcql_")
                    || line.starts_with("cdcql_"),
                "{line}"
            );
        }
    }

    #[test]
    fn renders_counters_by_pipeline_table_and_topic() {
        let text = render(&[sample("a", Phase::Snapshot), sample("b", Phase::Streaming)]);
        let v = |k: &str| value(&text, k);
        assert_eq!(
            v(r#"cdcql_snapshot_rows_total{pipeline="a",table="public.orders",topic="shop.orders"}"#).as_deref(),
            Some("50")
        );
        assert_eq!(
            v(r#"cdcql_message_bytes_total{pipeline="b",table="public.orders",topic="shop.orders"}"#).as_deref(),
            Some("12345")
        );
        assert_eq!(
            v(r#"cdcql_changes_total{pipeline="b",table="public.customers",topic="shop.customers"}"#).as_deref(),
            Some("4")
        );
        assert_eq!(
            v(r#"cdcql_snapshot_progress_ratio{pipeline="a",table="public.orders",topic="shop.orders"}"#).as_deref(),
            Some("0.25")
        );
        // An unknown estimate is left out rather than shown as -1 or 0 %.
        assert!(!text
            .contains(r#"cdcql_snapshot_rows_estimated{pipeline="a",table="public.customers""#));
        assert!(!text
            .contains(r#"cdcql_snapshot_progress_ratio{pipeline="a",table="public.customers""#));
        assert_eq!(
            v(r#"cdcql_pipeline_phase{pipeline="a",phase="snapshot"}"#).as_deref(),
            Some("1")
        );
        assert_eq!(
            v(r#"cdcql_pipeline_phase{pipeline="a",phase="streaming"}"#).as_deref(),
            Some("0")
        );
        assert_eq!(
            v(r#"cdcql_pipeline_ready{pipeline="a"}"#).as_deref(),
            Some("0")
        );
        assert_eq!(
            v(r#"cdcql_pipeline_ready{pipeline="b"}"#).as_deref(),
            Some("1")
        );
        assert_eq!(
            v(r#"cdcql_replication_lag_bytes{pipeline="b"}"#).as_deref(),
            Some("32")
        );
        assert_eq!(
            v(r#"cdcql_replication_lag_seconds{pipeline="b"}"#).as_deref(),
            Some("1.5")
        );
        assert_eq!(
            v(r#"cdcql_replication_acknowledged_lsn{pipeline="b"}"#).as_deref(),
            Some("4294967312")
        );
        assert_eq!(
            v(r#"cdcql_source_last_commit_timestamp_seconds{pipeline="b"}"#).as_deref(),
            Some("1700000000.25")
        );
        assert_eq!(
            v(r#"cdcql_kafka_transactions_total{pipeline="a",outcome="aborted"}"#).as_deref(),
            Some("1")
        );
        assert_eq!(
            v(r#"cdcql_skipped_rows_total{pipeline="b",table="public.customers",topic="shop.customers"}"#).as_deref(),
            Some("2")
        );
        assert_eq!(
            v(r#"cdcql_dead_lettered_rows_total{pipeline="b",table="public.orders",topic="shop.orders"}"#).as_deref(),
            Some("3")
        );
    }

    #[test]
    fn each_family_is_declared_once_before_its_series() {
        let text = render(&[sample("a", Phase::Snapshot), sample("b", Phase::Failed)]);
        let mut declared: Vec<String> = Vec::new();
        let mut current = String::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap_or_default().to_string();
                assert!(!declared.contains(&name), "{name} declared twice");
                declared.push(name.clone());
                current = name;
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap_or_default();
                assert_eq!(name, current, "series outside its family: {line}");
            }
        }
        assert!(declared.len() > 15, "{declared:?}");
    }

    #[test]
    fn routes_and_readiness() {
        let ready = [sample("a", Phase::Streaming)];
        let snapshot = [sample("a", Phase::Streaming), sample("b", Phase::Snapshot)];
        let failed = [sample("a", Phase::Streaming), sample("b", Phase::Failed)];
        assert_eq!(respond("GET", "/healthz", &failed).status, 200);
        assert_eq!(respond("GET", "/readyz", &ready).status, 200);
        let r = respond("GET", "/readyz", &snapshot);
        assert_eq!(r.status, 503);
        assert!(r.body.contains("b: snapshot (not ready)"), "{}", r.body);
        let r = respond("GET", "/readyz?verbose=1", &failed);
        assert_eq!(r.status, 503);
        assert!(r.body.contains("b: failed (not ready)"), "{}", r.body);
        assert!(r.body.contains("a: streaming (ready)"), "{}", r.body);
        let m = respond("GET", "/metrics", &ready);
        assert_eq!(m.status, 200);
        assert!(m.content_type.starts_with("text/plain; version=0.0.4"));
        assert_eq!(respond("GET", "/", &ready).status, 404);
        assert_eq!(respond("POST", "/metrics", &ready).status, 405);
        let head = respond("HEAD", "/healthz", &ready).to_bytes(true);
        assert!(String::from_utf8_lossy(&head).ends_with(
            "Content-Length: 3\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
        ));
    }

    #[tokio::test]
    async fn serves_over_tcp() {
        let server = start("127.0.0.1:0", Vec::new()).await.expect("bind");
        let addr = server.addr;
        let get = move |path: &'static str| async move {
            let mut s = TcpStream::connect(addr).await.expect("connect");
            s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .await
                .expect("write");
            let mut out = String::new();
            s.read_to_string(&mut out).await.expect("read");
            out
        };
        let health = get("/healthz").await;
        assert!(health.starts_with("HTTP/1.1 200 OK\r\n"), "{health}");
        assert!(health.ends_with("\r\n\r\nok\n"), "{health}");
        // No pipelines: nothing is not ready.
        assert!(get("/readyz").await.starts_with("HTTP/1.1 200"));
        let metrics = get("/metrics").await;
        assert!(metrics.contains("cdcql_build_info{version="), "{metrics}");
        assert!(get("/nope").await.starts_with("HTTP/1.1 404"));
    }
}
