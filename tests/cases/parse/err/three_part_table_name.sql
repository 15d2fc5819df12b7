CREATE PIPELINE everything FROM pg INTO bus TOPIC 'shop.{table}' FORMAT JSON ENVELOPE DEBEZIUM
    TABLES (shop.public.orders);
