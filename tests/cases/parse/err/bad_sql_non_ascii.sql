CREATE PIPELINE orders FROM pg INTO bus TOPIC 'shop.orders' FORMAT JSON ENVELOPE DEBEZIUM
AS SELECT 'crème brûlée' AS dessert, prix FROM public.menu WHERE prix IN (1, 2 3);
