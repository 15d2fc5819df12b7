-- The benchmark table of scripts/bench.sh: :rows rows of mixed types (bigint key, numeric(18,4),
-- text of 30-50 characters, timestamptz, boolean, uuid, jsonb), deterministic so every run
-- reads the same bytes. Run with psql -v rows=N -v tbl=bench.t.
CREATE SCHEMA IF NOT EXISTS bench;
DROP TABLE IF EXISTS :tbl;
CREATE TABLE :tbl (
    id bigint NOT NULL,
    amount numeric(18, 4),
    note text NOT NULL,
    created_at timestamptz NOT NULL,
    active boolean NOT NULL,
    uid uuid NOT NULL,
    attrs jsonb
);
INSERT INTO :tbl
SELECT i,
       -- every 50th amount is NULL, the rest spread over 10 integer digits and 4 decimals
       CASE WHEN i % 50 = 0 THEN NULL ELSE ((i * 2654435761) % 100000000000000)::numeric / 10000 END,
       substr(md5(i::text) || md5((i * 7)::text), 1, 30 + (i % 21)::int),
       timestamptz '2024-01-01 00:00:00+00' + i * interval '1.234567 second',
       i % 3 = 0,
       md5((i * 13)::text)::uuid,
       CASE WHEN i % 20 = 0 THEN NULL
            ELSE jsonb_build_object('n', i % 1000, 'tag', 'tag-' || (i % 17), 'ok', i % 2 = 0) END
FROM generate_series(1::bigint, :rows::bigint) AS i;
ALTER TABLE :tbl ADD PRIMARY KEY (id);
-- Frozen and analysed, so the measured reads set no hint bits and row estimates are right.
VACUUM (FREEZE, ANALYZE) :tbl;
