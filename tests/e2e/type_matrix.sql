-- Seed for tests/e2e_snapshot.rs: one table with every column type the snapshot must map the
-- Debezium way, 10,000 deterministic rows (everything derives from the id, no random()).
-- Every 7th row is NULL in every nullable column; a few other rows have single NULLs (b, t, n)
-- so the filtered pipeline's CASE/upper/arithmetic see NULL inputs too. The special cases put
-- extremes, signs, zero, unicode, empty values, dates before 1970 and after 2038, and values
-- beyond 64-bit nanosecond timestamps on rows spread over the table.
--
-- After `jb` come the columns of the rest of Debezium's type mapping (reference §5): bit strings,
-- oid, variable and wide numerics, money, "char", name, timetz, interval, xml, network types,
-- ranges, an enum (with a label added out of OID order), tsvector, point, ±infinity dates and
-- timestamps, and arrays of many element types with NULL elements and empty arrays. hstore,
-- ltree and citext columns are added only where the extensions can be created. Rows 10001-10004
-- are edge rows: all NULL, a 1 MB text, empty values, and extremes.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS e2e CASCADE;
CREATE SCHEMA e2e;

-- Extensions for the optional columns; another session may create them at the same time.
DO $$
DECLARE ext text;
BEGIN
    FOREACH ext IN ARRAY ARRAY['hstore', 'ltree', 'citext'] LOOP
        BEGIN
            EXECUTE format('CREATE EXTENSION IF NOT EXISTS %I', ext);
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'extension % not available: %', ext, SQLERRM;
        END;
    END LOOP;
END $$;

-- 'meh' is added after the others, before 'ok': enumsortorder differs from OID order.
CREATE TYPE e2e.mood AS ENUM ('sad', 'ok', 'happy');
ALTER TYPE e2e.mood ADD VALUE 'meh' BEFORE 'ok';
CREATE DOMAIN e2e.price AS numeric(8, 2);

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
    jb    jsonb,
    bit1  bit(1),
    bits  bit(12),
    vbits varbit,
    o     oid,
    nvar  numeric,
    nwide numeric(50, 5),
    pr    e2e.price,
    m     money,
    c1    "char",
    nm    name,
    ttz   timetz,
    iv    interval,
    x     xml,
    ip    inet,
    net   cidr,
    mac   macaddr,
    mac8  macaddr8,
    r4    int4range,
    r8    int8range,
    rn    numrange,
    rts   tsrange,
    rtz   tstzrange,
    rd    daterange,
    e     e2e.mood,
    tv    tsvector,
    pt    point,
    d_inf    date,
    ts_inf   timestamp,
    ts3_inf  timestamp(3),
    tstz_inf timestamptz,
    ai    int4[],
    ai8   int8[],
    at    text[],
    an    numeric(10, 2)[],
    af    float8[],
    ab    bool[],
    ad    date[],
    ats   timestamp(3)[],
    atz   timestamptz[],
    au    uuid[],
    aj    jsonb[],
    ainet inet[],
    aby   bytea[],
    ae    e2e.mood[],
    atv   tsvector[]
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
                  ELSE jsonb_build_object('id', g, 'v', g * 1.5) END,
       -- bit1, bits (0 → no bytes in Debezium's Bits), vbits of every length 0..31
       (g % 2)::bit(1),
       (g % 4096)::bit(12),
       substring((g::bigint * 7919)::bit(32) FROM 1 FOR g % 32)::varbit,
       -- o oid: above 2^31 too
       CASE g % 7 WHEN 1 THEN 4294967295::bigint::oid WHEN 2 THEN 0::oid
                  ELSE ((g::bigint * 429496729) % 4294967296)::oid END,
       -- nvar numeric without typmod (VariableScaleDecimal)
       CASE g % 9 WHEN 1 THEN 0 WHEN 2 THEN 1.50 WHEN 3 THEN -0.001
                  WHEN 4 THEN 123456789012345678901234567890.123456789 WHEN 5 THEN 1e-30
                  WHEN 6 THEN 100 WHEN 7 THEN -99999999999999999999
                  ELSE g * 1.25 END,
       -- nwide numeric(50,5): beyond Decimal128
       CASE g % 5 WHEN 1 THEN 999999999999999999999999999999999999999999999.99999 WHEN 2 THEN -1.5
                  WHEN 3 THEN 0 ELSE g * 12345678901234567890.12345 END,
       -- pr: a domain over numeric(8,2)
       (g % 100000) / 7.0,
       -- m money
       CASE g % 6 WHEN 1 THEN '92233720368547758.07'::money WHEN 2 THEN '-92233720368547758.08'::money
                  WHEN 3 THEN 0::money ELSE (g * 12.34)::numeric::money END,
       -- c1 "char": a high-bit byte prints as \ooo, a zero byte as nothing
       CASE g % 4 WHEN 1 THEN 'a'::"char" WHEN 2 THEN '\351'::"char" WHEN 3 THEN ''::"char"
                  ELSE chr(65 + g % 26)::"char" END,
       -- nm name
       ('name_' || g)::name,
       -- ttz timetz, shifted to UTC by Debezium
       CASE g % 5 WHEN 1 THEN '00:00:00+00'::timetz WHEN 2 THEN '23:59:59.999999-14'::timetz
                  WHEN 3 THEN '12:30:00.5+05:30'::timetz
                  ELSE ((time '00:00' + ((g::int8 * 1234567891) % 86400000000) * interval '1 microsecond')::text
                        || '+02')::timetz END,
       -- iv interval: the reference example, mixed signs, zero, huge, and ordinary ones
       CASE g % 7 WHEN 1 THEN interval '1 mon 2 days 03:04:05.5'
                  WHEN 2 THEN interval '-1 year -2 mons +3 days -04:05:06.000001'
                  WHEN 3 THEN interval '0' WHEN 4 THEN interval '178000000 years'
                  WHEN 5 THEN interval '100 hours 0.000001 seconds'
                  ELSE make_interval(months => g % 100, days => g % 40, secs => g * 1.5) END,
       -- x xml
       CASE g % 3 WHEN 1 THEN '<a>1</a>'::xml WHEN 2 THEN xmlelement(name r, xmlattributes(g AS id), 'é & <')
                  ELSE xmlparse(content 'text ' || g) END,
       -- ip inet
       CASE g % 6 WHEN 1 THEN '192.168.0.1'::inet WHEN 2 THEN '10.0.0.0/8'::inet WHEN 3 THEN '::1'::inet
                  WHEN 4 THEN ('2001:db8::' || to_hex(g % 65536))::inet
                  WHEN 5 THEN ('::ffff:10.0.' || g % 256 || '.1')::inet
                  ELSE ('10.' || g % 256 || '.' || (g / 256) % 256 || '.1/' || g % 33)::inet END,
       -- net cidr
       CASE g % 4 WHEN 1 THEN '10.0.0.0/8'::cidr WHEN 2 THEN '2001:db8::/32'::cidr WHEN 3 THEN '0.0.0.0/0'::cidr
                  ELSE set_masklen(('10.' || g % 256 || '.0.0')::cidr, 16) END,
       -- mac, mac8
       CASE g % 3 WHEN 1 THEN '08:00:2b:01:02:03'::macaddr WHEN 2 THEN 'ff:ff:ff:ff:ff:ff'::macaddr
                  ELSE lpad(to_hex(g), 12, '0')::macaddr END,
       lpad(to_hex(g::int8 * 1234567), 16, '0')::macaddr8,
       -- ranges
       CASE g % 6 WHEN 1 THEN 'empty'::int4range WHEN 2 THEN '(,)'::int4range WHEN 3 THEN int4range(NULL, g)
                  WHEN 4 THEN int4range(g, NULL, '[]') ELSE int4range(-g, g, '(]') END,
       int8range(g::int8 * -1000000000000, g::int8 * 1000000000000),
       CASE g % 4 WHEN 1 THEN numrange(1.5, 2.250, '[]') WHEN 2 THEN 'empty'::numrange
                  ELSE numrange(g * -0.001, g * 1.1) END,
       CASE g % 4 WHEN 1 THEN '[-infinity,infinity)'::tsrange
                  WHEN 2 THEN tsrange('2024-01-01 10:00:00', '2024-01-02 00:00:00.5')
                  WHEN 3 THEN tsrange('0044-03-15 10:00 BC', NULL)
                  ELSE tsrange(timestamp '2000-01-01' + g * interval '1 hour', NULL, '[]') END,
       CASE g % 3 WHEN 1 THEN tstzrange('2024-01-01 10:00:00+02', '2024-06-01 00:00:00.000001+00')
                  WHEN 2 THEN '(,infinity]'::tstzrange
                  ELSE tstzrange(timestamptz '2000-01-01 00:00:00+00' + g * interval '1 minute', NULL) END,
       CASE g % 3 WHEN 1 THEN daterange('2024-01-01', '2024-02-01') WHEN 2 THEN '[0001-01-01 BC,)'::daterange
                  ELSE daterange(date '2000-01-01' + g, NULL, '[]') END,
       -- e enum
       (ARRAY['sad', 'meh', 'ok', 'happy'])[1 + g % 4]::e2e.mood,
       -- tv tsvector
       CASE g % 4 WHEN 1 THEN ''::tsvector WHEN 2 THEN 'a:1A,2B,3C,4 b'::tsvector
                  WHEN 3 THEN $tv$'it''s':1 'back\slash' 'sp ace':5$tv$::tsvector
                  ELSE to_tsvector('english', 'row ' || g || ' jumps over the lazy dogs') END,
       -- pt point
       CASE g % 5 WHEN 1 THEN point(0, 0) WHEN 2 THEN point('NaN', '-Infinity')
                  ELSE point(g * 1.5, -g / 3.0) END,
       -- ±infinity (Debezium's constants), BC and ordinary dates and timestamps
       CASE g % 5 WHEN 1 THEN 'infinity'::date WHEN 2 THEN '-infinity'::date WHEN 3 THEN '0044-03-15 BC'::date
                  ELSE date '2000-01-01' + ((g * 37) % 40000 - 20000) END,
       CASE g % 5 WHEN 1 THEN 'infinity'::timestamp WHEN 2 THEN '-infinity'::timestamp
                  WHEN 3 THEN '0044-03-15 10:00:00.25 BC'::timestamp
                  ELSE timestamp '2000-01-01' + (g::int8 * 987654321987) * interval '1 microsecond' END,
       CASE g % 5 WHEN 1 THEN 'infinity'::timestamp WHEN 2 THEN '-infinity'::timestamp
                  ELSE timestamp '2000-01-01' + (g::int8 * 987654321) * interval '1 millisecond' END,
       CASE g % 5 WHEN 1 THEN 'infinity'::timestamptz WHEN 2 THEN '-infinity'::timestamptz
                  ELSE timestamptz '2000-01-01 00:00:00+00' + (g::int8 * 987654321987) * interval '1 microsecond' END,
       -- arrays
       CASE g % 5 WHEN 1 THEN '{}'::int4[] WHEN 2 THEN ARRAY[NULL]::int4[]
                  WHEN 3 THEN ARRAY[1, NULL, -2147483648, 2147483647] ELSE ARRAY[g, g * 2, g * 3] END,
       ARRAY[g::int8 * 922337203685477, NULL, -9223372036854775808],
       CASE g % 4 WHEN 1 THEN ARRAY['', NULL, 'é "q" \ {x}, y'] WHEN 2 THEN '{}'::text[]
                  ELSE ARRAY['a' || g, 'b'] END,
       ARRAY[(g % 100000) * 1.25, NULL, -0.01]::numeric(10, 2)[],
       ARRAY[g / 3.0::float8, 'NaN', '-Infinity', NULL]::float8[],
       ARRAY[g % 2 = 0, NULL],
       ARRAY[date '2000-01-01' + g, NULL],
       ARRAY[timestamp '2000-01-01 00:00:00.123' + g * interval '1 day', NULL],
       ARRAY[timestamptz '2000-01-01 00:00:00+00' + g * interval '1.5 second'],
       ARRAY[md5(g::text)::uuid, NULL],
       ARRAY[jsonb_build_object('g', g), 'null'::jsonb, NULL],
       ARRAY[('10.0.0.' || g % 256)::inet, '::1', NULL],
       ARRAY[decode(md5(g::text), 'hex'), ''::bytea, NULL],
       ARRAY['sad', 'happy', (ARRAY['sad', 'meh', 'ok', 'happy'])[1 + g % 4]]::e2e.mood[],
       ARRAY['a:1'::tsvector, ''::tsvector, to_tsvector('english', 'dogs ' || g)]
  FROM generate_series(1, 10000) AS g;

UPDATE e2e.type_matrix
   SET b = NULL, i2 = NULL, i4 = NULL, i8 = NULL, f4 = NULL, f8 = NULL, n = NULL, nbig = NULL,
       t = NULL, vc = NULL, ch = NULL, by = NULL, d = NULL, tm = NULL, tm3 = NULL, ts = NULL,
       ts3 = NULL, tstz = NULL, tstz0 = NULL, u = NULL, j = NULL, jb = NULL,
       bit1 = NULL, bits = NULL, vbits = NULL, o = NULL, nvar = NULL, nwide = NULL, pr = NULL,
       m = NULL, c1 = NULL, nm = NULL, ttz = NULL, iv = NULL, x = NULL, ip = NULL, net = NULL,
       mac = NULL, mac8 = NULL, r4 = NULL, r8 = NULL, rn = NULL, rts = NULL, rtz = NULL, rd = NULL,
       e = NULL, tv = NULL, pt = NULL, d_inf = NULL, ts_inf = NULL, ts3_inf = NULL, tstz_inf = NULL,
       ai = NULL, ai8 = NULL, at = NULL, an = NULL, af = NULL, ab = NULL, ad = NULL, ats = NULL,
       atz = NULL, au = NULL, aj = NULL, ainet = NULL, aby = NULL, ae = NULL, atv = NULL
 WHERE id % 7 = 0;
UPDATE e2e.type_matrix SET b = NULL WHERE id % 11 = 5;
UPDATE e2e.type_matrix SET t = NULL WHERE id % 13 = 6;
UPDATE e2e.type_matrix SET n = NULL WHERE id % 17 = 8;

-- Edge rows. 10001: every nullable column NULL. 10002: a 1 MB text (the message is bigger than
-- librdkafka's default message.max.bytes). 10003: empty values. 10004: extremes.
INSERT INTO e2e.type_matrix (id) VALUES (10001), (10002), (10003), (10004);
UPDATE e2e.type_matrix SET t = repeat('0123456789abcdef', 65536) WHERE id = 10002;
UPDATE e2e.type_matrix
   SET t = '', vc = '', ch = '', by = '', vbits = '', nvar = 0.000, c1 = '', nm = '', x = '',
       tv = '', r4 = 'empty', ai = '{}', at = ARRAY[''], an = '{}', af = '{}', aby = ARRAY[''::bytea],
       ae = '{}', atv = ARRAY[''::tsvector], j = '""', jb = '{}', ab = '{}', au = '{}'
 WHERE id = 10003;
UPDATE e2e.type_matrix
   SET i2 = -32768, i4 = -2147483648, i8 = -9223372036854775808, f8 = 'Infinity', f4 = '-Infinity',
       n = -999999999.999, nbig = 9999999999999999999999999999.9999999999, nvar = -1e-100,
       m = '-92233720368547758.08', o = 4294967295::bigint::oid, bits = B'111111111111',
       iv = interval '-178000000 years -2147483647 days -2562047:47:16.854775',
       d_inf = '4713-01-01 BC', ts_inf = '294246-12-31 23:59:59.999999',
       tstz_inf = '1901-12-13 20:45:52+00', pt = point('Infinity', 1e-300),
       ip = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', net = '::/0', rn = '(,)'
 WHERE id = 10004;

COMMIT;

-- Extension columns, where the extensions exist.
DO $$
BEGIN
    IF to_regtype('hstore') IS NOT NULL THEN
        ALTER TABLE e2e.type_matrix ADD COLUMN h hstore, ADD COLUMN ah hstore[];
        UPDATE e2e.type_matrix
           SET h = CASE id % 4 WHEN 1 THEN ''::hstore
                               WHEN 2 THEN $h$a=>1, "b c"=>NULL, "q\""=>"é", ""=>"\\"$h$::hstore
                               ELSE hstore(ARRAY['k' || id, 'v'], ARRAY[id::text, NULL]) END,
               ah = ARRAY[hstore('a', id::text), NULL]
         WHERE id % 7 <> 0 AND id <= 10000;
    END IF;
    IF to_regtype('ltree') IS NOT NULL THEN
        ALTER TABLE e2e.type_matrix ADD COLUMN l ltree, ADD COLUMN al ltree[];
        UPDATE e2e.type_matrix
           SET l = CASE id % 3 WHEN 1 THEN ''::ltree WHEN 2 THEN 'Top.Science.Astronomy'::ltree
                               ELSE ('n' || id || '.x')::ltree END,
               al = ARRAY[('a.b' || id)::ltree, 'c'::ltree]
         WHERE id % 7 <> 0 AND id <= 10000;
    END IF;
    IF to_regtype('citext') IS NOT NULL THEN
        ALTER TABLE e2e.type_matrix ADD COLUMN ci citext, ADD COLUMN aci citext[];
        UPDATE e2e.type_matrix SET ci = 'MiXeD ' || id, aci = ARRAY[('Ci' || id)::citext, NULL]
         WHERE id % 7 <> 0 AND id <= 10000;
    END IF;
END $$;

VACUUM ANALYZE e2e.type_matrix;

-- For the type-option pipelines (tests/e2e/options_pipelines.sql): Postgres' special numerics,
-- which Debezium can only write under decimal_handling 'string' or 'double', and the columns
-- every other option changes. Every 7th row is NULL.
CREATE TABLE e2e.type_options (
    id   int8 PRIMARY KEY,
    n    numeric(10, 2),
    nvar numeric,
    m    money,
    by   bytea,
    iv   interval,
    tm3  time(3),
    tm   time,
    ts3  timestamp(3),
    ts   timestamp,
    d    date
);
INSERT INTO e2e.type_options
SELECT g,
       CASE g % 5 WHEN 1 THEN 'NaN' WHEN 2 THEN 0 WHEN 3 THEN -99999999.99 ELSE g * 1.25 END,
       CASE g % 8 WHEN 1 THEN 'NaN' WHEN 2 THEN 'Infinity' WHEN 3 THEN '-Infinity' WHEN 4 THEN 1e-30
                  WHEN 5 THEN 0.0000001 WHEN 6 THEN 123456789012345678901234567890.5
                  ELSE g * -0.001 END,
       CASE g % 4 WHEN 1 THEN '0.05'::money WHEN 2 THEN '-0.05'::money WHEN 3 THEN '12345678.99'::money
                  ELSE (g * 1.37)::numeric::money END,
       CASE g % 3 WHEN 1 THEN ''::bytea WHEN 2 THEN '\xfbff00'::bytea ELSE decode(md5(g::text), 'hex') END,
       CASE g % 4 WHEN 1 THEN interval '1 mon 2 days 03:04:05.5'
                  WHEN 2 THEN interval '-1 year -2 mons +3 days -04:05:06.000001'
                  WHEN 3 THEN interval '0.000001 seconds'
                  ELSE make_interval(years => g % 3, days => g, secs => g * 10.25) END,
       time '00:00' + ((g::int8 * 1234567) % 86399999) * interval '1 millisecond',
       time '00:00' + ((g::int8 * 1234567891) % 86400000000) * interval '1 microsecond',
       timestamp '2000-01-01' + ((g::int8 * 987654321) % 4000000000000 - 2000000000000) * interval '1 millisecond',
       timestamp '2000-01-01' + ((g::int8 * 987654321987) % 4000000000000000 - 2000000000000000) * interval '1 microsecond',
       date '2000-01-01' + ((g * 37) % 40000 - 20000)
  FROM generate_series(1, 210) AS g;
UPDATE e2e.type_options SET n = NULL, nvar = NULL, m = NULL, by = NULL, iv = NULL, tm3 = NULL,
                            tm = NULL, ts3 = NULL, ts = NULL, d = NULL
 WHERE id % 7 = 0;
DO $$
BEGIN
    IF to_regtype('hstore') IS NOT NULL THEN
        ALTER TABLE e2e.type_options ADD COLUMN h hstore;
        UPDATE e2e.type_options
           SET h = CASE id % 3 WHEN 1 THEN ''::hstore WHEN 2 THEN $h$a=>1, "b c"=>NULL$h$::hstore
                               ELSE hstore('k' || id, id::text) END
         WHERE id % 7 <> 0;
    END IF;
END $$;
