-- The quickstart pipeline: the shop's orders and customers as Debezium change events.
CREATE CONNECTION shop_pg TO POSTGRES (
    url = '${PG_URL:-postgres://postgres@127.0.0.1:5432/shop}'
);

CREATE CONNECTION bus TO KAFKA (
    brokers = '${KAFKA_BROKERS:-127.0.0.1:9092}',
    'compression.type' = 'lz4'          -- quoted keys go to librdkafka unchanged
);

CREATE PIPELINE shop
    FROM shop_pg
    INTO bus TOPIC 'shop.{schema}.{table}'
    FORMAT JSON
    ENVELOPE DEBEZIUM
    WITH (partitions = 3)
    TABLES (public.orders, public.customers);
