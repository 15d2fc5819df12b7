#!/usr/bin/env python3
"""Fault tests (tests/e2e_faults.rs): a workload that keeps writing through faults, and a
checker that reads the topics back with a fresh read_committed consumer. Independent of cdcql.

  faults_check.py setup    PG_URL SCHEMA
  faults_check.py workload PG_URL SCHEMA STOP_FILE PROGRESS_FILE SEED
  faults_check.py verify   PG_URL BROKERS SCHEMA PREFIX MODE [DELETED_TOPIC SINCE_TXN]
  faults_check.py aborted  BROKERS TOPIC
  faults_check.py avro-setup  PG_URL SCHEMA
  faults_check.py avro-verify PG_URL BROKERS REGISTRY SCHEMA TOPIC

Workload transaction T updates k rows of `acct` (txn = T), inserts m rows into `evt` (txn = T)
and inserts its log row wlog(T, k, m), in one source transaction. It runs until STOP_FILE exists,
survives Postgres going away (reconnects; a transaction whose commit was cut off is looked up in
wlog before it is written again) and writes the last committed T to PROGRESS_FILE.

verify MODE is `exactly_once` (transactional pipelines) or `at_least_once`. Both check that
every transaction whose log row is in the table is in Kafka whole (all k acct updates and m evt
inserts, by txId), that each topic's compacted view equals its table, and that no older event
of a key comes last. `exactly_once` also fails on any event seen twice and on snapshot rows read
twice; `at_least_once` counts repeats and reports them. With DELETED_TOPIC (a table name whose
topic was deleted while cdcql ran) and SINCE_TXN, that topic is checked only for transactions
after SINCE_TXN (what was in the deleted topic is gone by the user's hand).
Every problem found is printed, not just a verdict.
"""

import json
import os
import random
import sys
import time
from collections import Counter, defaultdict

import psycopg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from exactly_once_check import consume  # noqa: E402  (read_committed, reads to the stable end)

TABLES = ("acct", "evt", "wlog")
KEYCOL = {"acct": "id", "evt": "id", "wlog": "txn"}
ACCTS = 2000


def setup(pg_url, schema):
    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        c.execute(f'CREATE SCHEMA "{schema}"')
        c.execute(f'CREATE TABLE "{schema}".acct (id int PRIMARY KEY, bal int NOT NULL, txn int NOT NULL)')
        c.execute(f'CREATE TABLE "{schema}".evt (id bigserial PRIMARY KEY, txn int NOT NULL, amount int NOT NULL)')
        c.execute(f'CREATE TABLE "{schema}".wlog (txn int PRIMARY KEY, n_acct int NOT NULL, n_evt int NOT NULL)')
        c.execute(f'INSERT INTO "{schema}".acct SELECT g, 0, 0 FROM generate_series(1, {ACCTS}) g')
        c.execute(f'INSERT INTO "{schema}".evt (txn, amount) SELECT 0, g FROM generate_series(1, 1000) g')


def size(rng):
    r = rng.random()
    if r < 0.90:
        return rng.randint(1, 10)
    if r < 0.995:
        return rng.randint(10, 300)
    # Now and then a large one, so that faults also land inside a Kafka transaction.
    return rng.randint(2000, 5000)


def connect(pg_url):
    """Connects, waiting while Postgres is down (the Postgres-restart fault)."""
    deadline = time.time() + 300
    while True:
        try:
            return psycopg.connect(pg_url, connect_timeout=5)
        except psycopg.OperationalError:
            if time.time() > deadline:
                raise
            time.sleep(0.3)


def committed(pg_url, schema, t):
    with connect(pg_url) as c:
        return c.execute(f'SELECT 1 FROM "{schema}".wlog WHERE txn = %s', (t,)).fetchone() is not None


def workload(pg_url, schema, stop_file, progress_file, seed):
    rng = random.Random(seed)
    total = 0
    reconnects = 0
    t = 0
    c = connect(pg_url)
    while not os.path.exists(stop_file):
        if os.path.exists(stop_file + ".pause"):
            time.sleep(0.05)
            continue
        t += 1
        n = size(rng)
        k = min(n // 2, ACCTS)
        m = n - k
        start = rng.randint(1, ACCTS - k + 1)
        while True:
            try:
                with c.cursor() as cur:
                    if k:
                        cur.execute(
                            f'UPDATE "{schema}".acct SET bal = bal + 1, txn = %s WHERE id >= %s AND id < %s',
                            (t, start, start + k),
                        )
                    if m:
                        cur.execute(
                            f'INSERT INTO "{schema}".evt (txn, amount) SELECT %s, g FROM generate_series(1, %s) g',
                            (t, m),
                        )
                    cur.execute(f'INSERT INTO "{schema}".wlog VALUES (%s, %s, %s)', (t, k, m))
                c.commit()
                break
            except psycopg.OperationalError as e:
                reconnects += 1
                print(f"workload: transaction {t}: {str(e).strip()}; reconnecting", flush=True)
                try:
                    c.close()
                except Exception:
                    pass
                c = connect(pg_url)
                # The commit may have reached the server before the connection broke.
                if committed(pg_url, schema, t):
                    break
        total += k + m + 1
        with open(progress_file + ".tmp", "w") as f:
            f.write(str(t))
        os.replace(progress_file + ".tmp", progress_file)
        time.sleep(0.02)
    c.close()
    print(f"workload: {t} transactions, {total} row changes, {reconnects} reconnects", flush=True)


def table_rows(pg_url, schema):
    with psycopg.connect(pg_url) as c:
        return {
            "acct": {r[0]: {"id": r[0], "bal": r[1], "txn": r[2]}
                     for r in c.execute(f'SELECT id, bal, txn FROM "{schema}".acct')},
            "evt": {r[0]: {"id": r[0], "txn": r[1], "amount": r[2]}
                    for r in c.execute(f'SELECT id, txn, amount FROM "{schema}".evt')},
            "wlog": {r[0]: {"txn": r[0], "n_acct": r[1], "n_evt": r[2]}
                     for r in c.execute(f'SELECT txn, n_acct, n_evt FROM "{schema}".wlog')},
        }


def verify(pg_url, brokers, schema, prefix, mode, deleted=None, since=0):
    exactly_once = mode == "exactly_once"
    problems = []
    fail = problems.append
    topics = {t: consume(brokers, f"{prefix}.{t}") for t in TABLES}
    tables = table_rows(pg_url, schema)
    stats = {t: Counter() for t in TABLES}
    # txId -> (table, T) -> distinct events; repeats counted apart.
    streamed = defaultdict(Counter)
    repeats = Counter()
    for t, msgs in topics.items():
        view = {}
        reads = Counter()
        seen = set()
        last_lsn = {}
        max_lsn = {}
        for p, off, key, val in msgs:
            if val is None:
                continue
            op = val["op"]
            stats[t][op] += 1
            row = val["after"] if op != "d" else val["before"]
            k = key[KEYCOL[t]]
            if op == "r":
                reads[k] += 1
            else:
                lsn = val["source"]["lsn"]
                ident = (k, lsn)
                if ident in seen:
                    repeats[t] += 1
                    if exactly_once:
                        fail(f"{t} key {k} {p}/{off}: event at lsn {lsn} seen twice")
                else:
                    seen.add(ident)
                    streamed[val["source"]["txId"]][(t, row.get("txn"))] += 1
                if exactly_once and k in last_lsn and lsn <= last_lsn[k]:
                    fail(f"{t} key {k} {p}/{off}: event at lsn {lsn} after one at {last_lsn[k]}")
                last_lsn[k] = lsn
                max_lsn[k] = max(max_lsn.get(k, 0), lsn)
            if op == "d":
                view.pop(k, None)
            else:
                view[k] = row
        for k, n in reads.items():
            if n > 1 and exactly_once:
                fail(f"{t} key {k}: read {n} times by the snapshot")
        for k, lsn in last_lsn.items():
            if lsn != max_lsn[k]:
                fail(f"{t} key {k}: the last event (lsn {lsn}) is older than one before it ({max_lsn[k]})")
        rows = tables[t]
        for k, want in rows.items():
            if t == deleted and want.get("txn", 0) <= since:
                continue
            got = view.get(k)
            if got != want:
                fail(f"{t} key {k}: compacted view {got} but table {want}")
        for k in view:
            if k not in rows:
                fail(f"{t} key {k}: in the topic but not in the table")

    # Every committed workload transaction, by its log row in the table: whole in Kafka.
    log_events = {}
    for _, _, k, v in topics["wlog"]:
        if v is not None and v["op"] != "d":
            log_events.setdefault(v["after"]["txn"], v)
    checked = 0
    for T, want in sorted(tables["wlog"].items()):
        v = log_events.get(T)
        if v is None:
            fail(f"transaction {T}: its log row is not in Kafka")
            continue
        if v["op"] == "r":
            continue
        checked += 1
        got = streamed.get(v["source"]["txId"], Counter())
        want_evt = want["n_evt"]
        if deleted == "evt" and T <= since:
            want_evt = got[("evt", T)]
        if deleted == "acct" and T <= since:
            continue
        if got[("acct", T)] != want["n_acct"] or got[("evt", T)] != want_evt or got[("wlog", T)] != 1:
            fail(f"transaction {T} (txId {v['source']['txId']}): {got[('acct', T)]}/{want['n_acct']} acct "
                 f"updates, {got[('evt', T)]}/{want_evt} evt inserts, {got[('wlog', T)]}/1 log rows in Kafka")
        extra = {key: n for key, n in got.items() if key[1] != T}
        if extra:
            fail(f"transaction {T} (txId {v['source']['txId']}): events of other rows in it: {extra}")
    print(f"  {mode}: {checked} streamed transactions checked ({len(tables['wlog'])} in the table)")
    for t, s in stats.items():
        print(f"  {prefix}.{t}: {dict(s)}; repeated events: {repeats[t]}")
    if problems:
        report(problems)
        return 1
    print("fault verification: OK")
    return 0


KINDS = ("compacted view", "not in Kafka", "acct updates", "seen twice", "after one at",
         "times by the snapshot", "older than", "in the topic but not", "events of other rows")


def report(problems):
    """Problems grouped by kind, a few of each: one lost transaction must not hide the rest."""
    groups = defaultdict(list)
    for p in problems:
        groups[next((k for k in KINDS if k in p), "other")].append(p)
    print(f"fault verification FAILED ({len(problems)} problems):")
    for kind, ps in groups.items():
        print(f"  {len(ps)} x {kind}:")
        for p in ps[:12]:
            print("    - " + p)


def count(brokers, topic, isolation):
    """Records (not markers) a fresh consumer with this isolation level reads to the end."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({
        "bootstrap.servers": brokers,
        "group.id": f"faults-count-{time.time_ns()}",
        "enable.auto.commit": False,
        "isolation.level": isolation,
        "receive.message.max.bytes": 1_000_000_000,
    })
    parts = list(c.list_topics(topic, timeout=10).topics[topic].partitions.keys())
    ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    n = 0
    deadline = time.time() + 300
    while time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            pos = {tp.partition: tp.offset for tp in c.position([TopicPartition(topic, p) for p in parts])}
            if all(ends[p] == 0 or pos[p] >= ends[p] for p in parts):
                break
            continue
        if m.error():
            raise RuntimeError(m.error())
        n += 1
    c.close()
    return n


def aborted(brokers, topic):
    """How many records of `topic` only read_uncommitted shows: aborted transactions' records."""
    committed = count(brokers, topic, "read_committed")
    everything = count(brokers, topic, "read_uncommitted")
    print(f"  {topic}: {committed} records read_committed, {everything} read_uncommitted")
    print(f"aborted={everything - committed}")


# --- Avro and the schema registry ------------------------------------------------------------

def avro_setup(pg_url, schema):
    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        c.execute(f'CREATE SCHEMA "{schema}"')
        c.execute(f'CREATE TABLE "{schema}".reg (id int PRIMARY KEY, v text NOT NULL)')
        c.execute(f"INSERT INTO \"{schema}\".reg SELECT g, 'snap' || g FROM generate_series(1, 100) g")


def avro_consume(brokers, registry, topic):
    """(key, value) of every record read_committed shows, decoded with Confluent's
    AvroDeserializer; done when each partition's position reaches its end (commit markers
    and aborted records are never delivered, so offsets alone cannot tell)."""
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    deser = AvroDeserializer(SchemaRegistryClient({"url": registry}))
    c = Consumer({
        "bootstrap.servers": brokers,
        "group.id": f"faults-avro-{time.time_ns()}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "receive.message.max.bytes": 1_000_000_000,
    })
    parts = list(c.list_topics(topic, timeout=10).topics[topic].partitions.keys())
    ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    out = []
    deadline = time.time() + 120
    while time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            pos = {tp.partition: tp.offset for tp in c.position([TopicPartition(topic, p) for p in parts])}
            if all(ends[p] == 0 or pos[p] >= ends[p] for p in parts):
                break
            continue
        if m.error():
            raise RuntimeError(m.error())
        key = deser(m.key(), SerializationContext(topic, MessageField.KEY)) if m.key() else None
        val = deser(m.value(), SerializationContext(topic, MessageField.VALUE)) if m.value() else None
        out.append((key, val))
    else:
        raise RuntimeError(f"timed out reading {topic}")
    c.close()
    return out


def avro_verify(pg_url, brokers, registry, schema, topic):
    with psycopg.connect(pg_url) as c:
        cols = [r[0] for r in c.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
            "AND table_name = 'reg' ORDER BY ordinal_position", (schema,))]
        rows = {r[0]: dict(zip(cols, r)) for r in c.execute(f'SELECT {", ".join(cols)} FROM "{schema}".reg')}
    view = {}
    for key, val in avro_consume(brokers, registry, topic):
        if val is None:
            continue
        row = val["after"] if val["op"] != "d" else None
        if row is None:
            view.pop(key["id"], None)
        else:
            view[key["id"]] = {c: row.get(c) for c in cols}
    problems = [f"id {k}: topic {view.get(k)} but table {want}" for k, want in rows.items() if view.get(k) != want]
    problems += [f"id {k}: in the topic but not in the table" for k in view if k not in rows]
    print(f"  {topic}: {len(view)} keys, {len(rows)} rows, columns {cols}")
    if problems:
        print(f"avro verification FAILED ({len(problems)} problems):")
        for p in problems[:40]:
            print("  - " + p)
        return 1
    print("avro verification: OK")
    return 0


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "setup":
        setup(*args)
    elif cmd == "workload":
        workload(args[0], args[1], args[2], args[3], int(args[4]))
    elif cmd == "verify":
        deleted = args[5] if len(args) > 5 else None
        since = int(args[6]) if len(args) > 6 else 0
        sys.exit(verify(args[0], args[1], args[2], args[3], args[4], deleted, since))
    elif cmd == "aborted":
        aborted(*args)
    elif cmd == "avro-setup":
        avro_setup(*args)
    elif cmd == "avro-verify":
        sys.exit(avro_verify(*args))
    else:
        sys.exit(f"unknown command {cmd}")
