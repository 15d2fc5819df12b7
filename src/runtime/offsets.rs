//! Each pipeline's progress, kept in a compacted Kafka topic (default `_cdcql_offsets`), keyed
//! by the pipeline's replication slot (unique in its Postgres cluster, unlike pipeline names): whether the initial snapshot finished, and the last source position
//! whose changes are all in Kafka. The replication slot holds the authoritative streaming
//! position; this record is what the slot cannot tell: that the snapshot is complete.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::plan::KafkaConnection;
use crate::sink::kafka::SinkError;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub pipeline: String,
    pub slot: String,
    /// The initial snapshot was completely delivered.
    pub snapshot_done: bool,
    /// The slot's consistent point when the snapshot was taken.
    pub snapshot_lsn: Option<u64>,
    /// Every change committed at or before this position is in Kafka.
    pub lsn: Option<u64>,
    pub messages: u64,
    pub updated_ms: i64,
    /// Snapshot chunks per table (by `schema.table`), so that a crash resumes at the first
    /// unfinished chunk with the same boundaries.
    #[serde(default)]
    pub chunks: BTreeMap<String, TableChunks>,
    /// The first snapshot attempt's `pg_current_snapshot()`: a resumed attempt reads tables
    /// without a key as that snapshot saw them (see `chunks`).
    #[serde(default)]
    pub snapshot_xids: Option<String>,
    /// Rows set aside under `on_error`, per table (by `schema.table`), over every run.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rejected: BTreeMap<String, RejectedRows>,
}

/// Rows of one table that could not be delivered and were not (`on_error`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedRows {
    pub dead_lettered: u64,
    pub skipped: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableChunks {
    /// Heap pages per chunk, for tables without a primary key (chunks are ctid ranges).
    pub pages_per_chunk: u64,
    pub total: u32,
    pub done: Vec<u32>,
    /// Primary-key values (as text, one list per boundary) splitting the table into key
    /// ranges. Key ranges hold the same rows whatever snapshot reads them, so a resumed
    /// snapshot reads no row twice; ctid ranges do not (an update moves a row).
    #[serde(default)]
    pub bounds: Option<Vec<Vec<String>>>,
}

impl Progress {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The last progress record for `slot`, reading the topic from start to end (it is
/// compacted, so this is small). `None` when the topic or the record does not exist.
pub fn load(
    kafka: &KafkaConnection,
    topic: &str,
    slot: &str,
) -> Result<Option<Progress>, SinkError> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &kafka.brokers)
        .set("group.id", "cdcql-offsets-reader")
        .set("enable.auto.commit", "false")
        // Only what a committed Kafka transaction vouches for.
        .set("isolation.level", "read_committed")
        .set("fetch.max.bytes", "16777216")
        .set("receive.message.max.bytes", "1000000000")
        .set("enable.partition.eof", "false");
    for (k, v) in &kafka.client_options {
        // Producer-only settings would make the consumer refuse to start.
        if !is_producer_only(k) {
            config.set(k, v);
        }
    }
    let consumer: BaseConsumer = config.create().map_err(SinkError::Config)?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(SinkError::Config)?;
    let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Ok(None);
    };
    if t.error().is_some() || t.partitions().is_empty() {
        return Ok(None);
    }
    let mut assignment = TopicPartitionList::new();
    let mut highs = Vec::new();
    for p in t.partitions() {
        let (low, high) = consumer
            .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
            .map_err(SinkError::Config)?;
        if high > low {
            assignment
                .add_partition_offset(topic, p.id(), Offset::Beginning)
                .map_err(SinkError::Config)?;
            highs.push((p.id(), high));
        }
    }
    if highs.is_empty() {
        return Ok(None);
    }
    consumer.assign(&assignment).map_err(SinkError::Config)?;
    let mut last: Option<Progress> = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        // Read until every partition's position has passed its end as of the start: with
        // transactions the end holds commit markers and aborted records, which are skipped
        // rather than returned, so positions — not message offsets — say when we are done.
        let positions = consumer.position().map_err(SinkError::Config)?;
        let done = highs.iter().all(|(p, high)| {
            positions
                .find_partition(topic, *p)
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(o >= *high),
                    _ => None,
                })
                .unwrap_or(false)
        });
        if done {
            break;
        }
        if std::time::Instant::now() > deadline {
            return Err(SinkError::Offsets(format!(
                "timed out reading progress records from {topic} (a transaction of another \
                 pipeline sharing the topic may still be open)"
            )));
        }
        let Some(msg) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let msg = msg.map_err(SinkError::Config)?;
        if msg.key() == Some(slot.as_bytes()) {
            last = match msg.payload() {
                None => None,
                Some(p) => Some(serde_json::from_slice(p).map_err(|e| {
                    SinkError::Offsets(format!(
                        "unreadable progress record for slot `{slot}` in {topic}: {e}"
                    ))
                })?),
            };
        }
    }
    Ok(last)
}

/// Write a tombstone for the slot's record (after `cdcql drop`, a new run starts afresh).
pub fn forget(kafka: &KafkaConnection, topic: &str, slot: &str) -> Result<(), SinkError> {
    let mut sink = crate::sink::kafka::KafkaSink::new(kafka)?;
    sink.send(topic, Some(slot.as_bytes()), None)?;
    sink.flush(Duration::from_secs(30))?;
    Ok(())
}

fn is_producer_only(key: &str) -> bool {
    key.starts_with("linger")
        || key.starts_with("batch.")
        || key.starts_with("queue.buffering")
        || key.starts_with("compression")
        || key == "acks"
        || key.starts_with("enable.idempotence")
        || key.starts_with("transactional")
        || key.starts_with("message.send")
        || key.starts_with("message.timeout")
        || key.starts_with("delivery.timeout")
        || key.starts_with("transaction.timeout")
        || key == "partitioner"
}
