CREATE CONNECTION pg TO POSTGRES (url = 'postgres://postgres@127.0.0.1/shop');
CREATE CONNECTION k TO KAFKA (brokers = '127.0.0.1:9092');
-- `location` has a type we cannot read yet, but this query does not read it.
CREATE PIPELINE places FROM pg INTO k TOPIC 'Places/{table}!' FORMAT JSON ENVELOPE DEBEZIUM
  WITH (topic_prefix = 'geo')
  AS SELECT id, upper(label) AS label, CAST(id AS text) AS id_text FROM public.places p WHERE p.id > 10;
