//! Byte-for-byte checks of the Avro encoder on small fixtures; every expected byte is worked out
//! by hand from the Avro spec in the comments.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Decimal128Array, Float32Array, Float64Array,
    Int16Array, Int32Array, Int32Builder, Int64Array, Int8Array, ListBuilder, MapBuilder,
    StringArray, StringBuilder, StructArray,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{DataType, Field as ArrowField, Fields};

use super::binary::{Column, Shape};
use super::*;
use crate::connect::{ConnectType, DefaultValue, Field};

const ID: u32 = 42;
/// Magic byte, then 42 as a 4-byte big-endian id.
const HEADER: [u8; 5] = [0, 0, 0, 0, 42];

fn s(ty: ConnectType) -> Schema {
    Schema::new(ty)
}

fn record(fields: Vec<Field>) -> Schema {
    s(ConnectType::Struct(fields)).named("t.R")
}

fn batch(columns: Vec<(&str, ArrayRef)>) -> StructArray {
    StructArray::from(
        columns
            .into_iter()
            .map(|(n, a)| (Arc::new(ArrowField::new(n, a.data_type().clone(), true)), a))
            .collect::<Vec<_>>(),
    )
}

fn encode(schema: &Schema, rows: &StructArray) -> Result<EncodedColumn, EncodeError> {
    let mut enc = AvroEncoder::new(schema)?;
    enc.set_schema_id(ID);
    let mut out = EncodedColumn::default();
    enc.encode(rows, &mut out)?;
    Ok(out)
}

/// The message bodies, header checked and stripped; `None` for rows without a message.
fn bodies(schema: &Schema, rows: &StructArray) -> Vec<Option<Vec<u8>>> {
    let out = encode(schema, rows).unwrap();
    (0..out.len())
        .map(|i| {
            out.get(i).map(|m| {
                assert_eq!(m[..5], HEADER, "Confluent framing");
                m[5..].to_vec()
            })
        })
        .collect()
}

#[test]
fn the_reference_key_bytes() {
    // debezium-format.md §4: key {id:1} with schema id 7 → 00 00 00 00 07 02.
    let schema = s(ConnectType::Struct(vec![Field::new(
        "id",
        s(ConnectType::Int32),
    )]))
    .named("dbserver1.public.orders.Key");
    let mut enc = AvroEncoder::new(&schema).unwrap();
    enc.set_schema_id(7);
    assert_eq!(enc.schema_id(), Some(7));
    let mut out = EncodedColumn::default();
    let rows = batch(vec![("id", Arc::new(Int32Array::from(vec![1])))]);
    enc.encode(&rows, &mut out).unwrap();
    assert_eq!(out.get(0), Some(&[0u8, 0, 0, 0, 7, 2][..]));
}

#[test]
fn ints_strings_and_their_varints() {
    let schema = record(vec![
        Field::new("a", s(ConnectType::Int32)),
        Field::new("b", s(ConnectType::Int64)),
        Field::new("c", s(ConnectType::Int8)),
        Field::new("d", s(ConnectType::Int16)),
        Field::new("s", s(ConnectType::String)),
    ]);
    let rows = batch(vec![
        ("a", Arc::new(Int32Array::from(vec![1, 300]))),
        ("b", Arc::new(Int64Array::from(vec![-3, -65]))),
        ("c", Arc::new(Int8Array::from(vec![-1, i8::MIN]))),
        ("d", Arc::new(Int16Array::from(vec![64, i16::MAX]))),
        ("s", Arc::new(StringArray::from(vec!["hi", ""]))),
    ]);
    assert_eq!(
        bodies(&schema, &rows),
        vec![
            // 1 → 02; -3 → 05; -1 → 01; 64 → 80 01; "hi" → len 2 (04) + bytes
            Some(vec![0x02, 0x05, 0x01, 0x80, 0x01, 0x04, b'h', b'i']),
            // 300 → zig-zag 600 = 0b100_1011000 → d8 04; -65 → 129 → 81 01;
            // -128 → 255 → ff 01; 32767 → 65534 → fe ff 03; "" → 00
            Some(vec![
                0xd8, 0x04, 0x81, 0x01, 0xff, 0x01, 0xfe, 0xff, 0x03, 0x00
            ]),
        ]
    );
}

#[test]
fn floats_doubles_and_booleans() {
    let schema = record(vec![
        Field::new("f", s(ConnectType::Float32)),
        Field::new("g", s(ConnectType::Float64)),
        Field::new("t", s(ConnectType::Boolean)),
    ]);
    let rows = batch(vec![
        ("f", Arc::new(Float32Array::from(vec![1.5]))),
        ("g", Arc::new(Float64Array::from(vec![-2.0]))),
        ("t", Arc::new(BooleanArray::from(vec![true]))),
    ]);
    // 1.5f32 = 0x3fc00000 and -2.0 = 0xc000000000000000, little-endian; true = 01.
    assert_eq!(
        bodies(&schema, &rows),
        vec![Some(vec![
            0x00, 0x00, 0xc0, 0x3f, 0, 0, 0, 0, 0, 0, 0x00, 0xc0, 0x01
        ])]
    );
}

#[test]
fn optional_fields_are_unions_with_null_first() {
    let schema = record(vec![
        Field::new("o", s(ConnectType::Int32).optional(true)),
        Field::new("n", s(ConnectType::String).optional(true)),
    ]);
    let rows = batch(vec![
        ("o", Arc::new(Int32Array::from(vec![Some(5), None]))),
        ("n", Arc::new(StringArray::from(vec![None, Some("x")]))),
    ]);
    assert_eq!(
        bodies(&schema, &rows),
        vec![
            // branch 1 (02) + 5 (0a); branch 0 (00) = null
            Some(vec![0x02, 0x0a, 0x00]),
            Some(vec![0x00, 0x02, 0x02, b'x']),
        ]
    );
}

#[test]
fn a_null_with_a_default_is_written_as_the_default_in_branch_0() {
    // debezium-format.md §4: a streaming `snapshot` is branch 0, written 00 0A "false".
    let snapshot = s(ConnectType::String)
        .optional(true)
        .named("io.debezium.data.Enum")
        .version(1)
        .with_default(DefaultValue::String("false".into()));
    let schema = record(vec![Field::new("snapshot", snapshot)]);
    let rows = batch(vec![(
        "snapshot",
        Arc::new(StringArray::from(vec![None, Some("last")])),
    )]);
    let mut f = vec![0x00, 0x0a];
    f.extend_from_slice(b"false");
    let mut l = vec![0x00, 0x08];
    l.extend_from_slice(b"last");
    assert_eq!(bodies(&schema, &rows), vec![Some(f), Some(l)]);
}

#[test]
fn decimals_are_minimal_big_endian_twos_complement() {
    let dec = s(ConnectType::Bytes)
        .named("org.apache.kafka.connect.data.Decimal")
        .version(1)
        .param("scale", "2")
        .param("connect.decimal.precision", "10")
        .optional(true);
    let schema = record(vec![Field::new("amount", dec)]);
    let amounts = Decimal128Array::from(vec![Some(1234), Some(-100), Some(128), Some(0), None])
        .with_precision_and_scale(10, 2)
        .unwrap();
    let rows = batch(vec![("amount", Arc::new(amounts))]);
    assert_eq!(
        bodies(&schema, &rows),
        vec![
            Some(vec![0x02, 0x04, 0x04, 0xd2]), // 12.34: 1234 = 04 d2
            Some(vec![0x02, 0x02, 0x9c]),       // -1.00: -100 = 9c
            Some(vec![0x02, 0x04, 0x00, 0x80]), // 1.28: 128 needs a sign byte
            Some(vec![0x02, 0x02, 0x00]),       // 0.00: one zero byte
            Some(vec![0x00]),
        ]
    );

    // A Decimal128 at another scale would put the point elsewhere: refused.
    let wrong = Decimal128Array::from(vec![1234])
        .with_precision_and_scale(10, 3)
        .unwrap();
    let err = encode(&schema, &batch(vec![("amount", Arc::new(wrong))])).unwrap_err();
    assert!(matches!(err, EncodeError::TypeMismatch { .. }), "{err}");
}

#[test]
fn bytes_and_already_encoded_decimal_bytes() {
    // VariableScaleDecimal: {scale: int32, value: bytes}; 1.50 → scale 1, value 0f.
    let vsd = s(ConnectType::Struct(vec![
        Field::new("scale", s(ConnectType::Int32)),
        Field::new("value", s(ConnectType::Bytes)),
    ]))
    .named("io.debezium.data.VariableScaleDecimal")
    .version(1)
    .optional(true);
    let schema = record(vec![Field::new("n", vsd)]);
    let inner = StructArray::from(vec![
        (
            Arc::new(ArrowField::new("scale", DataType::Int32, false)),
            Arc::new(Int32Array::from(vec![1])) as ArrayRef,
        ),
        (
            Arc::new(ArrowField::new("value", DataType::Binary, false)),
            Arc::new(BinaryArray::from(vec![&[0x0fu8][..]])) as ArrayRef,
        ),
    ]);
    let rows = batch(vec![("n", Arc::new(inner))]);
    assert_eq!(
        bodies(&schema, &rows),
        vec![Some(vec![0x02, 0x02, 0x02, 0x0f])]
    );
}

#[test]
fn nested_structs_write_their_fields_in_order() {
    let inner = s(ConnectType::Struct(vec![
        Field::new("x", s(ConnectType::Int32)),
        Field::new("y", s(ConnectType::String)),
    ]))
    .named("t.I")
    .optional(true);
    let schema = record(vec![
        Field::new("inner", inner),
        Field::new("z", s(ConnectType::Int32)),
    ]);
    let fields = Fields::from(vec![
        ArrowField::new("x", DataType::Int32, false),
        ArrowField::new("y", DataType::Utf8, false),
    ]);
    let inner = StructArray::new(
        fields,
        vec![
            Arc::new(Int32Array::from(vec![1, 0])),
            // The null row's children hold garbage that must not be read.
            Arc::new(StringArray::from(vec!["a", "ignored"])),
        ],
        Some(NullBuffer::from(vec![true, false])),
    );
    let rows = batch(vec![
        ("inner", Arc::new(inner)),
        ("z", Arc::new(Int32Array::from(vec![2, 3]))),
    ]);
    assert_eq!(
        bodies(&schema, &rows),
        vec![
            Some(vec![0x02, 0x02, 0x02, b'a', 0x04]),
            Some(vec![0x00, 0x06]),
        ]
    );
}

#[test]
fn arrays_are_one_counted_block_and_a_zero() {
    let tags = s(ConnectType::Array(Box::new(
        s(ConnectType::String).optional(true),
    )))
    .optional(true);
    let schema = record(vec![Field::new("tags", tags)]);
    let mut b = ListBuilder::new(StringBuilder::new());
    b.values().append_value("a");
    b.values().append_null();
    b.append(true);
    b.append(true); // []
    b.append(false); // null
    let rows = batch(vec![("tags", Arc::new(b.finish()))]);
    assert_eq!(
        bodies(&schema, &rows),
        vec![
            // branch 1, count 2, ("a" in branch 1), (null in branch 0), end
            Some(vec![0x02, 0x04, 0x02, 0x02, b'a', 0x00, 0x00]),
            Some(vec![0x02, 0x00]),
            Some(vec![0x00]),
        ]
    );
}

#[test]
fn maps_are_blocks_of_key_value_pairs() {
    let map_schema = s(ConnectType::Int32).optional(true); // only optional/default matter here
    let shape = Shape::compile_map(
        &map_schema,
        &s(ConnectType::String),
        &s(ConnectType::Int32).optional(true),
        "m".into(),
    )
    .unwrap();
    let mut b = MapBuilder::new(None, StringBuilder::new(), Int32Builder::new());
    b.keys().append_value("k");
    b.values().append_value(3);
    b.keys().append_value("n");
    b.values().append_null();
    b.append(true).unwrap();
    b.append(false).unwrap();
    let map: ArrayRef = Arc::new(b.finish());
    let col = Column::bind(&shape, &map).unwrap();
    let mut out = Vec::new();
    col.write(0, &mut out).unwrap();
    // branch 1, count 2, "k" → (branch 1, 3), "n" → (branch 0), end
    assert_eq!(
        out,
        [0x02, 0x04, 0x02, b'k', 0x02, 0x06, 0x02, b'n', 0x00, 0x00]
    );
    out.clear();
    col.write(1, &mut out).unwrap();
    assert_eq!(out, [0x00]);
}

#[test]
fn a_null_row_is_a_tombstone() {
    let schema = record(vec![Field::new("a", s(ConnectType::Int32))]);
    let rows = StructArray::new(
        Fields::from(vec![ArrowField::new("a", DataType::Int32, true)]),
        vec![Arc::new(Int32Array::from(vec![Some(1), None, Some(3)]))],
        Some(NullBuffer::from(vec![true, false, true])),
    );
    let got = bodies(&schema, &rows);
    assert_eq!(got, vec![Some(vec![0x02]), None, Some(vec![0x06])]);
}

#[test]
fn encoding_without_a_schema_id_is_an_error() {
    let schema = record(vec![Field::new("a", s(ConnectType::Int32))]);
    let enc = AvroEncoder::new(&schema).unwrap();
    let mut out = EncodedColumn::default();
    let rows = batch(vec![("a", Arc::new(Int32Array::from(vec![1])))]);
    assert!(matches!(
        enc.encode(&rows, &mut out),
        Err(EncodeError::NoSchemaId)
    ));
    assert!(out.is_empty());
}

#[test]
fn a_null_in_a_required_field_is_an_error_and_leaves_earlier_rows() {
    let schema = record(vec![Field::new("a", s(ConnectType::Int32))]);
    let rows = batch(vec![("a", Arc::new(Int32Array::from(vec![Some(1), None])))]);
    let mut enc = AvroEncoder::new(&schema).unwrap();
    enc.set_schema_id(ID);
    let mut out = EncodedColumn::default();
    let err = enc.encode(&rows, &mut out).unwrap_err();
    assert!(
        matches!(&err, EncodeError::NullNotAllowed { field } if field == "a"),
        "{err}"
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out.byte_len(), 6, "the failed row left nothing behind");
}

#[test]
fn sliced_batches_encode_their_own_rows() {
    let schema = record(vec![
        Field::new("a", s(ConnectType::Int32)),
        Field::new("s", s(ConnectType::String).optional(true)),
    ]);
    let rows = batch(vec![
        ("a", Arc::new(Int32Array::from(vec![1, 2, 3]))),
        (
            "s",
            Arc::new(StringArray::from(vec![Some("x"), None, Some("z")])),
        ),
    ]);
    let sliced = rows.slice(1, 2);
    assert_eq!(
        bodies(&schema, &sliced),
        vec![Some(vec![0x04, 0x00]), Some(vec![0x06, 0x02, 0x02, b'z'])]
    );
}

#[test]
fn arrow_types_that_do_not_fit_the_schema_are_reported() {
    let schema = record(vec![Field::new("a", s(ConnectType::Int64))]);
    let rows = batch(vec![("a", Arc::new(Int32Array::from(vec![1])))]);
    let err = encode(&schema, &rows).unwrap_err();
    assert!(err.to_string().contains("INT64 at `a`"), "{err}");
}

#[test]
fn the_top_level_must_be_a_struct() {
    assert!(matches!(
        AvroEncoder::new(&s(ConnectType::Int32)),
        Err(EncodeError::NotAStruct("INT32"))
    ));
}

#[test]
fn an_optional_top_level_record_gets_its_union_branch() {
    // The native envelope's value schema is an optional struct: ["null", record].
    let schema = record(vec![Field::new("a", s(ConnectType::Int32))]).optional(true);
    let enc = AvroEncoder::new(&schema).unwrap();
    assert!(enc.schema_json().starts_with(r#"["null",{"type":"record""#));
    assert_eq!(
        enc.avro_schema().full_name(),
        None,
        "a union has no record name"
    );
    let rows = batch(vec![("a", Arc::new(Int32Array::from(vec![1])))]);
    assert_eq!(bodies(&schema, &rows), vec![Some(vec![0x02, 0x02])]);
}

#[test]
fn the_encoder_enum_exposes_schema_and_id() {
    use crate::plan::{AvroOptions, Encoding, SubjectStrategy};
    let schema = record(vec![Field::new("a", s(ConnectType::Int32))]);
    let avro = Encoding::Avro(AvroOptions {
        subject_strategy: SubjectStrategy::Topic,
        auto_register: true,
        use_latest: false,
        compatibility: None,
    });
    let mut enc = crate::encode::Encoder::new(&avro, &schema).unwrap();
    assert_eq!(
        enc.avro_schema(),
        Some(
            r#"{"type":"record","name":"R","namespace":"t","fields":[{"name":"a","type":"int"}],"connect.name":"t.R"}"#
        )
    );
    enc.set_schema_id(9);
    let mut out = EncodedColumn::default();
    let rows = batch(vec![("a", Arc::new(Int32Array::from(vec![-1])))]);
    enc.encode(&rows, &mut out).unwrap();
    assert_eq!(out.get(0), Some(&[0u8, 0, 0, 0, 9, 0x01][..]));

    let mut json =
        crate::encode::Encoder::new(&Encoding::Json { schemas: false }, &schema).unwrap();
    json.set_schema_id(9);
    assert_eq!(json.avro_schema(), None);
}
