#!/usr/bin/env python3
"""Poison rows end to end (tests/e2e_poison.rs): tables with rows that cannot be delivered,
changes that add more, and an independent check of what reached Kafka (Confluent's client),
never with cdcql's own code.

  poison_check.py setup   PG_URL SCHEMA
  poison_check.py changes PG_URL SCHEMA
  poison_check.py later   PG_URL SCHEMA           (good, poison, good: one transaction each)
  poison_check.py verify  BROKERS SCHEMA PREFIX dead_letter|skip
  poison_check.py verify-later BROKERS SCHEMA PREFIX

Rows of `items` that cannot be delivered, and why:
  amount numeric(10,2) = NaN          source decoding (Decimal128 has no NaN)
  ratio  numeric = NaN                the type mapping (VariableScaleDecimal has no NaN)
  tags   int[] two-dimensional        source decoding (Debezium's ARRAY has one level)
  note   300,000 random characters    the producer (the connection sets message.max.bytes 200000)
"""

import json
import random
import re
import sys
import time

import psycopg
from confluent_kafka import Consumer, TopicPartition

BIG = 300_000
MAX_MESSAGE = 200_000

# id -> (stage, column): rows of the snapshot and of the stream that must be set aside.
SNAPSHOT_POISON = {13: ("decode", "amount"), 27: ("convert", "ratio"), 42: ("decode", "tags"), 77: ("produce", None)}
STREAM_POISON = {1013: ("decode", "amount"), 1027: ("convert", "ratio"), 1042: ("decode", "tags"), 1044: ("produce", None)}
# The update that makes row 5 poison (op u).
UPDATE_POISON = {5: ("decode", "amount")}


def big_text(seed):
    rng = random.Random(seed)
    # Random, so that TOAST compression cannot shrink it: the message stays large.
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(BIG))


def poison_values(i, stage_column):
    """(amount, ratio, tags, note) for row i: poison where stage_column says so."""
    stage, column = stage_column if stage_column else (None, None)
    amount = "NaN" if column == "amount" else f"{i}.25"
    ratio = "NaN" if column == "ratio" else f"{i}.5"
    tags = "{{1,2},{3,4}}" if column == "tags" else "{%d,%d}" % (i, i + 1)
    note = big_text(i) if stage == "produce" else f"note {i}"
    return amount, ratio, tags, note


def insert(cur, schema, table, i, stage_column):
    amount, ratio, tags, note = poison_values(i, stage_column)
    cur.execute(
        f'INSERT INTO "{schema}".{table} VALUES (%s, %s::numeric, %s::numeric, %s::int[], %s)',
        (i, amount, ratio, tags, note),
    )


def setup(pg_url, schema):
    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        c.execute(f'CREATE SCHEMA "{schema}"')
        for table in ("items", "later"):
            c.execute(
                f'CREATE TABLE "{schema}".{table} (id int PRIMARY KEY, amount numeric(10,2), '
                f"ratio numeric, tags int[], note text)"
            )
        with c.cursor() as cur:
            for i in range(1, 201):
                insert(cur, schema, "items", i, SNAPSHOT_POISON.get(i))
        c.execute(f'ANALYZE "{schema}".items')


def changes(pg_url, schema):
    with psycopg.connect(pg_url) as c:
        with c.cursor() as cur:
            # One transaction: good rows and poison rows interleaved.
            for i in range(1001, 1051):
                insert(cur, schema, "items", i, STREAM_POISON.get(i))
        c.commit()
        with c.cursor() as cur:
            cur.execute(f"UPDATE \"{schema}\".items SET amount = 'NaN' WHERE id = 5")
            # A poison row's later changes are fine: they go through.
            cur.execute(f'UPDATE "{schema}".items SET amount = 1.00 WHERE id = 13')
            cur.execute(f'DELETE FROM "{schema}".items WHERE id = 27')
            cur.execute(f"UPDATE \"{schema}\".items SET note = 'changed' WHERE id = 6")
        c.commit()
    print("changes committed")


def later(pg_url, schema):
    lsns = {}
    with psycopg.connect(pg_url, autocommit=True) as c:
        with c.cursor() as cur:
            for i, poison in ((1, None), (2, ("decode", "tags")), (3, None)):
                insert(cur, schema, "later", i, poison)
                lsns[i] = cur.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
    print(json.dumps(lsns))


def consume(brokers, topic, committed=True):
    """Every message of the topic as dicts (partition, offset, key, value, headers)."""
    c = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": f"poison-{time.time_ns()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed" if committed else "read_uncommitted",
            "fetch.max.bytes": 16 * 1024 * 1024,
            "max.partition.fetch.bytes": 4 * 1024 * 1024,
            "receive.message.max.bytes": 1_000_000_000,
        }
    )
    md = c.list_topics(topic, timeout=10)
    if topic not in md.topics or md.topics[topic].error is not None:
        c.close()
        return None
    parts = list(md.topics[topic].partitions.keys())
    ends = {}
    for p in parts:
        _, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        ends[p] = hi
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    out = []
    remaining = {p for p in parts if ends[p] > 0}
    deadline = time.time() + 120
    while remaining and time.time() < deadline:
        m = c.poll(1.0)
        if m is None:
            # Transaction markers at the end are never returned: the position says we are done.
            for p in list(remaining):
                pos = c.position([TopicPartition(topic, p)])[0].offset
                if pos >= ends[p]:
                    remaining.discard(p)
            continue
        if m.error():
            raise RuntimeError(m.error())
        out.append(
            {
                "partition": m.partition(),
                "offset": m.offset(),
                "key": json.loads(m.key()) if m.key() else None,
                "raw_value": m.value(),
                "value": json.loads(m.value()) if m.value() else None,
                "headers": {k: v.decode() for k, v in (m.headers() or [])},
            }
        )
        if m.offset() + 1 >= ends[m.partition()]:
            remaining.discard(m.partition())
    c.close()
    if remaining:
        raise RuntimeError(f"timed out reading {topic}")
    return out


class Report:
    def __init__(self):
        self.problems = []

    def check(self, ok, msg):
        if not ok and len(self.problems) < 50:
            self.problems.append(msg)

    def finish(self, what, stats):
        for k, v in stats.items():
            print(f"  {k}: {v}")
        if not self.problems:
            print(f"{what}: OK")
            return 0
        print(f"{what} FAILED:")
        for p in self.problems:
            print("  - " + p)
        return 1


LSN = re.compile(r"^[0-9A-F]+/[0-9A-F]+$")


def lsn_number(text):
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) + int(lo, 16)


def expected_data_events(query=False):
    """(id, op) -> count of the data events that must be in the topic (tombstones apart).
    The query pipeline reads only `id` (none of the poison values) and divides by id % 50."""
    bad = (lambda i: i % 50 == 0) if query else (lambda i: i in SNAPSHOT_POISON or i in STREAM_POISON)
    want = {}
    for i in range(1, 201):
        if not bad(i):
            want[(i, "r")] = 1
    for i in range(1001, 1051):
        if not bad(i):
            want[(i, "c")] = 1
    want[(13, "u")] = 1
    want[(27, "d")] = 1
    want[(6, "u")] = 1
    if query:
        # Poison for the other pipelines only: amount is not read here.
        want[(5, "u")] = 1
    return want


def check_data(rep, messages, stats, name, query=False):
    want = expected_data_events(query)
    got = {}
    last_lsn = 0
    for i, m in enumerate(messages):
        if m["value"] is None:
            continue
        v = m["value"]
        img = v["before"] if v["op"] == "d" else v["after"]
        key = (img["id"], v["op"])
        got[key] = got.get(key, 0) + 1
        if v["op"] != "r":
            lsn = v["source"]["lsn"]
            rep.check(lsn >= last_lsn, f"{name}: change of id {img['id']} at lsn {lsn} after one at {last_lsn}")
            last_lsn = max(last_lsn, lsn)
        if v["op"] == "d":
            nxt = messages[i + 1] if i + 1 < len(messages) else None
            rep.check(
                nxt is not None and nxt["value"] is None and nxt["key"] == m["key"],
                f"{name}: delete of {m['key']} not followed by its tombstone",
            )
    for k, n in want.items():
        rep.check(got.get(k, 0) == n, f"{name}: event {k} seen {got.get(k, 0)} time(s), expected {n}")
    for k, n in got.items():
        rep.check(k in want, f"{name}: unexpected event {k} ({n} time(s)): a poison row got through?")
    stats[f"{name} data events"] = sum(got.values())


def check_dead_letters(rep, dlq, schema, prefix, stats):
    topic = f"{prefix}.dlq.items"
    want = {}
    for i, sc in SNAPSHOT_POISON.items():
        want[(i, "r")] = sc
    for i, sc in STREAM_POISON.items():
        want[(i, "c")] = sc
    for i, sc in UPDATE_POISON.items():
        want[(i, "u")] = sc
    seen = {}
    stream_lsns = []
    for m in dlq:
        h = m["headers"]
        v = m["value"]
        rep.check(isinstance(v, dict), f"dead letter at offset {m['offset']} is not a JSON object")
        if not isinstance(v, dict):
            continue
        key = (v.get("id"), h.get("cdcql.op"))
        seen[key] = seen.get(key, 0) + 1
        rep.check(m["key"] == {"id": v.get("id")}, f"dead letter {key}: key {m['key']} is not the row's key")
        stage, column = want.get(key, (None, None))
        rep.check(key in want, f"unexpected dead letter {key}: {h.get('cdcql.error')}")
        rep.check(h.get("cdcql.error.stage") == stage, f"dead letter {key}: stage {h.get('cdcql.error.stage')}, expected {stage}")
        rep.check(h.get("cdcql.error.column") == column, f"dead letter {key}: column {h.get('cdcql.error.column')}, expected {column}")
        rep.check(h.get("cdcql.pipeline") == "p_dlq", f"dead letter {key}: pipeline header {h.get('cdcql.pipeline')}")
        rep.check(h.get("cdcql.table") == f"{schema}.items", f"dead letter {key}: table header {h.get('cdcql.table')}")
        rep.check(h.get("cdcql.topic") == topic, f"dead letter {key}: topic header {h.get('cdcql.topic')}")
        rep.check(bool(h.get("cdcql.error")), f"dead letter {key}: no error header")
        lsn = h.get("cdcql.lsn", "")
        if key[1] == "r":
            rep.check(lsn == "snapshot", f"dead letter {key}: lsn header {lsn!r}, expected 'snapshot'")
        else:
            rep.check(bool(LSN.match(lsn)), f"dead letter {key}: lsn header {lsn!r} is not an LSN")
            if key[1] == "c" and LSN.match(lsn):
                stream_lsns.append((key[0], lsn_number(lsn)))
        err = h.get("cdcql.error", "")
        if column in ("amount", "ratio"):
            rep.check("NaN" in err, f"dead letter {key}: error {err!r} does not say NaN")
            # The value that could not be written, as Postgres has it.
            rep.check(v.get(column) == "NaN", f"dead letter {key}: {column} is {v.get(column)!r}, expected 'NaN'")
        if column == "tags":
            rep.check("dimensional" in err, f"dead letter {key}: error {err!r}")
            rep.check(str(v.get("tags", "")).startswith("\\x"), f"dead letter {key}: tags {str(v.get('tags'))[:40]!r}")
        if stage == "produce":
            rep.check("message.max.bytes" in err, f"dead letter {key}: error {err!r}")
            rep.check(h.get("cdcql.truncated") == "note", f"dead letter {key}: truncated header {h.get('cdcql.truncated')!r}")
            rep.check(len(m["raw_value"]) <= MAX_MESSAGE, f"dead letter {key}: {len(m['raw_value'])} bytes")
            rep.check(str(v.get("note", "")).endswith("…"), f"dead letter {key}: note not cut")
        elif stage is not None:
            rep.check("cdcql.truncated" not in h, f"dead letter {key}: truncated without need")
            rep.check(v.get("note") == f"note {v.get('id')}" or key == (5, "u"), f"dead letter {key}: note {str(v.get('note'))[:30]!r}")
    for k in want:
        rep.check(seen.get(k, 0) == 1, f"dead letter {k} seen {seen.get(k, 0)} time(s), expected once")
    # Inserted in id order in one transaction: their positions follow that order.
    ordered = [l for _, l in sorted(stream_lsns)]
    rep.check(ordered == sorted(ordered), f"dead-letter LSNs are not in insert order: {stream_lsns}")
    stats["dead letters"] = len(dlq)


def verify(brokers, schema, prefix, mode):
    rep = Report()
    stats = {}
    if mode == "dead_letter":
        data = consume(brokers, f"{prefix}.dlq.items")
        check_data(rep, data, stats, "dead_letter pipeline")
        dlq = consume(brokers, f"{prefix}.dlq.items.dlq")
        rep.check(dlq is not None, "no dead-letter topic")
        if dlq is not None:
            check_dead_letters(rep, dlq, schema, prefix, stats)
    elif mode == "query":
        data = consume(brokers, f"{prefix}.query.items")
        check_data(rep, data, stats, "query pipeline", query=True)
        for m in data:
            v = m["value"]
            if v and v["op"] != "d":
                i = v["after"]["id"]
                rep.check(v["after"]["q"] == 100 // (i % 50), f"query pipeline: id {i} has q = {v['after']['q']}")
    else:
        data = consume(brokers, f"{prefix}.skip.items")
        check_data(rep, data, stats, "skip pipeline")
        dlq = consume(brokers, f"{prefix}.skip.items.dlq")
        rep.check(not dlq, f"on_error = 'skip' wrote {len(dlq or [])} dead letters")
    return rep.finish(f"poison verification ({mode})", stats)


def verify_later(brokers, schema, prefix):
    rep = Report()
    stats = {}
    data = consume(brokers, f"{prefix}.fails.later") or []
    ids = [m["value"]["after"]["id"] for m in data if m["value"]]
    stats["later events"] = ids
    rep.check(1 in ids, "the good row before the poison row is missing")
    rep.check(2 not in ids, "the poison row reached the topic")
    return rep.finish("fail verification", stats)


def main():
    cmd = sys.argv[1]
    if cmd == "setup":
        setup(sys.argv[2], sys.argv[3])
    elif cmd == "changes":
        changes(sys.argv[2], sys.argv[3])
    elif cmd == "later":
        later(sys.argv[2], sys.argv[3])
    elif cmd == "verify":
        sys.exit(verify(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]))
    elif cmd == "verify-later":
        sys.exit(verify_later(sys.argv[2], sys.argv[3], sys.argv[4]))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
