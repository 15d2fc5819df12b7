-- Seed for the quickstart: a small shop in database `shop`.
--   psql "$PG_URL" -v ON_ERROR_STOP=1 -f examples/shop.sql
-- Idempotent (drops and recreates the tables) and deterministic: every value is derived from
-- generate_series, so two runs give the same rows.
SET client_min_messages = warning;
BEGIN;

DROP TABLE IF EXISTS public.line_items, public.orders, public.customers CASCADE;

CREATE TABLE public.customers (
    id         serial PRIMARY KEY,
    name       text NOT NULL,
    email      text,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE public.orders (
    id          int4 PRIMARY KEY,
    customer_id int4 NOT NULL REFERENCES public.customers (id),
    amount      numeric(10, 2),
    note        text,
    status      text NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE TABLE public.line_items (
    order_id int4 REFERENCES public.orders (id),
    line_no  int4,
    sku      text NOT NULL,
    qty      int4 NOT NULL,
    price    numeric(10, 2) NOT NULL,
    PRIMARY KEY (order_id, line_no)
);

-- 50 customers; every 10th has no email.
INSERT INTO public.customers (name, email, created_at)
SELECT (ARRAY['Ada', 'Grace', 'Linus', 'Margaret', 'Edsger', 'Barbara', 'Donald', 'Frances', 'Ken', 'Radia'])[1 + g % 10]
           || ' ' || (ARRAY['Lovelace', 'Hopper', 'Torvalds', 'Hamilton', 'Dijkstra'])[1 + g % 5] || ' ' || g,
       CASE WHEN g % 10 = 0 THEN NULL ELSE 'customer' || g || '@example.com' END,
       timestamptz '2024-01-01 09:00:00+00' + g * interval '1 day 3 hours'
  FROM generate_series(1, 50) AS g
 ORDER BY g;

-- 1000 orders: every 20th has status 'test', every 3rd has no note, every 50th is free (0.00),
-- every 37th is a refund (negative amount), every 97th has no amount at all.
INSERT INTO public.orders (id, customer_id, amount, note, status, created_at)
SELECT g,
       1 + (g * 7) % 50,
       CASE
           WHEN g % 97 = 0 THEN NULL
           WHEN g % 50 = 0 THEN 0.00
           WHEN g % 37 = 0 THEN -((g * 13) % 5000) / 100.0
           ELSE ((g * 7919) % 100000) / 100.0 + 1
       END,
       CASE WHEN g % 3 = 0 THEN NULL ELSE 'order ' || g || ' note' END,
       CASE
           WHEN g % 20 = 0 THEN 'test'
           ELSE (ARRAY['new', 'paid', 'shipped', 'delivered', 'cancelled'])[1 + g % 5]
       END,
       timestamptz '2024-03-01 00:00:00+00' + g * interval '37 minutes 11.123456 seconds'
  FROM generate_series(1, 1000) AS g;

-- 3 line items per order.
INSERT INTO public.line_items (order_id, line_no, sku, qty, price)
SELECT o, l,
       'SKU-' || lpad(((o * 31 + l * 17) % 500)::text, 4, '0'),
       1 + (o + l) % 5,
       ((o * 13 + l * 101) % 10000) / 100.0 + 0.50
  FROM generate_series(1, 1000) AS o,
       generate_series(1, 3) AS l;

COMMIT;

ANALYZE public.customers, public.orders, public.line_items;
