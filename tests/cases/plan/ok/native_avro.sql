-- Native envelope over Avro, with Debezium's type-handling options.
CREATE CONNECTION pg TO POSTGRES (url = 'postgres://postgres@127.0.0.1/shop');
CREATE CONNECTION k TO KAFKA (brokers = '127.0.0.1:9092', schema_registry = 'http://reg:8081',
  schema_registry_user = 'svc', schema_registry_password = 'hunter2');
CREATE PIPELINE native_orders FROM pg INTO k TOPIC 'native.{table}' FORMAT AVRO ENVELOPE NATIVE
  WITH (deleted_marker = true, subject_strategy = 'topic_record', compatibility = 'backward',
        decimal_handling = 'string', time_precision = 'connect')
AS SELECT id, customer_id, amount, created_at FROM orders WHERE status <> 'void';
