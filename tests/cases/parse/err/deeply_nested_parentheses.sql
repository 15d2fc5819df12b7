-- 60 levels of parentheses: past sqlparser's own recursion limit.
CREATE CONNECTION pg TO POSTGRES (url = 'postgres://localhost/shop');
CREATE CONNECTION k TO KAFKA (brokers = 'localhost:9092');
CREATE PIPELINE p FROM pg INTO k TOPIC 't' FORMAT JSON ENVELOPE DEBEZIUM
AS SELECT ((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((id)))))))))))))))))))))))))))))))))))))))))))))))))))))))))))) AS x FROM public.orders;
