#!/usr/bin/env bash
# Benchmark suite (issue #8). Builds cdcql in release, makes a table of mixed types and
# measures, on that table in the same run:
#   (a)  Postgres' own binary COPY to /dev/null, server-side        (the Postgres limit)
#   (a2) the broker's ingest of as many pre-encoded messages of cdcql's size, produced from
#        memory with acks=all + idempotence (benches/produce_baseline/)  (the Kafka limit)
#   (b)  the naive pipe: psql COPY (SELECT row_to_json(t) ...) | kcat -P
#   (c)  cdcql apply --snapshot-only: Debezium+JSON, Debezium+Avro, Native+Avro, parallelism 1
#        and 2 ("n/a" while the planner rejects the `parallelism` option)
#   (d)  streaming: pgbench updates at fixed rates while cdcql streams; changes/s delivered and
#        p50/p99 latency from source commit (source.ts_us) to Kafka append (LogAppendTime)
# and prints one table: rows/s, MB/s, ratio to min(a, a2) and to (b), latency, peak RSS, CPU.
#
#   scripts/bench.sh                      # 5,000,000 rows, all steps
#   BENCH_ROWS=1000000 scripts/bench.sh   # a quicker run
#
# Settings (environment):
#   BENCH_ROWS (5000000)          rows of the snapshot table bench.t (kept between runs)
#   BENCH_STEPS ("a b c a2 d")    which measurements to run
#   BENCH_STREAM_ROWS (100000)    rows of the streaming table bench.s
#   BENCH_STREAM_RATES ("10000 50000 max")  offered changes/s; `max` = pgbench unthrottled
#   BENCH_STREAM_SECS (20)        seconds of workload per rate
#   BENCH_STREAM_BATCH (10)       rows changed per transaction
#   BENCH_STREAM_FORMAT (AVRO)    AVRO or JSON (Debezium envelope) for the streaming runs
#   BENCH_RESET_BROKER (1)        a fresh broker before each step that writes to Kafka: the
#                                 broker (noida-db) keeps every message in memory and does not
#                                 give it back when a topic is deleted (5M rows ≈ 9 GB written)
#   BENCH_KAFKA_PORT              run a private broker on this port (state in
#                                 ~/.cache/cdcql/bench-broker) instead of resetting the shared
#                                 one on 9092, which other users of the machine may be using
#   BENCH_OUT (~/.cache/cdcql/bench/<time>)  logs, results and the printed table
# It installs nothing beyond scripts/services.sh (which brings Postgres with pgbench, kcat,
# the broker, the registry and the Python clients) and uses /usr/bin/time (Debian `time`).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
ROWS=${BENCH_ROWS:-5000000}
STEPS=" ${BENCH_STEPS:-a b c a2 d} "
STREAM_ROWS=${BENCH_STREAM_ROWS:-100000}
STREAM_RATES=${BENCH_STREAM_RATES:-10000 50000 max}
STREAM_SECS=${BENCH_STREAM_SECS:-20}
STREAM_BATCH=${BENCH_STREAM_BATCH:-10}
STREAM_FORMAT=${BENCH_STREAM_FORMAT:-AVRO}
RESET_BROKER=${BENCH_RESET_BROKER:-1}
OUT=${BENCH_OUT:-$HOME/.cache/cdcql/bench/$(date +%Y%m%d-%H%M%S)}
PG_BIN=/usr/lib/postgresql/15/bin
BENCH_DIR=$REPO/scripts/bench
# Names of everything this run creates (topics, subjects, slots, publications) start with it.
RUN=cdcqlbench_$$
RESULTS=$OUT/results.tsv

say() { printf '==> %s\n' "$*" >&2; }
die() {
	printf 'bench: error: %s\n' "$*" >&2
	exit 1
}
has_step() { [[ "$STEPS" == *" $1 "* ]]; }
now_ns() { date +%s%N; }
psql_() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$PG_URL" "$@"; }
kadmin() { timeout 300 python3 "$BENCH_DIR/kafka_admin.py" "$@" 2> >(grep -v BGQUEUE >&2); }

mkdir -p "$OUT"
: >"$RESULTS"

# --- services, tools, build ------------------------------------------------------------------

say "services (scripts/services.sh up)"
eval "$(scripts/services.sh up)"
[ -x /usr/bin/time ] || {
	say "installing Debian package time (for /usr/bin/time)"
	apt-get install -y -qq time >&2 || die "need /usr/bin/time (Debian package time)"
}
PGROOT=$(dirname "$(psql_ -tAc 'SHOW data_directory')")
broker_svc() { scripts/services.sh "$@"; }
if [ -n "${BENCH_KAFKA_PORT:-}" ]; then
	# services.sh with its own state dir and port: a second broker, the same Postgres.
	broker_svc() {
		KAFKA_PORT=$BENCH_KAFKA_PORT CDCQL_STATE=$HOME/.cache/cdcql/bench-broker CDCQL_PGROOT=$PGROOT \
			scripts/services.sh "$@"
	}
	say "private broker on 127.0.0.1:$BENCH_KAFKA_PORT"
	broker_svc up >/dev/null
	export KAFKA_BROKERS=127.0.0.1:$BENCH_KAFKA_PORT
fi
fresh_broker() {
	[ "$RESET_BROKER" = 1 ] || return 0
	say "fresh broker on $KAFKA_BROKERS (services.sh reset-broker)"
	broker_svc reset-broker 2>&1 | grep -v '^services: \(stopping\|wiping\|starting\)' >&2 || true
}

say "cargo build --release (the first one compiles DataFusion: 10+ minutes on 2 cores)"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/cdcql-target}
cargo build --release --bin cdcql
# (a2) is a crate of its own (see its Cargo.toml for why); same target dir, so rdkafka is shared.
cargo build --release --manifest-path benches/produce_baseline/Cargo.toml
CDCQL=$CARGO_TARGET_DIR/release/cdcql
A2_BIN=$CARGO_TARGET_DIR/release/produce_baseline
[ -x "$CDCQL" ] && [ -x "$A2_BIN" ] || die "release build did not produce cdcql and produce_baseline"

# Postgres backends are children of the postmaster; pgcpu.py adds up their CPU per step.
POSTMASTER=$(head -1 "$(psql_ -tAc 'SHOW data_directory')/postmaster.pid" 2>/dev/null || true)

cleanup() {
	set +e
	for p in $(jobs -p); do kill -INT "$p" 2>/dev/null; done
	wait 2>/dev/null
	psql_ -tAc "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
	            WHERE slot_name LIKE '${RUN}%' AND NOT active" >/dev/null 2>&1
	for pub in $(psql_ -tAc "SELECT pubname FROM pg_publication WHERE pubname LIKE '${RUN}%'" 2>/dev/null); do
		psql_ -c "DROP PUBLICATION $pub" >/dev/null 2>&1
	done
	kadmin drop "$KAFKA_BROKERS" "$RUN" "${SCHEMA_REGISTRY_URL:-}" >/dev/null 2>&1
	if [ -n "${BENCH_KAFKA_PORT:-}" ] && [ -f "$HOME/.cache/cdcql/bench-broker/kafka/broker.pid" ]; then
		kill "$(cat "$HOME/.cache/cdcql/bench-broker/kafka/broker.pid")" 2>/dev/null
	fi
}
trap cleanup EXIT

# --- measuring one step ----------------------------------------------------------------------

# measure ID CMD...: runs CMD with stdout/stderr in $OUT/ID.{out,err}; sets SECS (wall clock),
# CPU_S (user+system of CMD and its children), RSS_KB (largest resident set among them) and
# PG_CPU (CPU seconds of Postgres processes meanwhile).
measure() {
	local id=$1 sampler="" t0 t1 e u s m
	shift
	if [ -n "$POSTMASTER" ]; then
		python3 "$BENCH_DIR/pgcpu.py" "$POSTMASTER" "$OUT/$id.pgcpu" &
		sampler=$!
		sleep 0.2
	fi
	t0=$(now_ns)
	/usr/bin/time -f '%e %U %S %M' -o "$OUT/$id.time" "$@" >"$OUT/$id.out" 2>"$OUT/$id.err" || {
		[ -z "$sampler" ] || kill "$sampler"
		tail -n 20 "$OUT/$id.err" >&2
		die "step $id failed: $*"
	}
	t1=$(now_ns)
	PG_CPU=-
	if [ -n "$sampler" ]; then
		kill -TERM "$sampler"
		wait "$sampler" || true
		PG_CPU=$(cat "$OUT/$id.pgcpu" 2>/dev/null || echo -)
	fi
	read -r e u s m < <(tail -n 1 "$OUT/$id.time")
	SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
	CPU_S=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')
	RSS_KB=$m
}

# record ID LABEL ROWS SECS BYTES CPU RSS PGCPU P50 P99 NOTE
record() {
	local IFS=$'\t'
	echo "$*" >>"$RESULTS"
}

messages_in() { kadmin count "$KAFKA_BROKERS" "$1"; }

check_count() {
	local topic=$1 want=$2 got
	got=$(messages_in "$topic")
	[ "$got" = "$want" ] || die "topic $topic holds $got messages, expected $want"
}

# --- the tables ------------------------------------------------------------------------------

# ensure_table NAME ROWS: (re)creates NAME unless it already holds ROWS rows of this generator.
ensure_table() {
	local tbl=$1 rows=$2 mark
	mark="cdcql-bench rows=$rows $(md5sum <"$BENCH_DIR/table.sql" | cut -c1-12)"
	if [ "$(psql_ -tAc "SELECT obj_description('$tbl'::regclass)" 2>/dev/null)" = "$mark" ]; then
		say "table $tbl: $rows rows already there"
		return
	fi
	say "table $tbl: generating $rows rows"
	PGOPTIONS='-c client_min_messages=warning' psql_ -v rows="$rows" -v tbl="$tbl" -f "$BENCH_DIR/table.sql"
	psql_ -c "COMMENT ON TABLE $tbl IS '$mark'"
}

ensure_table bench.t "$ROWS"
TABLE_MB=$(psql_ -tAc "SELECT round(pg_table_size('bench.t') / 1e6)")

# --- (a) Postgres binary COPY ----------------------------------------------------------------

if has_step a; then
	say "(a) COPY bench.t TO '/dev/null' (FORMAT binary): warm-up, then measured"
	psql_ -c "COPY bench.t TO '/dev/null' (FORMAT binary)"
	measure a "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$PG_URL" -c "COPY bench.t TO '/dev/null' (FORMAT binary)"
	a_bytes=$(psql_ -c "COPY bench.t TO STDOUT (FORMAT binary)" | wc -c)
	record a "(a) Postgres COPY binary → /dev/null" "$ROWS" "$SECS" "$a_bytes" - - "$PG_CPU" - - \
		"server-side; MB = binary COPY bytes"
fi

# --- (b) the naive pipe ----------------------------------------------------------------------

if has_step b; then
	topic=$RUN.b
	say "(b) psql COPY (SELECT row_to_json(t) ...) | kcat -P -t $topic"
	fresh_broker
	kadmin create "$KAFKA_BROKERS" "$topic" 1
	measure b bash -c "set -o pipefail; '$PG_BIN/psql' -X -q -v ON_ERROR_STOP=1 '$PG_URL' \
		-c 'COPY (SELECT row_to_json(t) FROM bench.t t) TO STDOUT' | kcat -P -b '$KAFKA_BROKERS' -t '$topic'"
	check_count "$topic" "$ROWS"
	b_bytes=$(psql_ -tAc "SELECT sum(octet_length(row_to_json(t)::text)) FROM bench.t t")
	record b "(b) psql row_to_json → kcat -P" "$ROWS" "$SECS" "$b_bytes" "$CPU_S" "$RSS_KB" "$PG_CPU" - - \
		"kcat defaults; CPU/RSS: psql+kcat"
	kadmin drop "$KAFKA_BROKERS" "$topic"
fi

# --- (c) cdcql snapshots ---------------------------------------------------------------------

# pipeline_file FILE TOPIC FORMAT ENVELOPE OPTIONS TABLE: one pipeline named bench.
pipeline_file() {
	local with=""
	[ -z "$5" ] || with="WITH ($5)"
	cat >"$1" <<-EOF
		CREATE CONNECTION pg TO POSTGRES (url = '\${PG_URL}');
		CREATE CONNECTION bus TO KAFKA (brokers = '\${KAFKA_BROKERS}',
		    schema_registry = '\${SCHEMA_REGISTRY_URL:-http://127.0.0.1:8081}');
		CREATE PIPELINE bench FROM pg INTO bus TOPIC '$2'
		    FORMAT $3 ENVELOPE $4 $with
		    TABLES ($6);
	EOF
}

AVRO_MSG_SIZE=""
if has_step c; then
	# Parallel snapshot may not exist yet: ask the planner.
	pipeline_file "$OUT/probe.sql" "$RUN.probe" JSON DEBEZIUM "parallelism = 2" bench.t
	if "$CDCQL" validate "$OUT/probe.sql" >"$OUT/probe.out" 2>&1; then
		PARALLEL_OK=1
	else
		PARALLEL_OK=0
		say "the planner rejects \`parallelism\`; parallelism 2 is n/a: $(grep -m1 -o 'unknown option.*' "$OUT/probe.out" || head -1 "$OUT/probe.out")"
	fi
	for variant in "AVRO DEBEZIUM dbz_avro Debezium+Avro" "JSON DEBEZIUM dbz_json Debezium+JSON" \
		"AVRO NATIVE nat_avro Native+Avro"; do
		read -r format envelope short name <<<"$variant"
		for par in 1 2; do
			id=c_${short}_p$par
			label="(c) cdcql $name, parallelism $par"
			if [ "$PARALLEL_OK" = 0 ]; then
				[ "$par" = 1 ] || {
					record "$id" "$label" - - - - - - - - "n/a: planner rejects parallelism"
					continue
				}
				opts=""
			else
				opts="parallelism = $par"
			fi
			topic=$RUN.$id
			pipeline_file "$OUT/$id.sql" "$topic" "$format" "$envelope" "$opts" bench.t
			fresh_broker
			say "$label → $topic"
			measure "$id" "$CDCQL" apply "$OUT/$id.sql" --snapshot-only
			done_line=$(grep -m1 'snapshot done: ' "$OUT/$id.err") || die "no 'snapshot done' line in $OUT/$id.err"
			# "... snapshot done: N messages acknowledged (X MB) in S s, R rows/s"
			msgs=$(sed -E 's/.*snapshot done: ([0-9]+) messages.*/\1/' <<<"$done_line")
			mb=$(sed -E 's/.*acknowledged \(([0-9.]+) MB\).*/\1/' <<<"$done_line")
			bytes=$(awk -v m="$mb" 'BEGIN { printf "%.0f", m * 1e6 }')
			[ "$msgs" = "$ROWS" ] || die "$id: $msgs messages acknowledged for $ROWS rows"
			check_count "$topic" "$ROWS"
			avg=$(awk -v b="$bytes" -v n="$msgs" 'BEGIN { printf "%.0f", b / n }')
			[ "$id" != c_dbz_avro_p1 ] || AVRO_MSG_SIZE=$avg
			record "$id" "$label" "$ROWS" "$SECS" "$bytes" "$CPU_S" "$RSS_KB" "$PG_CPU" - - \
				"$avg B/msg; wall clock incl. startup"
			kadmin drop "$KAFKA_BROKERS" "$topic" "${SCHEMA_REGISTRY_URL:-}"
		done
	done
fi

# --- (a2) the broker's ingest of pre-encoded messages ----------------------------------------

if has_step a2; then
	# The size of cdcql's Debezium+Avro messages when measured above, else the issue's figure.
	size=${AVRO_MSG_SIZE:-325}
	topic=$RUN.a2
	say "(a2) $ROWS pre-encoded messages of $size bytes from memory → $topic"
	fresh_broker
	kadmin create "$KAFKA_BROKERS" "$topic" 1
	measure a2 "$A2_BIN" --brokers "$KAFKA_BROKERS" --topic "$topic" --messages "$ROWS" --size "$size"
	check_count "$topic" "$ROWS"
	record a2 "(a2) broker ingest, pre-encoded (Rust)" "$ROWS" "$SECS" "$((ROWS * size))" "$CPU_S" "$RSS_KB" "$PG_CPU" - - \
		"$size B/msg, acks=all, idempotent"
	kadmin drop "$KAFKA_BROKERS" "$topic"
fi

# --- (d) streaming ---------------------------------------------------------------------------

# stream_run ID RATE: one cdcql streaming process, one pgbench run at RATE changes/s.
stream_run() {
	local id=$1 rate=$2 topic="$RUN.$1" slot="${RUN}_$1" file="$OUT/$1.sql" time_pid cdcql_pid i tx want got tps
	fresh_broker
	kadmin create "$KAFKA_BROKERS" "$topic" 1 message.timestamp.type=LogAppendTime
	pipeline_file "$file" "$topic" "$STREAM_FORMAT" DEBEZIUM \
		"snapshot = 'never', slot_name = '$slot', publication_name = '$slot'" bench.s
	/usr/bin/time -f '%e %U %S %M' -o "$OUT/$id.time" "$CDCQL" apply "$file" >"$OUT/$id.out" 2>"$OUT/$id.err" &
	time_pid=$!
	for ((i = 0; i < 600; i++)); do
		[ "$(psql_ -tAc "SELECT active FROM pg_replication_slots WHERE slot_name = '$slot'")" = t ] && break
		kill -0 "$time_pid" 2>/dev/null || die "cdcql stopped before streaming: $(tail -n 5 "$OUT/$id.err")"
		sleep 0.1
	done
	sleep 1
	cdcql_pid=$(pgrep -P "$time_pid" -x cdcql) || die "cannot find the cdcql process"
	local rate_args=()
	if [ "$rate" != max ]; then
		tps=$(awk -v r="$rate" -v b="$STREAM_BATCH" 'BEGIN { printf "%.0f", r / b }')
		rate_args=(-R "$tps")
	fi
	say "(d) streaming $STREAM_FORMAT, $rate changes/s offered for ${STREAM_SECS}s ($STREAM_BATCH per transaction) → $topic"
	local sampler=""
	if [ -n "$POSTMASTER" ]; then
		python3 "$BENCH_DIR/pgcpu.py" "$POSTMASTER" "$OUT/$id.pgcpu" &
		sampler=$!
	fi
	"$PG_BIN/pgbench" -n -f "$BENCH_DIR/update.pgbench" -D rows="$STREAM_ROWS" -D batch="$STREAM_BATCH" \
		-c 4 -j 2 -T "$STREAM_SECS" "${rate_args[@]}" "$PG_URL" >"$OUT/$id.pgbench" 2>&1 ||
		die "pgbench failed: $(tail -n 5 "$OUT/$id.pgbench")"
	tx=$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' "$OUT/$id.pgbench")
	want=$((tx * STREAM_BATCH))
	# Let cdcql drain what it is behind by, then stop it the way a user does.
	for ((i = 0; i < 300; i++)); do
		got=$(messages_in "$topic")
		[ "$got" -ge "$want" ] && break
		sleep 1
	done
	[ -z "$sampler" ] || { kill -TERM "$sampler"; wait "$sampler" || true; }
	kill -INT "$cdcql_pid"
	wait "$time_pid" || die "cdcql apply (streaming) failed: $(tail -n 5 "$OUT/$id.err")"
	[ "$got" -ge "$want" ] || die "$topic holds $got messages after waiting, expected $want"
	local res
	res=$(timeout 600 python3 "$BENCH_DIR/stream_latency.py" "$KAFKA_BROKERS" "$topic" "${SCHEMA_REGISTRY_URL:-}" | grep '^RESULT')
	echo "$res" >"$OUT/$id.latency"
	val() { sed -nE "s/.* $1=([^ ]+).*/\1/p" <<<" $res"; }
	local e u s m offered
	read -r e u s m < <(tail -n 1 "$OUT/$id.time")
	offered=$(awk -v t="$tx" -v b="$STREAM_BATCH" -v d="$STREAM_SECS" 'BEGIN { printf "%.0f", t * b / d }')
	record "$id" "(d) streaming $STREAM_FORMAT, offered $rate/s" "$(val messages)" "$(val span_s)" - \
		"$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')" "$m" "$(cat "$OUT/$id.pgcpu" 2>/dev/null || echo -)" \
		"$(val p50_ms)" "$(val p99_ms)" "pgbench made $offered/s; max $(val max_ms) ms; $(val clock); PG CPU incl. pgbench"
	"$CDCQL" drop "$file" bench >>"$OUT/$id.out" 2>&1 || say "warning: cdcql drop failed for $id"
	kadmin drop "$KAFKA_BROKERS" "$topic" "${SCHEMA_REGISTRY_URL:-}"
}

if has_step d; then
	ensure_table bench.s "$STREAM_ROWS"
	n=0
	for rate in $STREAM_RATES; do
		n=$((n + 1))
		stream_run "d$n" "$rate"
	done
fi

# --- the table -------------------------------------------------------------------------------

{
	echo "cdcql benchmark: BENCH_ROWS=$ROWS (bench.t, $TABLE_MB MB on disk), $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
	echo "machine: $(nproc) CPUs ($(sed -nE 's/^model name\s*: (.*)/\1/p' /proc/cpuinfo | head -1)), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM; $("$PG_BIN/postgres" --version); broker noida-db"
	echo
	python3 "$BENCH_DIR/report.py" "$RESULTS"
	echo
	echo "rows/s and MB/s use each command's wall clock (cdcql: process start to exit). MB = bytes written"
	echo "(Kafka: key + value). Ratios compare rows/s. CPU s = user + system of the client process(es);"
	echo "PG CPU s = Postgres processes meanwhile. Streaming: rows/s = changes delivered per second from the"
	echo "first commit to the last append; latency = Kafka append time - source commit time."
} | tee "$OUT/table.md"
say "logs and results in $OUT"
