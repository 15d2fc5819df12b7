CREATE CONNECTION pg TO POSTGRES (url = 'postgres://postgres@127.0.0.1/shop');
CREATE CONNECTION k TO KAFKA (brokers = '127.0.0.1:9092', 'message.max.bytes' = '200000');
-- Rows that cannot be delivered go to '<topic>.dlq' (the default dead-letter topic) ...
CREATE PIPELINE dlq FROM pg INTO k TOPIC 'shop.{table}' FORMAT JSON ENVELOPE DEBEZIUM
  WITH (on_error = 'dead_letter') TABLES (orders, customers);
-- ... or to one topic for every table ...
CREATE PIPELINE dlq_fixed FROM pg INTO k TOPIC 'fixed.{table}' FORMAT JSON ENVELOPE NATIVE
  WITH (on_error = 'dead_letter', dead_letter_topic = 'errors.{pipeline}') TABLES (orders, customers);
-- ... or are dropped with a warning.
CREATE PIPELINE skipping FROM pg INTO k TOPIC 'skip.{table}' FORMAT JSON ENVELOPE DEBEZIUM
  WITH (on_error = 'skip') AS SELECT id, amount FROM orders;
