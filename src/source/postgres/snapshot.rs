//! The initial snapshot: every table of a pipeline read inside one REPEATABLE READ
//! transaction with binary COPY, so all tables show the same instant.

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::Client;

use super::copy::{CopyDecoder, RowError};
use super::SourceError;
use crate::catalog::quote_ident;
use crate::plan::TablePlan;

/// Where the snapshot sits in the database's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotPoint {
    /// `now()` of the snapshot transaction, µs since the Unix epoch.
    pub ts_us: i64,
    /// WAL position when the snapshot was taken.
    pub lsn: u64,
    pub tx_id: i64,
    /// `pg_current_snapshot()` as text (`xmin:xmax:xip,...`): which transactions it sees.
    pub xids: String,
}

/// `0/16B3748` → 0x16B3748.
pub fn parse_lsn(s: &str) -> Option<u64> {
    let (hi, lo) = s.split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

/// Start the snapshot transaction on `client`; COPY every table through the same client.
/// With `exported`, the transaction reads through a replication slot's exported snapshot, so
/// it sees exactly what precedes the slot's consistent point.
pub async fn begin(client: &Client, exported: Option<&str>) -> Result<SnapshotPoint, SourceError> {
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    if let Some(name) = exported {
        client
            .batch_execute(&format!(
                "SET TRANSACTION SNAPSHOT '{}'",
                name.replace('\'', "''")
            ))
            .await?;
    }
    let row = client
        .query_one(
            "SELECT (extract(epoch FROM now()) * 1000000)::int8, pg_current_wal_lsn()::text, \
             pg_snapshot_xmin(pg_current_snapshot())::text::int8, pg_current_snapshot()::text",
            &[],
        )
        .await?;
    let lsn: String = row.get(1);
    Ok(SnapshotPoint {
        ts_us: row.get(0),
        lsn: parse_lsn(&lsn).ok_or_else(|| SourceError::Protocol(format!("bad LSN {lsn}")))?,
        tx_id: row.get(2),
        xids: row.get(3),
    })
}

/// Export the open snapshot transaction's snapshot, for other connections to import.
pub async fn export(client: &Client) -> Result<String, SourceError> {
    let row = client.query_one("SELECT pg_export_snapshot()", &[]).await?;
    Ok(row.get(0))
}

pub async fn end(client: &Client) -> Result<(), SourceError> {
    client.batch_execute("COMMIT").await?;
    Ok(())
}

/// COPY one table's read columns and send Arrow batches of up to `batch_rows` rows, each with
/// the values in it that could not be decoded (their rows hold NULLs there; the caller decides
/// what becomes of them). Returns the number of rows read. Stops early (without error) if the
/// receiver is gone.
pub async fn copy_table<T>(
    client: &Client,
    plan: &TablePlan,
    batch_rows: usize,
    tx: &mpsc::Sender<T>,
    wrap: impl Fn(datafusion::arrow::array::RecordBatch, Vec<RowError>) -> T,
) -> Result<u64, SourceError> {
    copy_table_range(client, plan, None, batch_rows, tx, wrap).await
}

/// Like [`copy_table`], for the rows matching `filter` (an SQL condition): a chunk of the
/// table.
pub async fn copy_table_range<T>(
    client: &Client,
    plan: &TablePlan,
    filter: Option<&str>,
    batch_rows: usize,
    tx: &mpsc::Sender<T>,
    wrap: impl Fn(datafusion::arrow::array::RecordBatch, Vec<RowError>) -> T,
) -> Result<u64, SourceError> {
    let columns = plan
        .read_columns
        .iter()
        .map(|c| quote_ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let range = match filter {
        None => String::new(),
        Some(f) => format!(" WHERE {f}"),
    };
    let sql = if filter.is_some() || plan.read_columns.is_empty() {
        // With no column at all, still one row per table row.
        format!(
            "COPY (SELECT {columns} FROM {}{range}) TO STDOUT (FORMAT binary)",
            plan.table.quoted()
        )
    } else {
        format!(
            "COPY {} ({columns}) TO STDOUT (FORMAT binary)",
            plan.table.quoted()
        )
    };
    let names: Vec<String> = plan.read_columns.iter().map(|c| c.name.clone()).collect();
    super::check_select(client, &plan.table, &names).await?;
    let stream = client.copy_out(sql.as_str()).await?;
    futures::pin_mut!(stream);
    let mut decoder = CopyDecoder::new(
        plan.table.to_string(),
        plan.read_columns.clone(),
        plan.input_schema.clone(),
        batch_rows,
    );
    decoder.keep_bad_rows();
    let mut batches = Vec::new();
    let mut rows = 0u64;
    while let Some(chunk) = stream.next().await {
        decoder.push(&chunk?, &mut batches)?;
        for b in batches.drain(..) {
            let start = rows;
            rows += b.num_rows() as u64;
            let errors = decoder.take_row_errors(start, rows);
            if tx.send(wrap(b, errors)).await.is_err() {
                return Ok(rows);
            }
        }
    }
    if let Some(b) = decoder.finish()? {
        let start = rows;
        rows += b.num_rows() as u64;
        let errors = decoder.take_row_errors(start, rows);
        let _ = tx.send(wrap(b, errors)).await;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_lsn() {
        assert_eq!(super::parse_lsn("0/16B3748"), Some(0x16B3748));
        assert_eq!(super::parse_lsn("1/0"), Some(1 << 32));
        assert_eq!(super::parse_lsn("x"), None);
    }
}
