CREATE CONNECTION pg TO POSTGRES (url = 'postgres://app:s3cret@db.internal:5432/shop');
CREATE CONNECTION k TO KAFKA (brokers = 'k1:9092,k2:9092', 'sasl.password' = 'hunter2');
-- A table without a primary key gets its key from KEY (...); one without either gets a warning.
CREATE PIPELINE ev FROM pg INTO k TOPIC 'ev.{table}' KEY (at) FORMAT JSON ENVELOPE DEBEZIUM
  AS SELECT at, payload FROM public.events;
CREATE PIPELINE nokey FROM pg INTO k TOPIC 'nk.{table}' FORMAT JSON ENVELOPE DEBEZIUM TABLES (events);
