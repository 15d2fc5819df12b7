-- a stray query
SELECT * FROM public.orders;
