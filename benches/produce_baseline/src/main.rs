//! Benchmark (a2) of `scripts/bench.sh`: how fast the broker takes N pre-encoded messages of a
//! given size, produced from memory with the same producer settings cdcql uses (acks=all,
//! idempotence). This is the Kafka half of the physical limit: cdcql cannot beat it, whatever
//! it does on the Postgres side. The topic must exist (bench.sh creates it).
//!
//! ```text
//! produce_baseline --brokers 127.0.0.1:9092 --topic bench.a2 --messages 1000000 --size 325
//! ```
//!
//! Prints one human line on stderr and one `RESULT key=value ...` line on stdout.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

const USAGE: &str =
    "usage: produce_baseline --topic T [--brokers B] [--messages N] [--size BYTES] \
[--key-size BYTES] [-X name=value ...]";

struct Args {
    brokers: String,
    topic: String,
    messages: u64,
    /// Bytes per message, key and value together (cdcql reports the same sum).
    size: usize,
    /// Bytes of the size that go to the key (an Avro-encoded bigint key is about 9).
    key_size: usize,
    /// Extra librdkafka settings, applied after the defaults.
    config: Vec<(String, String)>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        brokers: "127.0.0.1:9092".into(),
        topic: String::new(),
        messages: 1_000_000,
        size: 325,
        key_size: 9,
        config: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--brokers" => a.brokers = value()?,
            "--topic" => a.topic = value()?,
            "--messages" => a.messages = number(value()?)?,
            "--size" => a.size = number(value()?)? as usize,
            "--key-size" => a.key_size = number(value()?)? as usize,
            "-X" => {
                let kv = value()?;
                let (k, v) = kv
                    .split_once('=')
                    .ok_or(format!("-X expects name=value, got {kv}"))?;
                a.config.push((k.into(), v.into()));
            }
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if a.topic.is_empty() {
        return Err("--topic is required".into());
    }
    if a.key_size > a.size {
        return Err(format!(
            "--key-size {} is larger than --size {}",
            a.key_size, a.size
        ));
    }
    Ok(a)
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

fn run(args: &Args) -> Result<(), String> {
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
    const POOL: usize = 4096;
    let keys = pool(POOL, args.key_size, 0x9e37_79b9_7f4a_7c15);
    let values = pool(POOL, args.size - args.key_size, 0xd1b5_4a32_d192_ed03);
    let producer: ThreadedProducer<Deliveries> = config
        .create_with_context(Deliveries::default())
        .map_err(|e| format!("creating the producer: {e}"))?;

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
                Err((e, _)) => return Err(format!("producing message {i}: {e}")),
            }
        }
    }
    producer
        .flush(Duration::from_secs(600))
        .map_err(|e| format!("flushing the producer: {e}"))?;
    let secs = started.elapsed().as_secs_f64().max(1e-9);

    let ctx = producer.context();
    let failed = ctx.failed.load(Ordering::Relaxed);
    if failed > 0 {
        let first = ctx
            .first_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        return Err(format!(
            "{failed} message(s) failed; first error: {}",
            first.unwrap_or_default()
        ));
    }
    let ok = ctx.ok.load(Ordering::Relaxed);
    if ok != args.messages {
        return Err(format!(
            "only {ok} of {} messages acknowledged",
            args.messages
        ));
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

fn main() -> ExitCode {
    let result = parse_args()
        .map_err(|e| format!("{e}\n{USAGE}"))
        .and_then(|a| run(&a));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("produce_baseline: {e}");
            ExitCode::FAILURE
        }
    }
}
