CREATE CONNECTION pg TO POSTGRES (url = 'postgres://postgres@127.0.0.1/shop');
CREATE CONNECTION k TO KAFKA (brokers = '127.0.0.1:9092');
-- Debezium leaves money[] columns out of its events; naming one is an error.
CREATE PIPELINE p FROM pg INTO k TOPIC 't.{table}' FORMAT JSON ENVELOPE DEBEZIUM
AS SELECT id, am FROM public.all_types;
