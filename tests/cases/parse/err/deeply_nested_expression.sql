-- A chain of 129 additions: planning would recurse once per level, so it is refused early.
CREATE CONNECTION pg TO POSTGRES (url = 'postgres://localhost/shop');
CREATE CONNECTION k TO KAFKA (brokers = 'localhost:9092');
CREATE PIPELINE p FROM pg INTO k TOPIC 't' FORMAT JSON ENVELOPE DEBEZIUM
AS SELECT id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id + id AS total
   FROM public.orders;
