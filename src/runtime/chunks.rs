//! The snapshot in chunks: each table is split into primary-key ranges (or, without a key,
//! ranges of heap pages read with TID range scans), read by `parallelism` connections that all
//! import the same snapshot. Chunks reach
//! the producing side one whole chunk at a time, so each one can be committed with its
//! progress record; after a crash only the unfinished chunks are read again.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use tokio::sync::mpsc;
use tokio_postgres::Client;

use super::metrics::Metrics;
use super::offsets::TableChunks;
use super::produce::Work;
use super::{RuntimeError, BATCH_ROWS};
use crate::catalog::quote_ident;
use crate::plan::PipelinePlan;
use crate::source::postgres::copy::RowError;
use crate::source::postgres::{self, snapshot};

/// Rows per heap page assumed for a table never analysed.
const DEFAULT_ROWS_PER_PAGE: f64 = 60.0;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChunkSpec {
    pub table: usize,
    pub chunk: u32,
    /// SQL condition selecting the chunk's rows; `None` for a table read whole.
    pub filter: Option<String>,
    pub last: bool,
}

/// Boundary rows sampled per chunk when splitting by primary key.
const SAMPLES_PER_CHUNK: f64 = 50.0;

/// Split every table into chunks of about `chunk_rows` rows, keeping the boundaries of a
/// previous attempt (`previous`) so that its finished chunks stay valid. Tables with a
/// primary key are split into key ranges (boundaries sampled with TABLESAMPLE), others into
/// ranges of heap pages. Returns every table's chunk record and the chunks still to read.
///
/// `first_attempt` is the snapshot (`pg_current_snapshot()` text) of the attempt being
/// resumed. Heap-page chunks of a table without a key then read only the row versions that
/// snapshot saw: a row updated or inserted since lives in another place now (maybe a chunk
/// still to read) and the stream, which replays from the first attempt's point, brings it.
pub(crate) async fn plan_chunks(
    client: &Client,
    plan: &PipelinePlan,
    previous: &BTreeMap<String, TableChunks>,
    first_attempt: Option<&str>,
) -> Result<(BTreeMap<String, TableChunks>, Vec<ChunkSpec>), RuntimeError> {
    let mut record = BTreeMap::new();
    let mut todo = Vec::new();
    let seen_by_first = first_attempt.and_then(seen_by);
    if first_attempt.is_some() && seen_by_first.is_none() {
        tracing::warn!(
            "this cluster has used more than 2^32 transaction ids: rows of tables without a \
             primary key that changed since the interrupted snapshot may be read twice"
        );
    }
    for (i, t) in plan.tables.iter().enumerate() {
        let name = t.table.to_string();
        let key = primary_key(client, &t.table).await?;
        let chunks = match previous.get(&name) {
            Some(p) if p.total > 0 => p.clone(),
            _ => split(client, plan, &t.table, &key).await?,
        };
        for k in 0..chunks.total {
            if chunks.done.contains(&k) {
                continue;
            }
            let filter = if chunks.total == 1 {
                None
            } else if let Some(bounds) = &chunks.bounds {
                let lo = (k > 0).then(|| &bounds[k as usize - 1]);
                let hi = bounds.get(k as usize);
                key_range(&key, lo, hi)
            } else {
                let first = u64::from(k) * chunks.pages_per_chunk;
                Some(if k + 1 == chunks.total {
                    format!("ctid >= '({first},0)'::tid")
                } else {
                    format!(
                        "ctid >= '({first},0)'::tid AND ctid < '({},0)'::tid",
                        first + chunks.pages_per_chunk
                    )
                })
            };
            let filter = match (&seen_by_first, key.is_empty()) {
                (Some(seen), true) => Some(match filter {
                    Some(f) => format!("{f} AND {seen}"),
                    None => seen.clone(),
                }),
                _ => filter,
            };
            tracing::debug!(table = %t.table, chunk = k, filter = ?filter, "snapshot chunk");
            todo.push(ChunkSpec {
                table: i,
                chunk: k,
                filter,
                last: k + 1 == chunks.total,
            });
        }
        record.insert(name, chunks);
    }
    Ok((record, todo))
}

/// A condition true for the row versions that `snapshot` (a `pg_snapshot` as text) saw: those
/// written by a transaction it saw as committed. Row versions carry 32-bit xids; only while
/// the cluster has never wrapped (the snapshot's xmin fits 32 bits) is that xid, read as an
/// `xid8`, the full one — after a wrap an old frozen row's xid could pass for a recent one,
/// so then there is no condition (`None`).
fn seen_by(snapshot: &str) -> Option<String> {
    let xmin: u64 = snapshot.split(':').next()?.parse().ok()?;
    if xmin >= 1 << 32
        || !snapshot
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b':' || b == b',')
    {
        return None;
    }
    Some(format!(
        "pg_visible_in_snapshot(xmin::text::xid8, '{snapshot}'::pg_snapshot)"
    ))
}

/// The primary key's columns with their SQL types, in key order (empty without one).
async fn primary_key(
    client: &Client,
    table: &crate::catalog::TableName,
) -> Result<Vec<(String, String)>, RuntimeError> {
    let rows = client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) \
             FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
             WHERE n.nspname = $1 AND c.relname = $2 AND i.indisprimary ORDER BY k.ord",
            &[&table.schema, &table.name],
        )
        .await
        .map_err(postgres::SourceError::from)?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

async fn split(
    client: &Client,
    plan: &PipelinePlan,
    table: &crate::catalog::TableName,
    key: &[(String, String)],
) -> Result<TableChunks, RuntimeError> {
    let row = client
        .query_one(
            "SELECT pg_relation_size(c.oid) / current_setting('block_size')::int8, \
                    c.reltuples::float8, c.relpages::int8 \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2",
            &[&table.schema, &table.name],
        )
        .await
        .map_err(postgres::SourceError::from)?;
    let pages = row.get::<_, i64>(0).max(0) as u64;
    let (tuples, relpages) = (row.get::<_, f64>(1), row.get::<_, i64>(2));
    let per_page = if relpages > 0 && tuples > 0.0 {
        tuples / relpages as f64
    } else {
        DEFAULT_ROWS_PER_PAGE
    };
    let rows = (per_page * pages as f64).max(tuples);
    let wanted = (rows / plan.delivery.chunk_rows as f64).ceil().max(1.0) as u64;
    if wanted <= 1 || pages == 0 {
        return Ok(TableChunks {
            pages_per_chunk: pages.max(1),
            total: 1,
            done: Vec::new(),
            bounds: None,
        });
    }
    if key.is_empty() {
        let pages_per_chunk = pages.div_ceil(wanted).max(1);
        return Ok(TableChunks {
            pages_per_chunk,
            total: pages.div_ceil(pages_per_chunk).clamp(1, u32::MAX as u64) as u32,
            done: Vec::new(),
            bounds: None,
        });
    }
    // Sample key values and take evenly spaced ones as boundaries.
    let percent = (100.0 * SAMPLES_PER_CHUNK * wanted as f64 / rows.max(1.0)).clamp(0.0001, 100.0);
    // Row-level sampling (BERNOULLI): page-level sampling clusters the boundaries. Order by
    // the columns themselves, qualified, not by their text ("10" sorts before "9").
    let cols = key
        .iter()
        .map(|(c, _)| format!("s.{}", quote_ident(c)))
        .collect::<Vec<_>>();
    let text_cols = cols
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c}::text AS k{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT {text_cols} FROM {} AS s TABLESAMPLE BERNOULLI ({percent}) ORDER BY {}",
        table.quoted(),
        cols.join(", ")
    );
    let sample = client
        .query(sql.as_str(), &[])
        .await
        .map_err(postgres::SourceError::from)?;
    let values: Vec<Vec<String>> = sample
        .iter()
        .map(|r| (0..key.len()).map(|i| r.get::<_, String>(i)).collect())
        .collect();
    let mut bounds: Vec<Vec<String>> = Vec::new();
    for k in 1..wanted {
        let idx = (k as usize * values.len()) / wanted as usize;
        if let Some(v) = values.get(idx) {
            if bounds.last() != Some(v) {
                bounds.push(v.clone());
            }
        }
    }
    Ok(TableChunks {
        pages_per_chunk: 0,
        total: bounds.len() as u32 + 1,
        done: Vec::new(),
        bounds: Some(bounds),
    })
}

/// `key >= lo AND key < hi` as SQL, comparing row values for composite keys.
fn key_range(
    key: &[(String, String)],
    lo: Option<&Vec<String>>,
    hi: Option<&Vec<String>>,
) -> Option<String> {
    let cols = format!(
        "ROW({})",
        key.iter()
            .map(|(c, _)| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let value = |v: &Vec<String>| {
        format!(
            "ROW({})",
            v.iter()
                .zip(key)
                .map(|(x, (_, ty))| format!("'{}'::{ty}", x.replace('\'', "''")))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let mut parts = Vec::new();
    if let Some(lo) = lo {
        parts.push(format!("{cols} >= {}", value(lo)));
    }
    if let Some(hi) = hi {
        parts.push(format!("{cols} < {}", value(hi)));
    }
    (!parts.is_empty()).then(|| parts.join(" AND "))
}

enum Piece {
    /// Rows, with the values among them that could not be decoded.
    Batch(RecordBatch, Vec<RowError>),
    Done,
}

/// Read `chunks` with `parallelism` connections importing snapshot `snapshot_name`, and hand
/// them to the worker whole, one after the other. Returns rows read per table.
pub(crate) async fn read_chunks(
    plan: &PipelinePlan,
    snapshot_name: &str,
    chunks: Vec<ChunkSpec>,
    tx: &mpsc::Sender<Work>,
    metrics: &Metrics,
) -> Result<Vec<u64>, RuntimeError> {
    let parallelism = plan.delivery.parallelism.clamp(1, chunks.len().max(1));
    let queue = Arc::new(Mutex::new(VecDeque::from(chunks)));
    let (order_tx, mut order_rx) = mpsc::channel::<(ChunkSpec, mpsc::Receiver<Piece>)>(parallelism);
    let mut readers = Vec::with_capacity(parallelism);
    for _ in 0..parallelism {
        let queue = queue.clone();
        let order_tx = order_tx.clone();
        let plan = plan.clone();
        let name = snapshot_name.to_string();
        readers.push(tokio::spawn(async move {
            let client = postgres::connect(&plan.postgres.url).await?;
            snapshot::begin(&client, Some(&name)).await?;
            loop {
                let Some(spec) = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front() else {
                    break;
                };
                let (piece_tx, piece_rx) = mpsc::channel::<Piece>(4);
                if order_tx.send((spec.clone(), piece_rx)).await.is_err() {
                    break;
                }
                let t = &plan.tables[spec.table];
                snapshot::copy_table_range(
                    &client,
                    t,
                    spec.filter.as_deref(),
                    BATCH_ROWS,
                    &piece_tx,
                    Piece::Batch,
                )
                .await?;
                if piece_tx.send(Piece::Done).await.is_err() {
                    break;
                }
            }
            snapshot::end(&client).await?;
            Ok::<(), RuntimeError>(())
        }));
    }
    drop(order_tx);

    let mut rows = vec![0u64; plan.tables.len()];
    let mut failed = false;
    while let Some((spec, mut pieces)) = order_rx.recv().await {
        let mut complete = false;
        while let Some(piece) = pieces.recv().await {
            match piece {
                Piece::Batch(batch, errors) => {
                    rows[spec.table] += batch.num_rows() as u64;
                    if let Some(m) = metrics.tables.get(spec.table) {
                        m.rows_read.fetch_add(
                            batch.num_rows() as u64,
                            std::sync::atomic::Ordering::Relaxed,
                        );
                    }
                    // Rows that could not be decoded go their own way (`on_error`), before
                    // the chunk they belong to is done.
                    let batch = if errors.is_empty() {
                        batch
                    } else {
                        let (good, poison) =
                            super::poison::split_snapshot(&plan.tables[spec.table], batch, errors)
                                .map_err(crate::source::postgres::SourceError::from)?;
                        let work = Work::Poison {
                            table: spec.table,
                            rows: poison,
                        };
                        if tx.send(work).await.is_err() {
                            return Err(RuntimeError::WorkerStopped);
                        }
                        good
                    };
                    let work = Work::Snapshot {
                        table: spec.table,
                        chunk: spec.chunk,
                        batch,
                    };
                    if tx.send(work).await.is_err() {
                        return Err(RuntimeError::WorkerStopped);
                    }
                }
                Piece::Done => complete = true,
            }
        }
        if !complete {
            // Its reader failed: stop here; the reader's error is reported below.
            failed = true;
            break;
        }
        let done = Work::ChunkDone {
            table: spec.table,
            chunk: spec.chunk,
            last: spec.last,
        };
        if tx.send(done).await.is_err() {
            return Err(RuntimeError::WorkerStopped);
        }
    }
    drop(order_rx);
    for r in readers {
        match r.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(RuntimeError::Internal(format!("snapshot reader: {e}"))),
        }
    }
    if failed {
        return Err(RuntimeError::Internal(
            "a snapshot reader stopped without an error".into(),
        ));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::seen_by;

    #[test]
    fn condition_only_before_the_first_xid_wraparound() {
        assert_eq!(
            seen_by("748:752:748,750").as_deref(),
            Some("pg_visible_in_snapshot(xmin::text::xid8, '748:752:748,750'::pg_snapshot)")
        );
        assert_eq!(seen_by("4294967296:4294967300:"), None, "after a wrap");
        assert_eq!(
            seen_by("1:2:'; DROP TABLE t"),
            None,
            "only a pg_snapshot's characters"
        );
        assert_eq!(seen_by("garbage"), None);
    }
}
