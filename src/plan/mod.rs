//! Planning: a parsed file plus a [`Catalog`] → one [`PipelinePlan`] per `CREATE PIPELINE`.
//!
//! Pure and synchronous: no I/O happens here (the catalog was read beforehand), so the same
//! input always gives the same plan and golden tests need no database. Each table's SELECT is
//! checked for what a per-row change stream can support, then planned by DataFusion into a
//! filter and a list of projection expressions that the runtime evaluates on Arrow batches.

// Plan errors carry their source text for rendering; they are built once per failed run,
// so their size does not matter.
#![allow(clippy::result_large_err)]

pub mod conninfo;
mod on_error;
mod options;
mod query;
mod topic;

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::logical_expr::{Expr, LogicalPlan};

use crate::catalog::{Catalog, Column, TableName};
use crate::parse::{
    ConnectionKind, CreateConnection, CreatePipeline, EnvelopeKind, Format, Ident, PipelineBody,
    Script, SourceFile, Span, Statement,
};
use crate::report::SourceDiagnostic;
use crate::types::{
    BinaryHandling, DecimalHandling, HstoreHandling, IntervalHandling, PgType, TimePrecision,
    TypeOptions, UnknownTypes,
};
pub use on_error::{ErrorPolicy, OnError, DEFAULT_DEAD_LETTER_TOPIC};
use options::OptionReader;
pub use topic::{sanitize_topic, TopicTemplate};

/// A mistake in the user's file found while planning, rendered like a parse error.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error(transparent)]
#[diagnostic(transparent)]
pub struct PlanError(pub SourceDiagnostic);

impl PlanError {
    pub(crate) fn new(
        file: &SourceFile,
        message: impl Into<String>,
        span: Span,
        label: impl Into<String>,
    ) -> Self {
        PlanError(SourceDiagnostic::new(file, span, message, label, None))
    }

    pub(crate) fn with_help(mut self, help: impl Into<String>) -> Self {
        self.0.help = Some(help.into());
        self
    }
}

/// The closest candidate by edit distance, if it is close enough to be a likely typo.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let word_l = word.to_lowercase();
    candidates
        .map(|c| (edit_distance(&word_l, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A string that must never be printed: database URLs with passwords, registry credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(****)")
    }
}

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A URL or connection string with every password replaced by `****`, safe for logs and
/// `explain`.
pub fn redact_url(url: &str) -> String {
    conninfo::redact(url)
}

#[derive(Debug, Clone)]
pub struct PostgresConnection {
    pub name: String,
    pub url: Secret,
}

#[derive(Debug, Clone)]
pub struct KafkaConnection {
    pub name: String,
    pub brokers: String,
    pub schema_registry: Option<RegistryConnection>,
    /// Quoted option keys, passed to librdkafka as they are.
    pub client_options: Vec<(String, String)>,
}

/// A Confluent-API schema registry. The URL may carry `user:password@`; credentials given as
/// options are kept apart so that the URL can be shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConnection {
    pub url: Secret,
    pub basic_auth: Option<(String, Secret)>,
}

/// How change events are shaped into key and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Envelope {
    Debezium(DebeziumOptions),
    Native(NativeOptions),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeOptions {
    /// Before each delete's tombstone, also emit the deleted row with `deleted = true` in its
    /// metadata block (for consumers that cannot see tombstones, e.g. some sinks).
    pub deleted_marker: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebeziumOptions {
    /// Debezium's `topic.prefix`: `source.name` in every event.
    pub server_name: String,
    /// Emit a null-value record after each delete (`tombstones.on.delete`).
    pub tombstones: bool,
    /// Debezium's `provide.transaction.metadata`: streamed events carry their transaction
    /// block, and each source transaction's BEGIN and END records go to this topic.
    pub transaction_topic: Option<String>,
}

/// How key and value are written as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encoding {
    /// `schemas`: Kafka Connect's `{"schema":..,"payload":..}` wrapper (`schemas.enable`).
    Json { schemas: bool },
    /// Avro binary with Confluent framing; schemas live in the connection's registry.
    Avro(AvroOptions),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvroOptions {
    pub subject_strategy: SubjectStrategy,
    /// Register schemas that the registry does not have yet (`auto.register.schemas`).
    pub auto_register: bool,
    /// Write with the subject's latest registered schema instead of our own (`use.latest.version`).
    pub use_latest: bool,
    /// Compatibility level to set on each subject before registering (e.g. `BACKWARD`).
    pub compatibility: Option<String>,
}

/// How registry subjects are named (Confluent's `*.subject.name.strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectStrategy {
    /// `<topic>-key` / `<topic>-value`
    Topic,
    /// `<record full name>`
    Record,
    /// `<topic>-<record full name>`
    TopicRecord,
}

pub const COMPATIBILITY_LEVELS: &[&str] = &[
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotMode {
    Initial,
    Never,
    InitialOnly,
    WhenNeeded,
}

/// Logical replication: names and behaviour of the slot, publication and progress records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationSettings {
    pub slot: String,
    pub publication: String,
    /// `replica_identity = 'full'`: cdcql may `ALTER TABLE .. REPLICA IDENTITY FULL` where the
    /// pipeline needs old row images (filters on non-key columns).
    pub set_replica_identity_full: bool,
    /// What an unchanged TOASTed value becomes when its old value is unknown (Debezium's
    /// `unavailable.value.placeholder`).
    pub unavailable_value_placeholder: String,
    /// Emit a WAL message this often so that an idle slot keeps advancing; `None` = off.
    pub heartbeat_interval_ms: Option<u64>,
    /// Debezium-format heartbeat records go here when set.
    pub heartbeat_topic: Option<String>,
    /// Compacted topic holding each pipeline's progress (snapshot done, last LSN).
    pub offsets_topic: String,
}

/// How messages reach Kafka, and how the snapshot is split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverySettings {
    /// Kafka transactions aligned to source transactions, with the progress record inside
    /// (exactly once across crashes for read_committed consumers).
    pub transactional: bool,
    pub transactional_id: String,
    /// Small source transactions are grouped into one Kafka transaction up to these bounds;
    /// a source transaction is never split.
    pub transaction_max_messages: u64,
    pub transaction_max_ms: u64,
    /// Snapshot readers (connections sharing the exported snapshot).
    pub parallelism: usize,
    /// Rows per snapshot chunk; each finished chunk is recorded, so a crash resumes there.
    pub chunk_rows: u64,
}

/// A slot or publication name derived from a pipeline name: Postgres allows lower-case
/// letters, digits and underscores, at most 63 bytes.
pub fn replication_name(pipeline: &str) -> String {
    let mut out = String::from("cdcql_");
    for c in pipeline.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else {
            out.push('_');
        }
    }
    out.truncate(63);
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSettings {
    pub partitions: i32,
    pub replication_factor: i32,
    pub cleanup_policy: Option<String>,
}

/// One output column of a table's query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputColumn {
    pub name: String,
    pub pg_type: PgType,
    pub nullable: bool,
}

/// How one source table becomes one topic.
#[derive(Debug, Clone)]
pub struct TablePlan {
    pub table: TableName,
    /// Columns read from Postgres, in table order: only those the query uses.
    pub read_columns: Vec<Column>,
    /// Arrow schema of the batches the source produces (one field per read column).
    pub input_schema: SchemaRef,
    /// The query's plan as DataFusion analysed it (for `explain`); `None` for `TABLES (...)`.
    pub logical_plan: Option<LogicalPlan>,
    /// Row filter over `input_schema` (unqualified columns).
    pub filter: Option<Expr>,
    /// Output expressions over `input_schema`; `None` when the output is the input unchanged.
    pub projection: Option<Vec<Expr>>,
    pub output: Vec<OutputColumn>,
    /// Indexes into `output` forming the key, in key order; empty = null key.
    pub key: Vec<usize>,
    pub topic: String,
}

impl TablePlan {
    pub fn output_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.output
                .iter()
                .map(|c| {
                    Field::new(
                        &c.name,
                        c.pg_type.arrow_type().expect("output types are supported"),
                        c.nullable,
                    )
                })
                .collect::<Vec<_>>(),
        ))
    }
}

#[derive(Debug, Clone)]
pub struct PipelinePlan {
    pub name: String,
    pub postgres: PostgresConnection,
    pub kafka: KafkaConnection,
    pub envelope: Envelope,
    pub encoding: Encoding,
    pub snapshot: SnapshotMode,
    pub topic_settings: TopicSettings,
    /// How column values map to Connect types (Debezium's `*.handling.mode` options).
    pub types: TypeOptions,
    pub replication: ReplicationSettings,
    pub delivery: DeliverySettings,
    /// `on_error` / `dead_letter_topic`: rows that cannot be delivered.
    pub errors: ErrorPolicy,
    pub tables: Vec<TablePlan>,
    /// Things the user should know that are not errors (e.g. a table without a key).
    pub warnings: Vec<String>,
    /// `current_database()` of the source.
    pub database: String,
}

/// Option names each statement accepts (completion in the REPL uses the same lists).
pub const POSTGRES_OPTIONS: &[&str] = &["url"];
pub const KAFKA_OPTIONS: &[&str] = &[
    "brokers",
    "schema_registry",
    "schema_registry_user",
    "schema_registry_password",
];
pub const PIPELINE_OPTIONS: &[&str] = &[
    "json_schemas",
    "tombstones",
    "deleted_marker",
    "subject_strategy",
    "auto_register",
    "use_latest",
    "compatibility",
    "decimal_handling",
    "time_precision",
    "binary_handling",
    "interval_handling",
    "hstore_handling",
    "money_fraction_digits",
    "unknown_types",
    "slot_name",
    "publication_name",
    "replica_identity",
    "unavailable_value_placeholder",
    "heartbeat_interval",
    "heartbeat_topic",
    "offsets_topic",
    "transactional",
    "transactional_id",
    "transaction_max_messages",
    "transaction_max_ms",
    "parallelism",
    "chunk_rows",
    "partitions",
    "replication_factor",
    "cleanup_policy",
    "snapshot",
    "topic_prefix",
    "transaction_metadata",
    "transaction_topic",
    "on_error",
    "dead_letter_topic",
];

/// Plan every pipeline of a file. Connections must be defined in the same file, before or
/// after the pipeline that uses them.
/// `catalogs` holds the catalog read through each Postgres connection, by connection name.
pub fn plan_script(
    file: &SourceFile,
    script: &Script,
    catalogs: &BTreeMap<String, Catalog>,
) -> Result<Vec<PipelinePlan>, PlanError> {
    let connections: Vec<&CreateConnection> = script
        .statements
        .iter()
        .filter_map(|s| match s {
            Statement::CreateConnection(c) => Some(c),
            _ => None,
        })
        .collect();
    for (i, c) in connections.iter().enumerate() {
        if connections[..i]
            .iter()
            .any(|o| o.name.value == c.name.value)
        {
            return Err(PlanError::new(
                file,
                format!("connection `{}` is defined twice", c.name.value),
                c.name.span,
                "second definition",
            ));
        }
        check_connection(file, c)?;
    }
    let mut plans: Vec<PipelinePlan> = Vec::new();
    for s in &script.statements {
        if let Statement::CreatePipeline(p) = s {
            if plans.iter().any(|o| o.name == p.name.value) {
                return Err(PlanError::new(
                    file,
                    format!("pipeline `{}` is defined twice", p.name.value),
                    p.name.span,
                    "second definition",
                ));
            }
            plans.push(plan_pipeline(file, p, &connections, catalogs)?);
        }
    }
    Ok(plans)
}

/// The Postgres connections a file defines, with their URLs: the catalog must be read
/// through one of them before planning.
pub fn postgres_urls(script: &Script) -> Vec<(String, Secret)> {
    script
        .statements
        .iter()
        .filter_map(|s| match s {
            Statement::CreateConnection(c) if c.kind == ConnectionKind::Postgres => c
                .options
                .iter()
                .find(|o| o.key == "url" && !o.key_quoted)
                .and_then(|o| match &o.value {
                    crate::parse::OptionValue::String(s) => {
                        Some((c.name.value.clone(), Secret(s.value.clone())))
                    }
                    _ => None,
                }),
            _ => None,
        })
        .collect()
}

fn check_connection(file: &SourceFile, c: &CreateConnection) -> Result<(), PlanError> {
    match c.kind {
        ConnectionKind::Postgres => {
            let r = OptionReader::new(
                file,
                &c.options,
                "a POSTGRES connection",
                POSTGRES_OPTIONS,
                false,
            )?;
            if r.string("url")?.is_none() {
                return Err(PlanError::new(
                    file,
                    format!("connection `{}` has no `url`", c.name.value),
                    c.span,
                    "missing url",
                )
                .with_help("add url = 'postgres://user@host:5432/dbname'"));
            }
        }
        ConnectionKind::Kafka => {
            let r = OptionReader::new(file, &c.options, "a KAFKA connection", KAFKA_OPTIONS, true)?;
            if r.string("brokers")?.is_none() {
                return Err(PlanError::new(
                    file,
                    format!("connection `{}` has no `brokers`", c.name.value),
                    c.span,
                    "missing brokers",
                )
                .with_help("add brokers = 'host:9092'"));
            }
        }
    }
    Ok(())
}

fn find_connection<'a>(
    file: &SourceFile,
    connections: &[&'a CreateConnection],
    name: &Ident,
    kind: ConnectionKind,
) -> Result<&'a CreateConnection, PlanError> {
    let want = match kind {
        ConnectionKind::Postgres => "POSTGRES",
        ConnectionKind::Kafka => "KAFKA",
    };
    match connections.iter().find(|c| c.name.value == name.value) {
        Some(c) if c.kind == kind => Ok(c),
        Some(_) => Err(PlanError::new(
            file,
            format!("connection `{}` is not a {want} connection", name.value),
            name.span,
            format!("expected a {want} connection"),
        )),
        None => {
            let same_kind = connections.iter().filter(|c| c.kind == kind);
            let mut err = PlanError::new(
                file,
                format!("unknown connection `{}`", name.value),
                name.span,
                "not defined in this file",
            );
            let names: Vec<&str> = same_kind.map(|c| c.name.value.as_str()).collect();
            err = match closest(&name.value, names.iter().copied()) {
                Some(s) => err.with_help(format!("did you mean `{s}`?")),
                None if names.is_empty() => err.with_help(format!(
                    "define it first: CREATE CONNECTION {} TO {want} (...);",
                    name.value
                )),
                None => err.with_help(format!("{want} connections here: {}", names.join(", "))),
            };
            Err(err)
        }
    }
}

fn plan_pipeline(
    file: &SourceFile,
    p: &CreatePipeline,
    connections: &[&CreateConnection],
    catalogs: &BTreeMap<String, Catalog>,
) -> Result<PipelinePlan, PlanError> {
    let pg = find_connection(file, connections, &p.from, ConnectionKind::Postgres)?;
    let Some(catalog) = catalogs.get(&pg.name.value) else {
        return Err(PlanError::new(
            file,
            format!(
                "this is a bug in cdcql, please report it: no catalog was read for connection `{}`",
                pg.name.value
            ),
            p.from.span,
            "here",
        ));
    };
    let kafka = find_connection(file, connections, &p.into, ConnectionKind::Kafka)?;
    let pg_opts = OptionReader::new(
        file,
        &pg.options,
        "a POSTGRES connection",
        POSTGRES_OPTIONS,
        false,
    )?;
    let kafka_opts = OptionReader::new(
        file,
        &kafka.options,
        "a KAFKA connection",
        KAFKA_OPTIONS,
        true,
    )?;
    let opts = OptionReader::new(file, &p.options, "a pipeline", PIPELINE_OPTIONS, false)?;

    let schema_registry = match kafka_opts.string("schema_registry")? {
        None => None,
        Some((url, _)) => Some(RegistryConnection {
            url: Secret(url),
            basic_auth: match kafka_opts.string("schema_registry_user")? {
                Some((user, _)) => Some((
                    user,
                    Secret(
                        kafka_opts
                            .string("schema_registry_password")?
                            .map(|(v, _)| v)
                            .unwrap_or_default(),
                    ),
                )),
                None => None,
            },
        }),
    };
    let encoding = plan_encoding(file, p, &opts, kafka, schema_registry.is_some())?;
    let envelope_is_native = p.envelope == EnvelopeKind::Native;
    for (key, applies) in [
        ("tombstones", !envelope_is_native),
        ("deleted_marker", envelope_is_native),
    ] {
        if let (false, Some(item)) = (applies, opts.item(key)) {
            return Err(PlanError::new(
                file,
                format!("option `{key}` does not apply to this envelope"),
                item.key_span,
                "not used by this pipeline",
            )
            .with_help(if envelope_is_native {
                "ENVELOPE NATIVE always writes a tombstone for a delete; `deleted_marker = true` adds a marked value before it"
            } else {
                "`deleted_marker` is an ENVELOPE NATIVE option; ENVELOPE DEBEZIUM uses `tombstones`"
            }));
        }
    }
    let transaction_topic = plan_transaction_topic(file, &opts, envelope_is_native)?;
    let types = plan_type_options(&opts)?;
    let errors = on_error::plan_errors(file, &opts)?;

    let snapshot = match opts
        .choice(
            "snapshot",
            &["initial", "never", "initial_only", "when_needed"],
        )?
        .as_deref()
    {
        None | Some("initial") => SnapshotMode::Initial,
        Some("never") => SnapshotMode::Never,
        Some("initial_only") => SnapshotMode::InitialOnly,
        _ => SnapshotMode::WhenNeeded,
    };
    let template = TopicTemplate::parse(file, &p.topic)?;
    let server_name = match opts.string("topic_prefix")? {
        Some((v, _)) => v,
        None => template.prefix(&catalog.database, &p.name.value),
    };
    let replication = plan_replication(file, p, &opts, &server_name)?;
    // Debezium's default: `topic.transaction` under the topic prefix.
    let transaction_topic =
        transaction_topic.map(|t| t.unwrap_or_else(|| format!("{server_name}.transaction")));
    let delivery = DeliverySettings {
        transactional: opts.bool("transactional")?.unwrap_or(false),
        transactional_id: opts
            .string("transactional_id")?
            .map(|(v, _)| v)
            .unwrap_or_else(|| format!("cdcql-{}", replication.slot)),
        transaction_max_messages: opts
            .int("transaction_max_messages", 1, 100_000_000)?
            .unwrap_or(50_000) as u64,
        transaction_max_ms: opts.duration_ms("transaction_max_ms")?.unwrap_or(100),
        parallelism: opts.int("parallelism", 1, 64)?.unwrap_or(1) as usize,
        chunk_rows: opts
            .int("chunk_rows", 1000, 1_000_000_000)?
            .unwrap_or(100_000) as u64,
    };
    let topic_settings = TopicSettings {
        partitions: opts.int("partitions", 1, 100_000)?.unwrap_or(1) as i32,
        replication_factor: opts.int("replication_factor", -1, 1000)?.unwrap_or(-1) as i32,
        cleanup_policy: opts.choice("cleanup_policy", &["delete", "compact", "compact,delete"])?,
    };

    let mut warnings = Vec::new();
    let mut tables = Vec::new();
    match &p.body {
        PipelineBody::Tables(names) => {
            for name in names {
                let table = query::resolve_table(file, catalog, name)?;
                let read_columns = query::check_types(
                    file,
                    &table.name,
                    &table.columns,
                    name.span,
                    &types,
                    false,
                    &mut warnings,
                )?;
                let output: Vec<OutputColumn> = read_columns
                    .iter()
                    .map(|c| OutputColumn {
                        name: c.name.clone(),
                        pg_type: c.pg_type.clone(),
                        nullable: c.nullable,
                    })
                    .collect();
                let key = query::plan_key(file, p, table, &output, &[], name.span, &mut warnings)?;
                tables.push(TablePlan {
                    table: table.name.clone(),
                    input_schema: query::arrow_schema(&read_columns),
                    read_columns,
                    logical_plan: None,
                    filter: None,
                    projection: None,
                    output,
                    key,
                    topic: template.render(&catalog.database, &table.name, &p.name.value),
                });
            }
        }
        PipelineBody::Queries(queries) => {
            for q in queries {
                let mut t = query::plan_query(file, p, catalog, q, &types, &mut warnings)?;
                t.topic = template.render(&catalog.database, &t.table, &p.name.value);
                tables.push(t);
            }
        }
    }
    for (i, t) in tables.iter().enumerate() {
        if tables[..i].iter().any(|o| o.table == t.table) {
            return Err(PlanError::new(
                file,
                format!(
                    "table {} appears twice in pipeline `{}`",
                    t.table, p.name.value
                ),
                p.span,
                "one query per table",
            )
            .with_help("combine the conditions into one SELECT per table"));
        }
    }

    let plan = PipelinePlan {
        name: p.name.value.clone(),
        postgres: PostgresConnection {
            name: pg.name.value.clone(),
            url: Secret(pg_opts.string("url")?.map(|(v, _)| v).unwrap_or_default()),
        },
        kafka: KafkaConnection {
            name: kafka.name.value.clone(),
            brokers: kafka_opts
                .string("brokers")?
                .map(|(v, _)| v)
                .unwrap_or_default(),
            schema_registry,
            client_options: kafka_opts.pass_through(),
        },
        envelope: match p.envelope {
            EnvelopeKind::Debezium => Envelope::Debezium(DebeziumOptions {
                server_name,
                tombstones: opts.bool("tombstones")?.unwrap_or(true),
                transaction_topic,
            }),
            EnvelopeKind::Native => Envelope::Native(NativeOptions {
                deleted_marker: opts.bool("deleted_marker")?.unwrap_or(false),
            }),
        },
        encoding,
        snapshot,
        topic_settings,
        types,
        replication,
        delivery,
        errors,
        tables,
        warnings,
        database: catalog.database.clone(),
    };
    on_error::check_topics(file, &opts, &plan, p.name.span)?;
    Ok(plan)
}

fn plan_encoding(
    file: &SourceFile,
    p: &CreatePipeline,
    opts: &OptionReader<'_>,
    kafka: &CreateConnection,
    has_registry: bool,
) -> Result<Encoding, PlanError> {
    const AVRO_ONLY: &[&str] = &[
        "subject_strategy",
        "auto_register",
        "use_latest",
        "compatibility",
    ];
    let only_for = |keys: &[&str], format: &str| -> Result<(), PlanError> {
        for key in keys {
            if let Some(item) = opts.item(key) {
                return Err(PlanError::new(
                    file,
                    format!("option `{key}` applies to FORMAT {format} only"),
                    item.key_span,
                    "not used by this pipeline's format",
                ));
            }
        }
        Ok(())
    };
    match p.format {
        Format::Json => {
            only_for(AVRO_ONLY, "AVRO")?;
            Ok(Encoding::Json {
                schemas: opts.bool("json_schemas")?.unwrap_or(false),
            })
        }
        Format::Avro => {
            only_for(&["json_schemas"], "JSON")?;
            if !has_registry {
                return Err(PlanError::new(
                    file,
                    format!(
                        "FORMAT AVRO needs a schema registry, and connection `{}` has none",
                        kafka.name.value
                    ),
                    p.format_span,
                    "Avro schemas are stored in a schema registry",
                )
                .with_help(format!(
                    "add `schema_registry = 'http://host:8081'` to CREATE CONNECTION {}",
                    kafka.name.value
                )));
            }
            let subject_strategy = match opts
                .choice("subject_strategy", &["topic", "record", "topic_record"])?
                .as_deref()
            {
                None | Some("topic") => SubjectStrategy::Topic,
                Some("record") => SubjectStrategy::Record,
                _ => SubjectStrategy::TopicRecord,
            };
            Ok(Encoding::Avro(AvroOptions {
                subject_strategy,
                auto_register: opts.bool("auto_register")?.unwrap_or(true),
                use_latest: opts.bool("use_latest")?.unwrap_or(false),
                compatibility: opts.choice_upper("compatibility", COMPATIBILITY_LEVELS)?,
            }))
        }
    }
}

/// `transaction_metadata` / `transaction_topic`: `Some(topic)` when on, the topic `None` for
/// Debezium's default name (`<topic prefix>.transaction`).
fn plan_transaction_topic(
    file: &SourceFile,
    opts: &OptionReader<'_>,
    envelope_is_native: bool,
) -> Result<Option<Option<String>>, PlanError> {
    let on = opts.bool("transaction_metadata")?;
    if envelope_is_native {
        for key in ["transaction_metadata", "transaction_topic"] {
            if let Some(item) = opts.item(key) {
                return Err(PlanError::new(
                    file,
                    format!("option `{key}` does not apply to this envelope"),
                    item.key_span,
                    "not used by this pipeline",
                )
                .with_help(
                    "transaction metadata is part of Debezium's envelope: use ENVELOPE DEBEZIUM",
                ));
            }
        }
    }
    let topic = opts.string("transaction_topic")?;
    if let (Some((_, item)), false) = (&topic, on == Some(true)) {
        return Err(PlanError::new(
            file,
            "option `transaction_topic` needs `transaction_metadata = true`",
            item.key_span,
            "no transaction records are written without it",
        )
        .with_help("add `transaction_metadata = true` to the pipeline's WITH (...)"));
    }
    Ok((on == Some(true)).then(|| topic.map(|(t, _)| t)))
}

fn plan_replication(
    file: &SourceFile,
    p: &CreatePipeline,
    opts: &OptionReader<'_>,
    server_name: &str,
) -> Result<ReplicationSettings, PlanError> {
    let slot_name = |key: &str| -> Result<String, PlanError> {
        match opts.string(key)? {
            None => Ok(replication_name(&p.name.value)),
            Some((v, item)) => {
                let ok = !v.is_empty()
                    && v.len() <= 63
                    && v.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                if ok {
                    Ok(v)
                } else {
                    Err(PlanError::new(
                        file,
                        format!(
                            "`{key}` must be 1 to 63 lower-case letters, digits or underscores"
                        ),
                        item.value.span(),
                        "not a valid name",
                    ))
                }
            }
        }
    };
    let heartbeat_interval_ms = match opts.duration_ms("heartbeat_interval")? {
        Some(0) | None => None,
        Some(ms) => Some(ms),
    };
    Ok(ReplicationSettings {
        slot: slot_name("slot_name")?,
        publication: slot_name("publication_name")?,
        set_replica_identity_full: opts
            .choice("replica_identity", &["full", "keep"])?
            .is_some_and(|v| v == "full"),
        unavailable_value_placeholder: opts
            .string("unavailable_value_placeholder")?
            .map(|(v, _)| v)
            .unwrap_or_else(|| "__debezium_unavailable_value".into()),
        heartbeat_interval_ms,
        heartbeat_topic: match opts.string("heartbeat_topic")? {
            Some((v, _)) => Some(v),
            None => heartbeat_interval_ms.map(|_| format!("__debezium-heartbeat.{server_name}")),
        },
        offsets_topic: opts
            .string("offsets_topic")?
            .map(|(v, _)| v)
            .unwrap_or_else(|| "_cdcql_offsets".into()),
    })
}

fn plan_type_options(opts: &OptionReader<'_>) -> Result<TypeOptions, PlanError> {
    let d = TypeOptions::default();
    Ok(TypeOptions {
        decimal_handling: match opts
            .choice("decimal_handling", &["precise", "string", "double"])?
            .as_deref()
        {
            None => d.decimal_handling,
            Some("precise") => DecimalHandling::Precise,
            Some("string") => DecimalHandling::String,
            _ => DecimalHandling::Double,
        },
        time_precision: match opts
            .choice(
                "time_precision",
                &["adaptive", "adaptive_time_microseconds", "connect"],
            )?
            .as_deref()
        {
            None => d.time_precision,
            Some("adaptive") => TimePrecision::Adaptive,
            Some("adaptive_time_microseconds") => TimePrecision::AdaptiveTimeMicroseconds,
            _ => TimePrecision::Connect,
        },
        binary_handling: match opts
            .choice(
                "binary_handling",
                &["bytes", "base64", "base64-url-safe", "hex"],
            )?
            .as_deref()
        {
            None => d.binary_handling,
            Some("bytes") => BinaryHandling::Bytes,
            Some("base64") => BinaryHandling::Base64,
            Some("base64-url-safe") => BinaryHandling::Base64UrlSafe,
            _ => BinaryHandling::Hex,
        },
        interval_handling: match opts
            .choice("interval_handling", &["numeric", "string"])?
            .as_deref()
        {
            None => d.interval_handling,
            Some("numeric") => IntervalHandling::Numeric,
            _ => IntervalHandling::String,
        },
        hstore_handling: match opts.choice("hstore_handling", &["json", "map"])?.as_deref() {
            None => d.hstore_handling,
            Some("json") => HstoreHandling::Json,
            _ => HstoreHandling::Map,
        },
        money_fraction_digits: opts
            .int("money_fraction_digits", 0, 10)?
            .map_or(d.money_fraction_digits, |v| v as u8),
        unknown_types: match opts.choice("unknown_types", &["fail", "skip"])?.as_deref() {
            None => d.unknown_types,
            Some("fail") => UnknownTypes::Fail,
            _ => UnknownTypes::Skip,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://bob:s3cret@db:5432/shop"),
            "postgres://bob:****@db:5432/shop"
        );
        assert_eq!(
            redact_url("postgres://bob@db/shop"),
            "postgres://bob@db/shop"
        );
        assert_eq!(
            redact_url("host=db password=s3cret user=bob"),
            "host=db password=**** user=bob"
        );
    }

    #[test]
    fn closest_finds_typos_only() {
        assert_eq!(
            closest("tombstone", ["tombstones", "partitions"].into_iter()),
            Some("tombstones")
        );
        assert_eq!(
            closest("zzz", ["tombstones", "partitions"].into_iter()),
            None
        );
    }
}
