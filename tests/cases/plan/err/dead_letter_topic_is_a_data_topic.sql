CREATE CONNECTION pg TO POSTGRES (url = 'postgres://postgres@127.0.0.1/shop');
CREATE CONNECTION k TO KAFKA (brokers = '127.0.0.1:9092');
-- Dead letters of every table would land in the topic of public.orders.
CREATE PIPELINE p FROM pg INTO k TOPIC 't.{table}' FORMAT JSON ENVELOPE DEBEZIUM
  WITH (on_error = 'dead_letter', dead_letter_topic = 't.orders') TABLES (orders, customers);
