CREATE PIPELINE orders FROM pg INTO bus TOPIC 'shop.orders'
    ENVELOPE DEBEZIUM
AS SELECT id FROM public.orders;
