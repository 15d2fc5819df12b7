-- Pipeline for tests/e2e_exactly_once.rs (checked by tests/e2e/exactly_once_check.py).
-- __SCHEMA__ is replaced by the test; E2E_PREFIX names topics, the slot and the publication.
CREATE CONNECTION pg TO POSTGRES (url = '${PG_URL:-postgres://postgres@127.0.0.1:5432/shop}');
CREATE CONNECTION bus TO KAFKA (brokers = '${KAFKA_BROKERS:-127.0.0.1:9092}');

CREATE PIPELINE eo FROM pg INTO bus TOPIC '${E2E_PREFIX}.{table}'
    FORMAT JSON ENVELOPE DEBEZIUM
    WITH (transactional = true, parallelism = 2, chunk_rows = 4000, partitions = 3,
          tombstones = false,
          slot_name = '${E2E_PREFIX}', publication_name = '${E2E_PREFIX}',
          offsets_topic = '${E2E_PREFIX}.offsets')
    TABLES (__SCHEMA__.acct, __SCHEMA__.evt, __SCHEMA__.wlog, __SCHEMA__.bag);
