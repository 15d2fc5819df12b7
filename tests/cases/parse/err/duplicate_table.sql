CREATE PIPELINE everything FROM pg INTO bus TOPIC 'shop.{table}' FORMAT JSON ENVELOPE DEBEZIUM
    TABLES (public.orders,
            public.customers,
            public.ORDERS);
