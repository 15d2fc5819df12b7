-- Seed for tests/e2e_snapshot.rs: one table with every column type the snapshot must map the
-- Debezium way, 10,000 deterministic rows (everything derives from the id, no random()).
-- Every 7th row is NULL in every nullable column; a few other rows have single NULLs (b, t, n)
-- so the filtered pipeline's CASE/upper/arithmetic see NULL inputs too. The special cases put
-- extremes, signs, zero, unicode, empty values, dates before 1970 and after 2038, and values
-- beyond 64-bit nanosecond timestamps on rows spread over the table.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS e2e CASCADE;
CREATE SCHEMA e2e;

CREATE TABLE e2e.type_matrix (
    id    int8 PRIMARY KEY,
    b     bool,
    i2    int2,
    i4    int4,
    i8    int8,
    f4    float4,
    f8    float8,
    n     numeric(12, 3),
    nbig  numeric(38, 10),
    t     text,
    vc    varchar(20),
    ch    char(5),
    by    bytea,
    d     date,
    tm    time,
    tm3   time(3),
    ts    timestamp,
    ts3   timestamp(3),
    tstz  timestamptz,
    tstz0 timestamptz(0),
    u     uuid,
    j     json,
    jb    jsonb
);

BEGIN;

INSERT INTO e2e.type_matrix
SELECT g,
       -- b
       g % 2 = 1,
       -- i2
       CASE g % 11 WHEN 1 THEN -32768 WHEN 2 THEN 32767 WHEN 3 THEN 0 WHEN 4 THEN -1
                   ELSE (g * 37) % 65536 - 32768 END,
       -- i4
       CASE g % 13 WHEN 1 THEN -2147483648 WHEN 2 THEN 2147483647 WHEN 3 THEN 0 WHEN 4 THEN -3
                   ELSE (g * 7919) % 1000003 - 500000 END,
       -- i8
       CASE g % 17 WHEN 1 THEN -9223372036854775808 WHEN 2 THEN 9223372036854775807 WHEN 3 THEN 0
                   ELSE g::int8 * 922337203685477 * (1 - 2 * (g % 2)) END,
       -- f4
       CASE g % 19 WHEN 1 THEN 0::float4 WHEN 2 THEN -1.5::float4
                   WHEN 3 THEN 3.4028235e38::float4 WHEN 4 THEN -3.4028235e38::float4
                   WHEN 5 THEN 1.17549435e-38::float4 WHEN 6 THEN 1.4e-45::float4
                   WHEN 7 THEN 16777216::float4 WHEN 8 THEN 0.1::float4
                   ELSE (g * 1.1 / 7 * (1 - 2 * (g % 2)))::float4 END,
       -- f8
       CASE g % 23 WHEN 1 THEN 0::float8 WHEN 2 THEN 1.7976931348623157e308::float8
                   WHEN 3 THEN -1.7976931348623157e308::float8 WHEN 4 THEN 5e-324::float8
                   WHEN 5 THEN 2.2250738585072014e-308::float8 WHEN 6 THEN 0.1::float8
                   WHEN 7 THEN 9007199254740993::float8 WHEN 8 THEN -1e21::float8
                   ELSE g / 3.0::float8 * (1 - 2 * (g % 2)) END,
       -- n numeric(12,3): the two's complement boundaries (±0.128 → 1 or 2 bytes, ±32.768 → 2 or 3)
       CASE g % 29 WHEN 1 THEN 999999999.999 WHEN 2 THEN -999999999.999 WHEN 3 THEN -0.001
                   WHEN 4 THEN 0 WHEN 5 THEN 0.001 WHEN 6 THEN 0.128 WHEN 7 THEN -0.128
                   WHEN 8 THEN 0.127 WHEN 9 THEN -0.129 WHEN 10 THEN 32.768 WHEN 11 THEN -32.768
                   WHEN 12 THEN 1.5
                   ELSE ((g * 7919) % 2000001 - 1000000)::numeric * (g % 997) / 1000.0 END,
       -- nbig numeric(38,10): 28 integer digits, and unscaled values around 2^63 and 2^64
       CASE g % 31 WHEN 1 THEN 9999999999999999999999999999.9999999999
                   WHEN 2 THEN -9999999999999999999999999999.9999999999
                   WHEN 3 THEN 1234567890123456789012345678.0123456789
                   WHEN 4 THEN 0 WHEN 5 THEN -0.0000000001 WHEN 6 THEN 0.0000000001
                   WHEN 7 THEN 922337203.6854775807 WHEN 8 THEN 922337203.6854775808
                   WHEN 9 THEN -922337203.6854775808 WHEN 10 THEN -922337203.6854775809
                   WHEN 11 THEN 1844674407.3709551616
                   ELSE g * 123456789012345678.9012345678 * (1 - 2 * (g % 2)) END,
       -- t
       CASE g % 10 WHEN 1 THEN ''
                   WHEN 2 THEN 'café é Ünïcödé ' || g
                   WHEN 3 THEN '日本語テキスト ' || g
                   WHEN 4 THEN 'emoji 🎉🚀 ' || g
                   WHEN 5 THEN E'quote " backslash \\ tab\t newline\n cr\r ctrl\x01 del\x7f ls\u2028 end'
                   WHEN 6 THEN repeat('long ', 600) || g
                   WHEN 7 THEN 'Ωmega ñandú ' || g
                   ELSE 'row ' || g END,
       -- vc varchar(20)
       CASE g % 6 WHEN 1 THEN '' WHEN 2 THEN repeat('x', 20) WHEN 3 THEN 'naïve ' || g
                  WHEN 4 THEN '日本' ELSE 'v' || g END,
       -- ch char(5): Postgres keeps the blank padding
       CASE g % 5 WHEN 1 THEN 'ab' WHEN 2 THEN '' WHEN 3 THEN 'abcde' WHEN 4 THEN 'é'
                  ELSE left(g::text, 5) END,
       -- by bytea
       CASE g % 8 WHEN 1 THEN '\x00'::bytea WHEN 2 THEN '\x0001ff00'::bytea WHEN 3 THEN ''::bytea
                  WHEN 4 THEN decode(repeat('00ff', 300), 'hex')
                  ELSE decode(md5(g::text), 'hex') END,
       -- d date
       CASE g % 9 WHEN 1 THEN date '1970-01-01' WHEN 2 THEN date '1969-12-31'
                  WHEN 3 THEN date '1900-01-01' WHEN 4 THEN date '2038-01-20'
                  WHEN 5 THEN date '0001-01-01' WHEN 6 THEN date '9999-12-31'
                  ELSE date '2000-01-01' + ((g * 37) % 40000 - 20000) END,
       -- tm time
       CASE g % 12 WHEN 1 THEN time '00:00:00' WHEN 2 THEN time '23:59:59.999999'
                   WHEN 3 THEN time '12:34:56.789012' WHEN 4 THEN time '00:00:00.000001'
                   ELSE time '00:00' + ((g::int8 * 1234567891) % 86400000000) * interval '1 microsecond' END,
       -- tm3 time(3)
       CASE g % 12 WHEN 1 THEN time '00:00:00' WHEN 2 THEN time '23:59:59.999'
                   WHEN 3 THEN time '12:34:56.789' WHEN 4 THEN time '00:00:00.001'
                   ELSE time '00:00' + ((g::int8 * 1234567) % 86399999) * interval '1 millisecond' END,
       -- ts timestamp: also just outside the range of 64-bit nanoseconds (1677 / 2262)
       CASE g % 10 WHEN 1 THEN timestamp '1970-01-01 00:00:00'
                   WHEN 2 THEN timestamp '1969-12-31 23:59:59.999999'
                   WHEN 3 THEN timestamp '1900-01-01 00:00:00.000001'
                   WHEN 4 THEN timestamp '2038-01-19 03:14:08'
                   WHEN 5 THEN timestamp '2262-04-11 23:47:16.854776'
                   WHEN 6 THEN timestamp '0001-01-01 00:00:00'
                   WHEN 7 THEN timestamp '9999-12-31 23:59:59.999999'
                   WHEN 8 THEN timestamp '1677-09-21 00:12:43.145224'
                   ELSE timestamp '2000-01-01'
                        + ((g::int8 * 987654321987) % 4000000000000000 - 2000000000000000) * interval '1 microsecond' END,
       -- ts3 timestamp(3)
       CASE g % 10 WHEN 1 THEN timestamp '1970-01-01 00:00:00'
                   WHEN 2 THEN timestamp '1969-12-31 23:59:59.999'
                   WHEN 3 THEN timestamp '1900-01-01 00:00:00.001'
                   WHEN 4 THEN timestamp '2038-01-19 03:14:08.5'
                   WHEN 6 THEN timestamp '0001-01-01 00:00:00'
                   WHEN 7 THEN timestamp '9999-12-31 23:59:59.999'
                   ELSE timestamp '2000-01-01'
                        + ((g::int8 * 987654321) % 4000000000000 - 2000000000000) * interval '1 millisecond' END,
       -- tstz timestamptz
       CASE g % 10 WHEN 1 THEN timestamptz '1970-01-01 00:00:00+00'
                   WHEN 2 THEN timestamptz '1969-12-31 23:59:59.999999+00'
                   WHEN 3 THEN timestamptz '1900-06-15 10:00:00.5-03'
                   WHEN 4 THEN timestamptz '2038-01-19 03:14:08+00'
                   WHEN 5 THEN timestamptz '2100-02-28 23:30:00.000001+05:30'
                   WHEN 6 THEN timestamptz '0001-01-01 00:00:00+00'
                   WHEN 7 THEN timestamptz '9999-12-31 23:59:59.999999+00'
                   WHEN 8 THEN timestamptz '2262-04-11 23:47:16.854776+00'
                   ELSE timestamptz '2000-01-01 00:00:00+00'
                        + ((g::int8 * 987654321987) % 4000000000000000 - 2000000000000000) * interval '1 microsecond' END,
       -- tstz0 timestamptz(0)
       CASE g % 10 WHEN 1 THEN timestamptz '1970-01-01 00:00:00+00'
                   WHEN 2 THEN timestamptz '1969-12-31 23:59:59+00'
                   WHEN 3 THEN timestamptz '1900-06-15 10:00:00-03'
                   WHEN 4 THEN timestamptz '2038-01-19 03:14:08+00'
                   WHEN 6 THEN timestamptz '0001-01-01 00:00:00+00'
                   WHEN 7 THEN timestamptz '9999-12-31 23:59:59+00'
                   ELSE timestamptz '2000-01-01 00:00:00+00'
                        + ((g::int8 * 987654321) % 4000000000 - 2000000000) * interval '1 second' END,
       -- u uuid
       CASE g % 4 WHEN 1 THEN '00000000-0000-0000-0000-000000000000'::uuid
                  WHEN 2 THEN 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid
                  ELSE md5(g::text)::uuid END,
       -- j json: Postgres keeps the text as written (spaces, duplicate keys, escapes)
       CASE g % 6 WHEN 1 THEN '{"a": 1,  "b": [1, 2, 3], "a": 2}'::json
                  WHEN 2 THEN '[]'::json
                  WHEN 3 THEN 'null'::json
                  WHEN 4 THEN '"日本 \u00e9 \"q\""'::json
                  WHEN 5 THEN '123.4500'::json
                  ELSE json_build_object('id', g, 'name', 'n' || g) END,
       -- jb jsonb: Postgres normalises it
       CASE g % 5 WHEN 1 THEN '{"b": 1, "a": [1, 2, {"c": null}]}'::jsonb
                  WHEN 2 THEN '{}'::jsonb
                  WHEN 3 THEN 'null'::jsonb
                  WHEN 4 THEN '"emoji 🎉"'::jsonb
                  ELSE jsonb_build_object('id', g, 'v', g * 1.5) END
  FROM generate_series(1, 10000) AS g;

UPDATE e2e.type_matrix
   SET b = NULL, i2 = NULL, i4 = NULL, i8 = NULL, f4 = NULL, f8 = NULL, n = NULL, nbig = NULL,
       t = NULL, vc = NULL, ch = NULL, by = NULL, d = NULL, tm = NULL, tm3 = NULL, ts = NULL,
       ts3 = NULL, tstz = NULL, tstz0 = NULL, u = NULL, j = NULL, jb = NULL
 WHERE id % 7 = 0;
UPDATE e2e.type_matrix SET b = NULL WHERE id % 11 = 5;
UPDATE e2e.type_matrix SET t = NULL WHERE id % 13 = 6;
UPDATE e2e.type_matrix SET n = NULL WHERE id % 17 = 8;

COMMIT;

VACUUM ANALYZE e2e.type_matrix;
