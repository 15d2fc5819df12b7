CREATE CONNECTION pg TO POSTGRES (url = 'postgres://postgres@127.0.0.1/shop');
CREATE CONNECTION k TO KAFKA (brokers = '127.0.0.1:9092');
-- `bx` is a box, which neither Debezium 3.6 nor cdcql maps.
CREATE PIPELINE p FROM pg INTO k TOPIC 't.{table}' FORMAT JSON ENVELOPE DEBEZIUM TABLES (all_types);
