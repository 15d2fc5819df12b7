//! Debezium's transaction metadata while streaming (`transaction_metadata = true`): numbers
//! every event within its source transaction, and writes each transaction's BEGIN and END
//! records to the transaction topic.
//!
//! The producer worker calls [`TransactionTopic::number`] with each change batch after the
//! pipeline's filter (a batch may hold rows of several source transactions, and a
//! transaction's rows may come in several batches of several tables, some before it ends),
//! and [`TxnCounter::end`] with the transactions that ended (`Work::TxnsEnded`, sent by the
//! stream right after their last rows). BEGIN is written just before a transaction's first
//! event and END once all its events are written. A transaction none of whose changes pass
//! the filter writes nothing: Debezium writes nothing for a transaction the server does not
//! send, and Postgres 15+ sends none for a transaction without published changes (after the
//! publication's row filters, which the pipeline's WHERE stands in for).

use datafusion::arrow::array::{Int64Array, StringBuilder, StructArray};

use super::produce::register;
use super::RuntimeError;
use crate::encode::{EncodedColumn, Encoder};
use crate::envelope::transaction::{self, TxnRecord};
use crate::envelope::{ChangeBatch, EnvelopeError};
use crate::plan::{Encoding, Envelope, PipelinePlan};
use crate::registry::RegistryClient;
use crate::sink::kafka::KafkaSink;

/// A source transaction that ended, as the stream saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TxnEnd {
    pub tx_id: i64,
    /// End of its commit record: the position Debezium names END by.
    pub end_lsn: u64,
}

/// A source transaction with events written and no END yet.
#[derive(Debug, Clone)]
struct OpenTxn {
    tx_id: i64,
    ts_us: i64,
    total: i64,
    /// Events per table (plan index), in the order the tables first had one.
    per_table: Vec<(usize, i64)>,
}

/// The numbering of one batch: its events' `transaction` blocks, and the BEGIN records of
/// the transactions whose first events these are (to be written before the events).
pub(crate) struct Numbered {
    pub block: StructArray,
    pub begins: Vec<TxnRecord>,
}

/// The running counts of the source transactions in flight.
#[derive(Debug, Clone)]
pub(crate) struct TxnCounter {
    /// `schema.table` of each table of the plan: Debezium's data collection names.
    collections: Vec<String>,
    /// Usually one; several while ended transactions wait for their END.
    open: Vec<OpenTxn>,
}

fn internal(message: String) -> EnvelopeError {
    EnvelopeError::Value {
        column: "transaction".into(),
        message: format!("{message}; this is a bug in cdcql, please report it"),
    }
}

impl TxnCounter {
    pub fn new(collections: Vec<String>) -> Self {
        TxnCounter {
            collections,
            open: Vec::new(),
        }
    }

    /// Number the events of a change batch of table `table` (plan index), in order.
    pub fn number(&mut self, table: usize, batch: &ChangeBatch) -> Result<Numbered, EnvelopeError> {
        let n = batch.len();
        let mut ids = StringBuilder::with_capacity(n, n * 20);
        let mut total = Vec::with_capacity(n);
        let mut in_table = Vec::with_capacity(n);
        let mut begins = Vec::new();
        let run_of = |i: usize| batch.txns.as_ref().and_then(|t| t.row_txn.get(i).copied());
        let mut start = 0;
        // Rows of one transaction are contiguous: count per run, not per row.
        while start < n {
            let run = run_of(start);
            let end = (start + 1..n).find(|&i| run_of(i) != run).unwrap_or(n);
            let pos = batch.position_of(start);
            let lsn_of = |i: usize| {
                batch
                    .lsns
                    .as_ref()
                    .and_then(|l| l.get(i).copied())
                    .or(pos.lsn)
                    .ok_or_else(|| internal(format!("streamed change {i} has no WAL position")))
            };
            let xid = pos
                .tx_id
                .ok_or_else(|| internal("a streamed change without a transaction id".into()))?;
            let k = match self.open.iter().position(|t| t.tx_id == xid) {
                Some(k) => k,
                None => {
                    // Debezium names BEGIN by where the server began sending the transaction.
                    let begin_lsn = match pos.begin_lsn {
                        Some(l) => l,
                        None => lsn_of(start)?,
                    };
                    begins.push(TxnRecord {
                        id: transaction::id(xid, begin_lsn),
                        ts_ms: pos.ts_us.div_euclid(1000),
                        collections: None,
                    });
                    self.open.push(OpenTxn {
                        tx_id: xid,
                        ts_us: pos.ts_us,
                        total: 0,
                        per_table: Vec::new(),
                    });
                    self.open.len() - 1
                }
            };
            let txn = &mut self.open[k];
            let slot = match txn.per_table.iter().position(|(t, _)| *t == table) {
                Some(s) => s,
                None => {
                    txn.per_table.push((table, 0));
                    txn.per_table.len() - 1
                }
            };
            let len = (end - start) as i64;
            total.extend(txn.total + 1..=txn.total + len);
            let seen = txn.per_table[slot].1;
            in_table.extend(seen + 1..=seen + len);
            txn.total += len;
            txn.per_table[slot].1 += len;
            for i in start..end {
                transaction::write_id(&mut ids, xid, lsn_of(i)?);
            }
            start = end;
        }
        Ok(Numbered {
            block: transaction::block(
                ids.finish(),
                Int64Array::from(total),
                Int64Array::from(in_table),
            )?,
            begins,
        })
    }

    /// The END records of the ended transactions that wrote events, in commit order; they
    /// are no longer in flight afterwards.
    pub fn end(&mut self, ended: &[TxnEnd]) -> Vec<TxnRecord> {
        let mut out = Vec::new();
        for e in ended {
            let Some(k) = self.open.iter().position(|t| t.tx_id == e.tx_id) else {
                continue;
            };
            let txn = self.open.remove(k);
            out.push(TxnRecord {
                id: transaction::id(txn.tx_id, e.end_lsn),
                ts_ms: txn.ts_us.div_euclid(1000),
                collections: Some(
                    txn.per_table
                        .iter()
                        .map(|(t, count)| {
                            let name = self.collections.get(*t).cloned().unwrap_or_default();
                            (name, *count)
                        })
                        .collect(),
                ),
            });
        }
        out
    }
}

/// The transaction topic of a running pipeline, with its encoders and the counts.
pub(crate) struct TransactionTopic {
    topic: String,
    key: Encoder,
    value: Encoder,
    keys: EncodedColumn,
    values: EncodedColumn,
    pub counter: TxnCounter,
}

impl TransactionTopic {
    /// `None` unless the pipeline provides transaction metadata. With Avro, the key and value
    /// schemas are registered (or looked up) first, as for the tables' topics.
    pub async fn build(
        plan: &PipelinePlan,
        registry: Option<&RegistryClient>,
    ) -> Result<Option<TransactionTopic>, RuntimeError> {
        let Envelope::Debezium(opts) = &plan.envelope else {
            return Ok(None);
        };
        let Some(topic) = opts.transaction_topic.clone() else {
            return Ok(None);
        };
        let key_schema = transaction::key_schema();
        let value_schema = transaction::value_schema();
        let mut key = Encoder::new(&plan.encoding, &key_schema)?;
        let mut value = Encoder::new(&plan.encoding, &value_schema)?;
        if let Encoding::Avro(avro) = &plan.encoding {
            let registry = registry.ok_or_else(|| {
                RuntimeError::Internal("FORMAT AVRO without a registry client".into())
            })?;
            register(registry, avro, &topic, &mut key, &key_schema, true).await?;
            register(registry, avro, &topic, &mut value, &value_schema, false).await?;
        }
        Ok(Some(TransactionTopic {
            topic,
            key,
            value,
            keys: EncodedColumn::default(),
            values: EncodedColumn::default(),
            counter: TxnCounter::new(plan.tables.iter().map(|t| t.table.to_string()).collect()),
        }))
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Number a batch's events and write the BEGIN records of the transactions they start;
    /// returns the events' `transaction` blocks.
    pub fn number(
        &mut self,
        table: usize,
        batch: &ChangeBatch,
        sink: &mut KafkaSink,
    ) -> Result<StructArray, RuntimeError> {
        let numbered = self.counter.number(table, batch)?;
        self.send(&numbered.begins, sink)?;
        Ok(numbered.block)
    }

    /// Write transaction records, in order.
    pub fn send(
        &mut self,
        records: &[TxnRecord],
        sink: &mut KafkaSink,
    ) -> Result<(), RuntimeError> {
        if records.is_empty() {
            return Ok(());
        }
        let r = transaction::records(records)?;
        self.keys.clear();
        self.values.clear();
        if let Some(k) = &r.key {
            self.key.encode(k, &mut self.keys)?;
        }
        self.value.encode(&r.value, &mut self.values)?;
        for i in 0..self.values.len() {
            sink.send(&self.topic, self.keys.get(i), self.values.get(i))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{Op, SourcePosition, TxnRows};
    use crate::plan::{Encoding, Envelope};
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::Int64Type;

    fn pos(xid: i64, begin: u64) -> SourcePosition {
        SourcePosition {
            ts_us: xid * 1_000_000 + 7_500,
            tx_id: Some(xid),
            lsn: None,
            last_commit_lsn: None,
            begin_lsn: Some(begin),
        }
    }

    /// A batch of `rows`, each `(xid, lsn)`; transactions as in `TxnRows`.
    fn batch(rows: &[(i64, u64)]) -> ChangeBatch {
        let mut positions: Vec<SourcePosition> = Vec::new();
        let mut row_txn = Vec::new();
        for (xid, _) in rows {
            if positions.last().and_then(|p| p.tx_id) != Some(*xid) {
                positions.push(pos(*xid, 100 * *xid as u64));
            }
            row_txn.push((positions.len() - 1) as u32);
        }
        let position = positions.last().cloned().unwrap_or_else(|| pos(0, 0));
        ChangeBatch {
            ops: vec![Op::Create; rows.len()],
            before: None,
            before_valid: None,
            after: None,
            position,
            snapshot_marks: None,
            lsns: Some(rows.iter().map(|(_, l)| *l).collect()),
            txns: (positions.len() > 1).then_some(TxnRows { positions, row_txn }),
        }
    }

    /// `(id, total_order, data_collection_order)` per row.
    fn blocks(n: &Numbered) -> Vec<(String, i64, i64)> {
        let b = &n.block;
        let ids = b.column(0).as_string::<i32>();
        let total = b.column(1).as_primitive::<Int64Type>();
        let dco = b.column(2).as_primitive::<Int64Type>();
        assert_eq!(b.null_count(), 0);
        (0..b.len())
            .map(|i| (ids.value(i).to_string(), total.value(i), dco.value(i)))
            .collect()
    }

    fn counter() -> TxnCounter {
        TxnCounter::new(vec!["s.a".into(), "s.b".into()])
    }

    #[test]
    fn one_batch_of_several_transactions() {
        let mut c = counter();
        let n = c
            .number(
                0,
                &batch(&[(5, 501), (5, 502), (6, 601), (7, 701), (7, 702)]),
            )
            .unwrap();
        assert_eq!(
            blocks(&n),
            [
                ("5:501".to_string(), 1, 1),
                ("5:502".to_string(), 2, 2),
                ("6:601".to_string(), 1, 1),
                ("7:701".to_string(), 1, 1),
                ("7:702".to_string(), 2, 2),
            ]
        );
        let begin_ids: Vec<&str> = n.begins.iter().map(|b| b.id.as_str()).collect();
        assert_eq!(begin_ids, ["5:500", "6:600", "7:700"]);
        assert!(n.begins.iter().all(|b| b.collections.is_none()));
        assert_eq!(n.begins[1].ts_ms, 6_007);

        let ends = c.end(&[
            TxnEnd {
                tx_id: 5,
                end_lsn: 590,
            },
            TxnEnd {
                tx_id: 6,
                end_lsn: 690,
            },
            TxnEnd {
                tx_id: 7,
                end_lsn: 790,
            },
        ]);
        let end = |id: &str, ts_ms: i64, count: i64| TxnRecord {
            id: id.into(),
            ts_ms,
            collections: Some(vec![("s.a".into(), count)]),
        };
        assert_eq!(
            ends,
            [
                end("5:590", 5_007, 2),
                end("6:690", 6_007, 1),
                end("7:790", 7_007, 2)
            ]
        );
        assert!(c.open.is_empty());
    }

    #[test]
    fn one_transaction_over_batches_and_tables() {
        let mut c = counter();
        // Transaction 9 is still open when its first rows are handed on.
        let first = c.number(1, &batch(&[(9, 901), (9, 902)])).unwrap();
        assert_eq!(first.begins.len(), 1);
        let second = c.number(0, &batch(&[(9, 903)])).unwrap();
        assert!(second.begins.is_empty(), "one BEGIN per transaction");
        let third = c.number(1, &batch(&[(9, 904), (10, 1001)])).unwrap();
        let all: Vec<(String, i64, i64)> = [first, second]
            .iter()
            .chain(std::iter::once(&third))
            .flat_map(blocks)
            .collect();
        assert_eq!(
            all,
            [
                ("9:901".to_string(), 1, 1),
                ("9:902".to_string(), 2, 2),
                ("9:903".to_string(), 3, 1),
                ("9:904".to_string(), 4, 3),
                ("10:1001".to_string(), 1, 1),
            ]
        );
        assert_eq!(third.begins.len(), 1);
        assert_eq!(third.begins[0].id, "10:1000");

        // Only 9 ended: 10 stays in flight and keeps counting.
        let ends = c.end(&[TxnEnd {
            tx_id: 9,
            end_lsn: 999,
        }]);
        assert_eq!(ends.len(), 1);
        assert_eq!(ends[0].id, "9:999");
        assert_eq!(
            ends[0].collections.as_deref(),
            Some(&[("s.b".to_string(), 3), ("s.a".to_string(), 1)][..])
        );
        let more = c.number(0, &batch(&[(10, 1002)])).unwrap();
        assert_eq!(blocks(&more), [("10:1002".to_string(), 2, 1)]);
        assert!(more.begins.is_empty());
    }

    #[test]
    fn transactions_without_events_write_nothing() {
        let mut c = counter();
        c.number(0, &batch(&[(3, 301)])).unwrap();
        // 2 ended with every change filtered out; 4 never reached the worker at all.
        let ends = c.end(&[
            TxnEnd {
                tx_id: 2,
                end_lsn: 290,
            },
            TxnEnd {
                tx_id: 3,
                end_lsn: 390,
            },
            TxnEnd {
                tx_id: 4,
                end_lsn: 490,
            },
        ]);
        let ids: Vec<&str> = ends.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["3:390"]);
        let empty = c.number(0, &batch(&[])).unwrap();
        assert_eq!(empty.block.len(), 0);
        assert!(empty.begins.is_empty());
    }

    #[test]
    fn begin_falls_back_to_the_first_event() {
        let mut c = counter();
        let mut b = batch(&[(8, 812)]);
        b.position.begin_lsn = None;
        let n = c.number(0, &b).unwrap();
        assert_eq!(n.begins[0].id, "8:812");
    }

    #[test]
    fn a_change_without_transaction_is_an_error() {
        let mut c = counter();
        let mut b = batch(&[(8, 812)]);
        b.position.tx_id = None;
        let err = c
            .number(0, &b)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("bug in cdcql"), "{err}");
    }

    /// Through the Debezium envelope and the JSON encoder: each event carries its block, a
    /// delete's tombstone stays a null value, and events of two transactions in one batch
    /// are told apart.
    #[test]
    fn events_carry_their_blocks() {
        use datafusion::arrow::array::{Int32Array, RecordBatch, StringArray};
        use std::sync::Arc;

        let text = "CREATE CONNECTION pg TO POSTGRES (url = 'postgres://x@h/shop');
            CREATE CONNECTION k TO KAFKA (brokers = 'b:9092');
            CREATE PIPELINE p FROM pg INTO k TOPIC 'srv.{schema}.{table}'
              FORMAT JSON ENVELOPE DEBEZIUM WITH (transaction_metadata = true) TABLES (s.t);";
        let file = crate::parse::SourceFile::new("t.sql", text);
        let script = crate::parse::parse_with_env(&file, &|_| None).unwrap();
        let catalog = crate::catalog::Catalog::from_ddl_like(
            "database shop\ntable s.t\n  id integer primary key\n  note text\n",
        )
        .unwrap();
        let catalogs = std::collections::BTreeMap::from([("pg".to_string(), catalog)]);
        let plan = crate::plan::plan_script(&file, &script, &catalogs)
            .unwrap()
            .remove(0);
        let Envelope::Debezium(opts) = &plan.envelope else {
            panic!("a Debezium pipeline")
        };
        assert_eq!(opts.transaction_topic.as_deref(), Some("srv.transaction"));
        let table = &plan.tables[0];
        let env = crate::envelope::debezium::DebeziumTable::new(table, opts, "shop", &plan.types);

        let rows = RecordBatch::try_new(
            table.output_schema(),
            vec![
                Arc::new(Int32Array::from(vec![1, 2, 3])),
                Arc::new(StringArray::from(vec![Some("a"), None, Some("c")])),
            ],
        )
        .unwrap();
        let mut change = batch(&[(40, 4001), (40, 4002), (41, 4101)]);
        change.ops = vec![Op::Create, Op::Delete, Op::Create];
        change.before = Some(rows.clone());
        change.before_valid = Some(vec![false, true, false]);
        change.after = Some(rows);
        let mut counter = TxnCounter::new(vec!["s.t".into()]);
        let numbered = counter.number(0, &change).unwrap();
        let records = env.records_in(&change, 0, Some(&numbered.block)).unwrap();
        let enc = Encoder::new(&Encoding::Json { schemas: false }, &env.schemas().value).unwrap();
        let mut out = EncodedColumn::default();
        enc.encode(&records.value, &mut out).unwrap();
        let blocks: Vec<Option<String>> = (0..out.len())
            .map(|i| {
                out.get(i).map(|v| {
                    let text = String::from_utf8(v.to_vec()).unwrap();
                    let at = text.find("\"transaction\":").unwrap();
                    let end = text[at..].find('}').unwrap();
                    text[at..=at + end].to_string()
                })
            })
            .collect();
        assert_eq!(
            blocks,
            [
                Some(
                    r#""transaction":{"id":"40:4001","total_order":1,"data_collection_order":1}"#
                        .to_string()
                ),
                Some(
                    r#""transaction":{"id":"40:4002","total_order":2,"data_collection_order":2}"#
                        .to_string()
                ),
                None,
                Some(
                    r#""transaction":{"id":"41:4101","total_order":1,"data_collection_order":1}"#
                        .to_string()
                ),
            ]
        );
        // Without a block (snapshot rows, metadata off) the envelope writes null.
        let plain = env.records(&change, 0).unwrap();
        let mut out = EncodedColumn::default();
        enc.encode(&plain.value, &mut out).unwrap();
        let first = String::from_utf8(out.get(0).unwrap().to_vec()).unwrap();
        assert!(first.contains("\"transaction\":null"), "{first}");
        // A block of the wrong length is refused, not misaligned.
        let short = counter.number(0, &batch(&[(41, 4102)])).unwrap();
        assert!(env.records_in(&change, 0, Some(&short.block)).is_err());
    }
}
