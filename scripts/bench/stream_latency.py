#!/usr/bin/env python3
"""Commit→Kafka latency of a streaming run (scripts/bench.sh, step d).

  stream_latency.py BROKERS TOPIC REGISTRY_URL

Reads every message of TOPIC. Commit time is the Debezium `source.ts_us` (or `ts_ms`, or the
native envelope's `__source_ts_ms`), written by cdcql from the transaction's commit timestamp;
append time is the message timestamp, which is the broker's clock when the topic has
`message.timestamp.type=LogAppendTime` (bench.sh creates it so). Both clocks are this machine's.
Decodes at most 200,000 evenly spaced messages (percentiles of a large even sample) but counts
all. Prints `RESULT key=value ...`.
"""
import io
import json
import re
import sys
import urllib.request

from confluent_kafka import Consumer, TopicPartition, TIMESTAMP_LOG_APPEND_TIME

SAMPLE = 200_000
SOURCE_TS_US = re.compile(rb'"source":\{.*?"ts_us":(-?\d+)')
SOURCE_TS_MS = re.compile(rb'"source":\{.*?"ts_ms":(-?\d+)')


class AvroCommitTime:
    def __init__(self, registry):
        import fastavro

        self.fastavro = fastavro
        self.registry = registry
        self.schemas = {}

    def __call__(self, value):
        sid = int.from_bytes(value[1:5], "big")
        schema = self.schemas.get(sid)
        if schema is None:
            with urllib.request.urlopen(f"{self.registry}/schemas/ids/{sid}", timeout=10) as r:
                schema = self.fastavro.parse_schema(json.loads(json.load(r)["schema"]))
            self.schemas[sid] = schema
        rec = self.fastavro.schemaless_reader(io.BytesIO(value[5:]), schema)
        if "__source_ts_ms" in rec:
            return rec["__source_ts_ms"] * 1000
        src = rec["source"]
        return src["ts_us"] if src.get("ts_us") is not None else src["ts_ms"] * 1000


def json_commit_time(value):
    m = SOURCE_TS_US.search(value)
    if m:
        return int(m.group(1))
    return int(SOURCE_TS_MS.search(value).group(1)) * 1000


def percentile(sorted_values, q):
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[i]


def main():
    brokers, topic, registry = sys.argv[1:4]
    c = Consumer({"bootstrap.servers": brokers, "group.id": "cdcql-bench-latency",
                  "enable.auto.commit": False,
                  # noida-db answers a fetch with everything it has, whatever the size limit.
                  "fetch.max.bytes": 52428800, "receive.message.max.bytes": 2147483647})
    parts = c.list_topics(topic, timeout=30).topics[topic].partitions
    ends = {}
    for p in parts:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
        if hi > lo:
            ends[p] = (lo, hi)
    total = sum(hi - lo for lo, hi in ends.values())
    stride = max(1, total // SAMPLE)
    c.assign([TopicPartition(topic, p, lo) for p, (lo, _) in ends.items()])
    avro = None
    lat_ms, seen, ts_kinds = [], 0, set()
    first_commit_us, last_append_ms = None, None
    remaining = dict(ends)
    while remaining:
        batch = c.consume(10000, timeout=10)
        if not batch:
            raise SystemExit(f"stream_latency: no messages for 10 s, {len(remaining)} partition(s) unfinished")
        for m in batch:
            if m.error():
                raise SystemExit(f"stream_latency: {m.error()}")
            if m.partition() in remaining and m.offset() + 1 >= remaining[m.partition()][1]:
                del remaining[m.partition()]
            value = m.value()
            if value is None:  # tombstone
                continue
            kind, append_ms = m.timestamp()
            last_append_ms = append_ms if last_append_ms is None else max(last_append_ms, append_ms)
            seen += 1
            # Always decode the first message: its commit time starts the throughput window.
            if seen % stride and first_commit_us is not None:
                continue
            ts_kinds.add(kind)
            if value[:1] == b"\x00":
                avro = avro or AvroCommitTime(registry)
                commit_us = avro(value)
            else:
                commit_us = json_commit_time(value)
            first_commit_us = commit_us if first_commit_us is None else min(first_commit_us, commit_us)
            lat_ms.append(append_ms - commit_us / 1000)
    c.close()
    lat_ms.sort()
    span_s = max(1e-3, (last_append_ms - first_commit_us / 1000) / 1000) if seen else float("nan")
    clock = "LogAppendTime" if ts_kinds == {TIMESTAMP_LOG_APPEND_TIME} else "CreateTime(producer clock!)"
    print(f"RESULT messages={seen} sampled={len(lat_ms)} span_s={span_s:.2f} "
          f"per_s={seen / span_s:.0f} p50_ms={percentile(lat_ms, 0.5):.1f} "
          f"p99_ms={percentile(lat_ms, 0.99):.1f} max_ms={lat_ms[-1] if lat_ms else float('nan'):.1f} "
          f"clock={clock}")


if __name__ == "__main__":
    main()
