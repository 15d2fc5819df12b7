#!/usr/bin/env bash
# Real services for cdcql's tests and quickstart: PostgreSQL 15 with wal_level=logical, a
# Kafka-protocol broker (noida-db) and a Confluent-API schema registry.
#
#   scripts/services.sh up            install what is missing, start what is not running, print env
#   scripts/services.sh env           print the export lines only
#   scripts/services.sh status        show what runs where
#   scripts/services.sh down          stop what this script started (data is kept)
#   scripts/services.sh reset-broker  stop the broker, wipe its data, start it fresh
#
#   eval "$(scripts/services.sh up)"  # sets PG_URL, KAFKA_BROKERS, SCHEMA_REGISTRY_URL
#
# Idempotent: `up` reuses running services and only installs what is missing. Progress goes to
# stderr; stdout carries nothing but the export lines.
# Settings: PGPORT (5432), KAFKA_PORT (9092), REGISTRY_PORT (8081), CDCQL_STATE (~/.cache/cdcql),
# CDCQL_TOOLS (~/.cache/cdcql-tools), CDCQL_PGROOT (where Postgres keeps data and socket),
# CDCQL_REGISTRY_SCRIPT (the schema registry server script).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${CDCQL_STATE:-$HOME/.cache/cdcql}
TOOLS=${CDCQL_TOOLS:-$HOME/.cache/cdcql-tools}
PGPORT=${PGPORT:-5432}
KAFKA_PORT=${KAFKA_PORT:-9092}
REGISTRY_PORT=${REGISTRY_PORT:-8081}
REGISTRY_SCRIPT=${CDCQL_REGISTRY_SCRIPT:-$REPO/../shared/tools/schema-registry/schema_registry.py}
PG_BIN=/usr/lib/postgresql/15/bin
NOIDA_VERSION=0.2.3
BROKER_DIR=$STATE/kafka
REGISTRY_DIR=$STATE/registry

# Debian packages: the services, the clients the tests use, and what `cargo build` needs
# (librdkafka is built from source by rdkafka-sys; libpq-dev for libpq-based crates).
APT_PACKAGES=(postgresql-15 postgresql-contrib kcat openssl build-essential cmake pkg-config libpq-dev libssl-dev zlib1g-dev)
PIP_PACKAGES=("confluent-kafka[avro,schemaregistry]" "psycopg[binary]" avro)
PY_IMPORTS="import confluent_kafka.schema_registry.avro, fastavro, psycopg, avro"

log() { printf 'services: %s\n' "$*" >&2; }
die() {
	printf 'services: error: %s\n' "$*" >&2
	exit 1
}

# Commands that may leave daemons behind get `3>&-`: a daemon holding fd 3 (our stdout, see the
# end of this file) would keep `$(scripts/services.sh up)` waiting forever.
as_root() {
	if [ "$(id -u)" = 0 ]; then
		"$@" 3>&-
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@" 3>&-
	else
		die "need root to run: $* (install it by hand or run as root)"
	fi
}

# Runs a Postgres server binary as the user that owns the cluster (initdb/pg_ctl refuse root).
as_pg() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@" 3>&-
	else
		"$@" 3>&-
	fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Postgres runs as user `postgres` when we are root, and that user cannot enter /root: then its
# files live under /var/lib/postgresql instead of the state dir.
pg_root() {
	if [ -n "${CDCQL_PGROOT:-}" ]; then
		echo "$CDCQL_PGROOT"
	elif [ "$(id -u)" != 0 ] || { mkdir -p "$STATE" && runuser -u postgres -- test -x "$STATE" 2>/dev/null; }; then
		echo "$STATE/pg"
	else
		echo "/var/lib/postgresql/cdcql-$PGPORT"
	fi
}

print_env() {
	printf 'export PG_URL=postgres://postgres@127.0.0.1:%s/shop\n' "$PGPORT"
	printf 'export KAFKA_BROKERS=127.0.0.1:%s\n' "$KAFKA_PORT"
	printf 'export SCHEMA_REGISTRY_URL=http://127.0.0.1:%s\n' "$REGISTRY_PORT"
}

# --- installation ----------------------------------------------------------------------------

ensure_apt_packages() {
	local missing=() p
	for p in "${APT_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	command -v apt-get >/dev/null 2>&1 || die "missing packages ${missing[*]} and no apt-get to install them"
	log "installing Debian packages: ${missing[*]}"
	as_root apt-get update -qq >&2
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
	# Debian's package creates and may start its own cluster "15/main" on 5432; ours uses its own
	# data dir, so keep the packaged one out of the way.
	if [[ " ${missing[*]} " == *" postgresql-15 "* ]] && command -v pg_lsclusters >/dev/null 2>&1 && pg_lsclusters -h 2>/dev/null | awk '$1 == 15 && $2 == "main" && $4 == "online"' | grep -q .; then
		log "stopping Debian's default cluster 15/main (cdcql runs its own)"
		as_root pg_ctlcluster 15 main stop || true
	fi
}

ensure_python_packages() {
	python3 -c "$PY_IMPORTS" 2>/dev/null && return 0
	log "installing Python packages: ${PIP_PACKAGES[*]}"
	# PIP_BREAK_SYSTEM_PACKAGES: Debian's own python3 refuses pip installs otherwise (PEP 668).
	PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 \
		python3 -m pip install --quiet "${PIP_PACKAGES[@]}" >&2
	python3 -c "$PY_IMPORTS" || die "Python packages still not importable after pip install"
}

ensure_broker_binary() {
	[ -x "$TOOLS/bin/noida-db" ] && return 0
	command -v cargo >/dev/null 2>&1 || die "cargo is needed to install the broker (noida-db)"
	log "building the broker: cargo install noida-db@$NOIDA_VERSION (about a minute)"
	cargo install "noida-db@$NOIDA_VERSION" --locked --no-default-features --features kafka --root "$TOOLS" >&2
}

# --- PostgreSQL ------------------------------------------------------------------------------

pg_running() { as_pg "$PG_BIN/pg_ctl" -D "$1" status >/dev/null 2>&1; }

# Port of a running cluster, from line 4 of postmaster.pid.
pg_running_port() { sed -n 4p "$1/postmaster.pid" 2>/dev/null; }

pg_write_conf() {
	as_pg tee "$1/cdcql.conf" >/dev/null <<-EOF
		# Written by scripts/services.sh on every \`up\`.
		listen_addresses = '127.0.0.1'
		port = $PGPORT
		unix_socket_directories = '$2'
		wal_level = logical
		max_replication_slots = 20
		max_wal_senders = 20
		fsync = off
	EOF
}

pg_up() {
	local root data sock
	root=$(pg_root)
	data=$root/data
	sock=$root/sock
	if [ -f "$data/PG_VERSION" ] && pg_running "$data"; then
		pg_write_conf "$data" "$sock"
		if [ "$(pg_running_port "$data")" = "$PGPORT" ]; then
			log "postgres already running on 127.0.0.1:$PGPORT ($data)"
		else
			log "postgres is running on port $(pg_running_port "$data"), restarting it on $PGPORT"
			as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$data/server.log" -w -m fast restart >&2
		fi
	else
		if port_open "$PGPORT"; then
			die "port $PGPORT is taken by another process, not the cdcql Postgres in $data.
  Stop it (Debian's own cluster: pg_ctlcluster 15 main stop) or pick another port: PGPORT=5433 $0 up"
		fi
		if [ ! -f "$data/PG_VERSION" ]; then
			log "initdb $data"
			if [ "$(id -u)" = 0 ]; then
				install -d -m 700 -o postgres -g postgres "$root" "$data" "$sock"
			else
				install -d -m 700 "$root" "$data" "$sock"
			fi
			as_pg "$PG_BIN/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=trust \
				-E UTF8 --locale=C.UTF-8 >/dev/null
			echo "include 'cdcql.conf'" | as_pg tee -a "$data/postgresql.conf" >/dev/null
		fi
		pg_write_conf "$data" "$sock"
		log "starting postgres on 127.0.0.1:$PGPORT ($data)"
		as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$data/server.log" -w start >&2 ||
			die "postgres did not start, see $data/server.log"
	fi
	local psql=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "postgres://postgres@127.0.0.1:$PGPORT/postgres")
	if [ -z "$("${psql[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname = 'shop'")" ]; then
		log "creating database shop"
		"${psql[@]}" -c "CREATE DATABASE shop" >&2
	fi
}

pg_installed() { [ -x "$PG_BIN/pg_ctl" ] && { [ "$(id -u)" != 0 ] || id postgres >/dev/null 2>&1; }; }

pg_down() {
	pg_installed || return 0
	local data
	data=$(pg_root)/data
	if [ -f "$data/PG_VERSION" ] && pg_running "$data"; then
		log "stopping postgres ($data)"
		as_pg "$PG_BIN/pg_ctl" -D "$data" -w -m fast stop >&2
	fi
}

# --- processes we start in the background (broker, registry) ---------------------------------

# Prints the pid recorded in $1 if that process is alive and its command line contains $2.
live_pid() {
	local pid
	pid=$(cat "$1" 2>/dev/null) || return 1
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2" || return 1
	echo "$pid"
}

# Starts "$@" detached from this shell (own session, survives the script), logging to $1.
spawn() {
	local logfile=$1 pidfile=$2
	shift 2
	setsid nohup "$@" >>"$logfile" 2>&1 </dev/null 3>&- &
	echo $! >"$pidfile"
}

# SIGTERM, wait up to $3 seconds, then SIGKILL.
stop_pid() {
	local pid=$1 what=$2 wait_s=$3 i
	log "stopping $what (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < wait_s * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	log "$what did not stop within ${wait_s}s, killing it"
	kill -KILL "$pid" 2>/dev/null || true
}

# Retries "$@" until it succeeds or $1 seconds (wall clock) have passed.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS < deadline)) || return 1
		sleep 0.5
	done
}

# --- broker ----------------------------------------------------------------------------------

broker_answers() { port_open "$KAFKA_PORT" && timeout 5 kcat -b "127.0.0.1:$KAFKA_PORT" -L -m 3 >/dev/null 2>&1; }

broker_up() {
	if broker_answers; then
		log "broker already answering on 127.0.0.1:$KAFKA_PORT"
		return 0
	fi
	if live_pid "$BROKER_DIR/broker.pid" "--kafka-port $KAFKA_PORT " >/dev/null; then
		log "broker process is alive but does not answer yet, waiting"
	elif live_pid "$BROKER_DIR/broker.pid" noida-db >/dev/null; then
		die "the broker started by this script listens on another port than $KAFKA_PORT; run '$0 down' first"
	else
		port_open "$KAFKA_PORT" && die "port $KAFKA_PORT is taken by something that does not answer Kafka metadata requests; set KAFKA_PORT"
		mkdir -p "$BROKER_DIR/data"
		log "starting broker on 127.0.0.1:$KAFKA_PORT (log: $BROKER_DIR/broker.log)"
		spawn "$BROKER_DIR/broker.log" "$BROKER_DIR/broker.pid" \
			"$TOOLS/bin/noida-db" start --only kafka --kafka-port "$KAFKA_PORT" --data-dir "$BROKER_DIR/data"
	fi
	wait_for 60 broker_answers || {
		tail -n 20 "$BROKER_DIR/broker.log" >&2 || true
		die "broker did not answer on 127.0.0.1:$KAFKA_PORT within 60 s (log: $BROKER_DIR/broker.log)"
	}
	log "broker ready"
}

broker_down() {
	local pid
	if pid=$(live_pid "$BROKER_DIR/broker.pid" noida-db); then
		stop_pid "$pid" broker 60
	elif broker_answers; then
		log "a broker answers on 127.0.0.1:$KAFKA_PORT but was not started by this script; leaving it alone"
	fi
	rm -f "$BROKER_DIR/broker.pid"
}

# --- schema registry -------------------------------------------------------------------------

registry_answers() {
	python3 - "$REGISTRY_PORT" <<-'EOF' 2>/dev/null
		import sys, urllib.request
		urllib.request.urlopen("http://127.0.0.1:%s/subjects" % sys.argv[1], timeout=2).read()
	EOF
}

registry_up() {
	if registry_answers; then
		log "schema registry already answering on 127.0.0.1:$REGISTRY_PORT"
		return 0
	fi
	if [ ! -f "$REGISTRY_SCRIPT" ]; then
		log "warning: schema registry NOT started: $REGISTRY_SCRIPT not found (set CDCQL_REGISTRY_SCRIPT);"
		log "         only Avro pipelines need it, the JSON quickstart does not"
		return 0
	fi
	if ! live_pid "$REGISTRY_DIR/registry.pid" schema_registry >/dev/null; then
		port_open "$REGISTRY_PORT" && die "port $REGISTRY_PORT is taken by something that is not a schema registry; set REGISTRY_PORT"
		mkdir -p "$REGISTRY_DIR"
		log "starting schema registry on 127.0.0.1:$REGISTRY_PORT (log: $REGISTRY_DIR/registry.log)"
		spawn "$REGISTRY_DIR/registry.log" "$REGISTRY_DIR/registry.pid" \
			python3 "$REGISTRY_SCRIPT" --host 127.0.0.1 --port "$REGISTRY_PORT"
	fi
	wait_for 30 registry_answers || {
		tail -n 20 "$REGISTRY_DIR/registry.log" >&2 || true
		die "schema registry did not answer on 127.0.0.1:$REGISTRY_PORT within 30 s"
	}
	log "schema registry ready"
}

registry_down() {
	local pid
	if pid=$(live_pid "$REGISTRY_DIR/registry.pid" schema_registry); then
		stop_pid "$pid" "schema registry" 10
	fi
	rm -f "$REGISTRY_DIR/registry.pid"
}

# --- commands --------------------------------------------------------------------------------

cmd_up() {
	ensure_apt_packages
	ensure_python_packages
	ensure_broker_binary
	mkdir -p "$STATE"
	pg_up
	broker_up
	registry_up
	print_env >&3
}

cmd_down() {
	registry_down
	broker_down
	pg_down
}

cmd_reset_broker() {
	ensure_broker_binary
	broker_down
	broker_answers && die "a broker not started by this script answers on 127.0.0.1:$KAFKA_PORT; cannot reset it"
	log "wiping broker data $BROKER_DIR/data"
	rm -rf "$BROKER_DIR/data"
	broker_up
}

cmd_status() {
	local data pid
	if pg_installed; then
		data=$(pg_root)/data
		if [ -f "$data/PG_VERSION" ] && pg_running "$data"; then
			echo "postgres: running on 127.0.0.1:$(pg_running_port "$data") ($data)"
		else
			echo "postgres: stopped ($data)"
		fi
	else
		echo "postgres: not installed"
	fi
	if broker_answers; then
		pid=$(live_pid "$BROKER_DIR/broker.pid" noida-db) && pid="pid $pid" || pid="not started by this script"
		echo "broker: answering on 127.0.0.1:$KAFKA_PORT ($pid, data $BROKER_DIR/data)"
	else
		echo "broker: not answering on 127.0.0.1:$KAFKA_PORT"
	fi
	if registry_answers; then
		echo "schema registry: answering on 127.0.0.1:$REGISTRY_PORT"
	else
		echo "schema registry: not answering on 127.0.0.1:$REGISTRY_PORT"
	fi
}

main() {
	# fd 3 is the real stdout (export lines); everything else, including tools' output, goes to stderr.
	exec 3>&1 1>&2
	case "${1:-}" in
	up) cmd_up ;;
	down) cmd_down ;;
	env) print_env >&3 ;;
	status) cmd_status >&3 ;;
	reset-broker) cmd_reset_broker ;;
	*)
		echo "usage: $0 up|down|env|status|reset-broker" >&2
		exit 2
		;;
	esac
}

# When sourced (scripts/faults/services.sh runs private instances with these functions), only
# define them.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
	main "$@"
fi
