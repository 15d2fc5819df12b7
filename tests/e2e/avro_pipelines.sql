-- Pipelines for tests/e2e_avro.rs (checked by tests/e2e/avro_check.py with Confluent's
-- AvroDeserializer). __SCHEMA__ is replaced by the test; E2E_PREFIX names topics and slots.
CREATE CONNECTION pg TO POSTGRES (url = '${PG_URL:-postgres://postgres@127.0.0.1:5432/shop}');
CREATE CONNECTION bus TO KAFKA (brokers = '${KAFKA_BROKERS:-127.0.0.1:9092}',
    schema_registry = '${SCHEMA_REGISTRY_URL:-http://127.0.0.1:8081}');

CREATE PIPELINE avro_dbz FROM pg INTO bus TOPIC '${E2E_PREFIX}.dbz.{table}'
    FORMAT AVRO ENVELOPE DEBEZIUM
    WITH (compatibility = 'BACKWARD', slot_name = '${E2E_PREFIX}_dbz',
          publication_name = '${E2E_PREFIX}_dbz')
    TABLES (__SCHEMA__.items);

CREATE PIPELINE avro_native FROM pg INTO bus TOPIC '${E2E_PREFIX}.nat.{table}'
    FORMAT AVRO ENVELOPE NATIVE
    WITH (subject_strategy = 'topic_record', deleted_marker = true, replica_identity = 'full',
          slot_name = '${E2E_PREFIX}_nat', publication_name = '${E2E_PREFIX}_nat')
    TABLES (__SCHEMA__.items);
