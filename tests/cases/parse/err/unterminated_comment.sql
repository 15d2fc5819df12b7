CREATE CONNECTION bus TO KAFKA (brokers = 'localhost:9092');
/* the pipelines below are disabled
/* nested comments need their own end */
CREATE PIPELINE orders FROM pg INTO bus TOPIC 'shop.orders' FORMAT JSON ENVELOPE DEBEZIUM
AS SELECT id FROM public.orders;
