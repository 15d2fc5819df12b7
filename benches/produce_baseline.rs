//! Benchmark (a2) of `scripts/bench.sh`: how fast the broker takes N pre-encoded messages of a
//! given size, produced from memory with the same producer settings cdcql uses (acks=all,
//! idempotence). This is the Kafka half of the physical limit: cdcql cannot beat it, whatever
//! it does on the Postgres side.
//!
//! ```text
//! produce_baseline --brokers 127.0.0.1:9092 --topic bench.a2 --messages 1000000 --size 325
//! ```
//!
//! Prints one human line on stderr and one `RESULT key=value ...` line on stdout.
//! Not a test (`test = false` in Cargo.toml): it only measures.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

#[derive(Debug, Parser)]
#[command(about = "Produce N pre-encoded messages from memory and report messages/s")]
struct Args {
    #[arg(long, default_value = "127.0.0.1:9092")]
    brokers: String,
    #[arg(long)]
    topic: String,
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    /// Bytes per message, key and value together (cdcql reports the same sum).
    #[arg(long, default_value_t = 325)]
    size: usize,
    /// Bytes of the size that go to the key (an Avro-encoded bigint key is about 9).
    #[arg(long, default_value_t = 9)]
    key_size: usize,
    /// Partitions of the topic, when this program creates it.
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    /// Extra librdkafka settings, `name=value`, applied after the defaults.
    #[arg(short = 'X', value_parser = parse_kv)]
    config: Vec<(String, String)>,
    /// Accepted and ignored: `cargo bench` passes it.
    #[arg(long, hide = true)]
    bench: bool,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected name=value, got `{s}`"))
}

#[derive(Default)]
struct Deliveries {
    ok: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
                first.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// Deterministic filler so every message differs (a broker or codec cannot shortcut
/// identical payloads) without paying for randomness inside the timed loop.
fn pool(count: usize, len: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut x = seed | 1;
    (0..count)
        .map(|_| {
            (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Printable bytes, like JSON or Avro text fields.
                    b' ' + (x % 95) as u8
                })
                .collect()
        })
        .collect()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.key_size > args.size {
        bail!("--key-size {} is larger than --size {}", args.key_size, args.size);
    }
    let mut config = ClientConfig::new();
    // The same settings as cdcql's sink (src/sink/kafka.rs), so the comparison is fair.
    config
        .set("bootstrap.servers", &args.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "10")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "200000")
        .set("queue.buffering.max.kbytes", "262144");
    for (k, v) in &args.config {
        config.set(k, v);
    }

    let admin: AdminClient<DefaultClientContext> =
        config.create().context("creating the admin client")?;
    let topic = NewTopic::new(&args.topic, args.partitions, TopicReplication::Fixed(-1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for r in admin.create_topics([&topic], &opts).await? {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => bail!("creating topic {t}: {code}"),
        }
    }

    const POOL: usize = 4096;
    let keys = pool(POOL, args.key_size, 0x9e37_79b9_7f4a_7c15);
    let values = pool(POOL, args.size - args.key_size, 0xd1b5_4a32_d192_ed03);
    let producer: ThreadedProducer<Deliveries> = config
        .create_with_context(Deliveries::default())
        .context("creating the producer")?;

    let started = Instant::now();
    for i in 0..args.messages {
        let slot = (i as usize) % POOL;
        let mut record: BaseRecord<'_, [u8], [u8], ()> = BaseRecord::to(&args.topic)
            .key(keys[slot].as_slice())
            .payload(values[slot].as_slice());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => bail!("producing message {i}: {e}"),
            }
        }
    }
    producer
        .flush(Duration::from_secs(600))
        .context("flushing the producer")?;
    let secs = started.elapsed().as_secs_f64().max(1e-9);

    let ctx = producer.context();
    let failed = ctx.failed.load(Ordering::Relaxed);
    if failed > 0 {
        let first = ctx
            .first_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default();
        bail!("{failed} message(s) failed; first error: {first}");
    }
    let ok = ctx.ok.load(Ordering::Relaxed);
    if ok != args.messages {
        bail!("only {ok} of {} messages acknowledged", args.messages);
    }
    let bytes = args.messages as f64 * args.size as f64;
    eprintln!(
        "produce_baseline: {} messages of {} bytes acknowledged in {secs:.2} s: {:.0} msg/s, {:.1} MB/s",
        args.messages,
        args.size,
        args.messages as f64 / secs,
        bytes / secs / 1e6
    );
    println!(
        "RESULT messages={} size={} secs={secs:.3} msgs_per_s={:.0} mb_per_s={:.2}",
        args.messages,
        args.size,
        args.messages as f64 / secs,
        bytes / secs / 1e6
    );
    Ok(())
}
