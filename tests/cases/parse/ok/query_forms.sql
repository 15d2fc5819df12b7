CREATE CONNECTION pg TO POSTGRES;
CREATE CONNECTION bus TO KAFKA;
-- One query per table; ';' and ')' inside strings, names and comments do not end a query.
CREATE PIPELINE multi FROM pg INTO bus TOPIC 'multi.{table}' FORMAT JSON ENVELOPE NATIVE
AS (SELECT id, 'a;b)' AS s, "x;)" FROM public.a /* ) ; */),
   (SELECT id, (price * (1 + tax)) AS gross, E'\';' AS e, $q$ ; ) $q$ AS d
      FROM public.b WHERE id IN (SELECT 1) AND note LIKE '%)%'),
   (
     -- comments around a query are not part of it
     SELECT CAST(id AS text) AS id, CASE WHEN x > 0 THEN 'pos' ELSE 'neg' END AS sign FROM c
   );
-- A parenthesised query on its own is a list of one.
CREATE PIPELINE single FROM pg INTO bus TOPIC 'single' FORMAT JSON ENVELOPE NATIVE
AS (SELECT 1 AS one FROM d);
-- A query spanning lines, with a set operation in parentheses: one query.
CREATE PIPELINE union FROM pg INTO bus TOPIC 'u' FORMAT JSON ENVELOPE NATIVE
AS (SELECT a FROM e) UNION ALL (SELECT a FROM f);
CREATE PIPELINE last FROM pg INTO bus TOPIC 'last' FORMAT JSON ENVELOPE NATIVE
AS SELECT
     id,
     lower(name) AS name
   FROM g;
