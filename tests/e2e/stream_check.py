#!/usr/bin/env python3
"""Streaming end-to-end: set up tables, run a change workload, and verify the Kafka topics
with an independent consumer (Confluent's client + psycopg), never with cdcql's own code.

  stream_check.py setup    PG_URL SCHEMA
  stream_check.py workload PG_URL SCHEMA SECONDS SEED [--bulk]
  stream_check.py ddl      PG_URL SCHEMA
  stream_check.py verify   PG_URL BROKERS SCHEMA TOPIC_PREFIX

Every row of `items` carries `uid` (never changes, survives primary-key changes) and `ver`
(incremented by every change). So for each uid the versions seen in Kafka — the snapshot's
`r` first, then the stream — must be consecutive: a gap is a lost change, a version seen in
two different events of the stream after dedup of exact replays is a duplicate. Replays of an
identical event are allowed (at-least-once after kill -9) and counted.
"""

import json
import random
import sys
import time

import psycopg
from confluent_kafka import Consumer, TopicPartition

PLACEHOLDER = "__debezium_unavailable_value"


def big_text(rng, n=20000):
    # Random, so TOAST cannot compress it below the inline limit.
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))


def setup(pg_url, schema):
    rng = random.Random(7)
    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        c.execute(f'CREATE SCHEMA "{schema}"')
        c.execute(
            f'CREATE TABLE "{schema}".items (id int8 PRIMARY KEY, uid int8 NOT NULL, '
            f"ver int NOT NULL, grp text NOT NULL, note text, big text)"
        )
        c.execute(f'ALTER TABLE "{schema}".items REPLICA IDENTITY FULL')
        c.execute(f'CREATE TABLE "{schema}".bulk (id int8 PRIMARY KEY, val int NOT NULL)')
        c.execute(
            f'CREATE TABLE "{schema}".toast_default (id int PRIMARY KEY, n int NOT NULL, big text)'
        )
        c.execute(
            f'INSERT INTO "{schema}".items SELECT g, g, 1, '
            f"CASE WHEN g % 3 = 0 THEN 'a' ELSE 'b' END, 'note ' || g, NULL "
            f"FROM generate_series(1, 60000) g"
        )
        with c.cursor() as cur:
            for i in range(1, 21):
                cur.execute(
                    f'UPDATE "{schema}".items SET big = %s WHERE id = %s', (big_text(rng), i * 7)
                )
            for i in range(1, 6):
                cur.execute(
                    f'INSERT INTO "{schema}".toast_default VALUES (%s, 0, %s)', (i, big_text(rng))
                )
        c.execute(f'ANALYZE "{schema}".items')


def workload(pg_url, schema, seconds, seed, bulk):
    rng = random.Random(seed)
    next_id = 10_000_000 + seed * 1_000_000
    txns = 0
    ops = 0
    deadline = time.time() + seconds
    with psycopg.connect(pg_url) as c:
        if bulk:
            # One large transaction: must stream through without being held whole.
            c.execute(
                f'INSERT INTO "{schema}".bulk SELECT g, g % 1000 FROM generate_series(1, 100000) g'
            )
            c.commit()
            txns += 1
        while time.time() < deadline:
            n = rng.choice([1, 1, 2, 3, 5, 10, 20])
            with c.cursor() as cur:
                for _ in range(n):
                    r = rng.random()
                    if r < 0.45:
                        cur.execute(
                            f'UPDATE "{schema}".items SET ver = ver + 1, note = %s '
                            f"WHERE id = (SELECT id FROM \"{schema}\".items WHERE id <= 60000 "
                            f"OR id > 10000000 ORDER BY random() LIMIT 1)",
                            (f"n{rng.randint(0, 1 << 30)}",),
                        )
                    elif r < 0.60:
                        # Move rows in and out of the filtered pipeline's WHERE.
                        cur.execute(
                            f'UPDATE "{schema}".items SET ver = ver + 1, '
                            f"grp = CASE grp WHEN 'a' THEN 'b' ELSE 'a' END "
                            f"WHERE id = (SELECT id FROM \"{schema}\".items ORDER BY random() LIMIT 1)"
                        )
                    elif r < 0.70:
                        next_id += 1
                        cur.execute(
                            f'INSERT INTO "{schema}".items VALUES (%s, %s, 1, %s, NULL, NULL)',
                            (next_id, next_id, rng.choice("ab")),
                        )
                    elif r < 0.78:
                        cur.execute(
                            f'DELETE FROM "{schema}".items WHERE id = '
                            f'(SELECT id FROM "{schema}".items ORDER BY random() LIMIT 1)'
                        )
                    elif r < 0.85:
                        # Primary-key change: Debezium's delete + tombstone + create.
                        next_id += 1
                        cur.execute(
                            f'UPDATE "{schema}".items SET id = %s, ver = ver + 1 WHERE id = '
                            f'(SELECT id FROM "{schema}".items ORDER BY random() LIMIT 1)',
                            (next_id,),
                        )
                    elif r < 0.92:
                        # Touch a row with a TOASTed value without changing the value.
                        cur.execute(
                            f'UPDATE "{schema}".items SET ver = ver + 1 WHERE id = '
                            f'(SELECT id FROM "{schema}".items WHERE big IS NOT NULL '
                            f"ORDER BY random() LIMIT 1)"
                        )
                    elif r < 0.96:
                        cur.execute(
                            f'UPDATE "{schema}".toast_default SET n = n + 1 WHERE id = %s',
                            (rng.randint(1, 5),),
                        )
                    else:
                        cur.execute(
                            f'UPDATE "{schema}".items SET ver = ver + 1, note = NULL WHERE id = '
                            f'(SELECT id FROM "{schema}".items ORDER BY random() LIMIT 1)'
                        )
                    ops += 1
            c.commit()
            txns += 1
    print(f"workload {seed}: {txns} transactions, {ops} statements")


def ddl(pg_url, schema):
    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute(f'ALTER TABLE "{schema}".items ADD COLUMN extra int DEFAULT 7')
        c.execute(f'ALTER TABLE "{schema}".bulk ADD COLUMN tag text')
        c.execute(f'UPDATE "{schema}".items SET ver = ver + 1, extra = 8 WHERE id <= 30')
        c.execute(f"UPDATE \"{schema}\".bulk SET val = val + 1, tag = 'x' WHERE id <= 10")


def consume(brokers, topic):
    """Every message of the topic, in partition order, as (partition, offset, key, value)."""
    c = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": f"verify-{time.time_ns()}",
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
    ends = {}
    for p in parts:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        ends[p] = hi
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    out = []
    remaining = {p for p in parts if ends[p] > 0}
    deadline = time.time() + 120
    while remaining and time.time() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            raise RuntimeError(m.error())
        key = json.loads(m.key()) if m.key() else None
        val = json.loads(m.value()) if m.value() else None
        out.append((m.partition(), m.offset(), key, val))
        if m.offset() + 1 >= ends[m.partition()]:
            remaining.discard(m.partition())
    c.close()
    if remaining:
        raise RuntimeError(f"timed out reading {topic}")
    return out


class Report:
    def __init__(self):
        self.problems = []

    def fail(self, msg):
        if len(self.problems) < 40:
            self.problems.append(msg)
        elif len(self.problems) == 40:
            self.problems.append(None)

    def ok(self):
        return not self.problems


def table_rows(pg_url, sql):
    with psycopg.connect(pg_url) as c:
        cur = c.execute(sql)
        cols = [d.name for d in cur.description]
        return {row[0]: dict(zip(cols, row)) for row in cur.fetchall()}


def compacted(messages):
    view = {}
    for _, _, key, val in messages:
        if key is None:
            continue
        k = key["id"]
        if val is None or val.get("op") == "d":
            view.pop(k, None)
        else:
            view[k] = val["after"]
    return view


def compare_view(rep, name, view, rows, columns):
    for k, row in rows.items():
        got = view.get(k)
        if got is None:
            rep.fail(f"{name}: row id={k} is in the table but not in the topic's compacted view")
            continue
        for col in columns:
            if col == "extra" and col not in got:
                # Added by ALTER TABLE ... DEFAULT 7 while streaming: rows not changed since
                # have no event with the column, and hold the default.
                if row[col] != 7:
                    rep.fail(f"{name}: id={k} has no `extra` in the topic but {row[col]!r} in the table")
                continue
            if got.get(col) != row[col]:
                rep.fail(f"{name}: id={k} column {col}: topic has {str(got.get(col))[:60]!r}, table has {str(row[col])[:60]!r}")
    for k in view:
        if k not in rows:
            rep.fail(f"{name}: id={k} is in the topic's compacted view but not in the table")


def verify(pg_url, brokers, schema, prefix):
    rep = Report()
    stats = {}

    # items: full history checks.
    items = consume(brokers, f"{prefix}.items")
    stats["items messages"] = len(items)
    rows = table_rows(pg_url, f'SELECT id, uid, ver, grp, note, big, extra FROM "{schema}".items')
    view = compacted(items)
    compare_view(rep, "items", view, rows, ["uid", "ver", "grp", "note", "big", "extra"])
    with_extra = sum(1 for v in view.values() if v.get("extra") == 8)
    stats["items rows showing the column added mid-stream"] = with_extra
    if with_extra == 0:
        rep.fail("items: no event carries the column added by ALTER TABLE (no re-plan?)")

    # Per key (one partition, so in produce order): snapshot reads first, then changes in
    # commit order.
    per_key = {}
    for p, off, key, val in items:
        if val is None or key is None:
            continue
        per_key.setdefault(key["id"], []).append((p, off, val))
    for k, evs in per_key.items():
        streamed = False
        last_lsn = 0
        seen_here = set()
        for p, off, val in evs:
            if val["op"] == "r":
                if streamed:
                    rep.fail(f"items key {k} {p}/{off}: snapshot read after a streamed change")
                continue
            streamed = True
            lsn = val["source"]["lsn"]
            event = (lsn, val["op"], json.dumps(val["after"], sort_keys=True))
            if event in seen_here:
                continue  # a replay after kill -9 (at-least-once)
            seen_here.add(event)
            if lsn < last_lsn:
                rep.fail(f"items key {k} {p}/{off}: change at lsn {lsn} after one at {last_lsn} (not commit order)")
            last_lsn = max(last_lsn, lsn)

    # Per row identity (uid survives primary-key changes, which move it to another key and
    # partition): order by snapshot-then-WAL position; versions must be consecutive.
    history = {}
    replays = 0
    seen = set()
    for p, off, key, val in items:
        if val is None:
            continue
        op = val["op"]
        img = val["before"] if op == "d" else val["after"]
        if img is None:
            rep.fail(f"items {p}/{off}: op {op} without a row image")
            continue
        lsn = val["source"].get("lsn") or 0
        ident = (img["uid"], img["ver"], op, lsn, key["id"] if key else None)
        if ident in seen:
            replays += 1
            continue
        seen.add(ident)
        phase = 0 if op == "r" else 1
        # A primary-key change is a delete and a create at the same position: delete first.
        history.setdefault(img["uid"], []).append((phase, lsn, 0 if op == "d" else 1, img["ver"], op))
    stats["items replays (at-least-once duplicates)"] = replays
    for uid, evs in history.items():
        evs.sort()
        prev = None
        for _, lsn, _, ver, op in evs:
            if prev is not None:
                pver, pop = prev
                if op == "d":
                    # A delete carries the row as it was (the version of the event before it).
                    if ver != pver:
                        rep.fail(f"items uid={uid}: delete of version {ver} after version {pver} ({pop})")
                elif ver != pver + 1:
                    what = "lost change(s)" if ver > pver + 1 else "duplicate or out-of-order change"
                    rep.fail(f"items uid={uid}: version {pver} ({pop}) then {ver} ({op}) at lsn {lsn}: {what}")
            prev = (ver, op)

    # tombstones follow deletes
    for i, (p, off, key, val) in enumerate(items):
        if val is not None and val["op"] == "d":
            nxt = next((m for m in items[i + 1:] if m[0] == p), None)
            if nxt is None or nxt[3] is not None or nxt[2] != key:
                rep.fail(f"items {p}/{off}: delete of {key} not followed by its tombstone")

    # bulk: the 100k-row transaction, then the DDL.
    bulk = consume(brokers, f"{prefix}.bulk")
    stats["bulk messages"] = len(bulk)
    brows = table_rows(pg_url, f'SELECT id, val, tag FROM "{schema}".bulk')
    compare_view(rep, "bulk", compacted(bulk), brows, ["val", "tag"])
    tx_ids = {v["source"]["txId"] for _, _, _, v in bulk if v and v["op"] == "c"}
    big_tx = [t for t in tx_ids if sum(1 for _, _, _, v in bulk if v and v["op"] == "c" and v["source"]["txId"] == t) == 100000]
    if len(big_tx) != 1:
        rep.fail(f"bulk: expected one transaction of 100000 creates, got txIds {sorted(tx_ids)[:5]}")

    # toast_default: REPLICA IDENTITY DEFAULT → Debezium's placeholder for unchanged TOAST.
    td = consume(brokers, f"{prefix}.toast_default")
    updates = [v for _, _, _, v in td if v and v["op"] == "u"]
    stats["toast_default updates"] = len(updates)
    if not updates:
        rep.fail("toast_default: no update events (workload too short?)")
    for v in updates:
        if v["after"]["big"] != PLACEHOLDER:
            rep.fail(f"toast_default: unchanged TOASTed value is {str(v['after']['big'])[:40]!r}, expected the placeholder")
        if v["before"] is not None:
            rep.fail("toast_default: REPLICA IDENTITY DEFAULT update has a before image")

    # filtered pipeline: the downstream view is SELECT ... WHERE grp = 'a'.
    filt = consume(brokers, f"{prefix}.f.items")
    stats["filtered messages"] = len(filt)
    frows = table_rows(pg_url, f'SELECT id, uid, ver, grp FROM "{schema}".items WHERE grp = \'a\'')
    compare_view(rep, "filtered", compacted(filt), frows, ["uid", "ver", "grp"])
    for _, _, _, v in filt:
        if v and v["op"] != "d" and v["after"]["grp"] != "a":
            rep.fail(f"filtered: event {v['op']} with grp={v['after']['grp']!r} passed the WHERE")

    # Heartbeats (heartbeat_interval = '1s'): Debezium's key and value.
    hb = consume(brokers, f"__debezium-heartbeat.{prefix}")
    stats["heartbeats"] = len(hb)
    if not hb:
        rep.fail("no heartbeat records")
    for _, _, key, val in hb[:5]:
        if key != {"serverName": prefix} or not isinstance((val or {}).get("ts_ms"), int):
            rep.fail(f"heartbeat record {key} {val} is not Debezium's shape")

    for k, v in stats.items():
        print(f"  {k}: {v}")
    if rep.ok():
        print("stream verification: OK")
        return 0
    print("stream verification FAILED:")
    for p in rep.problems:
        print("  - " + (p if p else "... (more)"))
    return 1


def main():
    cmd = sys.argv[1]
    if cmd == "setup":
        setup(sys.argv[2], sys.argv[3])
    elif cmd == "workload":
        workload(sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]), "--bulk" in sys.argv)
    elif cmd == "ddl":
        ddl(sys.argv[2], sys.argv[3])
    elif cmd == "verify":
        sys.exit(verify(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
