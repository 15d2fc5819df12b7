//! The snapshot in chunks: each table is split into ranges of heap pages (read with TID range
//! scans), read by `parallelism` connections that all import the same snapshot. Chunks reach
//! the producing side one whole chunk at a time, so each one can be committed with its
//! progress record; after a crash only the unfinished chunks are read again.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use tokio::sync::mpsc;
use tokio_postgres::Client;

use super::offsets::TableChunks;
use super::produce::Work;
use super::{RuntimeError, BATCH_ROWS};
use crate::plan::PipelinePlan;
use crate::source::postgres::{self, snapshot};

/// Rows per heap page assumed for a table never analysed.
const DEFAULT_ROWS_PER_PAGE: f64 = 60.0;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChunkSpec {
    pub table: usize,
    pub chunk: u32,
    /// Heap pages `first..end`; `end` is open for a table's last chunk (or its only one).
    pub pages: Option<(u64, Option<u64>)>,
    pub last: bool,
}

/// Split every table into chunks of about `chunk_rows` rows, keeping the boundaries of a
/// previous attempt (`previous`) so that its finished chunks stay valid. Returns every table's
/// chunk record and the chunks still to read.
pub(crate) async fn plan_chunks(
    client: &Client,
    plan: &PipelinePlan,
    previous: &BTreeMap<String, TableChunks>,
) -> Result<(BTreeMap<String, TableChunks>, Vec<ChunkSpec>), RuntimeError> {
    let mut record = BTreeMap::new();
    let mut todo = Vec::new();
    for (i, t) in plan.tables.iter().enumerate() {
        let name = t.table.to_string();
        let chunks = match previous.get(&name) {
            Some(p) if p.pages_per_chunk > 0 && p.total > 0 => p.clone(),
            _ => {
                let row = client
                    .query_one(
                        "SELECT pg_relation_size(c.oid) / current_setting('block_size')::int8, \
                                c.reltuples::float8, c.relpages::int8 \
                         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                         WHERE n.nspname = $1 AND c.relname = $2",
                        &[&t.table.schema, &t.table.name],
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
                let pages_per_chunk =
                    ((plan.delivery.chunk_rows as f64 / per_page.max(1.0)).ceil() as u64).max(1);
                let total = pages.div_ceil(pages_per_chunk).clamp(1, u32::MAX as u64) as u32;
                TableChunks {
                    pages_per_chunk,
                    total,
                    done: Vec::new(),
                }
            }
        };
        for k in 0..chunks.total {
            if chunks.done.contains(&k) {
                continue;
            }
            let last = k + 1 == chunks.total;
            let first = u64::from(k) * chunks.pages_per_chunk;
            todo.push(ChunkSpec {
                table: i,
                chunk: k,
                pages: if chunks.total == 1 {
                    None
                } else if last {
                    Some((first, None))
                } else {
                    Some((first, Some(first + chunks.pages_per_chunk)))
                },
                last,
            });
        }
        record.insert(name, chunks);
    }
    Ok((record, todo))
}

enum Piece {
    Batch(RecordBatch),
    Done,
}

/// Read `chunks` with `parallelism` connections importing snapshot `snapshot_name`, and hand
/// them to the worker whole, one after the other. Returns rows read per table.
pub(crate) async fn read_chunks(
    plan: &PipelinePlan,
    snapshot_name: &str,
    chunks: Vec<ChunkSpec>,
    tx: &mpsc::Sender<Work>,
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
                let Some(spec) = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front()
                else {
                    break;
                };
                let (piece_tx, piece_rx) = mpsc::channel::<Piece>(4);
                if order_tx.send((spec.clone(), piece_rx)).await.is_err() {
                    break;
                }
                let t = &plan.tables[spec.table];
                snapshot::copy_table_range(&client, t, spec.pages, BATCH_ROWS, &piece_tx, |b| {
                    Piece::Batch(b)
                })
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
                Piece::Batch(batch) => {
                    rows[spec.table] += batch.num_rows() as u64;
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
