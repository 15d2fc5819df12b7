CREATE CONNECTION bus TO KAFKA (brokers = 'localhost:9092');
CREATE PIPELINE orders FROM pg INTO bus TOPIC 'shop.orders
    FORMAT JSON ENVELOPE DEBEZIUM
AS SELECT id FROM public.orders;
