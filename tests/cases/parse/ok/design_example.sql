-- pipelines/shop.sql
CREATE CONNECTION shop_pg TO POSTGRES (
    url = '${SHOP_PG_URL:-postgres://postgres@127.0.0.1:5432/shop}'
);

CREATE CONNECTION bus TO KAFKA (
    brokers = '${KAFKA_BROKERS:-127.0.0.1:9092}',
    schema_registry = 'http://127.0.0.1:8081'
);

-- One pipeline = one replication slot + one publication + one producer.
CREATE PIPELINE shop
    FROM shop_pg
    INTO bus TOPIC 'shop.{schema}.{table}'
    FORMAT AVRO                -- or JSON  (WITH (json_schemas = true) for schema+payload)
    ENVELOPE DEBEZIUM          -- or NATIVE
    WITH (snapshot = 'initial', transactional = true)
AS
    SELECT id, customer_id, amount, upper(status) AS status, created_at
      FROM public.orders
     WHERE status <> 'test';
    -- a pipeline may also list several tables, each with its own SELECT, or
    -- TABLES (public.customers, public.line_items) for pass-through
