//! Kafka producer: idempotent, `acks=all`, Java-compatible murmur2 partitioning (so Java
//! clients and Kafka Streams co-partition with us), bounded in-flight queue. A delivery
//! failure is an error at the next `send` or at `flush`, never dropped silently.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use crate::plan::{KafkaConnection, TopicSettings};

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("Kafka client configuration: {0}")]
    Config(KafkaError),
    #[error("creating topic {topic}: {message}")]
    CreateTopic { topic: String, message: String },
    #[error("Kafka did not accept {failed} message(s); first error: {first}")]
    Delivery { failed: u64, first: String },
    #[error("producing to {topic}: {source}")]
    Produce {
        topic: String,
        #[source]
        source: KafkaError,
    },
    #[error("timed out waiting for Kafka to acknowledge {pending} message(s)")]
    FlushTimeout { pending: u64 },
    #[error("{0}")]
    Offsets(String),
    #[error("Kafka transaction: {0}")]
    Transaction(String),
    /// librdkafka's producer stopped for good; the text is its own reason, which says whether
    /// another writer fenced it (then stop) or a new producer can carry on.
    #[error("the Kafka producer failed fatally: {0}")]
    Fatal(String),
}

/// Counts acknowledgements from the producer's background thread, and knows which messages
/// are still in flight, so that a source position is acknowledged only once everything
/// before it is in Kafka (deliveries to different partitions complete out of order).
pub struct DeliveryTracker {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
    /// One bit per message in a ring of `WINDOW` sequence numbers, set on delivery; the
    /// sending thread clears them as its low-water mark passes. Lock-free, because the
    /// delivery callback runs once per message.
    done: Vec<AtomicU64>,
}

/// Messages that may be in flight at once (a power of two, above librdkafka's queue size).
const WINDOW: u64 = 1 << 20;

impl Default for DeliveryTracker {
    fn default() -> Self {
        DeliveryTracker {
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            first_error: Mutex::new(None),
            done: (0..WINDOW / 64).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl DeliveryTracker {
    fn mark_done(&self, seq: u64) {
        let slot = seq % WINDOW;
        self.done[(slot / 64) as usize].fetch_or(1 << (slot % 64), Ordering::Release);
    }

    /// Move `low` past every delivered message, clearing their bits for reuse.
    fn advance(&self, low: &mut u64, sent: u64) {
        while *low < sent {
            let slot = *low % WINDOW;
            let (word, bit) = ((slot / 64) as usize, slot % 64);
            let bits = self.done[word].load(Ordering::Acquire) >> bit;
            // Delivered messages from `low` on, within this word.
            let run = (!bits).trailing_zeros() as u64;
            let run = run.min(64 - bit).min(sent - *low);
            if run == 0 {
                return;
            }
            let mask = if run == 64 {
                u64::MAX
            } else {
                ((1u64 << run) - 1) << bit
            };
            self.done[word].fetch_and(!mask, Ordering::AcqRel);
            *low += run;
        }
    }
}

impl ClientContext for DeliveryTracker {}

impl ProducerContext for DeliveryTracker {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, seq: usize) {
        // A failed message stays in flight forever: nothing after it can be acknowledged.
        if result.is_ok() {
            self.mark_done(seq as u64);
        }
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, msg)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
                if first.is_none() {
                    use rdkafka::Message;
                    *first = Some(format!("{e} (topic {})", msg.topic()));
                }
            }
        }
    }
}

pub struct KafkaSink {
    producer: ThreadedProducer<DeliveryTracker>,
    config: ClientConfig,
    sent: u64,
    /// Every message below this is delivered.
    low: u64,
    transactional: bool,
}

impl KafkaSink {
    /// A producer whose messages are written in Kafka transactions under `transactional_id`.
    /// Initialising it fences any older producer with the same id: never two writers.
    pub fn new_transactional(
        conn: &KafkaConnection,
        transactional_id: &str,
    ) -> Result<Self, SinkError> {
        let mut sink = Self::with_config(conn, Some(transactional_id))?;
        sink.transactional = true;
        sink.producer
            .init_transactions(Duration::from_secs(60))
            .map_err(|e| {
                // Name the brokers: at start, a timeout here usually means none is reachable.
                SinkError::Transaction(format!(
                    "initialising transactions with the brokers at {}: {e}",
                    conn.brokers
                ))
            })?;
        Ok(sink)
    }

    pub fn begin(&mut self) -> Result<(), SinkError> {
        self.producer
            .begin_transaction()
            .map_err(|e| SinkError::Transaction(format!("beginning a transaction: {e}")))
    }

    /// Commit the open transaction: every message of it is then in Kafka, visible to
    /// read_committed consumers, atomically.
    pub fn commit(&mut self) -> Result<(), SinkError> {
        self.check_failures()?;
        self.producer
            .commit_transaction(Duration::from_secs(120))
            .map_err(|e| SinkError::Transaction(format!("committing a transaction: {e}")))?;
        self.check_failures()
    }

    pub fn abort(&mut self) -> Result<(), SinkError> {
        self.producer
            .abort_transaction(Duration::from_secs(60))
            .map_err(|e| SinkError::Transaction(format!("aborting a transaction: {e}")))
    }

    pub fn is_transactional(&self) -> bool {
        self.transactional
    }

    pub fn new(conn: &KafkaConnection) -> Result<Self, SinkError> {
        Self::with_config(conn, None)
    }

    fn with_config(
        conn: &KafkaConnection,
        transactional_id: Option<&str>,
    ) -> Result<Self, SinkError> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &conn.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // Java's default partitioner for keyed records; random for null keys.
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "10")
            .set("batch.num.messages", "10000")
            // The queue bounds memory: once it is full, `send` waits. 64 MiB keeps several
            // full batches per partition in flight, and keeps peak RSS independent of the
            // table's size.
            .set("queue.buffering.max.messages", "200000")
            .set("queue.buffering.max.kbytes", "65536");
        if let Some(id) = transactional_id {
            config
                .set("transactional.id", id)
                // A large source transaction stays open in Kafka until its commit arrives.
                .set("transaction.timeout.ms", "600000");
        }
        for (k, v) in &conn.client_options {
            config.set(k, v);
        }
        let producer = config
            .create_with_context(DeliveryTracker::default())
            .map_err(SinkError::Config)?;
        Ok(KafkaSink {
            producer,
            config,
            sent: 0,
            low: 0,
            transactional: false,
        })
    }

    /// Create the topics that do not exist yet.
    pub async fn ensure_topics(
        &self,
        topics: &[String],
        settings: &TopicSettings,
    ) -> Result<(), SinkError> {
        create_topics(&self.config, topics, settings).await
    }

    /// After a fatal error, librdkafka answers every call with a bare "Fatal": its reason
    /// (fenced by another writer, or e.g. a sequence desynchronisation) is kept apart.
    fn fatal(&self) -> Option<SinkError> {
        self.producer
            .client()
            .fatal_error()
            .map(|(code, reason)| SinkError::Fatal(format!("{reason} ({code:?})")))
    }

    fn check_failures(&self) -> Result<(), SinkError> {
        let failed = self.producer.context().failed.load(Ordering::Relaxed);
        if failed > 0 {
            if let Some(fatal) = self.fatal() {
                return Err(fatal);
            }
            let first = self
                .producer
                .context()
                .first_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .unwrap_or_default();
            return Err(SinkError::Delivery { failed, first });
        }
        Ok(())
    }

    /// Queue one message. Blocks (this is called from a blocking worker thread) while the
    /// producer's queue is full, which is what bounds memory.
    pub fn send(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<(), SinkError> {
        self.send_with_headers(topic, key, value, None)
    }

    /// [`Self::send`] with record headers (dead letters say why they are there).
    pub fn send_with_headers(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: Option<rdkafka::message::OwnedHeaders>,
    ) -> Result<(), SinkError> {
        let seq = self.sent;
        let mut record: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(topic, seq as usize);
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(v) = value {
            record = record.payload(v);
        }
        if let Some(h) = headers {
            record = record.headers(h);
        }
        // The ring must not wrap onto a message still in flight.
        while seq - self.low >= WINDOW {
            self.producer.context().advance(&mut self.low, self.sent);
            if seq - self.low >= WINDOW {
                self.check_failures()?;
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    self.check_failures()?;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err((e, _)) => {
                    if let Some(fatal) = self.fatal() {
                        return Err(fatal);
                    }
                    return Err(SinkError::Produce {
                        topic: topic.to_string(),
                        source: e,
                    });
                }
            }
        }
        self.sent += 1;
        if self.sent % 10_000 == 0 {
            self.check_failures()?;
        }
        Ok(())
    }

    /// Number of messages queued so far; the next message gets this sequence number.
    pub fn next_seq(&self) -> u64 {
        self.sent
    }

    /// Every message with a sequence number below the returned one is in Kafka. Fails when
    /// any message failed.
    pub fn acknowledged_below(&mut self) -> Result<u64, SinkError> {
        self.check_failures()?;
        self.producer.context().advance(&mut self.low, self.sent);
        Ok(self.low)
    }

    /// Wait until every queued message is acknowledged (or failed).
    pub fn flush(&mut self, timeout: Duration) -> Result<u64, SinkError> {
        let _ = self.producer.flush(timeout);
        self.check_failures()?;
        let delivered = self.producer.context().delivered.load(Ordering::Relaxed);
        if delivered < self.sent {
            return Err(SinkError::FlushTimeout {
                pending: self.sent - delivered,
            });
        }
        Ok(delivered)
    }
}

/// Create the topics that do not exist yet, with a client configured by `config`.
pub async fn create_topics(
    config: &ClientConfig,
    topics: &[String],
    settings: &TopicSettings,
) -> Result<(), SinkError> {
    let admin: AdminClient<DefaultClientContext> = config.create().map_err(SinkError::Config)?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|t| {
            let mut nt = NewTopic::new(
                t,
                settings.partitions,
                TopicReplication::Fixed(settings.replication_factor),
            );
            if let Some(p) = &settings.cleanup_policy {
                nt = nt.set("cleanup.policy", p);
            }
            nt
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results =
        admin
            .create_topics(new.iter(), &opts)
            .await
            .map_err(|e| SinkError::CreateTopic {
                topic: topics.join(", "),
                message: format!(
                    "{e} (brokers {})",
                    config.get("bootstrap.servers").unwrap_or_default()
                ),
            })?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(SinkError::CreateTopic {
                    topic,
                    message: code.to_string(),
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deliveries in any order: the low-water mark is exactly the first undelivered message,
    /// across word boundaries and around the ring.
    #[test]
    fn low_water_mark_follows_out_of_order_deliveries() {
        let t = DeliveryTracker::default();
        let mut low = 0;
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut sent = 0u64;
        let mut pending: Vec<u64> = Vec::new();
        // Several laps of the ring, a few thousand messages in flight at a time.
        while sent < 3 * WINDOW + 12_345 {
            for _ in 0..(next() % 4000) {
                pending.push(sent);
                sent += 1;
            }
            for _ in 0..(next() % 4000).min(pending.len() as u64) {
                let i = (next() % pending.len() as u64) as usize;
                t.mark_done(pending.swap_remove(i));
            }
            t.advance(&mut low, sent);
            let expect = pending.iter().copied().min().unwrap_or(sent);
            assert_eq!(low, expect, "after {sent} sent");
        }
    }
}
