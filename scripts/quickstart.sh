#!/usr/bin/env bash
# The README's "run it" command: start the services, seed the shop database, snapshot
# public.orders and public.customers into Kafka as Debezium JSON (pipelines/shop.sql),
# then show the first three messages of shop.public.orders.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\n==> %s\n' "$*" >&2; }

say "starting services (scripts/services.sh up)"
service_env=$(scripts/services.sh up)
eval "$service_env"

say "seeding the shop database (examples/shop.sql)"
psql "$PG_URL" -X -q -v ON_ERROR_STOP=1 -f examples/shop.sql

say "cdcql apply pipelines/shop.sql --snapshot-only"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/cdcql-target}
cargo run --quiet -- apply pipelines/shop.sql --snapshot-only

say "first 3 messages of shop.public.orders"
kcat -C -b "$KAFKA_BROKERS" -t shop.public.orders -c 3 -e -q \
	-f 'partition %p offset %o key %k\n%s\n\n' |
	python3 -c '
import json, sys
for line in sys.stdin:
    try:
        print(json.dumps(json.loads(line), indent=2, ensure_ascii=False))
    except ValueError:
        print(line, end="")
'
