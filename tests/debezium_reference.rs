//! The Debezium envelope + JSON encoder against the reference messages captured from
//! Debezium 3.6 (`tests/fixtures/debezium`, copied from shared/reference). Time, version and
//! position are injected with the values of the reference, so the bytes must match exactly.

use std::collections::BTreeMap;
use std::sync::Arc;

use cdcql::catalog::Catalog;
use cdcql::encode::{EncodedColumn, Encoder};
use cdcql::envelope::debezium::DebeziumTable;
use cdcql::envelope::{ChangeBatch, Op, SourcePosition};
use cdcql::parse::{parse_with_env, SourceFile};
use cdcql::plan::{plan_script, Envelope, PipelinePlan};
use datafusion::arrow::array::{
    Decimal128Array, Int32Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};

const CATALOG: &str = "database shop
table public.orders
  id integer primary key
  amount numeric(10,2)
  note text
  created_at timestamp(6) with time zone
";

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/debezium/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .trim_end()
        .to_string()
}

/// The reference table `public.orders`, planned as a pass-through Debezium JSON pipeline.
fn orders_plan(with: &str) -> Vec<PipelinePlan> {
    let text = format!(
        "CREATE CONNECTION pg TO POSTGRES (url = 'postgres://x@h/shop');
         CREATE CONNECTION k TO KAFKA (brokers = 'b:9092');
         CREATE PIPELINE p FROM pg INTO k TOPIC 'dbserver1.{{schema}}.{{table}}'
           FORMAT JSON ENVELOPE DEBEZIUM {with} TABLES (public.orders);"
    );
    let file = SourceFile::new("ref.sql", text);
    let script = parse_with_env(&file, &|_| None).expect("parses");
    let catalogs = BTreeMap::from([("pg".to_string(), Catalog::from_ddl_like(CATALOG).unwrap())]);
    plan_script(&file, &script, &catalogs).expect("plans")
}

#[test]
fn insert_event_matches_debezium_bytes() {
    let plans = orders_plan("WITH (json_schemas = true)");
    let plan = &plans[0];
    let table = &plan.tables[0];
    assert_eq!(table.topic, "dbserver1.public.orders");
    let Envelope::Debezium(opts) = &plan.envelope else {
        panic!("the reference pipeline uses ENVELOPE DEBEZIUM")
    };
    let env = DebeziumTable::new(table, opts, "shop", &plan.types).with_version("3.6.1.Final");

    let row = RecordBatch::try_new(
        table.output_schema(),
        vec![
            Arc::new(Int32Array::from(vec![1])),
            Arc::new(
                Decimal128Array::from(vec![1234])
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            ),
            Arc::new(StringArray::from(vec!["hello"])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![1_705_314_600_123_456]).with_timezone("UTC"),
            ),
        ],
    )
    .unwrap();
    let change = ChangeBatch {
        ops: vec![Op::Create],
        before: None,
        after: Some(row),
        position: SourcePosition {
            ts_us: 1_705_314_600_123_456,
            tx_id: Some(555),
            lsn: Some(24_023_128),
            last_commit_lsn: Some(24_023_119),
        },
        snapshot_marks: None,
        before_valid: None,
        lsns: None,
        txns: None,
    };
    let records = env.records(&change, 1_705_314_600_456_789_012).unwrap();
    let schemas = env.schemas();

    let mut keys = EncodedColumn::default();
    Encoder::new(&plan.encoding, schemas.key.as_ref().unwrap())
        .unwrap()
        .encode(records.key.as_ref().unwrap(), &mut keys)
        .unwrap();
    let mut values = EncodedColumn::default();
    Encoder::new(&plan.encoding, &schemas.value)
        .unwrap()
        .encode(&records.value, &mut values)
        .unwrap();

    assert_eq!(
        std::str::from_utf8(keys.get(0).unwrap()).unwrap(),
        fixture("example-key.json")
    );
    assert_eq!(
        std::str::from_utf8(values.get(0).unwrap()).unwrap(),
        fixture("example-value.json")
    );
}

#[test]
fn delete_is_followed_by_a_tombstone_with_the_same_key() {
    let plans = orders_plan("");
    let (plan, table) = (&plans[0], &plans[0].tables[0]);
    let Envelope::Debezium(opts) = &plan.envelope else {
        panic!("the reference pipeline uses ENVELOPE DEBEZIUM")
    };
    let env = DebeziumTable::new(table, opts, "shop", &plan.types);
    let row = RecordBatch::try_new(
        table.output_schema(),
        vec![
            Arc::new(Int32Array::from(vec![7, 8])),
            Arc::new(
                Decimal128Array::from(vec![None, Some(-100)])
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            ),
            Arc::new(StringArray::from(vec![None, Some("x")])),
            Arc::new(TimestampMicrosecondArray::from(vec![None, Some(0)]).with_timezone("UTC")),
        ],
    )
    .unwrap();
    let change = ChangeBatch {
        ops: vec![Op::Delete, Op::Create],
        before: Some(row.clone()),
        after: Some(row),
        position: SourcePosition {
            ts_us: 0,
            tx_id: None,
            lsn: None,
            last_commit_lsn: None,
        },
        snapshot_marks: None,
        before_valid: None,
        lsns: None,
        txns: None,
    };
    let records = env.records(&change, 0).unwrap();
    let (mut keys, mut values) = (EncodedColumn::default(), EncodedColumn::default());
    Encoder::new(&plan.encoding, env.schemas().key.as_ref().unwrap())
        .unwrap()
        .encode(records.key.as_ref().unwrap(), &mut keys)
        .unwrap();
    Encoder::new(&plan.encoding, &env.schemas().value)
        .unwrap()
        .encode(&records.value, &mut values)
        .unwrap();
    assert_eq!(values.len(), 3, "delete, tombstone, create");
    assert_eq!(keys.get(0), Some(&b"{\"id\":7}"[..]));
    assert_eq!(keys.get(1), keys.get(0));
    assert!(values.get(1).is_none(), "the second record is a tombstone");
    let v0 = std::str::from_utf8(values.get(0).unwrap()).unwrap();
    assert!(v0.contains("\"op\":\"d\""), "{v0}");
    let v2 = std::str::from_utf8(values.get(2).unwrap()).unwrap();
    assert!(v2.contains("\"after\":{\"id\":8,\"amount\":\"nA==\",\"note\":\"x\",\"created_at\":\"1970-01-01T00:00:00.000000Z\"}"), "{v2}");
}

/// A streamed batch may hold several source transactions; each row's `source` block must
/// name its own (commit time, txId, previous commit in `sequence`), also after a split.
#[test]
fn rows_of_several_transactions_carry_their_own_source() {
    let plans = orders_plan("");
    let (plan, table) = (&plans[0], &plans[0].tables[0]);
    let Envelope::Debezium(opts) = &plan.envelope else {
        panic!("the reference pipeline uses ENVELOPE DEBEZIUM")
    };
    let env = DebeziumTable::new(table, opts, "shop", &plan.types);
    let row = RecordBatch::try_new(
        table.output_schema(),
        vec![
            Arc::new(Int32Array::from(vec![1, 2, 3])),
            Arc::new(
                Decimal128Array::from(vec![Some(1), Some(2), Some(3)])
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            ),
            Arc::new(StringArray::from(vec!["a", "b", "c"])),
            Arc::new(TimestampMicrosecondArray::from(vec![0, 0, 0]).with_timezone("UTC")),
        ],
    )
    .unwrap();
    let pos = |ts_us: i64, tx: i64, last: Option<u64>| SourcePosition {
        ts_us,
        tx_id: Some(tx),
        lsn: None,
        last_commit_lsn: last,
    };
    let change = ChangeBatch {
        ops: vec![Op::Create, Op::Create, Op::Create],
        before: None,
        after: Some(row),
        position: pos(3_000_000, 12, Some(200)),
        snapshot_marks: None,
        before_valid: None,
        lsns: Some(vec![100, 150, 250]),
        txns: Some(cdcql::envelope::TxnRows {
            positions: vec![pos(1_000_000, 11, Some(50)), pos(3_000_000, 12, Some(200))],
            row_txn: vec![0, 0, 1],
        }),
    };
    let source_of = |change: &ChangeBatch| -> Vec<(i64, i64, String, i64)> {
        let records = env.records(change, 0).unwrap();
        let mut values = EncodedColumn::default();
        Encoder::new(&plan.encoding, &env.schemas().value)
            .unwrap()
            .encode(&records.value, &mut values)
            .unwrap();
        (0..values.len())
            .map(|i| {
                let v: serde_json::Value = serde_json::from_slice(values.get(i).unwrap()).unwrap();
                let s = &v["source"];
                (
                    s["ts_ms"].as_i64().unwrap(),
                    s["txId"].as_i64().unwrap(),
                    s["sequence"].as_str().unwrap().to_string(),
                    s["lsn"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let whole = source_of(&change);
    assert_eq!(
        whole,
        vec![
            (1000, 11, r#"["50","100"]"#.to_string(), 100),
            (1000, 11, r#"["50","150"]"#.to_string(), 150),
            (3000, 12, r#"["200","250"]"#.to_string(), 250),
        ]
    );
    let (head, tail) = change.split_at(1);
    assert_eq!((head.len(), tail.len()), (1, 2));
    let mut parts = source_of(&head);
    parts.extend(source_of(&tail));
    assert_eq!(parts, whole, "a split batch keeps each row's source");
}
