#!/usr/bin/env python3
"""Exactly-once crash test: workload and checker (independent of cdcql's code).

  exactly_once_check.py setup    PG_URL SCHEMA
  exactly_once_check.py workload PG_URL SCHEMA TRANSACTIONS SEED
  exactly_once_check.py verify   PG_URL BROKERS SCHEMA PREFIX

Every workload transaction T updates k rows of `acct` (setting txn = T), inserts m rows into
`evt` (txn = T), updates j rows of `bag` (a table without a primary key, so its snapshot
chunks are heap-page ranges and an update moves a row to another chunk) and inserts its own
log row wlog(T, k, m, j) — all in one source transaction, across four topics. A read_committed consumer then checks: each transaction whose log row was
streamed appears exactly once and whole (k acct updates and m evt inserts with its txId, no
more, no fewer); transactions in the snapshot have no streamed events; streamed events per key
come in commit order with no repeats; no snapshot row is read twice; each topic's compacted view
equals its table. It reports every problem it finds, not just a boolean.
"""

import json
import random
import sys
import time
from collections import Counter, defaultdict

import psycopg
from confluent_kafka import Consumer, TopicPartition


def setup(pg_url, schema):
    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        c.execute(f'CREATE SCHEMA "{schema}"')
        c.execute(f'CREATE TABLE "{schema}".acct (id int PRIMARY KEY, bal int NOT NULL, txn int NOT NULL)')
        c.execute(f'CREATE TABLE "{schema}".evt (id bigserial PRIMARY KEY, txn int NOT NULL, amount int NOT NULL)')
        c.execute(f'CREATE TABLE "{schema}".wlog (txn int PRIMARY KEY, n_acct int NOT NULL, n_evt int NOT NULL, n_bag int NOT NULL)')
        c.execute(f'CREATE TABLE "{schema}".bag (uid int NOT NULL, txn int NOT NULL, pad text NOT NULL)')
        c.execute(f'ALTER TABLE "{schema}".bag REPLICA IDENTITY FULL')
        c.execute(f'INSERT INTO "{schema}".bag SELECT g, 0, repeat(\'x\', 150) FROM generate_series(1, {BAG_ROWS}) g')
        c.execute(f'ANALYZE "{schema}".bag')
        c.execute(f'INSERT INTO "{schema}".acct SELECT g, 0, 0 FROM generate_series(1, 20000) g')
        c.execute(f'INSERT INTO "{schema}".evt (txn, amount) SELECT 0, g FROM generate_series(1, 60000) g')
        c.execute(f'ANALYZE "{schema}".acct')
        c.execute(f'ANALYZE "{schema}".evt')


BAG_ROWS = 30000


def size(rng):
    r = rng.random()
    if r < 0.90:
        return rng.randint(1, 10)
    if r < 0.99:
        return rng.randint(10, 500)
    return rng.randint(1000, 10000)


def workload(pg_url, schema, count, seed):
    rng = random.Random(seed)
    total = 0
    with psycopg.connect(pg_url) as c:
        for t in range(1, count + 1):
            n = size(rng)
            k = min(n // 2, 20000)
            m = n - k
            j = min(n // 3, 200)
            with c.cursor() as cur:
                if k:
                    start = rng.randint(1, 20000 - k + 1)
                    cur.execute(
                        f'UPDATE "{schema}".acct SET bal = bal + 1, txn = %s WHERE id >= %s AND id < %s',
                        (t, start, start + k),
                    )
                if m:
                    cur.execute(
                        f'INSERT INTO "{schema}".evt (txn, amount) SELECT %s, g FROM generate_series(1, %s) g',
                        (t, m),
                    )
                if j:
                    start = rng.randint(1, BAG_ROWS - j + 1)
                    cur.execute(
                        f'UPDATE "{schema}".bag SET txn = %s WHERE uid >= %s AND uid < %s',
                        (t, start, start + j),
                    )
                cur.execute(f'INSERT INTO "{schema}".wlog VALUES (%s, %s, %s, %s)', (t, k, m, j))
            c.commit()
            total += k + m + j + 1
            # Spread the workload so that kills also land while it streams.
            time.sleep(0.003)
    print(f"workload: {count} transactions, {total} row changes")


def consume(brokers, topic):
    c = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": f"eo-verify-{time.time_ns()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            # The test broker may answer a fetch with more than fetch.max.bytes.
            "fetch.max.bytes": 16 * 1024 * 1024,
            "max.partition.fetch.bytes": 4 * 1024 * 1024,
            "receive.message.max.bytes": 1_000_000_000,
            "isolation.level": "read_committed",
        }
    )
    md = c.list_topics(topic, timeout=10)
    parts = list(md.topics[topic].partitions.keys())
    # With transactions, the high watermark counts commit markers and aborted messages:
    # read until the last stable offset (what read_committed can see) is passed.
    ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    out = []
    last_seen = time.time()
    deadline = time.time() + 300
    done = set()
    while len(done) < len(parts) and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            # Markers and aborted records are never delivered: stop when positions reach the end.
            for p in parts:
                pos = c.position([TopicPartition(topic, p)])[0].offset
                if pos >= ends[p] or (time.time() - last_seen > 5 and pos >= 0):
                    done.add(p)
            continue
        if m.error():
            raise RuntimeError(m.error())
        last_seen = time.time()
        out.append((m.partition(), m.offset(), json.loads(m.key()) if m.key() else None,
                    json.loads(m.value()) if m.value() else None))
        if m.offset() + 1 >= ends[m.partition()]:
            done.add(m.partition())
    c.close()
    return out


def verify(pg_url, brokers, schema, prefix):
    problems = []

    def fail(msg):
        problems.append(msg)

    topics = {t: consume(brokers, f"{prefix}.{t}") for t in ("acct", "evt", "wlog", "bag")}
    with psycopg.connect(pg_url) as c:
        tables = {
            "acct": {r[0]: {"id": r[0], "bal": r[1], "txn": r[2]} for r in c.execute(f'SELECT id, bal, txn FROM "{schema}".acct')},
            "evt": {r[0]: {"id": r[0], "txn": r[1], "amount": r[2]} for r in c.execute(f'SELECT id, txn, amount FROM "{schema}".evt')},
            "wlog": {r[0]: {"txn": r[0], "n_acct": r[1], "n_evt": r[2], "n_bag": r[3]} for r in c.execute(f'SELECT txn, n_acct, n_evt, n_bag FROM "{schema}".wlog')},
            "bag": {r[0]: {"uid": r[0], "txn": r[1], "pad": r[2]} for r in c.execute(f'SELECT uid, txn, pad FROM "{schema}".bag')},
        }
    keycol = {"acct": "id", "evt": "id", "wlog": "txn", "bag": "uid"}
    stats = {t: Counter() for t in topics}

    streamed_by_xid = defaultdict(Counter)  # xid -> (table, txn) -> count
    for t, msgs in topics.items():
        if t == "bag":
            # Null keys land on any partition: put each row's events in commit (LSN) order.
            msgs = sorted(msgs, key=lambda m: (m[3] or {}).get("source", {}).get("lsn") or 0)
        view = {}
        reads = Counter()
        per_key = defaultdict(list)
        for p, off, key, val in msgs:
            if val is None:
                continue
            op = val["op"]
            stats[t][op] += 1
            row = val["after"] if op != "d" else val["before"]
            k = row[keycol[t]] if key is None else key[keycol[t]]
            if op == "r":
                reads[k] += 1
                if per_key[k]:
                    fail(f"{t} key {k}: snapshot read after streamed events")
            else:
                lsn = val["source"]["lsn"]
                if per_key[k] and lsn <= per_key[k][-1]:
                    fail(f"{t} key {k} {p}/{off}: event at lsn {lsn} after one at {per_key[k][-1]} (repeat or out of commit order)")
                per_key[k].append(lsn)
                streamed_by_xid[val["source"]["txId"]][(t, row.get("txn"))] += 1
            if op == "d":
                view.pop(k, None)
            else:
                view[k] = row
        for k, n in reads.items():
            if n > 1:
                fail(f"{t} key {k}: read {n} times by the snapshot")
        rows = tables[t]
        for k, want in rows.items():
            got = view.get(k)
            if got != want:
                fail(f"{t} key {k}: compacted view {got} but table {want}")
        for k in view:
            if k not in rows:
                fail(f"{t} key {k}: in the topic but not in the table")

    # Whole and exactly once: every streamed log row's transaction.
    log_events = [(v, k) for _, _, k, v in topics["wlog"] if v is not None]
    streamed_txns = 0
    snapshot_txns = set()
    for v, k in log_events:
        T = v["after"]["txn"]
        if v["op"] == "r":
            snapshot_txns.add(T)
            continue
        streamed_txns += 1
        xid = v["source"]["txId"]
        got = streamed_by_xid.get(xid, Counter())
        want_acct, want_evt, want_bag = v["after"]["n_acct"], v["after"]["n_evt"], v["after"]["n_bag"]
        if (got[("acct", T)] != want_acct or got[("evt", T)] != want_evt or got[("bag", T)] != want_bag
                or got[("wlog", T)] != 1):
            fail(f"transaction {T} (txId {xid}): streamed {got[('acct', T)]}/{want_acct} acct updates, "
                 f"{got[('evt', T)]}/{want_evt} evt inserts, {got[('bag', T)]}/{want_bag} bag updates, "
                 f"{got[('wlog', T)]}/1 log rows")
        extra = {key: n for key, n in got.items() if key[1] != T}
        if extra:
            fail(f"transaction {T} (txId {xid}): events of other rows in it: {extra}")
    print(f"  streamed transactions checked: {streamed_txns}; transactions in the snapshot: {len(snapshot_txns)}")
    for t, s in stats.items():
        print(f"  {t}: {dict(s)}")
    if problems:
        print("problem kinds:", dict(Counter(" ".join(p.split()[2:5]) for p in problems).most_common(8)))
        print(f"exactly-once verification FAILED ({len(problems)} problems):")
        for p in problems[:50]:
            print("  - " + p)
        return 1
    print("exactly-once verification: OK")
    return 0


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "setup":
        setup(sys.argv[2], sys.argv[3])
    elif cmd == "workload":
        workload(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif cmd == "verify":
        sys.exit(verify(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]))
