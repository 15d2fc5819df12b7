//! The syntax tree of a `.sql` file: what the user wrote, with a byte span for every node so
//! that later stages (catalog resolution, planning) can point their diagnostics at the source.

use datafusion::sql::sqlparser::ast as sql;

/// Byte range in the source text (`start..end`), used for miette labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(s: Span) -> Self {
        (s.start, s.end.saturating_sub(s.start)).into()
    }
}

/// An SQL identifier. Unquoted identifiers are folded to lower case as Postgres does;
/// quoted ones keep their case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    pub value: String,
    pub quoted: bool,
    pub span: Span,
}

/// `schema.table` or `table` (schema defaults to `public` during resolution).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectName {
    pub schema: Option<Ident>,
    pub name: Ident,
    pub span: Span,
}

/// A string literal after `${VAR}` / `${VAR:-default}` expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringLit {
    /// The text between the quotes as written (before expansion), for `explain` output.
    pub raw: String,
    /// The expanded value.
    pub value: String,
    /// True when any part of `value` came from the environment: such values may be
    /// secrets and are never printed.
    pub from_env: bool,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionValue {
    String(StringLit),
    /// Numbers are kept as written; the stage that reads the option checks its range.
    Number {
        text: String,
        span: Span,
    },
    Bool {
        value: bool,
        span: Span,
    },
    /// A bare word such as `initial` in `snapshot = initial`.
    Word(Ident),
}

impl OptionValue {
    pub fn span(&self) -> Span {
        match self {
            OptionValue::String(s) => s.span,
            OptionValue::Number { span, .. } | OptionValue::Bool { span, .. } => *span,
            OptionValue::Word(i) => i.span,
        }
    }
}

/// `key = value` inside `( ... )` or `WITH ( ... )`. A quoted key (`'compression.type'`) is
/// passed through to the underlying client library untouched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionItem {
    pub key: String,
    pub key_quoted: bool,
    pub key_span: Span,
    pub value: OptionValue,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionKind {
    Postgres,
    Kafka,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateConnection {
    pub name: Ident,
    pub kind: ConnectionKind,
    pub kind_span: Span,
    pub options: Vec<OptionItem>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Avro,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeKind {
    Debezium,
    Native,
}

/// One `SELECT` of a pipeline body, parsed by sqlparser (PostgreSQL dialect).
#[derive(Debug, Clone, PartialEq)]
pub struct SelectQuery {
    /// The query text exactly as written.
    pub sql: String,
    /// Where `sql` starts and ends in the file.
    pub span: Span,
    pub query: Box<sql::Query>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PipelineBody {
    /// `AS SELECT ...` or `AS (SELECT ...), (SELECT ...)`: one query per source table.
    Queries(Vec<SelectQuery>),
    /// `TABLES (a.b, c)`: every column of each table, unchanged.
    Tables(Vec<ObjectName>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreatePipeline {
    pub name: Ident,
    pub from: Ident,
    pub into: Ident,
    pub topic: StringLit,
    /// `KEY (a, b)`: output column names forming the message key.
    pub key: Option<Vec<Ident>>,
    pub format: Format,
    pub format_span: Span,
    pub envelope: EnvelopeKind,
    pub envelope_span: Span,
    pub options: Vec<OptionItem>,
    pub body: PipelineBody,
    pub span: Span,
}

// A file has a handful of statements: their size does not matter, boxing would hurt matching.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    CreateConnection(CreateConnection),
    CreatePipeline(CreatePipeline),
}

/// A parsed file.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    pub statements: Vec<Statement>,
}
