-- Pipelines for tests/e2e_snapshot.rs (checked by tests/e2e/verify_snapshot.py).
-- E2E_PREFIX is set by the test so that every run writes to fresh topics.
CREATE CONNECTION pg TO POSTGRES (url = '${PG_URL:-postgres://postgres@127.0.0.1:5432/shop}');
-- The 1 MB text row makes a message bigger than librdkafka's default message.max.bytes and
-- than the test broker's limit, which applies to the compressed batch.
-- The registry is only contacted by the Avro pipelines at the end of this file.
CREATE CONNECTION bus TO KAFKA (brokers = '${KAFKA_BROKERS:-127.0.0.1:9092}', 'message.max.bytes' = '8000000', 'compression.type' = 'lz4',
    schema_registry = '${SCHEMA_REGISTRY_URL:-http://127.0.0.1:8081}');

CREATE PIPELINE types FROM pg INTO bus TOPIC '${E2E_PREFIX}.{schema}.{table}'
    FORMAT JSON ENVELOPE DEBEZIUM WITH (json_schemas = true, partitions = 4) TABLES (e2e.type_matrix);

CREATE PIPELINE filtered FROM pg INTO bus TOPIC '${E2E_PREFIX}.filtered.{table}'
    FORMAT JSON ENVELOPE DEBEZIUM WITH (partitions = 2)
AS SELECT id, upper(t) AS t_upper, n * 2 AS n2, CASE WHEN b THEN 'yes' ELSE 'no' END AS flag, CAST(i4 AS int8) AS i4_big
   FROM e2e.type_matrix WHERE i4 % 3 = 0;

-- AVRO PIPELINES (need a schema registry; tests/e2e_snapshot.rs drops everything from this line
-- on when none answers). Checked with Confluent's AvroDeserializer by verify_snapshot.py.
CREATE PIPELINE avro_types FROM pg INTO bus TOPIC '${E2E_PREFIX}.avro_dbz.{table}'
    FORMAT AVRO ENVELOPE DEBEZIUM WITH (partitions = 3) TABLES (e2e.type_matrix);

CREATE PIPELINE avro_native FROM pg INTO bus TOPIC '${E2E_PREFIX}.avro_native.{table}'
    FORMAT AVRO ENVELOPE NATIVE WITH (partitions = 3) TABLES (e2e.type_matrix);
