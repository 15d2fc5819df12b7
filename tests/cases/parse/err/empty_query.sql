CREATE PIPELINE orders FROM pg INTO bus TOPIC 'shop.orders' FORMAT JSON ENVELOPE DEBEZIUM
AS -- nothing here
;
