#!/usr/bin/env bash
# How much a resumed snapshot reads again (issue #5): a transactional pipeline with a parallel,
# chunked snapshot of a 1,000,000-row table is killed with SIGKILL halfway, then restarted. It
# prints the rows the first attempt had produced when killed (P1), the rows the second attempt
# produced (P2), the rows read twice (P1 + P2 - rows), that bound (parallelism × chunk_rows),
# and what a read_committed consumer finds in the topic (must be exactly `rows`).
#
#   scripts/resume_snapshot.sh
#
# Settings (environment): RESUME_ROWS (1000000), RESUME_PARALLELISM (2), RESUME_CHUNK_ROWS
# (50000), RESUME_KILL_AT (0.5: fraction of rows produced before the kill), RESUME_KAFKA_PORT
# (9094: a private broker started with scripts/services.sh, so the shared one is left alone).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
ROWS=${RESUME_ROWS:-1000000}
PAR=${RESUME_PARALLELISM:-2}
CHUNK=${RESUME_CHUNK_ROWS:-50000}
KILL_AT=${RESUME_KILL_AT:-0.5}
PORT=${RESUME_KAFKA_PORT:-9094}
METRICS=127.0.0.1:9464
say() { printf '==> %s\n' "$*" >&2; }

scripts/services.sh up >&2
eval "$(scripts/services.sh env)"
PG_BIN=/usr/lib/postgresql/15/bin
psql_() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$PG_URL" "$@"; }
PGROOT=$(dirname "$(psql_ -tAc 'SHOW data_directory')")
broker() { KAFKA_PORT=$PORT CDCQL_STATE=$HOME/.cache/cdcql/resume-broker CDCQL_PGROOT=$PGROOT scripts/services.sh "$@"; }
broker reset-broker >&2
export KAFKA_BROKERS=127.0.0.1:$PORT

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/cdcql-target}
cargo build --release --bin cdcql >&2
CDCQL=$CARGO_TARGET_DIR/release/cdcql

RUN=resume_$$
OUT=$(mktemp -d)
say "table resume.t: $ROWS rows"
psql_ -c "CREATE SCHEMA IF NOT EXISTS resume" -c "DROP TABLE IF EXISTS resume.t" \
	-c "CREATE TABLE resume.t (id bigint PRIMARY KEY, note text NOT NULL, at timestamptz NOT NULL)" \
	-c "INSERT INTO resume.t SELECT g, md5(g::text), now() FROM generate_series(1, $ROWS) g" \
	-c "ANALYZE resume.t"
cat >"$OUT/p.sql" <<EOF
CREATE CONNECTION pg TO POSTGRES (url = '\${PG_URL}');
CREATE CONNECTION bus TO KAFKA (brokers = '\${KAFKA_BROKERS}');
CREATE PIPELINE $RUN FROM pg INTO bus TOPIC '$RUN.{table}'
    FORMAT JSON ENVELOPE DEBEZIUM
    WITH (transactional = true, parallelism = $PAR, chunk_rows = $CHUNK,
          offsets_topic = '$RUN.offsets')
    TABLES (resume.t);
EOF
produced() {
	curl -s "http://$METRICS/metrics" | awk '/^cdcql_snapshot_rows_total\{/ { s += $2 } END { printf "%d", s }'
}
cleanup() {
	[ -z "${PID:-}" ] || kill -9 "$PID" 2>/dev/null || true
	"$CDCQL" drop "$OUT/p.sql" "$RUN" >/dev/null 2>&1 || true
	psql_ -c "DROP TABLE IF EXISTS resume.t" || true
	broker reset-broker >/dev/null 2>&1 || true
}
trap cleanup EXIT

"$CDCQL" apply "$OUT/p.sql" --metrics-addr "$METRICS" >"$OUT/1.log" 2>&1 &
PID=$!
target=$(awk -v r="$ROWS" -v f="$KILL_AT" 'BEGIN { printf "%d", r * f }')
p1=0
for ((i = 0; i < 6000; i++)); do
	p1=$(produced || echo 0)
	[ "${p1:-0}" -lt "$target" ] || break
	sleep 0.01
done
kill -9 "$PID"
wait "$PID" 2>/dev/null || true
PID=
say "attempt 1 killed after producing about $p1 rows"

"$CDCQL" apply "$OUT/p.sql" --metrics-addr "$METRICS" >"$OUT/2.log" 2>&1 &
PID=$!
for ((i = 0; i < 3000; i++)); do
	grep -q 'snapshot delivered' "$OUT/2.log" && break
	sleep 0.1
done
grep -q 'snapshot delivered' "$OUT/2.log" || {
	tail -20 "$OUT/2.log" >&2
	exit 1
}
p2=$(produced)
kill -INT "$PID"
wait "$PID" || true
PID=
left=$(grep -o 'chunks_left=[0-9]*' "$OUT/2.log" | head -1 | cut -d= -f2)

committed=$(python3 - "$KAFKA_BROKERS" "$RUN.t" <<'EOF'
import sys, time
from confluent_kafka import Consumer, TopicPartition
brokers, topic = sys.argv[1], sys.argv[2]
c = Consumer({"bootstrap.servers": brokers, "group.id": f"resume-{time.time_ns()}",
              "enable.auto.commit": False, "isolation.level": "read_committed",
              "receive.message.max.bytes": 1_000_000_000})
parts = list(c.list_topics(topic, timeout=10).topics[topic].partitions)
ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
c.assign([TopicPartition(topic, p, 0) for p in parts])
keys, n, idle = set(), 0, time.time()
while time.time() - idle < 5:
    m = c.poll(0.5)
    if m is None or m.error():
        if all(c.position([TopicPartition(topic, p)])[0].offset >= ends[p] for p in parts):
            break
        continue
    idle = time.time()
    if m.value() is not None:
        n += 1
        keys.add(m.key())
print(n, len(keys))
EOF
)
read -r messages distinct <<<"$committed"
reread=$((p1 + p2 - ROWS))
bound=$((PAR * CHUNK))
cat <<EOF
resumed snapshot: $ROWS rows, parallelism $PAR, chunk_rows $CHUNK, killed at ~$KILL_AT
  attempt 1 produced (sampled just before SIGKILL): $p1
  attempt 2 produced:                               $p2 ($left chunks left)
  read twice (P1 + P2 - rows):                      $reread  (bound: parallelism x chunk_rows = $bound)
  read_committed consumer:                          $messages messages, $distinct distinct keys
EOF
[ "$messages" = "$ROWS" ] && [ "$distinct" = "$ROWS" ] || {
	echo "FAIL: the topic does not hold each row exactly once" >&2
	exit 1
}
[ "$reread" -le "$bound" ] || {
	echo "FAIL: more than one chunk per worker read again" >&2
	exit 1
}
echo OK
