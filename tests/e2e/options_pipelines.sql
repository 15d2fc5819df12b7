-- Type-option pipelines for tests/e2e_snapshot.rs (checked by tests/e2e/verify_snapshot.py,
-- modes opt_string, opt_double, opt_base64). E2E_PREFIX is set by the test.
CREATE CONNECTION pg TO POSTGRES (url = '${PG_URL:-postgres://postgres@127.0.0.1:5432/shop}');
CREATE CONNECTION bus TO KAFKA (brokers = '${KAFKA_BROKERS:-127.0.0.1:9092}');

CREATE PIPELINE opt_string FROM pg INTO bus TOPIC '${E2E_PREFIX}.opt_string.{table}'
    FORMAT JSON ENVELOPE DEBEZIUM
    WITH (json_schemas = true, decimal_handling = 'string', time_precision = 'connect',
          binary_handling = 'hex', interval_handling = 'string', hstore_handling = 'map')
    TABLES (e2e.type_options);

CREATE PIPELINE opt_double FROM pg INTO bus TOPIC '${E2E_PREFIX}.opt_double.{table}'
    FORMAT JSON ENVELOPE DEBEZIUM
    WITH (json_schemas = true, decimal_handling = 'double',
          time_precision = 'adaptive_time_microseconds', binary_handling = 'base64-url-safe')
    TABLES (e2e.type_options);

-- Precise decimals cannot hold NaN: this one reads everything else, with one money digit.
CREATE PIPELINE opt_base64 FROM pg INTO bus TOPIC '${E2E_PREFIX}.opt_base64.{table}'
    FORMAT JSON ENVELOPE DEBEZIUM
    WITH (json_schemas = true, binary_handling = 'base64', money_fraction_digits = 1)
AS SELECT id, m, by, iv, tm3, tm, ts3, ts, d FROM e2e.type_options;
