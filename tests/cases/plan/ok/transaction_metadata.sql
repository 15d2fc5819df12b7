-- Debezium's transaction metadata with Connect JSON schemas: the events' `transaction` block
-- and BEGIN/END records on `<topic prefix>.transaction`.
CREATE CONNECTION pg TO POSTGRES (url = 'postgres://postgres@127.0.0.1/shop');
CREATE CONNECTION k TO KAFKA (brokers = '127.0.0.1:9092');
CREATE PIPELINE shop_txns FROM pg INTO k TOPIC 'txns.{schema}.{table}'
  FORMAT JSON ENVELOPE DEBEZIUM
  WITH (json_schemas = true, transaction_metadata = true, transactional = true)
  TABLES (orders, customers);
