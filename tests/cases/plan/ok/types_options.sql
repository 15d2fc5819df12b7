-- Every mapped type under the non-default type options.
CREATE CONNECTION pg TO POSTGRES (url = 'postgres://postgres@127.0.0.1/shop');
CREATE CONNECTION k TO KAFKA (brokers = '127.0.0.1:9092');
CREATE PIPELINE all_types_options FROM pg INTO k TOPIC 'db.{schema}.{table}' FORMAT JSON ENVELOPE DEBEZIUM
  WITH (decimal_handling = 'string', time_precision = 'connect', binary_handling = 'hex',
        interval_handling = 'string', hstore_handling = 'map', money_fraction_digits = 4,
        unknown_types = 'skip')
  TABLES (public.all_types);
CREATE PIPELINE all_types_double FROM pg INTO k TOPIC 'dbl.{schema}.{table}' FORMAT JSON ENVELOPE NATIVE
  WITH (decimal_handling = 'double', time_precision = 'adaptive_time_microseconds',
        binary_handling = 'base64-url-safe')
AS SELECT id, n, nvar, m, tm3, ts3, by, an, n * 2 AS n2 FROM public.all_types;
