CREATE PIPELINE orders FROM pg INTO bus TOPIC 'shop.{schema}.{table}'
    FROMAT JSON ENVELOPE DEBEZIUM
AS SELECT id FROM public.orders;
