//! Row isolation against the real envelope and encoder (a pipeline planned from a fixture
//! catalog), and the pieces around it: rows as JSON, splitting decoded batches, dead-letter
//! sizing, message-to-row mapping, the fail message and the counts.

use std::cell::Cell;
use std::sync::Arc;

use datafusion::arrow::array::{
    BinaryArray, Decimal128Array, Float64Array, Int32Array, Int64Array, ListArray, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{Field, Int32Type, Schema};
use serde_json::json;

use super::*;
use crate::encode::{EncodedColumn, Encoder};
use crate::envelope::{SourcePosition, TableEnvelope};
use crate::parse::{parse_with_env, SourceFile};

/// `public.t (id bigint primary key, v numeric, note text)` as a pass-through pipeline.
fn plan(with: &str, envelope: &str) -> PipelinePlan {
    plan_of(&format!("ENVELOPE {envelope} {with} TABLES (public.t)"))
}

/// The pipeline `CREATE PIPELINE p ... FORMAT JSON <rest>` over `public.t`.
fn plan_of(rest: &str) -> PipelinePlan {
    let text = format!(
        "CREATE CONNECTION pg TO POSTGRES (url = 'postgres://x@h/shop');
         CREATE CONNECTION k TO KAFKA (brokers = 'b:9092');
         CREATE PIPELINE p FROM pg INTO k TOPIC 'shop.{{table}}' FORMAT JSON {rest};"
    );
    let file = SourceFile::new("t.sql", text);
    let script = parse_with_env(&file, &|_| None).expect("parses");
    let catalog = crate::catalog::Catalog::from_ddl_like(
        "database shop
table public.t
  id bigint primary key
  v numeric
  note text
",
    )
    .expect("catalog");
    let catalogs = std::collections::BTreeMap::from([("pg".to_string(), catalog)]);
    let mut plans = crate::plan::plan_script(&file, &script, &catalogs).expect("plans");
    plans.remove(0)
}

fn position() -> SourcePosition {
    SourcePosition {
        ts_us: 1_700_000_000_000_000,
        tx_id: Some(7),
        lsn: None,
        last_commit_lsn: Some(100),
        begin_lsn: None,
    }
}

/// Creates of rows `ids` with numeric text `values` (`v` holds numeric text: no typmod).
fn creates(plan: &PipelinePlan, ids: &[i64], values: &[&str]) -> ChangeBatch {
    let schema = plan.tables[0].input_schema.clone();
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids.to_vec())),
            Arc::new(StringArray::from(values.to_vec())),
            Arc::new(StringArray::from(
                ids.iter().map(|i| format!("note {i}")).collect::<Vec<_>>(),
            )),
        ],
    )
    .expect("batch");
    ChangeBatch {
        ops: vec![Op::Create; ids.len()],
        before: None,
        before_valid: None,
        after: Some(batch),
        position: position(),
        snapshot_marks: None,
        lsns: Some(ids.iter().map(|i| 1000 + *i as u64).collect()),
        txns: None,
    }
}

/// The envelope and encoders of the plan's table, counting how often a batch is encoded.
struct Encoding {
    envelope: TableEnvelope,
    key: Encoder,
    value: Encoder,
    calls: Cell<usize>,
    rows_encoded: Cell<usize>,
}

impl Encoding {
    fn new(plan: &PipelinePlan) -> Self {
        let envelope = TableEnvelope::new(plan, &plan.tables[0]);
        let schemas = envelope.schemas().clone();
        Encoding {
            key: Encoder::new(&plan.encoding, schemas.key.as_ref().expect("keyed")).expect("key"),
            value: Encoder::new(&plan.encoding, &schemas.value).expect("value"),
            envelope,
            calls: Cell::new(0),
            rows_encoded: Cell::new(0),
        }
    }

    fn encode(&self, change: &ChangeBatch) -> Result<(), RuntimeError> {
        self.calls.set(self.calls.get() + 1);
        self.rows_encoded
            .set(self.rows_encoded.get() + change.len());
        let records = self.envelope.records(change, 0)?;
        let (mut k, mut v) = (EncodedColumn::default(), EncodedColumn::default());
        if let Some(key) = &records.key {
            self.key.encode(key, &mut k)?;
        }
        self.value.encode(&records.value, &mut v)?;
        Ok(())
    }
}

fn ids(change: &ChangeBatch) -> Vec<i64> {
    let after = change.after.as_ref().expect("creates have new rows");
    after
        .column(0)
        .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
        .values()
        .to_vec()
}

#[test]
fn conversion_names_every_bad_row_and_the_rest_go_on_in_order() {
    let plan = plan("", "DEBEZIUM");
    let enc = Encoding::new(&plan);
    let values = [
        "1.5",
        "NaN",
        "2",
        "3",
        "Infinity",
        "4",
        "5",
        "6",
        "-Infinity",
        "7",
    ];
    let change = creates(&plan, &(1..=10).collect::<Vec<_>>(), &values);
    let first = enc.encode(&change).expect_err("NaN is not a Decimal");
    let calls_before = enc.calls.get();
    let (faults, rest) = isolate(first, &change, |c| enc.encode(c)).expect("isolated");
    let bad: Vec<usize> = faults.iter().map(|f| f.row).collect();
    assert_eq!(bad, vec![1, 4, 8]);
    assert!(faults
        .iter()
        .all(|f| f.stage == Stage::Convert && f.column.as_deref() == Some("v")));
    assert!(faults[0].message.contains("NaN"), "{}", faults[0].message);
    let rest = rest.expect("good rows are left");
    assert_eq!(ids(&rest), vec![1, 3, 4, 6, 7, 8, 10]);
    assert_eq!(
        rest.lsns.as_deref(),
        Some(&[1001, 1003, 1004, 1006, 1007, 1008, 1010][..])
    );
    // The row numbers from the conversion are used: each bad row confirmed alone, then the
    // rest once; no halving, no row-by-row pass over the good rows.
    assert_eq!(enc.calls.get() - calls_before, 3 + 1);
    enc.encode(&rest).expect("the rest converts");
}

#[test]
fn without_row_numbers_the_batch_is_halved() {
    let plan = plan("", "DEBEZIUM");
    let enc = Encoding::new(&plan);
    let n = 64;
    let bad_ids = [3i64, 40, 41, 64];
    let ids_all: Vec<i64> = (1..=n).collect();
    let values: Vec<&str> = ids_all
        .iter()
        .map(|i| if bad_ids.contains(i) { "NaN" } else { "1" })
        .collect();
    let change = creates(&plan, &ids_all, &values);
    // A failure that says nothing about rows: an encoder's null check, say.
    let opaque = |c: &ChangeBatch| -> Result<(), RuntimeError> {
        enc.encode(c)
            .map_err(|_| RuntimeError::Encode(EncodeError::NullNotAllowed { field: "v".into() }))
    };
    let first = opaque(&change).expect_err("fails");
    let (faults, rest) = isolate(first, &change, opaque).expect("isolated");
    let bad: Vec<i64> = faults.iter().map(|f| f.row as i64 + 1).collect();
    assert_eq!(bad, bad_ids.to_vec());
    assert!(faults.iter().all(|f| f.stage == Stage::Encode));
    let good: Vec<i64> = ids_all
        .iter()
        .copied()
        .filter(|i| !bad_ids.contains(i))
        .collect();
    assert_eq!(ids(&rest.expect("good rows")), good);
    // Halving converts O(n log n) rows at worst, far from n rows per bad row.
    assert!(
        enc.rows_encoded.get() < (n as usize) * 16,
        "{} rows encoded",
        enc.rows_encoded.get()
    );
}

#[test]
fn a_wrong_row_number_costs_no_good_row() {
    let plan = plan("", "DEBEZIUM");
    let enc = Encoding::new(&plan);
    let change = creates(&plan, &[1, 2, 3, 4], &["1", "2", "NaN", "4"]);
    // Says row 0 (wrong) for whatever fails.
    let lying = |c: &ChangeBatch| -> Result<(), RuntimeError> {
        enc.encode(c).map_err(|_| {
            RuntimeError::Envelope(EnvelopeError::Rows {
                column: "v".into(),
                rows: vec![(0, "bad".into())],
            })
        })
    };
    let first = lying(&change).expect_err("fails");
    let (faults, rest) = isolate(first, &change, lying).expect("isolated");
    assert_eq!(faults.iter().map(|f| f.row).collect::<Vec<_>>(), vec![2]);
    assert_eq!(ids(&rest.expect("rest")), vec![1, 2, 4]);
}

#[test]
fn failures_that_are_no_row_s_fault_stop_as_before() {
    let plan = plan("", "DEBEZIUM");
    let change = creates(&plan, &[1, 2], &["1", "2"]);
    let broken = |_: &ChangeBatch| -> Result<(), RuntimeError> {
        Err(RuntimeError::Envelope(EnvelopeError::Arrow(
            ArrowError::SchemaError("mismatch".into()),
        )))
    };
    let first = broken(&change).expect_err("fails");
    let err = isolate(first, &change, broken).expect_err("not a row's fault");
    assert!(err.to_string().contains("mismatch"), "{err}");
    // Every row bad: nothing is left, and nothing is invented.
    let enc = Encoding::new(&plan);
    let all_bad = creates(&plan, &[1, 2], &["NaN", "NaN"]);
    let first = enc.encode(&all_bad).expect_err("fails");
    let (faults, rest) = isolate(first, &all_bad, |c| enc.encode(c)).expect("isolated");
    assert_eq!(faults.len(), 2);
    assert!(rest.is_none());
}

#[test]
fn rows_as_plain_json() {
    let list =
        ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(vec![Some(1), None]), None]);
    let schema = Arc::new(Schema::new(vec![
        Field::new("i", DataType::Int32, true),
        Field::new("s", DataType::Utf8, true),
        Field::new("d", DataType::Decimal128(10, 2), true),
        Field::new("b", DataType::Binary, true),
        Field::new("f", DataType::Float64, true),
        Field::new("l", list.data_type().clone(), true),
        Field::new(
            "t",
            DataType::Timestamp(
                datafusion::arrow::datatypes::TimeUnit::Microsecond,
                Some("UTC".into()),
            ),
            true,
        ),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int32Array::from(vec![Some(-5), None])),
            Arc::new(StringArray::from(vec![Some("a\"b"), None])),
            Arc::new(
                Decimal128Array::from(vec![Some(1234), None])
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            ),
            Arc::new(BinaryArray::from(vec![Some(&b"\x01\xff"[..]), None])),
            Arc::new(Float64Array::from(vec![Some(f64::NAN), Some(0.5)])),
            Arc::new(list),
            Arc::new(
                TimestampMicrosecondArray::from(vec![Some(1_700_000_000_123_456), None])
                    .with_timezone("UTC"),
            ),
        ],
    )
    .unwrap();
    assert_eq!(
        row_json(&batch, 0).to_value(),
        json!({"i": -5, "s": "a\"b", "d": "12.34", "b": "\\x01ff", "f": "NaN", "l": [1, null],
               "t": "2023-11-14T22:13:20.123456Z"})
    );
    assert_eq!(
        row_json(&batch, 1).to_value(),
        json!({"i": null, "s": null, "d": null, "b": null, "f": 0.5, "l": null, "t": null})
    );
}

#[test]
fn snapshot_rows_that_cannot_be_decoded_are_split_off_with_their_raw_value() {
    let plan = plan("", "DEBEZIUM");
    let batch = creates(&plan, &[1, 2, 3], &["1", "x", "3"]).after.unwrap();
    // Row 1's `v` could not be decoded: the batch holds NULL there (here: anything).
    let errors = vec![RowError {
        row: 1,
        column: 1,
        message: "numeric NaN cannot be a Decimal".into(),
        raw: "NaN".into(),
        old_image: false,
    }];
    let (good, poison) = split_snapshot(&plan.tables[0], batch, errors).expect("split");
    assert_eq!(good.num_rows(), 2);
    assert_eq!(
        good.column(0)
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
            .values()
            .to_vec(),
        vec![1, 3]
    );
    assert_eq!(poison.len(), 1);
    let p = &poison[0];
    assert_eq!(
        (p.stage, p.column.as_deref(), p.op, p.lsn),
        (Stage::Decode, Some("v"), Op::Read, None)
    );
    assert_eq!(
        p.row.to_value(),
        json!({"id": 2, "v": "NaN", "note": "note 2"})
    );
}

#[test]
fn changes_that_cannot_be_decoded_keep_their_op_and_position() {
    let plan = plan("", "DEBEZIUM");
    let mut change = creates(&plan, &[1, 2, 3], &["1", "2", "3"]);
    change.ops[2] = Op::Delete;
    change.before = change.after.clone();
    change.before_valid = Some(vec![false, false, true]);
    let names: Vec<String> = ["id", "v", "note"].map(String::from).to_vec();
    let errors = vec![RowError {
        row: 2,
        column: 2,
        message: "invalid UTF-8".into(),
        raw: "\\xff".into(),
        old_image: true,
    }];
    let (good, poison) = split_changes(&names, change, errors).expect("split");
    assert_eq!(good.ops, vec![Op::Create, Op::Create]);
    assert_eq!(good.lsns.as_deref(), Some(&[1001, 1002][..]));
    assert_eq!(good.before_valid.as_deref(), Some(&[false, false][..]));
    let p = &poison[0];
    assert_eq!((p.op, p.lsn), (Op::Delete, Some(1003)));
    assert!(p.error.contains("old row image"), "{}", p.error);
    // A delete shows its old row.
    assert_eq!(p.row.get("id"), Some(&json!(3)));
}

#[test]
fn dead_letters_fit_in_a_message() {
    let row = JsonRow(vec![
        ("id".into(), json!(1)),
        ("big".into(), json!("é".repeat(20_000))),
        ("small".into(), json!("keep me")),
    ]);
    let (bytes, cut) = fit(row.clone(), 1000);
    assert!(bytes.len() <= 1000, "{}", bytes.len());
    assert_eq!(cut, vec!["big".to_string()]);
    let back: Value = serde_json::from_slice(&bytes).expect("still JSON");
    assert_eq!(back["small"], json!("keep me"));
    assert!(back["big"].as_str().unwrap().ends_with('…'));
    let (bytes, cut) = fit(row.clone(), 1_000_000);
    assert!(cut.is_empty());
    assert_eq!(
        serde_json::from_slice::<Value>(&bytes).unwrap(),
        row.to_value()
    );
    // Columns keep their order.
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.starts_with("{\"id\":1,\"big\":\"é"), "{}", &text[..20]);
}

fn errors_for(plan: &PipelinePlan) -> TableErrors {
    let t = &plan.tables[0];
    let (native, tombstones, deleted_marker) = match &plan.envelope {
        Envelope::Debezium(d) => (false, d.tombstones, false),
        Envelope::Native(n) => (true, false, n.deleted_marker),
    };
    TableErrors {
        on_error: plan.errors.on_error,
        pipeline: plan.name.clone(),
        table: t.table.to_string(),
        topic: t.topic.clone(),
        dead_letter_topic: plan.dead_letter_topic(t),
        key: vec!["id".into()],
        index: 0,
        tombstones,
        deleted_marker,
        native,
        max_message_bytes: max_message_bytes(plan),
        warnings: Warnings::new(),
    }
}

#[test]
fn messages_map_back_to_their_rows() {
    let mut change = creates(&plan("", "DEBEZIUM"), &[1, 2, 3], &["1", "2", "3"]);
    change.ops[1] = Op::Delete;
    let debezium = errors_for(&plan("", "DEBEZIUM"));
    assert_eq!(debezium.message_rows(&change, 4), Some(vec![0, 1, 1, 2]));
    assert_eq!(debezium.message_rows(&change, 3), None);
    let no_tombstones = errors_for(&plan("WITH (tombstones = false)", "DEBEZIUM"));
    assert_eq!(no_tombstones.message_rows(&change, 3), Some(vec![0, 1, 2]));
    let marker = errors_for(&plan("WITH (deleted_marker = true)", "NATIVE"));
    assert_eq!(marker.message_rows(&change, 4), Some(vec![0, 1, 1, 2]));
    let native = errors_for(&plan("", "NATIVE"));
    assert_eq!(native.message_rows(&change, 3), Some(vec![0, 1, 2]));
}

#[test]
fn fail_names_table_row_column_position_and_the_option() {
    let e = errors_for(&plan("", "DEBEZIUM"));
    let row = PoisonRow {
        stage: Stage::Convert,
        column: Some("v".into()),
        error: "NaN cannot be written as a Decimal".into(),
        op: Op::Update,
        lsn: Some(0x1_0000_00A0),
        row: JsonRow(vec![("id".into(), json!(42)), ("v".into(), json!("NaN"))]),
    };
    let text = e.describe(&row);
    for needle in [
        "table public.t",
        "op `u`",
        "LSN 1/A0",
        "key {\"id\":42}",
        "column `v`",
        "NaN cannot be written",
        "on_error = 'dead_letter'",
        "on_error = 'skip'",
    ] {
        assert!(text.contains(needle), "no {needle:?} in: {text}");
    }
    let snapshot = PoisonRow { lsn: None, ..row };
    assert!(e.describe(&snapshot).contains("a snapshot row"));
}

#[test]
fn warnings_are_rate_limited_and_count_what_they_leave_out() {
    let mut w = Warnings::new();
    for _ in 0..WARNINGS_PER_WINDOW {
        assert_eq!(w.allow(), Some(0));
    }
    assert_eq!(w.allow(), None);
    assert_eq!(w.allow(), None);
    w.window -= WARNING_WINDOW;
    assert_eq!(w.allow(), Some(2));
}

#[test]
fn the_progress_record_counts_across_runs() {
    let plan = plan("WITH (on_error = 'skip')", "DEBEZIUM");
    let shared = Metrics::new(&plan);
    let mut progress = Progress::default();
    progress.rejected.insert(
        "public.t".into(),
        RejectedRows {
            dead_lettered: 0,
            skipped: 5,
        },
    );
    // A restarted run in the same process: its counters do not start at zero.
    shared.tables[0].skipped.store(3, Ordering::Relaxed);
    let tally = Tally::new(&plan, &progress, &shared);
    shared.tables[0].skipped.fetch_add(2, Ordering::Relaxed);
    tally.record(&mut progress, &shared);
    assert_eq!(progress.rejected["public.t"].skipped, 7);
    let json: Value = serde_json::from_slice(&progress.to_json()).unwrap();
    assert_eq!(json["rejected"]["public.t"]["skipped"], json!(7));
    // Nothing rejected: the field stays out of the record.
    let empty = Progress::default();
    let json: Value = serde_json::from_slice(&empty.to_json()).unwrap();
    assert!(json.get("rejected").is_none());
}

#[test]
fn dead_letter_topics_follow_the_template() {
    let p = plan("WITH (on_error = 'dead_letter')", "DEBEZIUM");
    assert_eq!(
        p.dead_letter_topic(&p.tables[0]).as_deref(),
        Some("shop.t.dlq")
    );
    let p = plan(
        "WITH (on_error = 'dead_letter', dead_letter_topic = 'dlq.{pipeline}.{schema}.{table}')",
        "DEBEZIUM",
    );
    assert_eq!(
        p.dead_letter_topic(&p.tables[0]).as_deref(),
        Some("dlq.p.public.t")
    );
    let p = plan("WITH (on_error = 'skip')", "DEBEZIUM");
    assert_eq!(p.dead_letter_topic(&p.tables[0]), None);
}

#[test]
fn rows_the_query_fails_on_are_set_aside_with_their_source_columns() {
    let plan = plan_of(
        "ENVELOPE DEBEZIUM WITH (on_error = 'skip') \
         AS SELECT id, CAST(note AS int) AS n FROM public.t",
    );
    let transform = crate::transform::Transform::new(&plan.tables[0]).expect("transform");
    let schema = plan.tables[0].input_schema.clone();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, vec!["id", "note"], "the query reads id and note");
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3, 4])),
            Arc::new(StringArray::from(vec!["10", "x", "30", "4.5"])),
        ],
    )
    .unwrap();
    let input = snapshot_rows(batch.clone());
    let run = |c: &ChangeBatch| -> Result<(), RuntimeError> {
        transform.apply(c.after.clone().expect("rows"))?;
        Ok(())
    };
    let first = run(&input).expect_err("'x' is no int");
    let (faults, rest) = isolate(first, &input, run).expect("isolated");
    assert_eq!(faults.iter().map(|f| f.row).collect::<Vec<_>>(), vec![1, 3]);
    assert!(faults.iter().all(|f| f.stage == Stage::Query));
    let out = transform
        .apply(rest.expect("rest").after.expect("rows"))
        .expect("the rest runs");
    assert_eq!(
        out.column(1).as_primitive::<Int32Type>().values().to_vec(),
        vec![10, 30]
    );
    // The dead letter shows the row as read, not as the query would have made it.
    let e = errors_for(&plan);
    let rows = e.rows_from(&input, faults);
    assert_eq!(rows[0].row.to_value(), json!({"id": 2, "note": "x"}));
    assert_eq!(rows[0].lsn, None);
}

#[test]
fn size_refusals_are_told_apart() {
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};
    let at_send = SinkError::Produce {
        topic: "t".into(),
        source: KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
    };
    assert!(too_large(&at_send));
    let queue_full = SinkError::Produce {
        topic: "t".into(),
        source: KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
    };
    assert!(!too_large(&queue_full));
    // The broker refusing a batch: not one row's fault, and no use retrying.
    let refused = RuntimeError::Sink(SinkError::Delivery {
        failed: 3,
        first: "Broker: Message size too large (topic t)".into(),
    });
    assert!(fatal_delivery(&refused));
    let told = explain_delivery(refused).to_string();
    assert!(
        told.contains("'message.max.bytes'") && told.contains("max.message.bytes"),
        "{told}"
    );
    let lost = RuntimeError::Sink(SinkError::Delivery {
        failed: 1,
        first: "Local: Message timed out (topic t)".into(),
    });
    assert!(!fatal_delivery(&lost));
    assert!(matches!(explain_delivery(lost), RuntimeError::Sink(_)));
}
