CREATE CONNECTION pg TO POSTGRES;
CREATE CONNECTION bus TO KAFKA;
CREATE PIPELINE p FROM pg INTO bus TOPIC 't' FORMAT JSON ENVELOPE NATIVE
AS SELECT id, amount
     FROM public.orders -- the last statement still needs its ;
