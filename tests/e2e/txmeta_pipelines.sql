-- Pipelines for tests/e2e_txmeta.rs (checked by tests/e2e/txmeta_check.py). __SCHEMA__ is
-- replaced by the test; E2E_PREFIX names topics, slots and publications.
CREATE CONNECTION pg TO POSTGRES (url = '${PG_URL:-postgres://postgres@127.0.0.1:5432/shop}');
CREATE CONNECTION bus TO KAFKA (brokers = '${KAFKA_BROKERS:-127.0.0.1:9092}',
    schema_registry = '${SCHEMA_REGISTRY_URL:-http://127.0.0.1:8081}');

-- Debezium's default transaction topic: `<topic prefix>.transaction`.
CREATE PIPELINE txmeta_json FROM pg INTO bus TOPIC '${E2E_PREFIX}.json.{table}'
    FORMAT JSON ENVELOPE DEBEZIUM
    WITH (json_schemas = true, transaction_metadata = true, transactional = true,
          replica_identity = 'full',
          slot_name = '${E2E_PREFIX}_json', publication_name = '${E2E_PREFIX}_json')
AS (SELECT id, grp, v FROM __SCHEMA__.a WHERE grp <> 'skip'), (SELECT id, v FROM __SCHEMA__.b);

CREATE PIPELINE txmeta_avro FROM pg INTO bus TOPIC '${E2E_PREFIX}.avro.{table}'
    FORMAT AVRO ENVELOPE DEBEZIUM
    WITH (transaction_metadata = true, transaction_topic = '${E2E_PREFIX}.avro.txns',
          transactional = true, replica_identity = 'full',
          slot_name = '${E2E_PREFIX}_avro', publication_name = '${E2E_PREFIX}_avro')
AS (SELECT id, grp, v FROM __SCHEMA__.a WHERE grp <> 'skip'), (SELECT id, v FROM __SCHEMA__.b);
