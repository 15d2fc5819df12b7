//! The binary decoders against the real Postgres: values are fetched with
//! `COPY (SELECT v, v::text ...) TO STDOUT (FORMAT binary)`, so each decoder sees exactly the
//! bytes Postgres sends (binary pgoutput uses the same send functions), and every value that
//! cdcql prints as text is compared with Postgres' own `::text` of it (session TimeZone UTC).
//! The catalog test creates a schema with domains, enums, arrays and extension types and
//! checks how `Catalog::load` resolves them.
//!
//! Skips with a message when Postgres is not reachable, unless CDCQL_REQUIRE_SERVICES is set.

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use cdcql::catalog::{Catalog, Column, TableName};
use cdcql::source::postgres::copy::{ColumnDecoder, CopyDecoder};
use cdcql::source::postgres::pgtext;
use cdcql::types::{PgType, RangeType};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{
    Float64Type, Int32Type, IntervalMonthDayNanoType, Schema as ArrowSchema,
};
use futures::StreamExt;
use tokio_postgres::{Client, NoTls};

const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/shop";

async fn connect() -> Option<Client> {
    let url = std::env::var("PG_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_PG_URL.to_string());
    let addr = url
        .split_once('@')
        .map_or("127.0.0.1:5432", |(_, r)| r.split('/').next().unwrap_or(r));
    let reachable = addr.to_socket_addrs().is_ok_and(|mut a| {
        a.any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
    });
    if !reachable {
        assert!(
            std::env::var_os("CDCQL_REQUIRE_SERVICES").is_none(),
            "CDCQL_REQUIRE_SERVICES is set but Postgres is not reachable at {addr}"
        );
        eprintln!("\n*** SKIPPED pg_binary: Postgres is not reachable at {addr} (PG_URL) ***\n");
        return None;
    }
    let (client, conn) = tokio_postgres::connect(&url, NoTls).await.expect("connect");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
        .batch_execute("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'")
        .await
        .unwrap();
    Some(client)
}

/// `CREATE EXTENSION IF NOT EXISTS` can race with a concurrent test doing the same.
async fn extension(client: &Client, name: &str) -> bool {
    for _ in 0..3 {
        if client
            .batch_execute(&format!("CREATE EXTENSION IF NOT EXISTS {name}"))
            .await
            .is_ok()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("note: extension {name} is not available; its cases are skipped");
    false
}

/// Runs `select` (two columns) through binary COPY, decoding the first as `pg` and the
/// second as text.
async fn copy(client: &Client, select: &str, pg: &PgType) -> RecordBatch {
    let columns = vec![
        Column {
            name: "v".into(),
            pg_type: pg.clone(),
            nullable: true,
            type_oid: 0,
        },
        Column {
            name: "t".into(),
            pg_type: PgType::Text,
            nullable: true,
            type_oid: 0,
        },
    ];
    let schema = Arc::new(ArrowSchema::new(vec![
        datafusion::arrow::datatypes::Field::new("v", pg.arrow_type().unwrap(), true),
        datafusion::arrow::datatypes::Field::new(
            "t",
            datafusion::arrow::datatypes::DataType::Utf8,
            true,
        ),
    ]));
    let sql = format!("COPY ({select}) TO STDOUT (FORMAT binary)");
    let stream = client.copy_out(sql.as_str()).await.expect(&sql);
    futures::pin_mut!(stream);
    let mut decoder = CopyDecoder::new("test".into(), columns, schema, 1_000_000);
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        decoder.push(&chunk.unwrap(), &mut out).expect(&sql);
    }
    decoder.finish().unwrap().expect("rows")
}

/// Values given as SQL literals of `ty`, as (decoded column, Postgres text).
async fn values(client: &Client, ty: &str, pg: &PgType, literals: &[&str]) -> RecordBatch {
    let list = literals
        .iter()
        .map(|l| format!("({l})"))
        .collect::<Vec<_>>()
        .join(", ");
    let select =
        // format('%s') uses the type's output function, which is what a client reads; a cast
        // to text can differ (inet::text always shows the mask).
        format!("SELECT x::{ty}, CASE WHEN x IS NOT NULL THEN format('%s', x::{ty}) END FROM (VALUES {list}) AS t(x) ORDER BY 1 NULLS FIRST");
    // ORDER BY keeps nothing in particular; drop it for types without ordering.
    let select = if matches!(
        pg,
        PgType::Point | PgType::Hstore | PgType::Xml | PgType::Json
    ) {
        select.replace(" ORDER BY 1 NULLS FIRST", "")
    } else {
        select
    };
    copy(client, &select, pg).await
}

/// The decoded text column equals Postgres' text output, value by value.
fn assert_text_matches(batch: &RecordBatch, what: &str) {
    let got = batch.column(0).as_string::<i32>();
    let want = batch.column(1).as_string::<i32>();
    for i in 0..batch.num_rows() {
        assert_eq!(
            got.is_null(i),
            want.is_null(i),
            "{what} row {i}: NULL differs"
        );
        if want.is_valid(i) {
            assert_eq!(got.value(i), want.value(i), "{what} row {i}");
        }
    }
}

fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

async fn check_text(client: &Client, ty: &str, pg: PgType, literals: &[&str]) {
    let quoted: Vec<String> = literals
        .iter()
        .map(|l| if *l == "NULL" { "NULL".into() } else { q(l) })
        .collect();
    let refs: Vec<&str> = quoted.iter().map(|s| s.as_str()).collect();
    let batch = values(client, ty, &pg, &refs).await;
    assert_eq!(batch.num_rows(), literals.len(), "{ty}");
    assert_text_matches(&batch, ty);
}

#[tokio::test]
async fn text_forms_match_postgres() {
    let Some(client) = connect().await else {
        return;
    };
    check_text(
        &client,
        "inet",
        PgType::Inet,
        &[
            "192.168.0.1",
            "192.168.1.5/24",
            "10.0.0.0/8",
            "0.0.0.0/0",
            "::1",
            "::",
            "::2",
            "::1.2.3.4",
            "::ffff:1.2.3.4",
            "::ffff:0:1.2.3.4",
            "2001:db8::1",
            "2001:db8:0:0:1:0:0:1/64",
            "2001:db8:0:1:1:1:1:1",
            "1::",
            "1:0:0:2::3",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
            "fe80::1:2/10",
            "NULL",
        ],
    )
    .await;
    check_text(
        &client,
        "cidr",
        PgType::Cidr,
        &[
            "10.0.0.0/8",
            "192.168.0.0/24",
            "10.1.2.3/32",
            "0.0.0.0/0",
            "2001:db8::/32",
            "::/0",
            "::1/128",
        ],
    )
    .await;
    check_text(
        &client,
        "macaddr",
        PgType::Macaddr,
        &[
            "08:00:2b:01:02:03",
            "FF:FF:FF:FF:FF:FF",
            "00-00-00-00-00-00",
        ],
    )
    .await;
    check_text(
        &client,
        "macaddr8",
        PgType::Macaddr8,
        &["08:00:2b:01:02:03:04:05", "08:00:2b:01:02:03"],
    )
    .await;
    check_text(
        &client,
        "int4range",
        PgType::Range(RangeType::Int4),
        &[
            "[1,10)",
            "empty",
            "(,5]",
            "[3,)",
            "(,)",
            "[-2147483648,2147483647)",
            "(1,2)",
        ],
    )
    .await;
    check_text(
        &client,
        "int8range",
        PgType::Range(RangeType::Int8),
        &["[-9223372036854775808,9223372036854775807)", "(0,1]"],
    )
    .await;
    check_text(
        &client,
        "numrange",
        PgType::Range(RangeType::Num),
        &[
            "[1.5,2.250]",
            "(,0.0001)",
            "[-100000000000000000000,1e-20)",
            "empty",
            "(,)",
        ],
    )
    .await;
    check_text(
        &client,
        "tsrange",
        PgType::Range(RangeType::Ts),
        &[
            "[\"2024-01-01 10:00:00\",\"2024-01-02 00:00:00.5\")",
            "[-infinity,infinity)",
            "[\"0044-03-15 10:00:00 BC\",)",
            "(,\"1999-12-31 23:59:59.999999\"]",
            "empty",
        ],
    )
    .await;
    check_text(
        &client,
        "tstzrange",
        PgType::Range(RangeType::Tstz),
        &[
            "[\"2024-01-01 10:00:00+02\",\"2024-06-01 00:00:00.000001+00\")",
            "(,infinity]",
            "[\"0100-01-01 00:00:00+00 BC\",\"0100-01-01 00:00:00+00\")",
        ],
    )
    .await;
    check_text(
        &client,
        "daterange",
        PgType::Range(RangeType::Date),
        &[
            "[2024-01-01,2024-02-01)",
            "[0001-01-01 BC,)",
            "(,infinity)",
            "[2024-01-01,2024-01-01]",
            "empty",
        ],
    )
    .await;
    check_text(
        &client,
        "tsvector",
        PgType::Tsvector,
        &[
            "a:1A,2B,3C,4 b",
            "'it''s':1 'back\\slash' 'sp ace':5",
            "",
            "'日本語':3 café",
            "z:16383",
        ],
    )
    .await;
    let batch = copy(
        &client,
        "SELECT to_tsvector('english', 'The quick brown fox''s jumps over the lazy dogs'), \
         to_tsvector('english', 'The quick brown fox''s jumps over the lazy dogs')::text",
        &PgType::Tsvector,
    )
    .await;
    assert_text_matches(&batch, "to_tsvector");
    check_text(
        &client,
        "\"char\"",
        PgType::Char,
        &["a", "", "\\351", "\\001", "Z"],
    )
    .await;
    check_text(
        &client,
        "bit(12)",
        PgType::Bit(12),
        &["101010101010", "000000000001"],
    )
    .await;
    check_text(
        &client,
        "varbit",
        PgType::Varbit(None),
        &["", "1", "0110", "1010101010101010101"],
    )
    .await;
    check_text(
        &client,
        "numeric",
        PgType::Numeric(None),
        &[
            "0",
            "-0.001",
            "123456789012345678901234567890.123",
            "NaN",
            "Infinity",
            "-Infinity",
            "1e-20",
            "1.50",
            "10000",
            "0.0000",
            "-99999999.99999999",
        ],
    )
    .await;
    check_text(
        &client,
        "uuid",
        PgType::Uuid,
        &[
            "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
            "00000000-0000-0000-0000-000000000000",
        ],
    )
    .await;
    check_text(
        &client,
        "jsonb",
        PgType::Jsonb,
        &["{\"b\": 1, \"a\": [1, {\"c\": null}]}", "\"é\"", "null"],
    )
    .await;
    check_text(
        &client,
        "json",
        PgType::Json,
        &["{\"a\": 1,  \"a\": 2}", "[]"],
    )
    .await;
    check_text(
        &client,
        "xml",
        PgType::Xml,
        &[
            "<a>1</a>",
            "<?xml version=\"1.0\"?><a b=\"c\">é</a>",
            "just text",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><x/>",
        ],
    )
    .await;
    check_text(&client, "name", PgType::Name, &["a_name", "日本"]).await;
    if extension(&client, "ltree").await {
        check_text(
            &client,
            "ltree",
            PgType::Ltree,
            &["a.b.c", "", "Top.Science.Astronomy"],
        )
        .await;
    }
    if extension(&client, "citext").await {
        check_text(&client, "citext", PgType::Citext, &["MiXeD Case", ""]).await;
    }
}

#[tokio::test]
async fn dates_timestamps_and_times_match_postgres() {
    let Some(client) = connect().await else {
        return;
    };
    // Raw send bytes (decoded as bytea) printed by pgtext, against Postgres' text.
    for (ty, lits) in [
        (
            "date",
            &[
                "2024-01-15",
                "0044-03-15 BC",
                "4713-01-01 BC",
                "5874897-12-31",
                "infinity",
                "-infinity",
                "1970-01-01",
                "0001-01-01",
            ][..],
        ),
        (
            "timestamp",
            &[
                "2024-01-15 10:30:00.123456",
                "0001-01-01 00:00:00 BC",
                "294276-12-31 23:59:59.999999",
                "infinity",
                "-infinity",
                "1999-12-31 23:59:59.5",
                "4713-01-01 00:00:00 BC",
            ][..],
        ),
        (
            "timestamptz",
            &[
                "2024-01-15 10:30:00.123456+02",
                "0001-01-01 00:00:00+00 BC",
                "infinity",
                "1969-12-31 23:59:59.999999+00",
            ][..],
        ),
    ] {
        let list = lits
            .iter()
            .map(|l| format!("({})", q(l)))
            .collect::<Vec<_>>()
            .join(", ");
        // Decoding as bytea hands over the raw send bytes.
        let select = format!("SELECT {ty}_send(x::{ty}), x::{ty}::text FROM (VALUES {list}) t(x)");
        let batch = copy(&client, &select, &PgType::Bytea).await;
        let raw = batch.column(0).as_binary::<i32>();
        let want = batch.column(1).as_string::<i32>();
        assert_eq!(batch.num_rows(), lits.len());
        for (i, lit) in lits.iter().enumerate() {
            let mut got = String::new();
            match ty {
                "date" => pgtext::date_text(
                    i32::from_be_bytes(raw.value(i).try_into().unwrap()),
                    &mut got,
                ),
                _ => pgtext::timestamp_text(
                    i64::from_be_bytes(raw.value(i).try_into().unwrap()),
                    ty == "timestamptz",
                    &mut got,
                ),
            }
            assert_eq!(got, want.value(i), "{ty} {lit}");
        }
    }

    // timetz: Debezium's ZonedTime is the value moved to UTC, which Postgres prints with +00.
    let lits = [
        "10:30:00.123456+02",
        "00:00:00-05:30",
        "23:59:59.999999+14",
        "12:00:00.5-00:00:30",
        "01:00:00+03",
    ];
    let list = lits
        .iter()
        .map(|l| format!("({})", q(l)))
        .collect::<Vec<_>>()
        .join(", ");
    let batch = copy(
        &client,
        &format!(
            "SELECT x::timetz, (x::timetz AT TIME ZONE 'UTC')::text FROM (VALUES {list}) t(x)"
        ),
        &PgType::Timetz(6),
    )
    .await;
    let got = batch.column(0).as_string::<i32>();
    let want = batch.column(1).as_string::<i32>();
    assert_eq!(batch.num_rows(), lits.len());
    for (i, lit) in lits.iter().enumerate() {
        assert_eq!(
            got.value(i),
            want.value(i).replace("+00", "Z"),
            "timetz {lit}"
        );
    }
    let batch = values(&client, "timetz", &PgType::Timetz(6), &["'24:00:00+00'"]).await;
    assert_eq!(batch.column(0).as_string::<i32>().value(0), "24:00:00Z");

    // interval: months, days and microseconds as Postgres keeps them.
    let batch = values(
        &client,
        "interval",
        &PgType::Interval,
        &[
            "'1 year 2 mons 3 days 04:05:06.5'",
            "'-1 mon +2 days -00:00:00.000001'",
        ],
    )
    .await;
    let iv = batch.column(0).as_primitive::<IntervalMonthDayNanoType>();
    let texts = batch.column(1).as_string::<i32>();
    let mut seen = 0;
    for i in 0..2 {
        let v = iv.value(i);
        match texts.value(i) {
            "1 year 2 mons 3 days 04:05:06.5" => {
                assert_eq!(
                    (v.months, v.days, v.nanoseconds),
                    (14, 3, 14_706_500_000_000)
                );
                seen += 1;
            }
            "-1 mons +2 days -00:00:00.000001" => {
                assert_eq!((v.months, v.days, v.nanoseconds), (-1, 2, -1000));
                seen += 1;
            }
            other => panic!("unexpected interval text {other}"),
        }
    }
    assert_eq!(seen, 2);
}

#[tokio::test]
async fn containers_and_errors() {
    let Some(client) = connect().await else {
        return;
    };
    // Arrays: NULL elements, empty arrays, lower bounds other than 1, NULL arrays.
    let int_arr = PgType::Array(Box::new(PgType::Int4));
    let batch = copy(
        &client,
        "SELECT v, v::text FROM (VALUES (ARRAY[1,NULL,3]), ('{}'::int[]), (NULL), ('[0:1]={7,8}'::int[])) t(v)",
        &int_arr,
    )
    .await;
    let list = batch.column(0).as_list::<i32>();
    let elems = |i: usize| -> Vec<Option<i32>> {
        list.value(i).as_primitive::<Int32Type>().iter().collect()
    };
    assert_eq!(elems(0), vec![Some(1), None, Some(3)]);
    assert!(list.is_valid(1) && elems(1).is_empty());
    assert!(list.is_null(2));
    assert_eq!(elems(3), vec![Some(7), Some(8)]);

    // Arrays of text-printed types print each element like Postgres.
    let inet_arr = PgType::Array(Box::new(PgType::Inet));
    let batch = copy(
        &client,
        "SELECT v, array_to_string(v, ',', 'NULL') FROM (VALUES ('{10.0.0.1/8,::1,NULL}'::inet[])) t(v)",
        &inet_arr,
    )
    .await;
    let list = batch.column(0).as_list::<i32>();
    let got: Vec<String> = list
        .value(0)
        .as_string::<i32>()
        .iter()
        .map(|s| s.unwrap_or("NULL").to_string())
        .collect();
    assert_eq!(got.join(","), batch.column(1).as_string::<i32>().value(0));

    // A two-dimensional value is an error for that row only, which becomes NULL.
    let mut decoder = ColumnDecoder::new(&int_arr, 4);
    let two_d = copy(
        &client,
        "SELECT v, v::text FROM (VALUES ('{{1,2},{3,4}}'::int[])) t(v)",
        &PgType::Bytea,
    )
    .await;
    let err = decoder
        .append(two_d.column(0).as_binary::<i32>().value(0))
        .unwrap_err();
    assert!(err.contains("2-dimensional"), "{err}");
    assert_eq!(decoder.len(), 1);

    // NaN in a numeric(10,2): a per-row error naming the problem, never a number.
    let nan = copy(
        &client,
        "SELECT 'NaN'::numeric(10,2), 'NaN'::numeric(10,2)::text",
        &PgType::Bytea,
    )
    .await;
    let mut decoder = ColumnDecoder::new(&PgType::Numeric(Some((10, 2))), 4);
    let err = decoder
        .append(nan.column(0).as_binary::<i32>().value(0))
        .unwrap_err();
    assert!(
        err.contains("NaN") && err.contains("decimal_handling"),
        "{err}"
    );
    assert!(decoder.finish().is_null(0));

    // point
    let batch = copy(
        &client,
        "SELECT v, v::text FROM (VALUES (point(1.5, -2)), (NULL)) t(v)",
        &PgType::Point,
    )
    .await;
    let s = batch.column(0).as_struct();
    assert_eq!(s.column(0).as_primitive::<Float64Type>().value(0), 1.5);
    assert_eq!(s.column(1).as_primitive::<Float64Type>().value(0), -2.0);
    assert!(s.is_null(1));

    // money: the integer count of cents.
    let batch = values(
        &client,
        "money",
        &PgType::Money,
        &["'-92233720368547758.08'", "'12.34'"],
    )
    .await;
    let m = batch
        .column(0)
        .as_primitive::<datafusion::arrow::datatypes::Decimal128Type>();
    assert_eq!(m.value(0), i64::MIN as i128);
    assert_eq!(m.value(1), 1234);

    if extension(&client, "hstore").await {
        let batch = copy(
            &client,
            "SELECT v, hstore_to_json(v)::text FROM (VALUES ('a=>1, \"b c\"=>NULL, \"q\"=>\"a\\\"b\", \"\"=>\"é\"'::hstore), (''::hstore)) t(v)",
            &PgType::Hstore,
        )
        .await;
        let map = batch.column(0).as_map();
        let want: serde_json::Value =
            serde_json::from_str(batch.column(1).as_string::<i32>().value(0)).unwrap();
        let keys = map.keys().as_string::<i32>();
        let vals = map.values().as_string::<i32>();
        let mut got = serde_json::Map::new();
        for e in map.value_offsets()[0] as usize..map.value_offsets()[1] as usize {
            got.insert(
                keys.value(e).to_string(),
                if vals.is_null(e) {
                    serde_json::Value::Null
                } else {
                    vals.value(e).into()
                },
            );
        }
        assert_eq!(serde_json::Value::Object(got), want);
        assert_eq!(map.value_length(1), 0);
    }
}

/// PostGIS (only where it is installed): the binary send form is the EWKB that Debezium reads
/// as hex text, and the SRID comes from it.
#[tokio::test]
async fn postgis_binary_is_the_ewkb_debezium_reads() {
    let Some(client) = connect().await else {
        return;
    };
    if !extension(&client, "postgis").await {
        return;
    }
    for (ty, pg) in [
        ("geometry", PgType::Geometry),
        ("geography", PgType::Geography),
    ] {
        let batch = copy(
            &client,
            &format!(
                "SELECT v, format('%s', v) || '/' || ST_SRID(v) FROM (VALUES \
                 ('SRID=4326;POINT(1 2)'::{ty}), ('LINESTRING(0 0,1 1)'::{ty}), \
                 ('SRID=4326;POLYGON((0 0,1 0,1 1,0 0))'::{ty})) t(v)"
            ),
            &pg,
        )
        .await;
        let col = cdcql::plan::OutputColumn {
            name: "v".into(),
            pg_type: pg.clone(),
            nullable: true,
        };
        let converted = cdcql::envelope::columns::connect_array(
            batch.column(0),
            &col,
            &cdcql::types::TypeOptions::default(),
        )
        .unwrap();
        let s = converted.as_struct();
        let wkb = s.column(0).as_binary::<i32>();
        let srid = s.column(1).as_primitive::<Int32Type>();
        let want = batch.column(1).as_string::<i32>();
        for i in 0..batch.num_rows() {
            let (hex, want_srid) = want.value(i).rsplit_once('/').unwrap();
            let got_hex: String = wkb.value(i).iter().map(|b| format!("{b:02X}")).collect();
            assert_eq!(got_hex, hex, "{ty} row {i}");
            let got_srid = if srid.is_null(i) { 0 } else { srid.value(i) };
            assert_eq!(got_srid.to_string(), want_srid, "{ty} row {i}");
        }
    }
    // PostGIS puts a table (spatial_ref_sys) into public: do not leave it in the shared database.
    let _ = client
        .batch_execute("DROP EXTENSION IF EXISTS postgis")
        .await;
}

#[tokio::test]
async fn catalog_resolves_domains_enums_arrays_and_extensions() {
    let Some(client) = connect().await else {
        return;
    };
    let have_hstore = extension(&client, "hstore").await;
    let have_ltree = extension(&client, "ltree").await;
    let have_isn = extension(&client, "isn").await;
    let schema = format!("cdcql_cat_{}", std::process::id());
    let mut ddl = format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};
         CREATE TYPE {schema}.mood AS ENUM ('sad', 'happy');
         ALTER TYPE {schema}.mood ADD VALUE 'ok' BEFORE 'happy';
         CREATE DOMAIN {schema}.price AS numeric(10,2);
         CREATE DOMAIN {schema}.price2 AS {schema}.price CHECK (VALUE > 0);
         CREATE DOMAIN {schema}.ints AS int[];
         CREATE TABLE {schema}.t (
            id int PRIMARY KEY,
            m {schema}.mood, ms {schema}.mood[],
            p {schema}.price, p2 {schema}.price2, pw {schema}.price[],
            is_ {schema}.ints, n numeric(12,3)[], ts timestamp(3)[], vb varbit(5),
            mo money[], bx box, tz timetz(2), r tstzrange, c \"char\"
         );"
    );
    if have_hstore {
        ddl += &format!("ALTER TABLE {schema}.t ADD COLUMN h hstore, ADD COLUMN hs hstore[];");
    }
    if have_ltree {
        ddl += &format!("ALTER TABLE {schema}.t ADD COLUMN l ltree[];");
    }
    if have_isn {
        ddl += &format!("ALTER TABLE {schema}.t ADD COLUMN i isbn;");
    }
    client.batch_execute(&ddl).await.unwrap();
    let catalog = Catalog::load(&client).await;
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
    if have_isn {
        let _ = client.batch_execute("DROP EXTENSION IF EXISTS isn").await;
    }
    let catalog = catalog.unwrap();
    let t = catalog.table(&TableName::new(&schema, "t")).unwrap();
    let ty = |c: &str| t.column(c).unwrap().pg_type.clone();
    let mood = PgType::Enum {
        name: "mood".into(),
        labels: vec!["sad".into(), "ok".into(), "happy".into()],
    };
    assert_eq!(ty("m"), mood);
    assert_eq!(ty("ms"), PgType::Array(Box::new(mood)));
    assert_eq!(ty("p"), PgType::Numeric(Some((10, 2))));
    assert_eq!(ty("p2"), PgType::Numeric(Some((10, 2))));
    assert_eq!(
        ty("pw"),
        PgType::Array(Box::new(PgType::Numeric(Some((10, 2)))))
    );
    assert_eq!(ty("is_"), PgType::Array(Box::new(PgType::Int4)));
    assert_eq!(
        ty("n"),
        PgType::Array(Box::new(PgType::Numeric(Some((12, 3)))))
    );
    assert_eq!(ty("ts"), PgType::Array(Box::new(PgType::Timestamp(3))));
    assert_eq!(ty("vb"), PgType::Varbit(Some(5)));
    assert_eq!(ty("mo"), PgType::Array(Box::new(PgType::Money)));
    assert!(!ty("mo").is_supported());
    assert!(matches!(ty("bx"), PgType::Unsupported { ref name, .. } if name == "box"));
    assert_eq!(ty("tz"), PgType::Timetz(2));
    assert_eq!(ty("r"), PgType::Range(RangeType::Tstz));
    assert_eq!(ty("c"), PgType::Char);
    if have_hstore {
        assert_eq!(ty("h"), PgType::Hstore);
        assert_eq!(ty("hs"), PgType::Array(Box::new(PgType::Hstore)));
    }
    if have_ltree {
        assert_eq!(ty("l"), PgType::Array(Box::new(PgType::Ltree)));
    }
    if have_isn {
        let isbn = ty("i");
        assert!(
            matches!(&isbn, PgType::Unsupported { name, .. } if name.contains("no binary send")),
            "{isbn:?}"
        );
    }
}
