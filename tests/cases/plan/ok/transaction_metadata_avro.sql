-- Transaction metadata in Avro, to a topic of its own, with record-named subjects.
CREATE CONNECTION pg TO POSTGRES (url = 'postgres://postgres@127.0.0.1/shop');
CREATE CONNECTION k TO KAFKA (brokers = '127.0.0.1:9092', schema_registry = 'http://reg:8081');
CREATE PIPELINE avro_txns FROM pg INTO k TOPIC 'avtx.{table}' FORMAT AVRO ENVELOPE DEBEZIUM
  WITH (transaction_metadata = true, transaction_topic = 'avtx.txn_events',
        subject_strategy = 'topic_record')
AS SELECT id, customer_id, amount FROM orders WHERE status <> 'void';
