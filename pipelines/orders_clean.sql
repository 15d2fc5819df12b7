-- Real orders only, with a normalised status and the amount in cents.
CREATE CONNECTION shop_pg TO POSTGRES (url = '${PG_URL:-postgres://postgres@127.0.0.1:5432/shop}');
CREATE CONNECTION bus TO KAFKA (brokers = '${KAFKA_BROKERS:-127.0.0.1:9092}');

CREATE PIPELINE orders_clean
    FROM shop_pg
    INTO bus TOPIC 'clean.{table}'
    FORMAT JSON ENVELOPE DEBEZIUM
    WITH (json_schemas = true, tombstones = false, cleanup_policy = 'compact')
AS
    SELECT id, customer_id, CAST(amount * 100 AS bigint) AS amount_cents,
           upper(status) AS status,
           CASE WHEN amount < 0 THEN 'refund' ELSE 'sale' END AS kind,
           created_at
      FROM public.orders
     WHERE status <> 'test';
