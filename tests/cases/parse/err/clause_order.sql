CREATE PIPELINE orders FROM pg INTO bus TOPIC 'shop.orders'
    FORMAT JSON KEY (id) ENVELOPE DEBEZIUM
AS SELECT id FROM public.orders;
