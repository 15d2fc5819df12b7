CREATE CONNECTION pg TO POSTGRES (url = '${PG_URL:-postgres://postgres@127.0.0.1:5432/shop}');
CREATE CONNECTION bus TO KAFKA (brokers = '127.0.0.1:9092', schema_registry = 'http://127.0.0.1:8081',
                                'compression.type' = 'lz4');        -- quoted keys pass through to librdkafka
CREATE PIPELINE orders FROM pg INTO bus TOPIC 'shop.{schema}.{table}'
    KEY (id, "Other") FORMAT JSON ENVELOPE DEBEZIUM WITH (json_schemas = true, tombstones = false, partitions = 3, snapshot = initial, x = 'str')
AS SELECT id, amount, upper(note) AS note FROM public.orders WHERE amount > 0;
CREATE PIPELINE two FROM pg INTO bus TOPIC 't.{table}' FORMAT JSON ENVELOPE DEBEZIUM
AS (SELECT id FROM public.orders), (SELECT * FROM public.customers WHERE id > 3);
CREATE PIPELINE everything FROM pg INTO bus TOPIC 'shop.{schema}.{table}' FORMAT JSON ENVELOPE DEBEZIUM
    TABLES (public.orders, customers, "Weird"."Name");
