CREATE PIPELINE orders FROM pg INTO bus TOPIC 'shop.{schema}.{table}'
    FORMAT JSON ENVELOPE DEBEZUIM
AS SELECT id FROM public.orders;
