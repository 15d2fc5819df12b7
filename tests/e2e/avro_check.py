#!/usr/bin/env python3
"""Avro end-to-end checks with Confluent's own Python client: `AvroDeserializer` backed by
`SchemaRegistryClient`, exactly what a Debezium + Schema Registry consumer runs.

  avro_check.py verify   BROKERS REGISTRY PG_URL SCHEMA PREFIX
  avro_check.py versions REGISTRY SUBJECT...      (prints "subject versions" lines)
"""

import base64
import decimal
import json
import sys
import time

import psycopg
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext


def consume(brokers, registry, topic):
    sr = SchemaRegistryClient({"url": registry})
    deser = AvroDeserializer(sr)
    c = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": f"avro-verify-{time.time_ns()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            # The test broker may answer a fetch with more than fetch.max.bytes.
            "fetch.max.bytes": 16 * 1024 * 1024,
            "max.partition.fetch.bytes": 4 * 1024 * 1024,
            "receive.message.max.bytes": 1_000_000_000,
        }
    )
    md = c.list_topics(topic, timeout=10)
    parts = list(md.topics[topic].partitions.keys())
    ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    remaining = {p for p in parts if ends[p] > 0}
    out = []
    deadline = time.time() + 120
    while remaining and time.time() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            raise RuntimeError(m.error())
        key = deser(m.key(), SerializationContext(topic, MessageField.KEY)) if m.key() else None
        val = deser(m.value(), SerializationContext(topic, MessageField.VALUE)) if m.value() else None
        out.append((m.partition(), m.offset(), key, val, m.key(), m.value()))
        if m.offset() + 1 >= ends[m.partition()]:
            remaining.discard(m.partition())
    c.close()
    if remaining:
        raise RuntimeError(f"timed out reading {topic}")
    return out


def vsd(v):
    """io.debezium.data.VariableScaleDecimal → Decimal."""
    if v is None:
        return None
    unscaled = int.from_bytes(v["value"], "big", signed=True)
    return decimal.Decimal(unscaled).scaleb(-v["scale"])


def expected_rows(pg_url, schema):
    with psycopg.connect(pg_url) as c:
        c.execute("SET TimeZone = 'UTC'")
        cur = c.execute(
            f"SELECT id, name, price, qty, "
            f"to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), flag, data, "
            f"meta::text, u::text, n FROM \"{schema}\".items"
        )
        rows = {}
        for r in cur.fetchall():
            rows[r[0]] = {
                "id": r[0], "name": r[1], "price": r[2], "qty": r[3], "ts": r[4],
                "flag": r[5], "data": bytes(r[6]) if r[6] is not None else None,
                "meta": r[7], "u": r[8], "n": r[9],
            }
        return rows


def normalise(after):
    a = dict(after)
    a["n"] = vsd(a.get("n"))
    return a


def compare(problems, name, view, rows):
    for k, row in rows.items():
        got = view.get(k)
        if got is None:
            problems.append(f"{name}: id={k} missing from the compacted view")
            continue
        for col, want in row.items():
            have = got.get(col)
            if col == "meta" and want is not None and have is not None:
                ok = json.loads(have) == json.loads(want)
            elif isinstance(want, decimal.Decimal) and have is not None:
                ok = decimal.Decimal(have) == want
            else:
                ok = have == want
            if not ok:
                problems.append(f"{name}: id={k} {col}: topic {have!r}, table {want!r}")
    for k in view:
        if k not in rows:
            problems.append(f"{name}: id={k} in the topic but not in the table")


def verify(brokers, registry, pg_url, schema, prefix):
    problems = []
    rows = expected_rows(pg_url, schema)

    # Debezium envelope, topic name strategy.
    dbz = consume(brokers, registry, f"{prefix}.dbz.items")
    view = {}
    ops = {}
    for p, off, key, val, kraw, vraw in dbz:
        if kraw[0] != 0 or (vraw is not None and vraw[0] != 0):
            problems.append(f"dbz {p}/{off}: no Confluent magic byte")
        if val is None:
            view.pop(key["id"], None)
            continue
        ops[val["op"]] = ops.get(val["op"], 0) + 1
        if val["source"]["connector"] != "postgresql":
            problems.append(f"dbz {p}/{off}: source.connector {val['source']['connector']!r}")
        if val["op"] == "d":
            view.pop(key["id"], None)
        else:
            view[key["id"]] = normalise(val["after"])
    compare(problems, "dbz", view, rows)
    for op in "rcud":
        if not ops.get(op):
            problems.append(f"dbz: no `{op}` events (ops seen: {ops})")

    # Native envelope, topic_record strategy: the row plus __op/__version/__deleted.
    nat = consume(brokers, registry, f"{prefix}.nat.items")
    view = {}
    last_version = {}
    for p, off, key, val, _, _ in nat:
        k = key["id"]
        if val is None:
            view.pop(k, None)
            continue
        v = val["__version"]
        if v < last_version.get(k, -1):
            problems.append(f"nat id={k}: __version went back from {last_version[k]} to {v}")
        last_version[k] = v
        if val["__deleted"]:
            if val["__op"] != "d":
                problems.append(f"nat id={k}: __deleted with __op {val['__op']}")
            continue
        row = {c: val[c] for c in ("id", "name", "price", "qty", "ts", "flag", "data", "meta", "u", "n")}
        view[k] = normalise(row)
    compare(problems, "nat", view, rows)

    sr = SchemaRegistryClient({"url": registry})
    subjects = set(sr.get_subjects())
    want = {
        f"{prefix}.dbz.items-key",
        f"{prefix}.dbz.items-value",
        f"{prefix}.nat.items-{prefix}.nat.items.Key",
        f"{prefix}.nat.items-{prefix}.nat.items.Value",
    }
    for s in sorted(want - subjects):
        problems.append(f"registry: subject {s} missing")
    print(f"  dbz messages: {len(dbz)} ops {ops}; native messages: {len(nat)}")
    if problems:
        print("avro verification FAILED:")
        for p in problems[:40]:
            print("  - " + p)
        return 1
    print("avro verification: OK")
    return 0


def versions(registry, subjects):
    sr = SchemaRegistryClient({"url": registry})
    for s in subjects:
        print(s, len(sr.get_versions(s)))


if __name__ == "__main__":
    if sys.argv[1] == "verify":
        sys.exit(verify(*sys.argv[2:7]))
    elif sys.argv[1] == "versions":
        versions(sys.argv[2], sys.argv[3:])
