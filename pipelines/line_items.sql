-- Several tables in one pipeline, each with its own query; a composite primary key.
CREATE CONNECTION shop_pg TO POSTGRES (url = '${PG_URL:-postgres://postgres@127.0.0.1:5432/shop}');
CREATE CONNECTION bus TO KAFKA (brokers = '${KAFKA_BROKERS:-127.0.0.1:9092}');

CREATE PIPELINE items
    FROM shop_pg INTO bus TOPIC '{database}.{pipeline}.{table}'
    FORMAT JSON ENVELOPE DEBEZIUM
AS (SELECT order_id, line_no, sku, qty * price AS total FROM public.line_items WHERE qty > 0),
   (SELECT id, lower(email) AS email FROM customers);
