CREATE CONNECTION pg TO POSTGRES (url = 'postgres://postgres@127.0.0.1/shop');
CREATE CONNECTION k TO KAFKA (brokers = '127.0.0.1:9092');
CREATE PIPELINE p FROM pg INTO k TOPIC 't.{table}' FORMAT JSON ENVELOPE DEBEZIUM
AS SELECT customer_id, sum(amount) AS total FROM orders GROUP BY customer_id;
