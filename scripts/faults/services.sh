#!/usr/bin/env bash
# Private services for the fault tests (tests/e2e_faults.rs): a Postgres cluster, a broker and a
# schema registry of their own, on their own ports and data dirs, so that stopping, pausing or
# restarting them never disturbs the shared ones (5432/9092/8081) other tests use.
# It reuses scripts/services.sh (sourced: same installation, initdb, start and stop logic).
#
#   scripts/faults/services.sh up                 install what is missing, start all, print env
#   scripts/faults/services.sh env                print the export lines only
#   scripts/faults/services.sh status | down
#   scripts/faults/services.sh stop  pg|broker|registry   (broker: its port closes, data is kept)
#   scripts/faults/services.sh start pg|broker|registry
#   scripts/faults/services.sh reset broker       a fresh broker (noida-db keeps deleted topics in memory)
#   scripts/faults/services.sh pause  broker      SIGSTOP (a network stall: connections stay open)
#   scripts/faults/services.sh resume broker      SIGCONT
#
# The registry keeps its schemas in memory, so "registry down" stops a TCP proxy in front of it
# (tcp_proxy.py): clients see connection refused, and schema ids stay valid afterwards, as they
# do with a real registry (which keeps them in Kafka).
# Settings: FAULTS_PGPORT (55432), FAULTS_KAFKA_PORT (59092), FAULTS_REGISTRY_PORT (58081, the
# proxy; the registry itself listens on FAULTS_REGISTRY_PORT + 100), FAULTS_STATE
# (~/.cache/cdcql/faults), and what scripts/services.sh reads (CDCQL_TOOLS, CDCQL_REGISTRY_SCRIPT).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FAULTS_STATE=${FAULTS_STATE:-$HOME/.cache/cdcql/faults}
PUBLIC_REGISTRY_PORT=${FAULTS_REGISTRY_PORT:-58081}
export PGPORT=${FAULTS_PGPORT:-55432}
export KAFKA_PORT=${FAULTS_KAFKA_PORT:-59092}
export REGISTRY_PORT=$((PUBLIC_REGISTRY_PORT + 100))
export CDCQL_STATE=$FAULTS_STATE
# Keep Postgres where scripts/services.sh would put a cluster for this port (as root: under
# /var/lib/postgresql, which the postgres user can enter), unless the caller chose.
unset CDCQL_PGROOT

# shellcheck source=../services.sh
source "$HERE/../services.sh"

PROXY_DIR=$FAULTS_STATE/registry-proxy

print_private_env() {
	printf 'export PG_URL=postgres://postgres@127.0.0.1:%s/shop\n' "$PGPORT"
	printf 'export KAFKA_BROKERS=127.0.0.1:%s\n' "$KAFKA_PORT"
	printf 'export SCHEMA_REGISTRY_URL=http://127.0.0.1:%s\n' "$PUBLIC_REGISTRY_PORT"
}

proxy_up() {
	live_pid "$PROXY_DIR/proxy.pid" tcp_proxy >/dev/null && return 0
	port_open "$PUBLIC_REGISTRY_PORT" && die "port $PUBLIC_REGISTRY_PORT is taken; set FAULTS_REGISTRY_PORT"
	mkdir -p "$PROXY_DIR"
	log "starting registry proxy 127.0.0.1:$PUBLIC_REGISTRY_PORT -> $REGISTRY_PORT"
	spawn "$PROXY_DIR/proxy.log" "$PROXY_DIR/proxy.pid" \
		python3 "$HERE/tcp_proxy.py" "$PUBLIC_REGISTRY_PORT" "$REGISTRY_PORT"
	wait_for 10 port_open "$PUBLIC_REGISTRY_PORT" || die "registry proxy did not listen on $PUBLIC_REGISTRY_PORT"
}

proxy_down() {
	local pid
	if pid=$(live_pid "$PROXY_DIR/proxy.pid" tcp_proxy); then
		stop_pid "$pid" "registry proxy" 5
	fi
	rm -f "$PROXY_DIR/proxy.pid"
}

# The broker service is stopped and started inside its running process (noida-db's own
# `stop kafka`): that closes the port and every connection first and saves afterwards. A
# SIGTERM'd noida-db saves its snapshot while it still answers requests, so writes it
# acknowledges during its last seconds are lost: a broker bug, not a fault cdcql must survive.
noida() { "$TOOLS/bin/noida-db" "$@" --data-dir "$BROKER_DIR/data" 3>&-; }

broker_stop_service() {
	live_pid "$BROKER_DIR/broker.pid" "--kafka-port $KAFKA_PORT " >/dev/null || die "the private broker is not running"
	noida stop kafka >&2
	wait_for 30 eval '! port_open "$KAFKA_PORT"' || die "the broker still listens on $KAFKA_PORT"
	log "broker service stopped (port $KAFKA_PORT closed, data saved)"
}

broker_start_service() {
	if live_pid "$BROKER_DIR/broker.pid" "--kafka-port $KAFKA_PORT " >/dev/null; then
		noida start kafka >&2
		wait_for 60 broker_answers || die "the broker did not answer on $KAFKA_PORT after start"
		log "broker service started"
	else
		broker_up
	fi
}

broker_pid() {
	live_pid "$BROKER_DIR/broker.pid" "--kafka-port $KAFKA_PORT " || die "the private broker is not running"
}

private_up() {
	ensure_apt_packages
	ensure_python_packages
	ensure_broker_binary
	mkdir -p "$FAULTS_STATE"
	pg_up
	broker_up
	[ -f "$REGISTRY_SCRIPT" ] || die "schema registry script $REGISTRY_SCRIPT not found (set CDCQL_REGISTRY_SCRIPT)"
	registry_up
	proxy_up
}

private_status() {
	cmd_status
	if live_pid "$PROXY_DIR/proxy.pid" tcp_proxy >/dev/null; then
		echo "registry proxy: 127.0.0.1:$PUBLIC_REGISTRY_PORT -> $REGISTRY_PORT"
	else
		echo "registry proxy: stopped"
	fi
}

exec 3>&1 1>&2
case "${1:-} ${2:-}" in
"up ") private_up && print_private_env >&3 ;;
"env ") print_private_env >&3 ;;
"status ") private_status >&3 ;;
"down ")
	proxy_down
	cmd_down
	;;
"stop pg") pg_down ;;
"start pg") pg_up ;;
"stop broker") broker_stop_service ;;
"start broker") broker_start_service ;;
"stop registry") proxy_down ;;
"start registry") proxy_up ;;
"reset broker") cmd_reset_broker ;;
"pause broker") kill -STOP "$(broker_pid)" && log "broker paused (SIGSTOP)" ;;
"resume broker") kill -CONT "$(broker_pid)" && log "broker resumed (SIGCONT)" ;;
*)
	echo "usage: $0 up|down|env|status | stop|start pg|broker|registry | reset|pause|resume broker" >&2
	exit 2
	;;
esac
