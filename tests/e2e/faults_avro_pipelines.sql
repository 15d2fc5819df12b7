-- Avro pipelines for the schema-registry faults in tests/e2e_faults.rs (checked by
-- tests/e2e/faults_check.py avro-verify). __SCHEMA__ is replaced by the test.
CREATE CONNECTION pg TO POSTGRES (url = '${PG_URL}');
CREATE CONNECTION bus TO KAFKA (brokers = '${KAFKA_BROKERS}', schema_registry = '${SCHEMA_REGISTRY_URL}');

CREATE PIPELINE rtx FROM pg INTO bus TOPIC '${E2E_PREFIX}.rtx.{table}'
    FORMAT AVRO ENVELOPE DEBEZIUM
    WITH (transactional = true, tombstones = false,
          slot_name = '${E2E_PREFIX}_rtx', publication_name = '${E2E_PREFIX}_rtx',
          offsets_topic = '${E2E_PREFIX}.rtx.offsets')
    TABLES (__SCHEMA__.reg);

CREATE PIPELINE ralo FROM pg INTO bus TOPIC '${E2E_PREFIX}.ralo.{table}'
    FORMAT AVRO ENVELOPE DEBEZIUM
    WITH (tombstones = false,
          slot_name = '${E2E_PREFIX}_ralo', publication_name = '${E2E_PREFIX}_ralo',
          offsets_topic = '${E2E_PREFIX}.ralo.offsets')
    TABLES (__SCHEMA__.reg);
