-- Pipelines for tests/e2e_stream.rs (checked by tests/e2e/stream_check.py). The test sets
-- E2E_PREFIX (topics), __SCHEMA__ is replaced by the test with its schema and E2E_SLOT (slot/publication names).
CREATE CONNECTION pg TO POSTGRES (url = '${PG_URL:-postgres://postgres@127.0.0.1:5432/shop}');
CREATE CONNECTION bus TO KAFKA (brokers = '${KAFKA_BROKERS:-127.0.0.1:9092}');

-- Every column of three tables: snapshot + stream, TOAST under FULL and DEFAULT identity,
-- a 100k-row transaction, primary-key changes, and ADD COLUMN mid-stream.
CREATE PIPELINE stream_all FROM pg INTO bus TOPIC '${E2E_PREFIX}.{table}'
    FORMAT JSON ENVELOPE DEBEZIUM
    WITH (partitions = 3, slot_name = '${E2E_SLOT}_all', publication_name = '${E2E_SLOT}_all',
          heartbeat_interval = '1s')
    TABLES (__SCHEMA__.items, __SCHEMA__.bulk, __SCHEMA__.toast_default);

-- Rows moving in and out of the WHERE must become creates and deletes.
CREATE PIPELINE stream_filtered FROM pg INTO bus TOPIC '${E2E_PREFIX}.f.{table}'
    FORMAT JSON ENVELOPE DEBEZIUM
    WITH (slot_name = '${E2E_SLOT}_f', publication_name = '${E2E_SLOT}_f')
AS SELECT id, uid, ver, grp FROM __SCHEMA__.items WHERE grp = 'a';
