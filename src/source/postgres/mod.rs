//! Postgres as a source: connections, and the snapshot (binary COPY → Arrow).

pub mod copy;
pub mod pgoutput;
pub mod pgtext;
pub mod replication;
pub mod snapshot;
pub mod tls;

use tokio_postgres::Client;

use crate::catalog::{quote_ident, TableName};
use crate::plan::{conninfo, redact_url, Secret};
use tls::TlsSettings;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot connect to Postgres at {url}: {}", describe(source))]
    Connect {
        url: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("Postgres: {}", describe(.0))]
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

/// A tokio-postgres error with what it wraps: its own `Display` is only the kind ("db error",
/// "error performing TLS handshake"), which tells the user nothing.
pub fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut out = format!("{}: {}", db.severity(), db.message());
        if let Some(detail) = db.detail() {
            out.push_str(&format!(" ({detail})"));
        }
        if let Some(hint) = db.hint() {
            out.push_str(&format!("; hint: {hint}"));
        }
        return out;
    }
    let mut out = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        out.push_str(&format!(": {c}"));
        cause = c.source();
    }
    out
}

/// Reads a connection string the way libpq users write it: tokio-postgres's configuration
/// plus the TLS settings (`sslmode`, `sslrootcert`) that cdcql applies itself.
pub fn parse_url(url: &Secret) -> Result<(tokio_postgres::Config, TlsSettings), SourceError> {
    let setup =
        |e: String| SourceError::Setup(format!("Postgres URL {}: {e}", redact_url(url.expose())));
    let tls = TlsSettings::from_conninfo(url.expose()).map_err(setup)?;
    let mut config: tokio_postgres::Config = conninfo::without(url.expose(), tls::TLS_KEYS)
        .parse()
        .map_err(|source| SourceError::Connect {
            url: redact_url(url.expose()),
            source,
        })?;
    config.ssl_mode(tls.driver_mode());
    Ok((config, tls))
}

/// Open a client connection; the connection task runs on the current tokio runtime and ends
/// when the client is dropped.
pub async fn connect(url: &Secret) -> Result<Client, SourceError> {
    let (config, tls) = parse_url(url)?;
    let connector = tls.connector().map_err(|e| {
        SourceError::Setup(format!("Postgres URL {}: {e}", redact_url(url.expose())))
    })?;
    let (client, connection) =
        config
            .connect(connector)
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

/// Refuses to read a table the connection's user may not read, naming the table, the user and
/// the grant that fixes it (Postgres's own error names neither the schema nor the user).
pub async fn check_select(
    client: &Client,
    table: &TableName,
    columns: &[String],
) -> Result<(), SourceError> {
    let row = client
        .query_opt(
            "SELECT current_user::text, has_schema_privilege(n.oid, 'USAGE'), \
                    has_table_privilege(c.oid, 'SELECT') \
                      OR (cardinality($3::text[]) = 0 AND has_any_column_privilege(c.oid, 'SELECT')), \
                    coalesce((SELECT array_agg(col ORDER BY ord) \
                              FROM unnest($3::text[]) WITH ORDINALITY AS u(col, ord) \
                              WHERE NOT has_column_privilege(c.oid, col, 'SELECT')), '{}') \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2",
            &[&table.schema, &table.name, &columns],
        )
        .await?;
    // A table that is gone fails in COPY with Postgres's own message.
    let Some(row) = row else {
        return Ok(());
    };
    let user: String = row.get(0);
    if !row.get::<_, bool>(1) {
        return Err(SourceError::Setup(format!(
            "user `{user}` cannot use schema {}, so it cannot read {table}. Run (as the schema's \
             owner or a superuser): GRANT USAGE ON SCHEMA {} TO {};",
            quote_ident(&table.schema),
            quote_ident(&table.schema),
            quote_ident(&user)
        )));
    }
    let table_select: bool = row.get(2);
    let missing: Vec<String> = row.get(3);
    if table_select || (!columns.is_empty() && missing.is_empty()) {
        return Ok(());
    }
    let what = if missing.is_empty() || missing.len() == columns.len() {
        String::new()
    } else {
        format!(
            " (columns {})",
            missing
                .iter()
                .map(|c| quote_ident(c))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Err(SourceError::Setup(format!(
        "user `{user}` may not SELECT from {table}{what}, which the snapshot reads. Run (as the \
         table's owner or a superuser): GRANT SELECT ON {} TO {};",
        table.quoted(),
        quote_ident(&user)
    )))
}
