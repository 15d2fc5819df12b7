CREATE CONNECTION pg TO POSTGRES (url = 'postgres://postgres@127.0.0.1/shop');
CREATE CONNECTION k TO KAFKA (brokers = '127.0.0.1:9092');
CREATE PIPELINE p FROM pg INTO k TOPIC 't.{table}' FORMAT JSON ENVELOPE DEBEZIUM
  WITH (on_error = 'ignore') TABLES (orders);
