//! Schema and value of each type under each type option, checked through the JSON encoder
//! (the bytes a consumer sees). Expected values come from the reference (§3, §5) or from
//! Debezium's own rules, worked out by hand in the comments.

use super::*;
use crate::connect::Schema;
use crate::encode::json::JsonEncoder;
use crate::encode::EncodedColumn;
use crate::types::RangeType;
use datafusion::arrow::array::{
    BinaryArray, BooleanArray, Date32Array, Decimal128Array, Decimal128Builder,
    IntervalMonthDayNanoArray, ListBuilder, MapBuilder, StringArray, StringBuilder,
    Time64MicrosecondArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::IntervalMonthDayNano;

fn opts() -> TypeOptions {
    TypeOptions::default()
}

/// The field schema JSON and each row's JSON value of a one-column struct.
fn render(pg: &PgType, o: &TypeOptions, array: ArrayRef) -> (String, Vec<String>) {
    let col = OutputColumn {
        name: "v".into(),
        pg_type: pg.clone(),
        nullable: true,
    };
    let field_schema = column_schema(pg, true, o);
    let schema = Schema::new(ConnectType::Struct(vec![Field::new(
        "v",
        field_schema.clone(),
    )]));
    let converted = connect_array(&array, &col, o).expect("converts");
    let rows = StructArray::try_new(
        Fields::from(vec![ArrowField::new(
            "v",
            converted.data_type().clone(),
            true,
        )]),
        vec![converted],
        None,
    )
    .unwrap();
    let mut out = EncodedColumn::default();
    JsonEncoder::new(&schema, false)
        .encode(&rows, &mut out)
        .expect("encodes");
    let values = (0..out.len())
        .map(|i| {
            let s = std::str::from_utf8(out.get(i).unwrap()).unwrap();
            s.strip_prefix("{\"v\":")
                .and_then(|s| s.strip_suffix('}'))
                .unwrap()
                .to_string()
        })
        .collect();
    (field_schema.to_connect_json(), values)
}

fn conversion_error(pg: &PgType, o: &TypeOptions, array: ArrayRef) -> String {
    let col = OutputColumn {
        name: "v".into(),
        pg_type: pg.clone(),
        nullable: true,
    };
    connect_array(&array, &col, o).unwrap_err().to_string()
}

fn decimals(values: &[Option<i128>], p: u8, s: i8) -> ArrayRef {
    Arc::new(
        Decimal128Array::from(values.to_vec())
            .with_precision_and_scale(p, s)
            .unwrap(),
    )
}

fn texts(values: &[Option<&str>]) -> ArrayRef {
    Arc::new(StringArray::from(values.to_vec()))
}

#[test]
fn decimal_handling_precise() {
    let pg = PgType::Numeric(Some((10, 2)));
    let (schema, v) = render(
        &pg,
        &opts(),
        decimals(&[Some(1234), Some(-100), None], 10, 2),
    );
    assert_eq!(
        schema,
        r#"{"type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2","connect.decimal.precision":"10"}}"#
    );
    assert_eq!(v, vec!["\"BNI=\"", "\"nA==\"", "null"]);

    // Beyond Decimal128 or with a negative scale the value arrives as text.
    let wide = PgType::Numeric(Some((5, -2)));
    let (_, v) = render(&wide, &opts(), texts(&[Some("12300"), Some("-100")]));
    // 12300 at scale -2 is 123 (0x7b); -100 is -1 (0xff).
    assert_eq!(v, vec!["\"ew==\"", "\"/w==\""]);
    assert!(conversion_error(&wide, &opts(), texts(&[Some("12345")])).contains("scale"));
    assert!(conversion_error(&pg, &opts(), texts(&[Some("NaN")])).contains("NaN"));

    // Without a typmod: VariableScaleDecimal, trailing zeros stripped (1.50 → 15, scale 1).
    let var = PgType::Numeric(None);
    let (schema, v) = render(
        &var,
        &opts(),
        texts(&[
            Some("1.50"),
            Some("100"),
            Some("0.000"),
            Some("-0.001"),
            None,
        ]),
    );
    assert_eq!(
        schema,
        r#"{"type":"struct","fields":[{"type":"int32","optional":false,"field":"scale"},{"type":"bytes","optional":false,"field":"value"}],"optional":true,"name":"io.debezium.data.VariableScaleDecimal","version":1,"doc":"Variable scaled decimal"}"#
    );
    assert_eq!(
        v,
        vec![
            r#"{"scale":1,"value":"Dw=="}"#,
            r#"{"scale":0,"value":"ZA=="}"#,
            r#"{"scale":0,"value":"AA=="}"#,
            r#"{"scale":3,"value":"/w=="}"#,
            "null"
        ]
    );
    let err = conversion_error(&var, &opts(), texts(&[Some("Infinity")]));
    assert!(
        err.contains("Infinity") && err.contains("decimal_handling"),
        "{err}"
    );
}

#[test]
fn decimal_handling_string_uses_bigdecimal_to_string() {
    let o = TypeOptions {
        decimal_handling: DecimalHandling::String,
        ..opts()
    };
    let fixed = PgType::NumericAs(Some((10, 2)), DecimalHandling::String);
    let (schema, v) = render(
        &fixed,
        &o,
        texts(&[
            Some("1.50"),
            Some("NaN"),
            Some("0.00"),
            Some("-12.00"),
            None,
        ]),
    );
    assert_eq!(schema, r#"{"type":"string","optional":true}"#);
    assert_eq!(
        v,
        vec!["\"1.50\"", "\"NAN\"", "\"0.00\"", "\"-12.00\"", "null"]
    );
    // BigDecimal.toString switches to E notation below an adjusted exponent of -6.
    let var = PgType::NumericAs(None, DecimalHandling::String);
    let (_, v) = render(
        &var,
        &o,
        texts(&[
            Some("0.000001"),
            Some("0.0000001"),
            Some("0.00000010"),
            Some("0.0000000"),
            Some("-Infinity"),
            Some("Infinity"),
            Some("123456789012345678901234567890.5"),
        ]),
    );
    assert_eq!(
        v,
        vec![
            "\"0.000001\"",
            "\"1E-7\"",
            "\"1.0E-7\"",
            "\"0E-7\"",
            "\"NEGATIVE_INFINITY\"",
            "\"POSITIVE_INFINITY\"",
            "\"123456789012345678901234567890.5\""
        ]
    );
    // A computed column (Decimal128) in string mode.
    let (_, v) = render(
        &PgType::Numeric(Some((12, 3))),
        &o,
        decimals(&[Some(1500), Some(-1)], 12, 3),
    );
    assert_eq!(v, vec!["\"1.500\"", "\"-0.001\""]);
}

#[test]
fn decimal_handling_double() {
    let o = TypeOptions {
        decimal_handling: DecimalHandling::Double,
        ..opts()
    };
    let pg = PgType::NumericAs(Some((10, 2)), DecimalHandling::Double);
    let a: ArrayRef = Arc::new(Float64Array::from(vec![
        Some(12.34),
        Some(f64::NAN),
        Some(f64::NEG_INFINITY),
        None,
    ]));
    let (schema, v) = render(&pg, &o, a);
    assert_eq!(schema, r#"{"type":"double","optional":true}"#);
    assert_eq!(v, vec!["12.34", "\"NaN\"", "\"-Infinity\"", "null"]);
    let (_, v) = render(
        &PgType::Numeric(Some((12, 3))),
        &o,
        decimals(&[Some(1500)], 12, 3),
    );
    assert_eq!(v, vec!["1.5"]);
    let (_, v) = render(
        &PgType::NumericAs(None, DecimalHandling::Double),
        &o,
        texts(&[Some("1e-20"), Some("NaN")]),
    );
    assert_eq!(v, vec!["1.0E-20", "\"NaN\""]);
}

#[test]
fn money_in_every_decimal_mode() {
    let cents = || decimals(&[Some(1234), Some(-5), Some(1_000_000_000)], 19, 2);
    let (schema, v) = render(&PgType::Money, &opts(), cents());
    assert_eq!(
        schema,
        r#"{"type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2"}}"#
    );
    assert_eq!(v[0], "\"BNI=\"");
    // money.fraction.digits = 1: HALF_UP, away from zero on ties (-0.05 → -0.1).
    let one = TypeOptions {
        money_fraction_digits: 1,
        ..opts()
    };
    let (schema, v) = render(&PgType::Money, &one, cents());
    assert!(schema.contains(r#""scale":"1""#), "{schema}");
    // 12.34 → 12.3 (123 = 0x7b), -0.05 → -0.1 (-1 = 0xff).
    assert_eq!(&v[..2], &["\"ew==\"", "\"/w==\""]);
    let four = TypeOptions {
        money_fraction_digits: 4,
        ..opts()
    };
    let (_, v) = render(&PgType::Money, &four, cents());
    // 12.3400 → 123400 = 0x01e208.
    assert_eq!(v[0], "\"AeII\"");

    let string = TypeOptions {
        decimal_handling: DecimalHandling::String,
        ..opts()
    };
    let (schema, v) = render(&PgType::Money, &string, cents());
    assert_eq!(schema, r#"{"type":"string","optional":true}"#);
    // String.valueOf(double), as Debezium writes it.
    assert_eq!(v, vec!["\"12.34\"", "\"-0.05\"", "\"1.0E7\""]);
    let double = TypeOptions {
        decimal_handling: DecimalHandling::Double,
        ..opts()
    };
    let (_, v) = render(&PgType::Money, &double, cents());
    assert_eq!(v, vec!["12.34", "-0.05", "1.0E7"]);
}

#[test]
fn time_precision_modes() {
    let days: ArrayRef = Arc::new(Date32Array::from(vec![
        Some(19737),
        Some(i32::MAX),
        Some(i32::MIN),
    ]));
    let (schema, v) = render(&PgType::Date, &opts(), Arc::clone(&days));
    assert_eq!(
        schema,
        r#"{"type":"int32","optional":true,"name":"io.debezium.time.Date","version":1}"#
    );
    assert_eq!(v, vec!["19737", "-2147472692", "-2147472691"]);
    let connect = TypeOptions {
        time_precision: TimePrecision::Connect,
        ..opts()
    };
    let (schema, v) = render(&PgType::Date, &connect, days);
    assert!(schema.contains("org.apache.kafka.connect.data.Date"));
    assert_eq!(v[0], "19737");

    // 12:34:56.789012
    let t: ArrayRef = Arc::new(Time64MicrosecondArray::from(vec![45_296_789_012]));
    let micro_time = TypeOptions {
        time_precision: TimePrecision::AdaptiveTimeMicroseconds,
        ..opts()
    };
    for (pg, o, name, value) in [
        (PgType::Time(3), opts(), "io.debezium.time.Time", "45296789"),
        (
            PgType::Time(6),
            opts(),
            "io.debezium.time.MicroTime",
            "45296789012",
        ),
        (
            PgType::Time(3),
            micro_time.clone(),
            "io.debezium.time.MicroTime",
            "45296789012",
        ),
        (
            PgType::Time(6),
            connect.clone(),
            "org.apache.kafka.connect.data.Time",
            "45296789",
        ),
    ] {
        let (schema, v) = render(&pg, &o, Arc::clone(&t));
        assert!(schema.contains(name), "{pg} {o:?}: {schema}");
        assert_eq!(v, vec![value], "{pg} {o:?}");
    }
    assert!(render(&PgType::Time(6), &connect, Arc::clone(&t))
        .0
        .contains(r#""type":"int32""#));

    let ts: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![
        1_705_314_600_123_456,
        -1,
        i64::MAX,
        i64::MIN,
    ]));
    let (schema, v) = render(&PgType::Timestamp(6), &opts(), Arc::clone(&ts));
    assert!(schema.contains("io.debezium.time.MicroTimestamp"));
    assert_eq!(
        v,
        vec![
            "1705314600123456",
            "-1",
            "9223372036825200000",
            "-9223372036832400000"
        ]
    );
    let (schema, v) = render(&PgType::Timestamp(3), &micro_time, Arc::clone(&ts));
    assert!(schema.contains(r#""name":"io.debezium.time.Timestamp""#));
    assert_eq!(
        v,
        vec![
            "1705314600123",
            "-1",
            "9223372036825200",
            "-9223372036832400"
        ]
    );
    let (schema, v) = render(&PgType::Timestamp(6), &connect, ts);
    assert!(schema.contains("org.apache.kafka.connect.data.Timestamp"));
    assert_eq!(v[0], "1705314600123");

    // timestamptz ignores the mode.
    let tz: ArrayRef = Arc::new(
        TimestampMicrosecondArray::from(vec![1_705_314_600_000_000, i64::MAX]).with_timezone("UTC"),
    );
    let (schema, v) = render(&PgType::Timestamptz(6), &connect, tz);
    assert!(schema.contains("io.debezium.time.ZonedTimestamp"));
    assert_eq!(v, vec!["\"2024-01-15T10:30:00.000000Z\"", "\"infinity\""]);
}

#[test]
fn binary_handling_modes() {
    let a: ArrayRef = Arc::new(BinaryArray::from(vec![
        Some(&[0xfb, 0xff, 0x00][..]),
        Some(&[][..]),
        None,
    ]));
    let expect = [
        (
            BinaryHandling::Bytes,
            r#"{"type":"bytes","optional":true}"#,
            "\"+/8A\"",
        ),
        (
            BinaryHandling::Base64,
            r#"{"type":"string","optional":true}"#,
            "\"+/8A\"",
        ),
        (
            BinaryHandling::Base64UrlSafe,
            r#"{"type":"string","optional":true}"#,
            "\"-_8A\"",
        ),
        (
            BinaryHandling::Hex,
            r#"{"type":"string","optional":true}"#,
            "\"fbff00\"",
        ),
    ];
    for (mode, schema_want, first) in expect {
        let o = TypeOptions {
            binary_handling: mode,
            ..opts()
        };
        let (schema, v) = render(&PgType::Bytea, &o, Arc::clone(&a));
        assert_eq!(schema, schema_want, "{mode:?}");
        assert_eq!(v, vec![first, "\"\"", "null"], "{mode:?}");
    }
    // One padding case: Java's URL encoder keeps the padding.
    let o = TypeOptions {
        binary_handling: BinaryHandling::Base64UrlSafe,
        ..opts()
    };
    let (_, v) = render(
        &PgType::Bytea,
        &o,
        Arc::new(BinaryArray::from(vec![&[0xff][..]])),
    );
    assert_eq!(v, vec!["\"_w==\""]);
}

#[test]
fn interval_handling_modes() {
    let iv: ArrayRef = Arc::new(IntervalMonthDayNanoArray::from(vec![
        // 1 mon 2 days 03:04:05.5 (reference §5)
        IntervalMonthDayNano::new(1, 2, 11_045_500_000_000),
        // 1 year 2 mons -3 days -04:05:06.000001
        IntervalMonthDayNano::new(14, -3, -14_706_000_001_000),
        IntervalMonthDayNano::new(0, 0, 0),
        // -00:00:00.5
        IntervalMonthDayNano::new(0, 0, -500_000_000),
    ]));
    let (schema, v) = render(&PgType::Interval, &opts(), Arc::clone(&iv));
    assert_eq!(
        schema,
        r#"{"type":"int64","optional":true,"name":"io.debezium.time.MicroDuration","version":1}"#
    );
    // 14 months = 426.125 days; minus 3 days and 4:05:06.000001 →
    // (423.125 * 86400 - 14706.000001) s.
    assert_eq!(v, vec!["2813645500000", "36543293999999", "0", "-500000"]);
    let o = TypeOptions {
        interval_handling: IntervalHandling::String,
        ..opts()
    };
    let (schema, v) = render(&PgType::Interval, &o, iv);
    assert_eq!(
        schema,
        r#"{"type":"string","optional":true,"name":"io.debezium.time.Interval","version":1}"#
    );
    assert_eq!(
        v,
        vec![
            "\"P0Y1M2DT3H4M5.5S\"",
            "\"P1Y2M-3DT-4H-5M-6.000001S\"",
            "\"P0Y0M0DT0H0M0S\"",
            "\"P0Y0M0DT0H0M-0.5S\""
        ]
    );
}

fn hstore_array() -> ArrayRef {
    let mut b = MapBuilder::new(
        Some(datafusion::arrow::array::MapFieldNames {
            entry: "entries".into(),
            key: "keys".into(),
            value: "values".into(),
        }),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    b.keys().append_value("a");
    b.values().append_value("1");
    b.keys().append_value("q\"");
    b.values().append_null();
    b.append(true).unwrap();
    b.append(false).unwrap();
    b.append(true).unwrap();
    Arc::new(b.finish())
}

#[test]
fn hstore_handling_modes() {
    let (schema, v) = render(&PgType::Hstore, &opts(), hstore_array());
    assert_eq!(
        schema,
        r#"{"type":"string","optional":true,"name":"io.debezium.data.Json","version":1}"#
    );
    assert_eq!(
        v,
        vec![r#""{\"a\":\"1\",\"q\\\"\":null}""#, "null", r#""{}""#]
    );
    let o = TypeOptions {
        hstore_handling: HstoreHandling::Map,
        ..opts()
    };
    let (schema, v) = render(&PgType::Hstore, &o, hstore_array());
    assert_eq!(
        schema,
        r#"{"type":"map","keys":{"type":"string","optional":false},"values":{"type":"string","optional":true},"optional":true}"#
    );
    assert_eq!(v, vec![r#"{"a":"1","q\"":null}"#, "null", "{}"]);
}

#[test]
fn bits_follow_java_bitset() {
    let (schema, v) = render(
        &PgType::Bit(16),
        &opts(),
        texts(&[
            Some("0000000000000101"),
            Some("0001000000000000"),
            Some("0000000000000000"),
            None,
        ]),
    );
    assert_eq!(
        schema,
        r#"{"type":"bytes","optional":true,"name":"io.debezium.data.Bits","version":1,"parameters":{"length":"16"}}"#
    );
    // B'101' → 0x05; bit 12 set → little-endian [0x00, 0x10]; all zero → no bytes.
    assert_eq!(v, vec!["\"BQ==\"", "\"ABA=\"", "\"\"", "null"]);
    let (schema, _) = render(&PgType::Varbit(None), &opts(), texts(&[Some("1")]));
    assert!(schema.contains(r#""length":"2147483647""#), "{schema}");
    let (schema, v) = render(
        &PgType::Bit(1),
        &opts(),
        Arc::new(BooleanArray::from(vec![true])),
    );
    assert_eq!(schema, r#"{"type":"boolean","optional":true}"#);
    assert_eq!(v, vec!["true"]);
}

#[test]
fn point_has_little_endian_wkb() {
    let a: ArrayRef = Arc::new(StructArray::new(
        crate::types::point_fields(),
        vec![
            Arc::new(Float64Array::from(vec![1.0, 0.0])),
            Arc::new(Float64Array::from(vec![2.0, 0.0])),
        ],
        Some(vec![true, false].into()),
    ));
    let (schema, v) = render(&PgType::Point, &opts(), a);
    assert_eq!(
        schema,
        r#"{"type":"struct","fields":[{"type":"double","optional":false,"field":"x"},{"type":"double","optional":false,"field":"y"},{"type":"bytes","optional":true,"field":"wkb"},{"type":"int32","optional":true,"field":"srid"}],"optional":true,"name":"io.debezium.data.geometry.Point","version":1,"doc":"Geometry (POINT)"}"#
    );
    // 01 | 01000000 | 1.0 LE | 2.0 LE
    assert_eq!(
        v,
        vec![
            r#"{"x":1.0,"y":2.0,"wkb":"AQEAAAAAAAAAAADwPwAAAAAAAABA","srid":null}"#,
            "null"
        ]
    );
}

#[test]
fn arrays_enums_and_text_types() {
    let mood = PgType::Enum {
        name: "mood".into(),
        labels: vec!["sad".into(), "ok".into(), "happy".into()],
    };
    let (schema, v) = render(&mood, &opts(), texts(&[Some("ok")]));
    assert_eq!(
        schema,
        r#"{"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"sad,ok,happy"}}"#
    );
    assert_eq!(v, vec!["\"ok\""]);

    // numeric(10,2)[]: items are the element schema made optional.
    let mut b = ListBuilder::new(
        Decimal128Builder::new()
            .with_precision_and_scale(10, 2)
            .unwrap(),
    );
    b.values().append_value(1234);
    b.values().append_null();
    b.append(true);
    b.append(false);
    b.append(true);
    let arr = PgType::Array(Box::new(PgType::Numeric(Some((10, 2)))));
    let (schema, v) = render(&arr, &opts(), Arc::new(b.finish()));
    assert_eq!(
        schema,
        r#"{"type":"array","items":{"type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2","connect.decimal.precision":"10"}},"optional":true}"#
    );
    assert_eq!(v, vec!["[\"BNI=\",null]", "null", "[]"]);

    // Debezium's enum arrays build the item schema without making it optional.
    let enum_arr = PgType::Array(Box::new(mood));
    let s = column_schema(&enum_arr, true, &opts()).to_connect_json();
    assert!(
        s.starts_with(r#"{"type":"array","items":{"type":"string","optional":false"#),
        "{s}"
    );

    // Text-printed types pass through as STRING with their semantic names.
    for (pg, name) in [
        (PgType::Inet, None),
        (PgType::Range(RangeType::Tstz), None),
        (PgType::Ltree, Some("io.debezium.data.Ltree")),
        (PgType::Tsvector, Some("io.debezium.data.Tsvector")),
        (PgType::Xml, Some("io.debezium.data.Xml")),
        (PgType::Timetz(6), Some("io.debezium.time.ZonedTime")),
        (PgType::Citext, None),
        (PgType::Char, None),
    ] {
        let (schema, v) = render(&pg, &opts(), texts(&[Some("x"), None]));
        match name {
            Some(n) => assert!(schema.contains(n), "{pg}: {schema}"),
            None => assert_eq!(schema, r#"{"type":"string","optional":true}"#, "{pg}"),
        }
        assert_eq!(v, vec!["\"x\"", "null"]);
    }
    assert_eq!(
        column_schema(&PgType::Oid, false, &opts()).to_connect_json(),
        r#"{"type":"int64","optional":false}"#
    );
}

#[test]
fn postgis_geometry_and_geography() {
    // EWKB of SRID=4326;POINT(1 2), little-endian, and of POINT(1 2) without SRID.
    let mut with_srid = vec![1u8];
    with_srid.extend((1u32 | 0x2000_0000).to_le_bytes());
    with_srid.extend(4326u32.to_le_bytes());
    with_srid.extend(1.0f64.to_le_bytes());
    with_srid.extend(2.0f64.to_le_bytes());
    let mut plain = vec![0u8]; // big-endian
    plain.extend(1u32.to_be_bytes());
    plain.extend(1.0f64.to_be_bytes());
    plain.extend(2.0f64.to_be_bytes());
    let a: ArrayRef = Arc::new(BinaryArray::from(vec![
        Some(&with_srid[..]),
        Some(&plain[..]),
        None,
    ]));
    let (schema, v) = render(&PgType::Geometry, &opts(), Arc::clone(&a));
    assert_eq!(
        schema,
        r#"{"type":"struct","fields":[{"type":"bytes","optional":false,"field":"wkb"},{"type":"int32","optional":true,"field":"srid"}],"optional":true,"name":"io.debezium.data.geometry.Geometry","version":1,"doc":"Geometry"}"#
    );
    let b64 = |b: &[u8]| {
        let mut o = Vec::new();
        base64_into(&mut o, b);
        String::from_utf8(o).unwrap()
    };
    assert_eq!(
        v,
        vec![
            format!(r#"{{"wkb":"{}","srid":4326}}"#, b64(&with_srid)),
            format!(r#"{{"wkb":"{}","srid":null}}"#, b64(&plain)),
            "null".to_string()
        ]
    );
    let (schema, _) = render(&PgType::Geography, &opts(), a);
    assert!(schema
        .contains(r#""name":"io.debezium.data.geometry.Geography","version":1,"doc":"Geography""#));
    let short: ArrayRef = Arc::new(BinaryArray::from(vec![&[1u8, 1, 0][..]]));
    assert!(conversion_error(&PgType::Geometry, &opts(), short).contains("EWKB"));
}

#[test]
fn pgvector_types() {
    let mut b = ListBuilder::new(datafusion::arrow::array::Float32Builder::new());
    b.values().append_value(0.1);
    b.values().append_value(-2.5);
    b.append(true);
    b.append(false);
    let vectors: ArrayRef = Arc::new(b.finish());
    // Debezium parses pgvector's shortest float4 text as a double: 0.1f → 0.1, not 0.10000000149.
    let (schema, v) = render(&PgType::Vector, &opts(), Arc::clone(&vectors));
    assert_eq!(
        schema,
        r#"{"type":"array","items":{"type":"double","optional":false},"optional":true,"name":"io.debezium.data.DoubleVector","version":1}"#
    );
    assert_eq!(v, vec!["[0.1,-2.5]", "null"]);
    let (schema, v) = render(&PgType::Halfvec, &opts(), vectors);
    assert!(schema.contains(r#""items":{"type":"float","optional":false}"#));
    assert!(schema.contains("io.debezium.data.FloatVector"));
    assert_eq!(v, vec!["[0.1,-2.5]", "null"]);

    let mut m = MapBuilder::new(
        Some(datafusion::arrow::array::MapFieldNames {
            entry: "entries".into(),
            key: "keys".into(),
            value: "values".into(),
        }),
        datafusion::arrow::array::Int32Builder::new(),
        datafusion::arrow::array::Float32Builder::new(),
    );
    m.keys().append_value(1);
    m.values().append_value(1.5);
    m.keys().append_value(3);
    m.values().append_value(0.1);
    m.append(true).unwrap();
    let sparse: ArrayRef = Arc::new(StructArray::new(
        crate::types::sparsevec_fields(),
        vec![Arc::new(Int32Array::from(vec![5])), Arc::new(m.finish())],
        None,
    ));
    let (schema, v) = render(&PgType::Sparsevec, &opts(), sparse);
    assert_eq!(
        schema,
        r#"{"type":"struct","fields":[{"type":"int16","optional":false,"field":"dimensions"},{"type":"map","keys":{"type":"int16","optional":false},"values":{"type":"double","optional":false},"optional":false,"field":"vector"}],"optional":true,"name":"io.debezium.data.SparseDoubleVector","version":1,"doc":"Sparse double vector"}"#
    );
    // A map with non-string keys is written as [[key,value],...] by JsonConverter.
    assert_eq!(v, vec![r#"{"dimensions":5,"vector":[[1,1.5],[3,0.1]]}"#]);
}

/// The rows a conversion names as bad, with the column.
fn bad_rows(pg: &PgType, o: &TypeOptions, array: ArrayRef) -> (String, Vec<usize>) {
    let col = OutputColumn {
        name: "v".into(),
        pg_type: pg.clone(),
        nullable: true,
    };
    match connect_array(&array, &col, o) {
        Err(EnvelopeError::Rows { column, rows }) => {
            (column, rows.into_iter().map(|(r, _)| r).collect())
        }
        other => panic!("expected bad rows, got {other:?}"),
    }
}

#[test]
fn a_conversion_names_every_bad_row() {
    let values = texts(&[Some("1"), Some("NaN"), None, Some("Infinity"), Some("2")]);
    for pg in [PgType::Numeric(None), PgType::Numeric(Some((60, 2)))] {
        assert_eq!(
            bad_rows(&pg, &opts(), values.clone()),
            ("v".to_string(), vec![1, 3]),
            "{pg}"
        );
    }
    // 'string' and 'double' write NaN, but not text that is no number.
    let junk = texts(&[Some("1"), Some("x"), Some("2"), Some("y")]);
    for mode in [DecimalHandling::String, DecimalHandling::Double] {
        let o = TypeOptions {
            decimal_handling: mode,
            ..opts()
        };
        assert_eq!(
            bad_rows(&PgType::Numeric(None), &o, junk.clone()).1,
            vec![1, 3]
        );
    }
    // In arrays, the rows are the lists holding the bad elements.
    let mut lists = ListBuilder::new(StringBuilder::new());
    for row in [
        vec!["1"],
        vec!["2", "NaN", "NaN"],
        vec![],
        vec!["NaN"],
        vec!["3"],
    ] {
        for v in row {
            lists.values().append_value(v);
        }
        lists.append(true);
    }
    let array: ArrayRef = Arc::new(lists.finish());
    let pg = PgType::Array(Box::new(PgType::Numeric(None)));
    assert_eq!(bad_rows(&pg, &opts(), array).1, vec![1, 3]);
    // The message names the first and counts the others.
    let err = conversion_error(&PgType::Numeric(None), &opts(), values);
    assert!(
        err.starts_with("column `v`: NaN cannot be written as a Decimal")
            && err.ends_with("(and 1 more row(s))"),
        "{err}"
    );
}

proptest::proptest! {
    /// The hand-written digits agree with `fmt` and with Arrow's own rendering of the
    /// timestamp (chrono), for every precision and any year from 0 to 9999.
    #[test]
    fn zoned_timestamp_digits_match_fmt(us in -62_167_219_200_000_000i64..253_402_300_799_999_999, p in 0u8..=6) {
        let mut ours = String::new();
        format_zoned_timestamp(us, p, &mut ours);
        let days = us.div_euclid(86_400_000_000);
        let micros_of_day = us.rem_euclid(86_400_000_000);
        let (y, m, d) = crate::types::civil_from_days(days);
        let secs = micros_of_day / 1_000_000;
        let mut expect = format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            secs / 3600,
            (secs / 60) % 60,
            secs % 60
        );
        if p > 0 {
            let frac = micros_of_day % 1_000_000;
            expect.push_str(&format!(".{:0w$}", frac / 10i64.pow(6 - p as u32), w = p as usize));
        }
        expect.push('Z');
        proptest::prop_assert_eq!(&ours, &expect);
        let arrow = datafusion::arrow::array::TimestampMicrosecondArray::from(vec![us]);
        let shown = datafusion::arrow::util::display::array_value_to_string(&arrow, 0).unwrap();
        // Arrow prints `YYYY-MM-DDTHH:MM:SS[.ffffff]`; compare the whole-second part.
        proptest::prop_assert_eq!(&ours[..19], &shown[..19]);
    }
}
