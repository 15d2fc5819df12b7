-- No INTO clause.
CREATE CONNECTION shop_pg TO POSTGRES (url = 'postgres://postgres@127.0.0.1:5432/shop');
CREATE CONNECTION bus TO KAFKA (brokers = '127.0.0.1:9092');
CREATE PIPELINE shop FROM shop_pg TOPIC 'shop.{table}'
    FORMAT JSON ENVELOPE DEBEZIUM
    TABLES (public.orders);
