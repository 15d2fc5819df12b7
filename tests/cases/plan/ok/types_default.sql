-- Every mapped type under Debezium's default options. `am money[]` is left out with a
-- warning, as Debezium does; `bx box` has no mapping, so unknown_types = 'skip' leaves it out.
CREATE CONNECTION pg TO POSTGRES (url = 'postgres://postgres@127.0.0.1/shop');
CREATE CONNECTION k TO KAFKA (brokers = '127.0.0.1:9092');
CREATE PIPELINE all_types FROM pg INTO k TOPIC 'db.{schema}.{table}' FORMAT JSON ENVELOPE DEBEZIUM
  WITH (json_schemas = true, unknown_types = 'skip')
  TABLES (public.all_types);
