//! Postgres as a source: connections, and the snapshot (binary COPY → Arrow).

pub mod copy;
pub mod pgoutput;
pub mod pgtext;
pub mod replication;
pub mod snapshot;

use tokio_postgres::{Client, NoTls};

use crate::plan::{redact_url, Secret};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot connect to Postgres at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("Postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("table {table}, column `{column}`: {message}")]
    Decode {
        table: String,
        column: String,
        message: String,
    },
    #[error("malformed COPY data from Postgres: {0}")]
    Protocol(String),
    #[error("arrow: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    /// The server or the user's rights are not set up for change data capture; the message
    /// says how to fix it.
    #[error("{0}")]
    Setup(String),
    #[error("logical replication: {0}")]
    Replication(String),
    #[error(transparent)]
    Pgoutput(#[from] pgoutput::DecodeError),
}

/// Open a client connection; the connection task runs on the current tokio runtime and ends
/// when the client is dropped.
pub async fn connect(url: &Secret) -> Result<Client, SourceError> {
    let (client, connection) =
        tokio_postgres::connect(url.expose(), NoTls)
            .await
            .map_err(|source| SourceError::Connect {
                url: redact_url(url.expose()),
                source,
            })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("postgres connection closed: {e}");
        }
    });
    Ok(client)
}
