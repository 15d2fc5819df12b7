CREATE CONNECTION pg TO POSTGRES (url = 'postgres://postgres@127.0.0.1/shop');
CREATE CONNECTION k TO KAFKA (brokers = '127.0.0.1:9092', schema_registry = 'http://127.0.0.1:8081');
CREATE PIPELINE p FROM pg INTO k TOPIC 't.{table}' FORMAT AVRO ENVELOPE DEBEZIUM
  WITH (compatibility = 'backwards') TABLES (orders);
