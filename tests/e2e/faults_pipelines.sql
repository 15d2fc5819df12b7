-- Pipelines for tests/e2e_faults.rs (checked by tests/e2e/faults_check.py): the same three
-- tables through a transactional pipeline and an at-least-once one, so that every fault is
-- tried on both delivery modes at once. __SCHEMA__ is replaced by the test; E2E_PREFIX names
-- topics, slots and publications. The FAULTS_* producer timeouts default to librdkafka's own;
-- a test shortens them where its fault must outlast them.
CREATE CONNECTION pg TO POSTGRES (url = '${PG_URL}');
CREATE CONNECTION bus TO KAFKA (
    brokers = '${KAFKA_BROKERS}',
    'message.timeout.ms' = '${FAULTS_MESSAGE_TIMEOUT_MS:-300000}',
    'socket.timeout.ms' = '${FAULTS_SOCKET_TIMEOUT_MS:-60000}'
);
CREATE CONNECTION bus_tx TO KAFKA (
    brokers = '${KAFKA_BROKERS}',
    'message.timeout.ms' = '${FAULTS_TX_MESSAGE_TIMEOUT_MS:-300000}',
    'socket.timeout.ms' = '${FAULTS_SOCKET_TIMEOUT_MS:-60000}'
);

CREATE PIPELINE tx FROM pg INTO bus_tx TOPIC '${E2E_PREFIX}.tx.{table}'
    FORMAT JSON ENVELOPE DEBEZIUM
    WITH (transactional = true, partitions = 3, tombstones = false,
          slot_name = '${E2E_PREFIX}_tx', publication_name = '${E2E_PREFIX}_tx',
          offsets_topic = '${E2E_PREFIX}.tx.offsets')
    TABLES (__SCHEMA__.acct, __SCHEMA__.evt, __SCHEMA__.wlog);

CREATE PIPELINE alo FROM pg INTO bus TOPIC '${E2E_PREFIX}.alo.{table}'
    FORMAT JSON ENVELOPE DEBEZIUM
    WITH (partitions = 3, tombstones = false,
          slot_name = '${E2E_PREFIX}_alo', publication_name = '${E2E_PREFIX}_alo',
          offsets_topic = '${E2E_PREFIX}.alo.offsets')
    TABLES (__SCHEMA__.acct, __SCHEMA__.evt, __SCHEMA__.wlog);
