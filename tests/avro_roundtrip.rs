//! Random Arrow rows encoded by cdcql's Avro encoder must decode, with apache-avro and the
//! schema cdcql generates, to the same values: every Connect type, nulls at every level, a
//! default, a named record used twice, arrays, tombstones and sliced batches.

use std::sync::Arc;

use apache_avro::types::Value;
use apache_avro::Decimal;
use cdcql::connect::{ConnectType, DefaultValue, Field, Schema};
use cdcql::encode::avro::AvroEncoder;
use cdcql::encode::EncodedColumn;
use datafusion::arrow::array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Decimal128Array, Float32Array, Float64Array,
    Int16Array, Int32Builder, Int64Array, Int8Array, ListBuilder, StringArray, StringBuilder,
    StructArray,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{Field as ArrowField, Fields};
use proptest::prelude::*;

const SCALE: i8 = 4;
const MAX_UNSCALED: i128 = 10i128.pow(38) - 1;
const SNAP_DEFAULT: &str = "dflt";

#[derive(Debug, Clone)]
struct Inner {
    x: i64,
    name: Option<String>,
    tags: Option<Vec<Option<String>>>,
}

#[derive(Debug, Clone)]
struct Row {
    present: bool,
    b: bool,
    i8: Option<i8>,
    i16: i16,
    i32: Option<i32>,
    i64: i64,
    f32: Option<f32>,
    f64: f64,
    s: Option<String>,
    snap: Option<String>,
    by: Option<Vec<u8>>,
    dec: Option<i128>,
    inner: Option<Inner>,
    nums: Vec<i32>,
    inner2: Option<Inner>,
}

fn s(ty: ConnectType) -> Schema {
    Schema::new(ty)
}

fn inner_schema() -> Schema {
    s(ConnectType::Struct(vec![
        Field::new("x", s(ConnectType::Int64)),
        Field::new("name", s(ConnectType::String).optional(true)),
        Field::new(
            "tags",
            s(ConnectType::Array(Box::new(
                s(ConnectType::String).optional(true),
            )))
            .optional(true),
        ),
    ]))
    .named("p.Inner")
    .optional(true)
}

fn schema() -> Schema {
    s(ConnectType::Struct(vec![
        Field::new("b", s(ConnectType::Boolean)),
        Field::new("i8", s(ConnectType::Int8).optional(true)),
        Field::new("i16", s(ConnectType::Int16)),
        Field::new("i32", s(ConnectType::Int32).optional(true)),
        Field::new("i64", s(ConnectType::Int64)),
        Field::new("f32", s(ConnectType::Float32).optional(true)),
        Field::new("f64", s(ConnectType::Float64)),
        Field::new("s", s(ConnectType::String).optional(true)),
        Field::new(
            "snap",
            s(ConnectType::String)
                .optional(true)
                .with_default(DefaultValue::String(SNAP_DEFAULT.into())),
        ),
        Field::new("by", s(ConnectType::Bytes).optional(true)),
        Field::new(
            "dec",
            s(ConnectType::Bytes)
                .named("org.apache.kafka.connect.data.Decimal")
                .version(1)
                .param("scale", SCALE.to_string())
                .param("connect.decimal.precision", "38")
                .optional(true),
        ),
        Field::new("inner", inner_schema()),
        Field::new(
            "nums",
            s(ConnectType::Array(Box::new(s(ConnectType::Int32)))),
        ),
        Field::new("inner2", inner_schema()),
    ]))
    .named("p.R")
}

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,12}"
}

fn float32() -> impl Strategy<Value = f32> {
    any::<f32>().prop_filter("NaN never equals itself", |f| !f.is_nan())
}

fn inner() -> impl Strategy<Value = Inner> {
    (
        any::<i64>(),
        proptest::option::of(text()),
        proptest::option::of(proptest::collection::vec(
            proptest::option::of(text()),
            0..4,
        )),
    )
        .prop_map(|(x, name, tags)| Inner { x, name, tags })
}

fn row() -> impl Strategy<Value = Row> {
    let scalars = (
        proptest::bool::weighted(0.9),
        any::<bool>(),
        proptest::option::of(any::<i8>()),
        any::<i16>(),
        proptest::option::of(any::<i32>()),
        any::<i64>(),
        proptest::option::of(float32()),
        any::<f64>().prop_filter("NaN never equals itself", |f| !f.is_nan()),
    );
    let rest = (
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
        proptest::option::of(-MAX_UNSCALED..=MAX_UNSCALED),
        proptest::option::of(inner()),
        proptest::collection::vec(any::<i32>(), 0..4),
        proptest::option::of(inner()),
    );
    (scalars, rest).prop_map(
        |((present, b, i8, i16, i32, i64, f32, f64), (s, snap, by, dec, inner, nums, inner2))| {
            Row {
                present,
                b,
                i8,
                i16,
                i32,
                i64,
                f32,
                f64,
                s,
                snap,
                by,
                dec,
                inner,
                nums,
                inner2,
            }
        },
    )
}

fn struct_array(columns: Vec<(&str, ArrayRef)>, valid: Option<Vec<bool>>) -> StructArray {
    let fields: Vec<ArrowField> = columns
        .iter()
        .map(|(n, a)| ArrowField::new(*n, a.data_type().clone(), true))
        .collect();
    StructArray::new(
        Fields::from(fields),
        columns.into_iter().map(|(_, a)| a).collect(),
        valid.map(NullBuffer::from),
    )
}

fn inner_array(items: Vec<Option<&Inner>>) -> ArrayRef {
    let mut tags = ListBuilder::new(StringBuilder::new());
    for i in &items {
        match i.and_then(|i| i.tags.as_ref()) {
            Some(t) => {
                for tag in t {
                    tags.values().append_option(tag.as_deref());
                }
                tags.append(true);
            }
            None => tags.append(false),
        }
    }
    Arc::new(struct_array(
        vec![
            (
                "x",
                // A null struct's children still need a value; it must never be read.
                Arc::new(Int64Array::from_iter_values(
                    items.iter().map(|i| i.map_or(-1, |i| i.x)),
                )),
            ),
            (
                "name",
                Arc::new(StringArray::from_iter(
                    items.iter().map(|i| i.and_then(|i| i.name.clone())),
                )),
            ),
            ("tags", Arc::new(tags.finish())),
        ],
        Some(items.iter().map(Option::is_some).collect()),
    ))
}

fn arrow(rows: &[Row]) -> StructArray {
    let mut nums = ListBuilder::new(Int32Builder::new());
    for r in rows {
        nums.values().append_slice(&r.nums);
        nums.append(true);
    }
    let nums = nums.finish();
    // The list's item field must be non-nullable like the Connect items; ListBuilder makes it
    // nullable, which does not matter to the encoder (it reads the null buffer).
    struct_array(
        vec![
            (
                "b",
                Arc::new(BooleanArray::from(
                    rows.iter().map(|r| r.b).collect::<Vec<_>>(),
                )),
            ),
            (
                "i8",
                Arc::new(Int8Array::from_iter(rows.iter().map(|r| r.i8))),
            ),
            (
                "i16",
                Arc::new(Int16Array::from_iter_values(rows.iter().map(|r| r.i16))),
            ),
            (
                "i32",
                Arc::new(datafusion::arrow::array::Int32Array::from_iter(
                    rows.iter().map(|r| r.i32),
                )),
            ),
            (
                "i64",
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.i64))),
            ),
            (
                "f32",
                Arc::new(Float32Array::from_iter(rows.iter().map(|r| r.f32))),
            ),
            (
                "f64",
                Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.f64))),
            ),
            (
                "s",
                Arc::new(StringArray::from_iter(rows.iter().map(|r| r.s.clone()))),
            ),
            (
                "snap",
                Arc::new(StringArray::from_iter(rows.iter().map(|r| r.snap.clone()))),
            ),
            (
                "by",
                Arc::new(BinaryArray::from_iter(rows.iter().map(|r| r.by.clone()))),
            ),
            (
                "dec",
                Arc::new(
                    Decimal128Array::from_iter(rows.iter().map(|r| r.dec))
                        .with_precision_and_scale(38, SCALE)
                        .unwrap(),
                ),
            ),
            (
                "inner",
                inner_array(rows.iter().map(|r| r.inner.as_ref()).collect()),
            ),
            ("nums", Arc::new(nums)),
            (
                "inner2",
                inner_array(rows.iter().map(|r| r.inner2.as_ref()).collect()),
            ),
        ],
        Some(rows.iter().map(|r| r.present).collect()),
    )
}

/// `BigInteger.toByteArray()` of the unscaled value, computed independently of the encoder.
fn unscaled_bytes(v: i128) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let sign = if v < 0 { 0xff } else { 0x00 };
    let mut start = 0;
    while start + 1 < bytes.len()
        && bytes[start] == sign
        && (bytes[start + 1] & 0x80) == (sign & 0x80)
    {
        start += 1;
    }
    bytes[start..].to_vec()
}

fn opt(v: Option<Value>) -> Value {
    match v {
        None => Value::Union(0, Box::new(Value::Null)),
        Some(v) => Value::Union(1, Box::new(v)),
    }
}

fn expected_inner(i: &Option<Inner>) -> Value {
    opt(i.as_ref().map(|i| {
        Value::Record(vec![
            ("x".into(), Value::Long(i.x)),
            ("name".into(), opt(i.name.clone().map(Value::String))),
            (
                "tags".into(),
                opt(i.tags.as_ref().map(|t| {
                    Value::Array(
                        t.iter()
                            .map(|s| opt(s.clone().map(Value::String)))
                            .collect(),
                    )
                })),
            ),
        ])
    }))
}

fn expected(r: &Row) -> Value {
    Value::Record(vec![
        ("b".into(), Value::Boolean(r.b)),
        ("i8".into(), opt(r.i8.map(|v| Value::Int(v.into())))),
        ("i16".into(), Value::Int(r.i16.into())),
        ("i32".into(), opt(r.i32.map(Value::Int))),
        ("i64".into(), Value::Long(r.i64)),
        ("f32".into(), opt(r.f32.map(Value::Float))),
        ("f64".into(), Value::Double(r.f64)),
        ("s".into(), opt(r.s.clone().map(Value::String))),
        (
            // A default puts the string first, and a null is written as the default.
            "snap".into(),
            Value::Union(
                0,
                Box::new(Value::String(
                    r.snap.clone().unwrap_or_else(|| SNAP_DEFAULT.into()),
                )),
            ),
        ),
        ("by".into(), opt(r.by.clone().map(Value::Bytes))),
        (
            "dec".into(),
            opt(r.dec.map(|d| Value::Bytes(unscaled_bytes(d)))),
        ),
        ("inner".into(), expected_inner(&r.inner)),
        (
            "nums".into(),
            Value::Array(r.nums.iter().map(|&n| Value::Int(n)).collect()),
        ),
        ("inner2".into(), expected_inner(&r.inner2)),
    ])
}

/// Decimals as their exact bytes, so that a non-minimal encoding shows (apache-avro's Decimal
/// compares numbers only).
fn exact(v: Value) -> Value {
    match v {
        Value::Decimal(d) => Value::Bytes(Vec::<u8>::try_from(&d).unwrap()),
        Value::Union(i, v) => Value::Union(i, Box::new(exact(*v))),
        Value::Record(f) => Value::Record(f.into_iter().map(|(k, v)| (k, exact(v))).collect()),
        Value::Array(a) => Value::Array(a.into_iter().map(exact).collect()),
        other => other,
    }
}

fn roundtrip(rows: &[Row], offset: usize, len: usize) -> Result<(), TestCaseError> {
    let schema = schema();
    let mut encoder = AvroEncoder::new(&schema).unwrap();
    encoder.set_schema_id(0x01020304);
    let avro = apache_avro::Schema::parse_str(encoder.schema_json()).unwrap();
    let batch = arrow(rows).slice(offset, len);
    let mut out = EncodedColumn::default();
    encoder.encode(&batch, &mut out).unwrap();
    prop_assert_eq!(out.len(), len);
    for (i, row) in rows[offset..offset + len].iter().enumerate() {
        let Some(msg) = out.get(i) else {
            prop_assert!(!row.present, "row {} lost its message", i);
            continue;
        };
        prop_assert!(row.present, "a tombstone got bytes");
        prop_assert_eq!(&msg[..5], &[0u8, 1, 2, 3, 4][..]);
        let mut body = &msg[5..];
        let decoded = apache_avro::reader::datum::GenericDatumReader::builder(&avro)
            .build()
            .unwrap()
            .read_value(&mut body)
            .unwrap();
        prop_assert!(body.is_empty(), "{} bytes after the datum", body.len());
        prop_assert_eq!(exact(decoded), expected(row));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_rows_decode_to_the_same_values(
        (rows, offset, len) in proptest::collection::vec(row(), 1..12).prop_flat_map(|rows| {
            let n = rows.len();
            (Just(rows), 0..n).prop_flat_map(move |(rows, offset)| {
                (Just(rows), Just(offset), 0..=n - offset)
            })
        })
    ) {
        roundtrip(&rows, offset, len)?;
    }
}

#[test]
fn decimal_extremes_decode() {
    // Single rows at the edges of the two's-complement byte lengths.
    for v in [
        0i128,
        1,
        -1,
        127,
        128,
        -128,
        -129,
        255,
        256,
        MAX_UNSCALED,
        -MAX_UNSCALED,
    ] {
        assert_eq!(
            Decimal::from(unscaled_bytes(v)),
            Decimal::from(v.to_be_bytes().to_vec()),
            "{v}"
        );
        let row = Row {
            present: true,
            b: false,
            i8: None,
            i16: 0,
            i32: None,
            i64: 0,
            f32: None,
            f64: 0.0,
            s: None,
            snap: None,
            by: None,
            dec: Some(v),
            inner: None,
            nums: vec![],
            inner2: None,
        };
        roundtrip(&[row], 0, 1).unwrap();
    }
}
