//! `cdcql preview` (and the REPL's `PREVIEW`): run a pipeline on the first rows of each table
//! and show the messages it would produce, for people.
//!
//! The rows come from the snapshot path (binary COPY inside a READ ONLY transaction, so nothing
//! is created in Postgres), go through the pipeline's query, envelope and encoder, and are then
//! printed instead of produced: topic, partition (what the producer's murmur2 partitioner would
//! pick), key, headers and value. Debezium values are shown as indented JSON, native rows as a
//! table. Nothing reaches Kafka and no schema is registered.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::concat_batches;
use futures::StreamExt;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer};
use tokio_postgres::Client;

use crate::catalog::quote_ident;
use crate::encode::json::JsonEncoder;
use crate::encode::{EncodeError, EncodedColumn};
use crate::envelope::{
    ChangeBatch, EnvelopeError, Op, SnapshotMark, SourcePosition, TableEnvelope,
};
use crate::plan::{Encoding, Envelope, PipelinePlan, TablePlan};
use crate::source::postgres::copy::CopyDecoder;
use crate::source::postgres::snapshot::{self, SnapshotPoint};
use crate::source::postgres::{self, SourceError};
use crate::transform::Transform;

#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("evaluating the pipeline query: {0}")]
    Query(#[from] datafusion::error::DataFusionError),
    #[error("envelope: {0}")]
    Envelope(#[from] EnvelopeError),
    #[error("encoding: {0}")]
    Encode(#[from] EncodeError),
    #[error("arrow: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
}

/// What a preview needs besides the plan.
#[derive(Debug, Clone)]
pub struct PreviewOptions {
    /// Messages to show per table.
    pub limit: usize,
    /// Processing time written by the Debezium envelope (ns since the epoch); `None` reads the
    /// clock. Tests fix it so that the output is stable.
    pub now_ns: Option<i64>,
    /// Snapshot position written into `source`; `None` takes the real one from Postgres.
    pub point: Option<SnapshotPoint>,
    /// Ask the broker how many partitions the topics already have (read-only metadata);
    /// otherwise assume the partition count cdcql would create them with.
    pub ask_broker: bool,
}

impl PreviewOptions {
    pub fn new(limit: usize) -> Self {
        PreviewOptions {
            limit,
            now_ns: None,
            point: None,
            ask_broker: true,
        }
    }
}

/// Rows of one table through the pipeline's query.
struct TableRows {
    batch: Option<RecordBatch>,
    /// True when every row of the table was read, so the last row shown is the table's last.
    complete: bool,
}

/// Read, transform, envelope and encode the first `opts.limit` rows of each table of `plan`
/// and describe the messages. Postgres is only read, Kafka is at most asked for metadata.
pub async fn preview(plan: &PipelinePlan, opts: &PreviewOptions) -> Result<String, PreviewError> {
    let client = postgres::connect(&plan.postgres.url).await?;
    let real_point = snapshot::begin(&client, None).await?;
    let point = opts.point.clone().unwrap_or(real_point);
    let mut rows = Vec::new();
    for t in &plan.tables {
        let transform = Transform::new(t)?;
        rows.push(first_rows(&client, t, &transform, opts.limit).await?);
    }
    // Read-only, but end it anyway rather than leave it to the connection's close.
    snapshot::end(&client).await?;

    let partitions = if opts.ask_broker {
        broker_partitions(plan).await
    } else {
        BrokerTopics::NotAsked
    };
    let now_ns = opts.now_ns.unwrap_or_else(now_ns);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "pipeline {}: first {} row(s) of each table, as messages; nothing is sent to Kafka",
        plan.name, opts.limit
    );
    let last_table = plan.tables.len().saturating_sub(1);
    for (i, (t, r)) in plan.tables.iter().zip(rows).enumerate() {
        let _ = writeln!(out);
        let change = r.batch.map(|batch| {
            let n = batch.num_rows();
            let marks = (0..n)
                .map(|row| {
                    SnapshotMark::for_row(
                        i == 0,
                        i == last_table,
                        row == 0,
                        r.complete && row + 1 == n,
                    )
                })
                .collect();
            ChangeBatch {
                ops: vec![Op::Read; n],
                before: None,
                before_valid: None,
                after: Some(batch),
                position: SourcePosition {
                    ts_us: point.ts_us,
                    tx_id: Some(point.tx_id),
                    lsn: Some(point.lsn),
                    last_commit_lsn: None,
                },
                snapshot_marks: Some(marks),
                lsns: None,
                txns: None,
            }
        });
        describe_table(&mut out, plan, t, change.as_ref(), now_ns, &partitions)?;
    }
    Ok(out)
}

/// The first `limit` rows of the table that pass the query's filter. Without a filter one
/// `LIMIT` read is enough; with one, reads grow until enough rows pass or the table ends
/// (each read starts over, so a row is never counted twice).
async fn first_rows(
    client: &Client,
    t: &TablePlan,
    transform: &Transform,
    limit: usize,
) -> Result<TableRows, PreviewError> {
    if limit == 0 {
        return Ok(TableRows {
            batch: None,
            complete: false,
        });
    }
    let mut read = if t.filter.is_some() {
        (limit * 8).max(256)
    } else {
        limit
    };
    loop {
        let (batches, rows_read) = copy_first(client, t, read).await?;
        let mut out = Vec::new();
        let mut passed = 0;
        for b in batches {
            let b = transform.apply(b)?;
            passed += b.num_rows();
            out.push(b);
        }
        let table_ended = rows_read < read;
        if passed >= limit || table_ended {
            let schema = t.output_schema();
            let all = concat_batches(&schema, &out)?;
            let shown = all.num_rows().min(limit);
            return Ok(TableRows {
                batch: (shown > 0).then(|| all.slice(0, shown)),
                complete: table_ended && passed <= limit,
            });
        }
        read = read.saturating_mul(16);
    }
}

/// `COPY (SELECT <read columns> FROM <table> LIMIT n)`, decoded like the snapshot's COPY.
async fn copy_first(
    client: &Client,
    t: &TablePlan,
    n: usize,
) -> Result<(Vec<RecordBatch>, usize), PreviewError> {
    let columns = t
        .read_columns
        .iter()
        .map(|c| quote_ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "COPY (SELECT {columns} FROM {} LIMIT {n}) TO STDOUT (FORMAT binary)",
        t.table.quoted()
    );
    let stream = client
        .copy_out(sql.as_str())
        .await
        .map_err(SourceError::from)?;
    futures::pin_mut!(stream);
    let mut decoder = CopyDecoder::new(
        t.table.to_string(),
        t.read_columns.clone(),
        t.input_schema.clone(),
        n.clamp(1, crate::runtime::BATCH_ROWS),
    );
    let mut batches = Vec::new();
    while let Some(chunk) = stream.next().await {
        decoder.push(&chunk.map_err(SourceError::from)?, &mut batches)?;
    }
    if let Some(b) = decoder.finish()? {
        batches.push(b);
    }
    let rows = batches.iter().map(|b| b.num_rows()).sum();
    Ok((batches, rows))
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

// ---- partitions ----------------------------------------------------------------------------

/// What the broker said about the pipeline's topics.
enum BrokerTopics {
    NotAsked,
    Unreachable(String),
    /// Partition count per existing topic.
    Known(Vec<(String, usize)>),
}

/// Partition counts of the topics that exist, from the broker's metadata for all topics:
/// asking for one topic by name could make a broker with `auto.create.topics.enable` create it.
async fn broker_partitions(plan: &PipelinePlan) -> BrokerTopics {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &plan.kafka.brokers)
        .set("allow.auto.create.topics", "false");
    for (k, v) in &plan.kafka.client_options {
        config.set(k, v);
    }
    let wanted: Vec<String> = plan.tables.iter().map(|t| t.topic.clone()).collect();
    let asked = tokio::task::spawn_blocking(move || {
        let producer: BaseProducer = config.create().map_err(|e| e.to_string())?;
        let md = producer
            .client()
            .fetch_metadata(None, Duration::from_secs(3))
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(
            md.topics()
                .iter()
                .filter(|t| wanted.iter().any(|w| w == t.name()))
                .map(|t| (t.name().to_string(), t.partitions().len()))
                .collect::<Vec<_>>(),
        )
    })
    .await;
    match asked {
        Ok(Ok(known)) => BrokerTopics::Known(known),
        Ok(Err(e)) => BrokerTopics::Unreachable(e),
        Err(e) => BrokerTopics::Unreachable(e.to_string()),
    }
}

/// Kafka's `Utils.murmur2` (the Java client's hash), as a signed 32-bit value.
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = 0x9747_b28c ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Java's default partitioner (and librdkafka's `murmur2_random`) picks for a
/// non-null key: `toPositive(murmur2(key)) % partitions`.
pub fn key_partition(key: &[u8], partitions: usize) -> usize {
    ((murmur2(key) & 0x7fff_ffff) as usize) % partitions.max(1)
}

/// How many partitions the topic has (or will have), and how we know.
fn partition_count(plan: &PipelinePlan, topic: &str, broker: &BrokerTopics) -> (usize, String) {
    let planned = plan.topic_settings.partitions.max(1) as usize;
    match broker {
        BrokerTopics::Known(known) => match known.iter().find(|(t, _)| t == topic) {
            Some((_, n)) => (*n, format!("the topic has {n} partition(s)")),
            None => (
                planned,
                format!("the topic does not exist yet; cdcql creates it with {planned}"),
            ),
        },
        BrokerTopics::Unreachable(e) => (
            planned,
            format!("assuming {planned} partition(s): could not ask the broker ({e})"),
        ),
        BrokerTopics::NotAsked => (planned, format!("{planned} partition(s)")),
    }
}

// ---- output ------------------------------------------------------------------------------------

fn describe_table(
    out: &mut String,
    plan: &PipelinePlan,
    t: &TablePlan,
    change: Option<&ChangeBatch>,
    now_ns: i64,
    broker: &BrokerTopics,
) -> Result<(), PreviewError> {
    let format = match &plan.encoding {
        Encoding::Json { schemas: false } => "JSON",
        Encoding::Json { schemas: true } => "JSON with schemas",
        Encoding::Avro(_) => "AVRO",
    };
    let envelope_name = match &plan.envelope {
        Envelope::Debezium(_) => "DEBEZIUM",
        Envelope::Native(_) => "NATIVE",
    };
    let _ = writeln!(
        out,
        "{} → topic {} (FORMAT {format}, ENVELOPE {envelope_name})",
        t.table, t.topic
    );
    let Some(change) = change else {
        let _ = writeln!(out, "  no rows");
        return Ok(());
    };
    let envelope = TableEnvelope::new(plan, t);
    let records = envelope.records(change, now_ns)?;
    let schemas = envelope.schemas();

    // What people read: Connect JSON payloads, whatever the wire format is.
    let mut shown_keys = EncodedColumn::default();
    let mut values = EncodedColumn::default();
    if let (Some(k), Some(schema)) = (&records.key, &schemas.key) {
        JsonEncoder::new(schema, false).encode(k, &mut shown_keys)?;
    }
    JsonEncoder::new(&schemas.value, false).encode(&records.value, &mut values)?;

    // What the partitioner hashes: the key bytes as they would be sent.
    let (count, count_note) = partition_count(plan, &t.topic, broker);
    let mut wire_keys = EncodedColumn::default();
    if let (
        Some(k),
        Some(schema),
        Encoding::Json {
            schemas: with_schema,
        },
    ) = (&records.key, &schemas.key, &plan.encoding)
    {
        JsonEncoder::new(schema, *with_schema).encode(k, &mut wire_keys)?;
    }
    let partition_of = |row: usize| -> String {
        match (&records.key, &plan.encoding) {
            (None, _) => "random (null key)".to_string(),
            (Some(_), Encoding::Avro(_)) => {
                "depends on the key schema's registry id (murmur2 of the Avro key bytes)"
                    .to_string()
            }
            (Some(_), Encoding::Json { .. }) => match wire_key(&wire_keys, row) {
                Some(bytes) => key_partition(bytes, count).to_string(),
                None => "random (null key)".to_string(),
            },
        }
    };
    let key_text = |row: usize| -> String {
        if shown_keys.is_empty() {
            "null".to_string()
        } else {
            shown_keys
                .get(row)
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_else(|| "null".to_string())
        }
    };
    let headers = match &plan.envelope {
        Envelope::Native(_) => "; no headers",
        Envelope::Debezium(_) => "",
    };
    let _ = writeln!(
        out,
        "  partition = murmur2 of the key bytes; {count_note}{headers}"
    );
    match &plan.encoding {
        Encoding::Json { schemas: true } => {
            let _ = writeln!(
                out,
                "  (payloads shown; each message wraps its payload as {{\"schema\":…,\"payload\":…}})"
            );
        }
        Encoding::Avro(_) => {
            let _ = writeln!(
                out,
                "  (shown as JSON; on the wire: Avro after a magic byte and the registry's schema id)"
            );
        }
        Encoding::Json { schemas: false } => {}
    }
    match &plan.envelope {
        Envelope::Debezium(_) => {
            for row in 0..values.len() {
                let _ = writeln!(out, "  message {}", row + 1);
                let _ = writeln!(out, "    partition {}", partition_of(row));
                let _ = writeln!(out, "    key       {}", key_text(row));
                let _ = writeln!(out, "    headers   (none)");
                match values.get(row) {
                    Some(v) => {
                        let _ = writeln!(out, "    value");
                        for line in pretty_json(v).lines() {
                            let _ = writeln!(out, "      {line}");
                        }
                    }
                    None => {
                        let _ = writeln!(out, "    value     null (tombstone)");
                    }
                }
            }
        }
        Envelope::Native(_) => {
            let field_names: Vec<String> = schemas
                .value
                .fields()
                .iter()
                .map(|f| f.name.clone())
                .collect();
            let mut header = vec!["partition".to_string(), "key".to_string()];
            header.extend(field_names.iter().cloned());
            let mut table = vec![header];
            for row in 0..values.len() {
                let mut cells = vec![partition_of(row), key_text(row)];
                match values.get(row) {
                    Some(v) => {
                        let fields = top_level_fields(v);
                        cells.extend(field_names.iter().map(|name| {
                            fields
                                .iter()
                                .find(|(k, _)| k == name)
                                .map(|(_, v)| v.clone())
                                .unwrap_or_default()
                        }));
                    }
                    None => cells.push("(tombstone)".to_string()),
                }
                table.push(cells);
            }
            for line in text_table(&table).lines() {
                let _ = writeln!(out, "  {line}");
            }
        }
    }
    Ok(())
}

fn wire_key(keys: &EncodedColumn, row: usize) -> Option<&[u8]> {
    if row < keys.len() {
        keys.get(row)
    } else {
        None
    }
}

/// Cells wider than this are cut with `…`.
const MAX_CELL: usize = 40;

/// A plain table: a header row, a rule, then the rows, columns separated by `│`.
pub(crate) fn text_table(rows: &[Vec<String>]) -> String {
    let cut = |s: &str| -> String {
        if s.chars().count() > MAX_CELL {
            let mut c: String = s.chars().take(MAX_CELL - 1).collect();
            c.push('…');
            c
        } else {
            s.to_string()
        }
    };
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| cut(c)).collect())
        .collect();
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (n, r) in rows.iter().enumerate() {
        let cells: Vec<String> = (0..columns)
            .map(|i| {
                let c = r.get(i).map(String::as_str).unwrap_or("");
                format!("{c}{}", " ".repeat(widths[i] - c.chars().count()))
            })
            .collect();
        let _ = writeln!(out, "{}", cells.join(" │ ").trim_end());
        if n == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
            let _ = writeln!(out, "{}", rule.join("─┼─"));
        }
    }
    out
}

/// Re-indents compact JSON, two spaces per level, keeping every scalar exactly as written (a
/// round trip through a JSON library could rewrite numbers such as Java's `1.0E10`).
pub fn pretty_json(compact: &[u8]) -> String {
    let text = String::from_utf8_lossy(compact);
    let mut out = String::with_capacity(text.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = text.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                if chars.peek() == Some(&close) {
                    chars.next();
                    out.push(c);
                    out.push(close);
                } else {
                    out.push(c);
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// The members of a compact JSON object, each value as written. Not a general parser: the
/// input is our own encoder's output.
fn top_level_fields(compact: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(compact);
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or("");
    let mut fields = Vec::new();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut start = 0;
    let mut members = Vec::new();
    for (i, c) in inner.char_indices() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' | '[' => depth += 1,
            '}' | ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                members.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if !inner.trim().is_empty() {
        members.push(&inner[start..]);
    }
    for m in members {
        // The name is a JSON string without a `":` inside it (column names are escaped).
        let Some(colon) = find_name_end(m) else {
            continue;
        };
        let name = m[..colon].trim();
        let name = name
            .strip_prefix('"')
            .and_then(|n| n.strip_suffix('"'))
            .unwrap_or(name)
            .replace("\\\"", "\"")
            .replace("\\\\", "\\");
        fields.push((name, m[colon + 1..].trim().to_string()));
    }
    fields
}

/// Byte index of the `:` after a member's name.
fn find_name_end(member: &str) -> Option<usize> {
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in member.char_indices() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else if c == ':' {
            return Some(i);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka() {
        // Kafka's UtilsTest.testMurmur2 vectors.
        for (data, want) in [
            (&b"21"[..], -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            (b"abc", 479470107),
        ] {
            assert_eq!(murmur2(data), want, "{}", String::from_utf8_lossy(data));
        }
        assert_eq!(
            key_partition(b"foobar", 50),
            (-790332482i32 & 0x7fffffff) as usize % 50
        );
    }

    #[test]
    fn pretty_json_keeps_scalars() {
        let got = pretty_json(br#"{"a":1.0E10,"b":{},"c":[1,2],"d":"x,{y}:\"z","e":null}"#);
        assert_eq!(
            got,
            "{\n  \"a\": 1.0E10,\n  \"b\": {},\n  \"c\": [\n    1,\n    2\n  ],\n  \"d\": \"x,{y}:\\\"z\",\n  \"e\": null\n}"
        );
    }

    #[test]
    fn splits_top_level_fields() {
        let got =
            top_level_fields(br#"{"id":1,"a,b":"x,\"y","s":{"scale":2,"value":"AQ=="},"n":null}"#);
        assert_eq!(
            got,
            vec![
                ("id".to_string(), "1".to_string()),
                ("a,b".to_string(), "\"x,\\\"y\"".to_string()),
                ("s".to_string(), r#"{"scale":2,"value":"AQ=="}"#.to_string()),
                ("n".to_string(), "null".to_string()),
            ]
        );
    }

    #[test]
    fn table_aligns_and_cuts() {
        let t = text_table(&[
            vec!["a".into(), "bb".into()],
            vec!["ccc".into(), "x".repeat(50)],
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "a   │ bb");
        assert!(lines[1].starts_with("────┼─"));
        assert!(lines[2].ends_with('…'));
        assert_eq!(lines[2].chars().count(), 3 + 3 + MAX_CELL);
    }
}
