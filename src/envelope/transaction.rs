//! Debezium's transaction metadata (`provide.transaction.metadata`) as Connect schemas and
//! Arrow columns: the `transaction` block of each streamed event, and the BEGIN and END
//! records of the transaction topic. `runtime::txmeta` does the counting; this module only
//! gives the results their shape, so encoders treat them like any other record.
//!
//! Layout as in Debezium 3.6 (`shared/reference/debezium-format.md`, "Transaction metadata"):
//! the block is `event.block` v1 `{id, total_order, data_collection_order}`; the topic's key is
//! `io.debezium.connector.common.TransactionMetadataKey` v1 `{id}` and its value
//! `io.debezium.connector.common.TransactionMetadataValue` v1 `{status, id, event_count,
//! data_collections, ts_ms}`, where `event_count` and `data_collections` (an array of optional
//! `event.collection` v1 structs) are only set on END.

use std::fmt::Write as _;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, Int64Array, Int64Builder, ListArray, StringArray, StringBuilder, StructArray,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::datatypes::{DataType, Field as ArrowField, Fields};

use super::{EnvelopeError, Records};
use crate::connect::{ConnectType, Field, Schema};

pub const KEY_SCHEMA_NAME: &str = "io.debezium.connector.common.TransactionMetadataKey";
pub const VALUE_SCHEMA_NAME: &str = "io.debezium.connector.common.TransactionMetadataValue";

/// The `transaction` field of Debezium's envelope.
pub fn block_schema() -> Schema {
    Schema::new(ConnectType::Struct(vec![
        Field::new("id", Schema::new(ConnectType::String)),
        Field::new("total_order", Schema::new(ConnectType::Int64)),
        Field::new("data_collection_order", Schema::new(ConnectType::Int64)),
    ]))
    .optional(true)
    .named("event.block")
    .version(1)
}

fn block_fields() -> Fields {
    Fields::from(vec![
        ArrowField::new("id", DataType::Utf8, false),
        ArrowField::new("total_order", DataType::Int64, false),
        ArrowField::new("data_collection_order", DataType::Int64, false),
    ])
}

/// The block of `n` events outside any transaction (snapshot rows, or metadata off).
pub fn null_block(n: usize) -> StructArray {
    StructArray::new_null(block_fields(), n)
}

/// The block of events numbered within their transactions, one value per event.
pub fn block(
    id: StringArray,
    total_order: Int64Array,
    data_collection_order: Int64Array,
) -> Result<StructArray, EnvelopeError> {
    Ok(StructArray::try_new(
        block_fields(),
        vec![
            Arc::new(id) as ArrayRef,
            Arc::new(total_order),
            Arc::new(data_collection_order),
        ],
        None,
    )?)
}

/// Debezium's transaction id for Postgres: the xid, then the LSN of the record that carries it
/// (BEGIN, each event, END: so only the xid part is shared by a transaction's records).
pub fn id(xid: i64, lsn: u64) -> String {
    format!("{xid}:{lsn}")
}

/// [`id`], appended to a column.
pub fn write_id(out: &mut StringBuilder, xid: i64, lsn: u64) {
    let _ = write!(out, "{xid}:{lsn}");
    out.append_value("");
}

pub fn key_schema() -> Schema {
    Schema::new(ConnectType::Struct(vec![Field::new(
        "id",
        Schema::new(ConnectType::String),
    )]))
    .named(KEY_SCHEMA_NAME)
    .version(1)
}

fn collection_schema() -> Schema {
    Schema::new(ConnectType::Struct(vec![
        Field::new("data_collection", Schema::new(ConnectType::String)),
        Field::new("event_count", Schema::new(ConnectType::Int64)),
    ]))
    .optional(true)
    .named("event.collection")
    .version(1)
}

pub fn value_schema() -> Schema {
    Schema::new(ConnectType::Struct(vec![
        Field::new("status", Schema::new(ConnectType::String)),
        Field::new("id", Schema::new(ConnectType::String)),
        Field::new(
            "event_count",
            Schema::new(ConnectType::Int64).optional(true),
        ),
        Field::new(
            "data_collections",
            Schema::new(ConnectType::Array(Box::new(collection_schema()))).optional(true),
        ),
        Field::new("ts_ms", Schema::new(ConnectType::Int64)),
    ]))
    .named(VALUE_SCHEMA_NAME)
    .version(1)
}

/// One record of the transaction topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnRecord {
    /// `<xid>:<lsn>` (see [`write_id`]).
    pub id: String,
    /// Commit time of the source transaction.
    pub ts_ms: i64,
    /// `None` for BEGIN; for END, the events per data collection (`schema.table`), which
    /// add up to the event count.
    pub collections: Option<Vec<(String, i64)>>,
}

impl TxnRecord {
    pub fn status(&self) -> &'static str {
        match self.collections {
            None => "BEGIN",
            Some(_) => "END",
        }
    }
}

/// Key and value columns of transaction records, in order.
pub fn records(txns: &[TxnRecord]) -> Result<Records, EnvelopeError> {
    let n = txns.len();
    let ids = StringArray::from_iter_values(txns.iter().map(|t| t.id.as_str()));
    let key = StructArray::try_new(
        Fields::from(vec![ArrowField::new("id", DataType::Utf8, false)]),
        vec![Arc::new(ids.clone()) as ArrayRef],
        None,
    )?;

    let mut names = StringBuilder::new();
    let mut counts = Int64Builder::new();
    let mut offsets = Vec::with_capacity(n + 1);
    offsets.push(0i32);
    let mut items = 0i32;
    for t in txns {
        for (name, count) in t.collections.iter().flatten() {
            names.append_value(name);
            counts.append_value(*count);
            items += 1;
        }
        offsets.push(items);
    }
    let item_fields = Fields::from(vec![
        ArrowField::new("data_collection", DataType::Utf8, false),
        ArrowField::new("event_count", DataType::Int64, false),
    ]);
    let items = StructArray::try_new(
        item_fields.clone(),
        vec![
            Arc::new(names.finish()) as ArrayRef,
            Arc::new(counts.finish()),
        ],
        None,
    )?;
    let ended = NullBuffer::from(
        txns.iter()
            .map(|t| t.collections.is_some())
            .collect::<Vec<_>>(),
    );
    let collections = ListArray::try_new(
        Arc::new(ArrowField::new("item", DataType::Struct(item_fields), true)),
        OffsetBuffer::new(offsets.into()),
        Arc::new(items),
        Some(ended.clone()),
    )?;
    let event_count = Int64Array::from_iter(txns.iter().map(|t| {
        t.collections
            .as_ref()
            .map(|c| c.iter().map(|(_, k)| k).sum::<i64>())
    }));
    let status = StringArray::from_iter_values(txns.iter().map(TxnRecord::status));
    let ts_ms = Int64Array::from_iter_values(txns.iter().map(|t| t.ts_ms));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(status),
        Arc::new(ids),
        Arc::new(event_count),
        Arc::new(collections),
        Arc::new(ts_ms),
    ];
    let fields: Vec<ArrowField> = ["status", "id", "event_count", "data_collections", "ts_ms"]
        .iter()
        .zip(&columns)
        .map(|(name, a)| ArrowField::new(*name, a.data_type().clone(), a.null_count() > 0))
        .collect();
    let value = StructArray::try_new(Fields::from(fields), columns, None)?;
    Ok(Records {
        key: Some(key),
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{EncodedColumn, Encoder};
    use crate::plan::Encoding;

    fn sample() -> Vec<TxnRecord> {
        vec![
            TxnRecord {
                id: "571:33902040".into(),
                ts_ms: 1_486_500_577_125,
                collections: None,
            },
            TxnRecord {
                id: "571:33902592".into(),
                ts_ms: 1_486_500_577_125,
                collections: Some(vec![("s1.a".into(), 2), ("s2.a".into(), 1)]),
            },
        ]
    }

    fn json(schema: &Schema, rows: &StructArray, schemas: bool) -> Vec<String> {
        let enc = Encoder::new(&Encoding::Json { schemas }, schema).unwrap();
        let mut out = EncodedColumn::default();
        enc.encode(rows, &mut out).unwrap();
        (0..out.len())
            .map(|i| String::from_utf8(out.get(i).unwrap().to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn begin_and_end_payloads_are_debeziums() {
        let r = records(&sample()).unwrap();
        let keys = json(&key_schema(), r.key.as_ref().unwrap(), false);
        assert_eq!(
            keys,
            [r#"{"id":"571:33902040"}"#, r#"{"id":"571:33902592"}"#]
        );
        let values = json(&value_schema(), &r.value, false);
        assert_eq!(
            values[0],
            r#"{"status":"BEGIN","id":"571:33902040","event_count":null,"data_collections":null,"ts_ms":1486500577125}"#
        );
        assert_eq!(
            values[1],
            concat!(
                r#"{"status":"END","id":"571:33902592","event_count":3,"data_collections":["#,
                r#"{"data_collection":"s1.a","event_count":2},"#,
                r#"{"data_collection":"s2.a","event_count":1}],"ts_ms":1486500577125}"#
            )
        );
    }

    #[test]
    fn connect_schemas_have_debeziums_names_order_and_optionality() {
        assert_eq!(
            key_schema().to_connect_json(),
            r#"{"type":"struct","fields":[{"type":"string","optional":false,"field":"id"}],"optional":false,"name":"io.debezium.connector.common.TransactionMetadataKey","version":1}"#
        );
        assert_eq!(
            value_schema().to_connect_json(),
            concat!(
                r#"{"type":"struct","fields":[{"type":"string","optional":false,"field":"status"},"#,
                r#"{"type":"string","optional":false,"field":"id"},"#,
                r#"{"type":"int64","optional":true,"field":"event_count"},"#,
                r#"{"type":"array","items":{"type":"struct","fields":["#,
                r#"{"type":"string","optional":false,"field":"data_collection"},"#,
                r#"{"type":"int64","optional":false,"field":"event_count"}],"#,
                r#""optional":true,"name":"event.collection","version":1},"optional":true,"field":"data_collections"},"#,
                r#"{"type":"int64","optional":false,"field":"ts_ms"}],"optional":false,"#,
                r#""name":"io.debezium.connector.common.TransactionMetadataValue","version":1}"#
            )
        );
    }

    #[test]
    fn avro_records_decode_with_their_own_schema() {
        let r = records(&sample()).unwrap();
        for (schema, rows) in [(key_schema(), r.key.unwrap()), (value_schema(), r.value)] {
            let mut enc = Encoder::new(
                &Encoding::Avro(crate::plan::AvroOptions {
                    subject_strategy: crate::plan::SubjectStrategy::Topic,
                    auto_register: true,
                    use_latest: false,
                    compatibility: None,
                }),
                &schema,
            )
            .unwrap();
            enc.set_schema_id(7);
            let parsed = apache_avro::Schema::parse_str(enc.avro_schema().unwrap()).unwrap();
            let mut out = EncodedColumn::default();
            enc.encode(&rows, &mut out).unwrap();
            assert_eq!(out.len(), 2);
            let end = out.get(1).unwrap();
            assert_eq!(&end[..5], &[0, 0, 0, 0, 7], "Confluent framing");
            let mut body = &end[5..];
            let decoded = apache_avro::reader::datum::GenericDatumReader::builder(&parsed)
                .build()
                .unwrap()
                .read_value(&mut body)
                .unwrap();
            assert!(body.is_empty(), "{} bytes after the datum", body.len());
            let text = format!("{decoded:?}");
            assert!(text.contains("571:33902592"), "{text}");
            if schema.name.as_deref() == Some(VALUE_SCHEMA_NAME) {
                assert!(text.contains("s2.a") && text.contains("END"), "{text}");
            }
        }
    }
}
