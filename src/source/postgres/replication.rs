//! The logical replication side of Postgres: checks, publication and slot lifecycle, and the
//! replication session (slot creation with an exported snapshot, then streaming).
//!
//! Handoff: the slot is created on the replication session with `EXPORT_SNAPSHOT`; the
//! snapshot transaction imports that snapshot (`SET TRANSACTION SNAPSHOT`), so it sees
//! exactly the commits before the slot's consistent point, and streaming then starts at that
//! point. The session stays idle in between, which keeps the exported snapshot valid.

use std::time::Duration;

use pgwire_replication::{Lsn, ReplicationClient, ReplicationConfig};
use tokio_postgres::Client;

use super::snapshot::parse_lsn;
use super::tls::{SslMode, TlsSettings};
use super::SourceError;
use crate::catalog::{quote_ident, TableName};
use crate::plan::{redact_url, Secret};

/// A slot as `pg_replication_slots` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotInfo {
    pub name: String,
    pub plugin: Option<String>,
    pub database: Option<String>,
    pub active_pid: Option<i32>,
    pub confirmed_flush_lsn: Option<u64>,
    pub restart_lsn: Option<u64>,
    /// WAL the server keeps for this slot (`pg_current_wal_lsn() - restart_lsn`).
    pub retained_wal_bytes: Option<i64>,
    /// Changes not yet acknowledged (`pg_current_wal_lsn() - confirmed_flush_lsn`).
    pub lag_bytes: Option<i64>,
}

/// A slot just created, with the snapshot that matches its consistent point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedSlot {
    pub consistent_point: u64,
    pub snapshot_name: Option<String>,
}

/// Refuse early, with the fix in the message, when the server cannot do logical replication
/// for this user.
pub async fn preflight(client: &Client) -> Result<(), SourceError> {
    let row = client
        .query_one(
            "SELECT current_setting('wal_level'), \
                    (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user), \
                    current_setting('max_replication_slots')::int, \
                    (SELECT count(*)::int FROM pg_replication_slots), \
                    current_user::text",
            &[],
        )
        .await?;
    let wal_level: String = row.get(0);
    if wal_level != "logical" {
        return Err(SourceError::Setup(format!(
            "Postgres has wal_level = '{wal_level}'; change data capture needs 'logical'. \
             Run ALTER SYSTEM SET wal_level = logical; and restart Postgres"
        )));
    }
    let can_replicate: Option<bool> = row.get(1);
    let user: String = row.get(4);
    if can_replicate != Some(true) {
        return Err(SourceError::Setup(format!(
            "user `{user}` lacks the REPLICATION attribute, which logical replication needs. \
             Run (as a superuser): ALTER ROLE {} WITH REPLICATION;",
            quote_ident(&user)
        )));
    }
    Ok(())
}

pub async fn slot_info(client: &Client, slot: &str) -> Result<Option<SlotInfo>, SourceError> {
    let row = client
        .query_opt(
            "SELECT slot_name::text, plugin::text, database::text, active_pid, \
                    confirmed_flush_lsn::text, restart_lsn::text, \
                    pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::int8, \
                    pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::int8 \
             FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await?;
    Ok(row.map(|r| SlotInfo {
        name: r.get(0),
        plugin: r.get(1),
        database: r.get(2),
        active_pid: r.get(3),
        confirmed_flush_lsn: r.get::<_, Option<String>>(4).and_then(|s| parse_lsn(&s)),
        restart_lsn: r.get::<_, Option<String>>(5).and_then(|s| parse_lsn(&s)),
        retained_wal_bytes: r.get(6),
        lag_bytes: r.get(7),
    }))
}

/// Check that the connection's user can read `tables`, then create the publication for them,
/// or check that an existing one publishes them. Each missing privilege is an error that
/// names the user, the table and the statement that grants it.
///
/// An existing publication that the user owns is made to publish exactly `tables`. One that
/// the user does not own (created by an administrator, see README "Required grants") is used
/// as it is when it publishes at least `tables`.
pub async fn ensure_publication(
    client: &Client,
    name: &str,
    tables: &[TableName],
) -> Result<(), SourceError> {
    let list = tables
        .iter()
        .map(|t| t.quoted())
        .collect::<Vec<_>>()
        .join(", ");
    let access = table_access(client, tables).await?;
    let user = access.user.as_str();
    let no_usage: Vec<&str> = access
        .tables
        .iter()
        .filter(|t| !t.schema_usage)
        .map(|t| t.table.schema.as_str())
        .fold(Vec::new(), |mut v, s| {
            if !v.contains(&s) {
                v.push(s);
            }
            v
        });
    if !no_usage.is_empty() {
        return Err(SourceError::Setup(format!(
            "user `{user}` cannot use schema {}: run (as its owner or a superuser) {}",
            no_usage.join(", "),
            no_usage
                .iter()
                .map(|s| format!(
                    "GRANT USAGE ON SCHEMA {} TO {};",
                    quote_ident(s),
                    quote_ident(user)
                ))
                .collect::<Vec<_>>()
                .join(" ")
        )));
    }
    let unreadable: Vec<String> = access
        .tables
        .iter()
        .filter(|t| !t.select)
        .map(|t| t.table.quoted())
        .collect();
    if !unreadable.is_empty() {
        return Err(SourceError::Setup(format!(
            "user `{user}` may not SELECT from {}: the snapshot reads the tables. Run (as the \
             tables' owner or a superuser): GRANT SELECT ON {} TO {};",
            unreadable.join(", "),
            unreadable.join(", "),
            quote_ident(user)
        )));
    }
    let not_owned: Vec<&TableAccess> = access.tables.iter().filter(|t| !t.owner).collect();
    let create = format!("CREATE PUBLICATION {} FOR TABLE {list};", quote_ident(name));
    let publication = client
        .query_opt(
            "SELECT puballtables, pg_has_role(pubowner, 'USAGE'), pg_get_userbyid(pubowner)::text \
             FROM pg_publication WHERE pubname = $1",
            &[&name],
        )
        .await?;
    let Some(publication) = publication else {
        if !not_owned.is_empty() {
            return Err(SourceError::Setup(format!(
                "publication `{name}` does not exist, and user `{user}` cannot create it: \
                 creating a publication for a table needs ownership of the table, and {} \
                 Either have an administrator create it once: {create} (cdcql then uses it as \
                 it is; WITH (publication_name = '...') picks another name), or make `{user}` \
                 the tables' owner",
                not_owned
                    .iter()
                    .map(|t| format!("{} is owned by `{}`", t.table.quoted(), t.owner_name))
                    .collect::<Vec<_>>()
                    .join(", ")
                    + "."
            )));
        }
        return client.batch_execute(&create).await.map_err(|e| {
            SourceError::Setup(format!(
                "cannot create publication `{name}` as user `{user}`: {}. {}",
                db_message(&e),
                if db_message(&e).contains("database") {
                    format!(
                        "Run (as a superuser): GRANT CREATE ON DATABASE {} TO {};",
                        quote_ident(&access.database),
                        quote_ident(user)
                    )
                } else {
                    format!("Alternatively, have an administrator run: {create}")
                }
            ))
        });
    };
    let all_tables: bool = publication.get(0);
    let owns_publication: bool = publication.get(1);
    let publication_owner: String = publication.get(2);
    if all_tables {
        return Ok(());
    }
    let rows = client
        .query(
            "SELECT schemaname::text, tablename::text FROM pg_publication_tables \
             WHERE pubname = $1",
            &[&name],
        )
        .await?;
    let mut have: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let mut want: Vec<(String, String)> = tables
        .iter()
        .map(|t| (t.schema.clone(), t.name.clone()))
        .collect();
    have.sort();
    want.sort();
    if have == want {
        return Ok(());
    }
    let missing: Vec<String> = tables
        .iter()
        .filter(|t| !have.contains(&(t.schema.clone(), t.name.clone())))
        .map(|t| t.quoted())
        .collect();
    if !owns_publication || !not_owned.is_empty() {
        if missing.is_empty() {
            // It publishes more than the pipeline reads; the stream skips the others.
            return Ok(());
        }
        let add = format!(
            "ALTER PUBLICATION {} ADD TABLE {};",
            quote_ident(name),
            missing.join(", ")
        );
        return Err(SourceError::Setup(format!(
            "publication `{name}` (owned by `{publication_owner}`) does not publish {}, and user \
             `{user}` cannot add {}: have an administrator run: {add}",
            missing.join(", "),
            if missing.len() == 1 { "it" } else { "them" }
        )));
    }
    let sql = format!("ALTER PUBLICATION {} SET TABLE {list}", quote_ident(name));
    client.batch_execute(&sql).await.map_err(|e| {
        SourceError::Setup(format!(
            "cannot update publication `{name}` as user `{user}`: {}. Have an administrator \
             run: {sql};",
            db_message(&e)
        ))
    })?;
    Ok(())
}

/// The user's rights on one table.
struct TableAccess {
    table: TableName,
    schema_usage: bool,
    /// SELECT on the table or on some of its columns (the snapshot checks the exact columns).
    select: bool,
    /// Owner, or member of the owning role: may add it to a publication.
    owner: bool,
    owner_name: String,
}

struct Access {
    user: String,
    database: String,
    tables: Vec<TableAccess>,
}

async fn table_access(client: &Client, tables: &[TableName]) -> Result<Access, SourceError> {
    let who = client
        .query_one("SELECT current_user::text, current_database()::text", &[])
        .await?;
    let mut out = Access {
        user: who.get(0),
        database: who.get(1),
        tables: Vec::with_capacity(tables.len()),
    };
    for t in tables {
        let row = client
            .query_opt(
                "SELECT has_schema_privilege(n.oid, 'USAGE'), \
                        has_table_privilege(c.oid, 'SELECT') \
                          OR has_any_column_privilege(c.oid, 'SELECT'), \
                        pg_has_role(c.relowner, 'USAGE'), pg_get_userbyid(c.relowner)::text \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2",
                &[&t.schema, &t.name],
            )
            .await?;
        // A table that vanished since planning fails later with its own message.
        if let Some(row) = row {
            out.tables.push(TableAccess {
                table: t.clone(),
                schema_usage: row.get(0),
                select: row.get(1),
                owner: row.get(2),
                owner_name: row.get(3),
            });
        }
    }
    Ok(out)
}

/// Per table: the replica identity (`d`, `n`, `f`, `i`) and the columns it sends as the old
/// key under DEFAULT/INDEX.
pub async fn replica_identity(
    client: &Client,
    table: &TableName,
) -> Result<(u8, Vec<String>), SourceError> {
    let row = client
        .query_one(
            "SELECT c.relreplident::text, \
               coalesce((SELECT array_agg(a.attname::text ORDER BY k.ord) \
                 FROM pg_index i \
                 CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) \
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
                 WHERE i.indrelid = c.oid AND \
                   ((c.relreplident = 'd' AND i.indisprimary) OR \
                    (c.relreplident = 'i' AND i.indisreplident))), '{}') \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2",
            &[&table.schema, &table.name],
        )
        .await?;
    let ident: String = row.get(0);
    Ok((ident.bytes().next().unwrap_or(b'd'), row.get(1)))
}

pub async fn set_replica_identity_full(
    client: &Client,
    table: &TableName,
) -> Result<(), SourceError> {
    let sql = format!("ALTER TABLE {} REPLICA IDENTITY FULL", table.quoted());
    client.batch_execute(&sql).await.map_err(|e| {
        SourceError::Setup(format!(
            "cannot set REPLICA IDENTITY FULL on {table}: {}; run `{sql}` as the table owner",
            db_message(&e)
        ))
    })
}

/// Drop the slot if present and not in use; `true` if it was dropped.
pub async fn drop_slot(client: &Client, slot: &str) -> Result<bool, SourceError> {
    let Some(info) = slot_info(client, slot).await? else {
        return Ok(false);
    };
    if let Some(pid) = info.active_pid {
        return Err(SourceError::Setup(format!(
            "slot `{slot}` is in use by a running pipeline (backend pid {pid}); stop it first"
        )));
    }
    client
        .execute("SELECT pg_drop_replication_slot($1)", &[&slot])
        .await?;
    Ok(true)
}

/// Drop the slot (if present and not in use) and the publication (if present).
pub async fn drop_slot_and_publication(
    client: &Client,
    slot: &str,
    publication: &str,
) -> Result<(bool, bool), SourceError> {
    let dropped_slot = drop_slot(client, slot).await?;
    let owner = client
        .query_opt(
            "SELECT pg_has_role(pubowner, 'USAGE'), pg_get_userbyid(pubowner)::text \
             FROM pg_publication WHERE pubname = $1",
            &[&publication],
        )
        .await?;
    // A publication an administrator created for cdcql stays: its owner decides about it.
    let dropped_pub = match owner {
        Some(row) if !row.get::<_, bool>(0) => {
            tracing::warn!(
                publication,
                owner = %row.get::<_, String>(1),
                "publication kept: it belongs to another role"
            );
            false
        }
        Some(_) => true,
        None => false,
    };
    if dropped_pub {
        client
            .batch_execute(&format!("DROP PUBLICATION {}", quote_ident(publication)))
            .await?;
    }
    Ok((dropped_slot, dropped_pub))
}

fn db_message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_else(|| e.to_string())
}

/// A replication connection, before and after `START_REPLICATION`.
pub struct ReplicationSession {
    pub client: ReplicationClient,
    pub created: Option<CreatedSlot>,
}

pub struct SessionRequest<'a> {
    pub url: &'a Secret,
    pub slot: &'a str,
    pub publication: &'a str,
    /// Create the slot first; with `export_snapshot`, keep its snapshot for the initial read.
    pub create: bool,
    pub export_snapshot: bool,
}

/// Open the replication connection (not streaming yet: call [`ReplicationSession::start`]).
pub async fn open(req: SessionRequest<'_>) -> Result<ReplicationSession, SourceError> {
    let (mut cfg, tls) = replication_config(req.url, req.slot, req.publication)?;
    let redacted = redact_url(req.url.expose());
    let host = cfg.host.clone();
    if tls.mode == SslMode::VerifyCa && !cfg.is_unix_socket() {
        let name = tls
            .certificate_name(&host, cfg.port)
            .await
            .map_err(|e| SourceError::Replication(format!("connecting to {redacted}: {e}")))?;
        if let Some(name) = name {
            cfg.tls = tls.replication_as(&name);
        }
    }
    let connect_error = |e: pgwire_replication::PgWireError| {
        let text = match &e {
            pgwire_replication::PgWireError::Tls(t) => tls.explain_text(&host, t),
            other => {
                let text = other.to_string();
                if text.contains("no pg_hba.conf entry for replication") {
                    format!(
                        "{text} (a replication connection needs its own pg_hba.conf line: \
                         host replication <user> <address> scram-sha-256)"
                    )
                } else {
                    text
                }
            }
        };
        SourceError::Replication(format!("connecting to {redacted}: {text}"))
    };
    let mut client = ReplicationClient::connect_gated(cfg)
        .await
        .map_err(connect_error)?;
    // The session connects in the background: a first command brings out a TLS, password or
    // pg_hba.conf problem here, explained, rather than later as a failed slot command.
    client.identify_system().await.map_err(connect_error)?;
    let mut created = None;
    if req.create {
        let sql = format!(
            "CREATE_REPLICATION_SLOT {} LOGICAL pgoutput {}",
            quote_ident(req.slot),
            if req.export_snapshot {
                "EXPORT_SNAPSHOT"
            } else {
                "NOEXPORT_SNAPSHOT"
            }
        );
        let rows = client.simple_query(&sql).await.map_err(|e| {
            let text = e.to_string();
            let hint = if text.contains("all replication slots are in use") {
                " (raise max_replication_slots, or drop unused slots: SELECT slot_name FROM pg_replication_slots)"
            } else {
                ""
            };
            SourceError::Replication(format!("creating slot `{}`: {text}{hint}", req.slot))
        })?;
        let row = rows.into_iter().next().ok_or_else(|| {
            SourceError::Protocol("CREATE_REPLICATION_SLOT returned no row".into())
        })?;
        let text = |i: usize| -> Option<String> {
            row.get(i)
                .and_then(|v| v.as_ref())
                .map(|b| String::from_utf8_lossy(b).into_owned())
        };
        let point = text(1)
            .and_then(|s| parse_lsn(&s))
            .ok_or_else(|| SourceError::Protocol("slot without consistent point".into()))?;
        created = Some(CreatedSlot {
            consistent_point: point,
            snapshot_name: text(2),
        });
    }
    Ok(ReplicationSession { client, created })
}

impl ReplicationSession {
    /// `START_REPLICATION`: from here on the exported snapshot is gone.
    pub async fn start(&mut self) -> Result<(), SourceError> {
        self.client
            .start()
            .await
            .map_err(|e| SourceError::Replication(e.to_string()))?;
        self.client
            .wait_started()
            .await
            .map_err(|e| SourceError::Replication(format!("starting replication: {e}")))
    }
}

/// The replication connection's settings from the pipeline's URL, with the same TLS
/// settings as the query connection.
fn replication_config(
    url: &Secret,
    slot: &str,
    publication: &str,
) -> Result<(ReplicationConfig, TlsSettings), SourceError> {
    let (cfg, tls) = super::parse_url(url)?;
    let host = match cfg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(p)) => p.to_string_lossy().into_owned(),
        None => "localhost".into(),
    };
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    let user = cfg.get_user().unwrap_or("postgres").to_string();
    let password = cfg
        .get_password()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_default();
    let database = cfg.get_dbname().unwrap_or(&user).to_string();
    let tls_config = tls.replication(&host);
    Ok((
        ReplicationConfig::new(host, user, password, database, slot, publication)
            .with_port(port)
            .with_tls(tls_config)
            .with_binary(true)
            .with_start_lsn(Lsn(0))
            .with_status_interval(Duration::from_secs(1))
            .with_wakeup_interval(Duration::from_secs(10))
            .with_buffer_size(16_384)
            .with_application_name("cdcql"),
        tls,
    ))
}
