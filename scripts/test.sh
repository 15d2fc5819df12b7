#!/usr/bin/env bash
# The test command: start (or reuse) the real services, then run every test against them.
#   scripts/test.sh [extra cargo test args...]     e.g. scripts/test.sh --test e2e_snapshot
# Integration tests fail instead of skipping when a service is missing (CDCQL_REQUIRE_SERVICES).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# An assignment keeps `up`'s exit status (a bare eval "$(...)" would swallow a failure).
service_env=$(scripts/services.sh up)
eval "$service_env"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/cdcql-target}
export CDCQL_REQUIRE_SERVICES=1

echo "test: PG_URL=$PG_URL KAFKA_BROKERS=$KAFKA_BROKERS SCHEMA_REGISTRY_URL=$SCHEMA_REGISTRY_URL" >&2
status=0
# --no-fail-fast: one failing test binary must not hide the results of the others.
cargo test --all-targets --no-fail-fast "$@" || status=$?
exit "$status"
