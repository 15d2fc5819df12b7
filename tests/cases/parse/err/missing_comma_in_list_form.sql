CREATE PIPELINE orders FROM pg INTO bus TOPIC 'shop.{table}' FORMAT JSON ENVELOPE DEBEZIUM
AS (SELECT id FROM public.orders) (SELECT id FROM public.customers);
