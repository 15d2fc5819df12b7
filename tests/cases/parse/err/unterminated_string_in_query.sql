CREATE PIPELINE orders FROM pg INTO bus TOPIC 'shop.orders' FORMAT JSON ENVELOPE DEBEZIUM
AS SELECT id FROM public.orders WHERE status <> 'test;
