CREATE PIPELINE orders FROM pg INTO bus TOPIC 'shop.orders' FORMAT JSON ENVELOPE DEBEZIUM
AS SELECT id, $body$ it's a note AS note
     FROM public.orders;
