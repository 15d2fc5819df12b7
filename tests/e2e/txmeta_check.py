#!/usr/bin/env python3
"""Transaction metadata end to end: workload and checker, independent of cdcql's code
(Confluent's Python client, its AvroDeserializer and SchemaRegistryClient, and psycopg).

  txmeta_check.py setup    PG_URL SCHEMA
  txmeta_check.py workload PG_URL SCHEMA OUT_FILE SEED [--large N]
  txmeta_check.py verify   BROKERS REGISTRY SCHEMA DATA_PREFIX TXN_TOPIC json|avro EXPECTED...

The workload runs source transactions over `a` (the pipelines keep rows with grp <> 'skip'),
`b` (all rows) and `c` (not in the pipelines), and writes one JSON line per transaction:
its xid and how many events each table must get (it tracks every row's grp, so it knows which
changes pass the filter, which updates become creates or deletes, and that a key change is a
delete plus a create). `verify` reads the data topics and the transaction topic with a
read_committed consumer and checks, per source transaction: one BEGIN and one END (none when
no change passes the filter), END's event_count and per-table counts equal to the data events
carrying the transaction's xid and to what the workload expects, total_order 1..n without
gaps, data_collection_order 1..k per table in WAL order, Debezium's `<xid>:<lsn>` ids (the
event's own LSN; BEGIN at or before the first event, END after the last), commit times, and
the topics' registered schemas. It reports every problem it finds.
"""

import json
import random
import sys
import time
from collections import Counter, defaultdict

import psycopg
from confluent_kafka import Consumer, TopicPartition

XID_MOD = 1 << 32


def setup(pg_url, schema):
    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        c.execute(f'CREATE SCHEMA "{schema}"')
        c.execute(f'CREATE TABLE "{schema}".a (id int8 PRIMARY KEY, grp text NOT NULL, v int NOT NULL)')
        c.execute(f'CREATE TABLE "{schema}".b (id int8 PRIMARY KEY, v int NOT NULL)')
        c.execute(f'CREATE TABLE "{schema}".c (id int8 PRIMARY KEY, v int NOT NULL)')
        c.execute(f'INSERT INTO "{schema}".a SELECT g, CASE WHEN g % 4 = 0 THEN \'skip\' ELSE \'x\' END, 0 FROM generate_series(1, 400) g')
        c.execute(f'INSERT INTO "{schema}".b SELECT g, 0 FROM generate_series(1, 400) g')
        c.execute(f'INSERT INTO "{schema}".c SELECT g, 0 FROM generate_series(1, 10) g')


class Workload:
    """Runs transactions and knows the events each must produce."""

    def __init__(self, conn, schema, seed):
        self.c = conn
        self.s = schema
        self.rng = random.Random(seed)
        rows = conn.execute(f'SELECT id, grp FROM "{schema}".a').fetchall()
        self.a = {r[0]: r[1] for r in rows}
        self.b = {r[0] for r in conn.execute(f'SELECT id FROM "{schema}".b').fetchall()}
        conn.commit()
        self.next_id = 1_000_000 + seed * 1_000_000
        self.out = []

    def new_id(self):
        self.next_id += 1
        return self.next_id

    def run(self, steps, note=""):
        """One transaction of `steps` (callables returning (table, events)); records it."""
        counts = Counter()
        with self.c.cursor() as cur:
            xid = cur.execute("SELECT txid_current()").fetchone()[0] % XID_MOD
            first_passes = None
            for step in steps:
                table, n = step(cur)
                counts[table] += n
                if first_passes is None and table in ("a", "b"):
                    first_passes = n > 0
        self.c.commit()
        self.out.append({"xid": xid, "a": counts["a"], "b": counts["b"],
                         "first_filtered": first_passes is False, "note": note})

    # Steps: each returns the table and the number of events the pipelines must emit.
    def ins_a(self, grp):
        def f(cur):
            i = self.new_id()
            cur.execute(f'INSERT INTO "{self.s}".a VALUES (%s, %s, 0)', (i, grp))
            self.a[i] = grp
            return "a", int(grp != "skip")
        return f

    def upd_a(self, pick, new_grp=None):
        def f(cur):
            i = self.rng.choice(sorted(k for k, g in self.a.items() if pick(g)))
            old = self.a[i]
            new = new_grp or old
            cur.execute(f'UPDATE "{self.s}".a SET v = v + 1, grp = %s WHERE id = %s', (new, i))
            self.a[i] = new
            # Filtered on both images: in→in update, in→out delete, out→in create.
            return "a", int(old != "skip" or new != "skip")
        return f

    def del_a(self, pick):
        def f(cur):
            i = self.rng.choice(sorted(k for k, g in self.a.items() if pick(g)))
            cur.execute(f'DELETE FROM "{self.s}".a WHERE id = %s', (i,))
            return "a", int(self.a.pop(i) != "skip")
        return f

    def rekey_a(self):
        def f(cur):
            i = self.rng.choice(sorted(k for k, g in self.a.items() if g != "skip"))
            j = self.new_id()
            cur.execute(f'UPDATE "{self.s}".a SET id = %s WHERE id = %s', (j, i))
            self.a[j] = self.a.pop(i)
            return "a", 2  # delete of the old key + create of the new one
        return f

    def ins_b(self):
        def f(cur):
            i = self.new_id()
            cur.execute(f'INSERT INTO "{self.s}".b VALUES (%s, 0)', (i,))
            self.b.add(i)
            return "b", 1
        return f

    def upd_b(self):
        def f(cur):
            i = self.rng.choice(sorted(self.b))
            cur.execute(f'UPDATE "{self.s}".b SET v = v + 1 WHERE id = %s', (i,))
            return "b", 1
        return f

    def del_b(self):
        def f(cur):
            i = self.rng.choice(sorted(self.b))
            cur.execute(f'DELETE FROM "{self.s}".b WHERE id = %s', (i,))
            self.b.discard(i)
            return "b", 1
        return f

    def touch_c(self):
        def f(cur):
            cur.execute(f'UPDATE "{self.s}".c SET v = v + 1')
            return "c", 0
        return f

    def bulk(self, n):
        """Both tables, interleaved in WAL order, more rows than one batch."""
        def f_a(cur):
            start = self.next_id + 1
            self.next_id += n
            cur.execute(
                f'INSERT INTO "{self.s}".a SELECT g, CASE WHEN g %% 5 = 0 THEN \'skip\' ELSE \'x\' END, 0 '
                f'FROM generate_series(%s, %s) g', (start, start + n - 1))
            kept = 0
            for g in range(start, start + n):
                self.a[g] = "skip" if g % 5 == 0 else "x"
                kept += g % 5 != 0
            return "a", kept

        def f_b(cur):
            start = self.next_id + 1
            self.next_id += n
            cur.execute(f'INSERT INTO "{self.s}".b SELECT g, 0 FROM generate_series(%s, %s) g',
                        (start, start + n - 1))
            self.b.update(range(start, start + n))
            return "b", n
        return [f_a, f_b, f_a]


def workload(pg_url, schema, out_file, seed, large):
    with psycopg.connect(pg_url) as c:
        w = Workload(c, schema, seed)
        x = lambda g: g != "skip"  # noqa: E731
        skip = lambda g: g == "skip"  # noqa: E731
        w.run([w.ins_a("x"), w.ins_b(), w.ins_a("x"), w.ins_b(), w.ins_a("x")], "both tables")
        w.run([w.upd_a(x), w.del_b(), w.upd_a(x), w.rekey_a()], "updates, delete, key change")
        w.run([w.touch_c()], "table outside the pipeline")
        w.run([w.ins_a("skip"), w.upd_a(skip)], "every change filtered out")
        w.run([w.ins_a("skip"), w.ins_b(), w.upd_a(skip, "x")], "first change filtered out")
        w.run([w.upd_a(x, "skip")], "row leaves the filter")
        if large:
            w.run(w.bulk(large), f"large: {large} rows per statement")
        # Many small transactions in a burst: several of them per hand-over.
        choices = [lambda: w.ins_a(w.rng.choice(["x", "x", "skip"])), lambda: w.upd_a(x),
                   lambda: w.ins_b(), lambda: w.upd_b(), lambda: w.del_b(),
                   lambda: w.del_a(lambda g: True), lambda: w.touch_c()]
        for _ in range(300):
            w.run([w.rng.choice(choices)() for _ in range(w.rng.randint(1, 4))], "small")
    with open(out_file, "a") as f:
        for t in w.out:
            f.write(json.dumps(t) + "\n")
    print(f"workload: {len(w.out)} transactions")


def consume(brokers, topic, deser=None):
    c = Consumer({
        "bootstrap.servers": brokers,
        "group.id": f"txmeta-verify-{time.time_ns()}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "fetch.max.bytes": 16 * 1024 * 1024,
        "max.partition.fetch.bytes": 4 * 1024 * 1024,
        "receive.message.max.bytes": 1_000_000_000,
    })
    md = c.list_topics(topic, timeout=10)
    if topic not in md.topics or md.topics[topic].error is not None:
        raise RuntimeError(f"topic {topic} does not exist")
    parts = list(md.topics[topic].partitions.keys())
    # The high watermark counts commit markers, which read_committed never delivers.
    ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    out = []
    done = set()
    last_seen = time.time()
    deadline = time.time() + 300
    while len(done) < len(parts) and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            for p in parts:
                pos = c.position([TopicPartition(topic, p)])[0].offset
                if pos >= ends[p] or (time.time() - last_seen > 5 and pos >= 0) or ends[p] == 0:
                    done.add(p)
            continue
        if m.error():
            raise RuntimeError(m.error())
        last_seen = time.time()
        out.append((m.partition(), m.offset(), deser(topic, True, m.key()), deser(topic, False, m.value())))
        if m.offset() + 1 >= ends[m.partition()]:
            done.add(m.partition())
    c.close()
    if len(done) < len(parts):
        raise RuntimeError(f"timed out reading {topic}")
    return out


def json_deser(schemas):
    def d(_topic, _is_key, raw):
        if raw is None:
            return None
        v = json.loads(raw)
        return v["payload"] if schemas else v
    return d


def avro_deser(registry):
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext
    sr = SchemaRegistryClient({"url": registry})
    de = AvroDeserializer(sr)

    def d(topic, is_key, raw):
        if raw is None:
            return None
        return de(raw, SerializationContext(topic, MessageField.KEY if is_key else MessageField.VALUE))
    return d, sr


def split_id(tid, problems, what):
    parts = str(tid).split(":")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        problems.append(f"{what}: transaction id {tid!r} is not <xid>:<lsn>")
        return None, None
    return int(parts[0]), int(parts[1])


def verify(brokers, registry, schema, data_prefix, txn_topic, fmt, expected_files):
    problems = []
    fail = problems.append
    if fmt == "avro":
        deser, sr = avro_deser(registry)
        for subject, name in [(f"{txn_topic}-key", "io.debezium.connector.common.TransactionMetadataKey"),
                              (f"{txn_topic}-value", "io.debezium.connector.common.TransactionMetadataValue")]:
            s = json.loads(sr.get_latest_version(subject).schema.schema_str)
            full = f"{s.get('namespace')}.{s.get('name')}"
            if full != name or s.get("connect.version") != 1:
                fail(f"subject {subject}: record {full} connect.version {s.get('connect.version')}, expected {name} v1")
            if subject.endswith("-value"):
                names = [f["name"] for f in s["fields"]]
                if names != ["status", "id", "event_count", "data_collections", "ts_ms"]:
                    fail(f"{subject}: fields {names}")
    else:
        deser = json_deser(True)
        raw = consume(brokers, txn_topic, lambda _t, _k, r: json.loads(r) if r else None)
        if raw:
            vs, ks = raw[0][3]["schema"], raw[0][2]["schema"]
            if (ks.get("name"), vs.get("name"), vs.get("version")) != (
                    "io.debezium.connector.common.TransactionMetadataKey",
                    "io.debezium.connector.common.TransactionMetadataValue", 1):
                fail(f"transaction topic schemas: key {ks.get('name')}, value {vs.get('name')} v{vs.get('version')}")

    expected = {}
    for path in expected_files:
        with open(path) as f:
            for line in f:
                t = json.loads(line)
                expected[t["xid"]] = t
    want = {x: t for x, t in expected.items() if t["a"] + t["b"] > 0}

    # Data events by xid.
    events = defaultdict(list)  # xid -> [(table, lsn, total_order, dco, tx_lsn, ts_ms, offset)]
    snapshot_rows = 0
    for table in ("a", "b"):
        topic = f"{data_prefix}.{table}"
        for part, off, key, val in consume(brokers, topic, deser):
            if val is None:
                continue  # tombstone
            src, tx = val["source"], val["transaction"]
            if val["op"] == "r":
                snapshot_rows += 1
                if tx is not None:
                    fail(f"{topic}@{off}: snapshot event with a transaction block {tx}")
                continue
            if tx is None:
                fail(f"{topic}@{off}: streamed {val['op']} event without a transaction block")
                continue
            xid, lsn = split_id(tx["id"], problems, f"{topic}@{off}")
            if xid is None:
                continue
            if xid != src["txId"] or lsn != src["lsn"]:
                fail(f"{topic}@{off}: transaction.id {tx['id']} but source txId {src['txId']} lsn {src['lsn']}")
            events[xid].append((table, src["lsn"], tx["total_order"], tx["data_collection_order"],
                                src["ts_ms"], part, off))
    if snapshot_rows == 0:
        fail("no snapshot events were read")

    # The transaction topic, in order (one partition).
    begins, ends = {}, {}
    order = []
    for part, off, key, val in consume(brokers, txn_topic, deser):
        if part != 0:
            fail(f"{txn_topic}: record on partition {part}; the topic must have one partition")
        if key is None or val is None or key.get("id") != val.get("id"):
            fail(f"{txn_topic}@{off}: key {key} does not match value id")
            continue
        xid, lsn = split_id(val["id"], problems, f"{txn_topic}@{off}")
        if xid is None:
            continue
        st = val["status"]
        target = begins if st == "BEGIN" else ends if st == "END" else None
        if target is None:
            fail(f"{txn_topic}@{off}: status {st!r}")
            continue
        if xid in target:
            fail(f"{txn_topic}@{off}: second {st} for xid {xid}")
        target[xid] = (off, lsn, val)
        order.append((st, xid, lsn))

    for xid in sorted(set(begins) | set(ends) | set(events) | set(want)):
        exp = want.get(xid)
        evs = sorted(events.get(xid, []), key=lambda e: (e[1], e[2]))
        b, e = begins.get(xid), ends.get(xid)
        if exp is None:
            note = expected.get(xid, {}).get("note", "not from the workload")
            fail(f"xid {xid} ({note}): expected nothing, got {len(evs)} events, "
                 f"BEGIN {b is not None}, END {e is not None}")
            continue
        if b is None or e is None:
            fail(f"xid {xid} ({exp['note']}): BEGIN {b is not None}, END {e is not None}")
            continue
        bval, eval_ = b[2], e[2]
        if b[0] > e[0]:
            fail(f"xid {xid}: END before BEGIN in the transaction topic")
        if bval["event_count"] is not None or bval["data_collections"] is not None:
            fail(f"xid {xid}: BEGIN carries counts {bval}")
        counts = Counter(ev[0] for ev in evs)
        want_counts = {f"{schema}.{t}": exp[t] for t in ("a", "b") if exp[t] > 0}
        got_counts = {d["data_collection"]: d["event_count"] for d in (eval_["data_collections"] or [])}
        if len(evs) != exp["a"] + exp["b"] or counts["a"] != exp["a"] or counts["b"] != exp["b"]:
            fail(f"xid {xid} ({exp['note']}): {dict(counts)} data events, workload expects a={exp['a']} b={exp['b']}")
        if eval_["event_count"] != len(evs) or eval_["event_count"] != exp["a"] + exp["b"]:
            fail(f"xid {xid}: END event_count {eval_['event_count']}, {len(evs)} events carry the xid")
        if got_counts != want_counts:
            fail(f"xid {xid}: END data_collections {got_counts}, expected {want_counts}")
        if len(eval_["data_collections"] or []) != len(got_counts):
            fail(f"xid {xid}: a data collection is listed twice in END")
        totals = sorted(ev[2] for ev in evs)
        if totals != list(range(1, len(evs) + 1)):
            fail(f"xid {xid}: total_order values {totals[:10]}... are not 1..{len(evs)}")
        for t in ("a", "b"):
            mine = [ev for ev in evs if ev[0] == t]  # in WAL order
            dcos = [ev[3] for ev in mine]
            if dcos != list(range(1, len(mine) + 1)):
                fail(f"xid {xid}: data_collection_order of {t} in WAL order is {dcos[:10]}..., not 1..{len(mine)}")
            if [ev[2] for ev in mine] != sorted(ev[2] for ev in mine):
                fail(f"xid {xid}: total_order of {t} does not follow WAL order")
        if evs:
            lo, hi = evs[0][1], max(ev[1] for ev in evs)
            if not b[1] <= lo or (exp["first_filtered"] and not b[1] < lo):
                fail(f"xid {xid} ({exp['note']}): BEGIN lsn {b[1]}, first event lsn {lo}")
            if not e[1] > hi:
                fail(f"xid {xid}: END lsn {e[1]} is not after the last event's {hi}")
            ts = {ev[4] for ev in evs}
            if ts != {bval["ts_ms"]} or eval_["ts_ms"] != bval["ts_ms"]:
                fail(f"xid {xid}: commit times differ: events {ts}, BEGIN {bval['ts_ms']}, END {eval_['ts_ms']}")
    end_lsns = [lsn for st, _, lsn in order if st == "END"]
    if end_lsns != sorted(end_lsns):
        fail("END records are not in commit order")

    print(f"{txn_topic}: {len(begins)} BEGIN, {len(ends)} END; {sum(len(v) for v in events.values())} "
          f"streamed events in {len(events)} transactions; {snapshot_rows} snapshot events; "
          f"{len(expected) - len(want)} workload transactions without events")
    if len(want) < 100:
        fail(f"only {len(want)} workload transactions with events: the workload did not run")
    for p in problems[:50]:
        print("PROBLEM:", p)
    if problems:
        print(f"{len(problems)} problem(s)")
        sys.exit(1)


def main(argv):
    cmd = argv[1]
    if cmd == "setup":
        setup(argv[2], argv[3])
    elif cmd == "workload":
        large = 0
        if "--large" in argv:
            large = int(argv[argv.index("--large") + 1])
        workload(argv[2], argv[3], argv[4], int(argv[5]), large)
    elif cmd == "verify":
        verify(argv[2], argv[3], argv[4], argv[5], argv[6], argv[7], argv[8:])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
