//! cdcql: PostgreSQL → Kafka change data capture, written as SQL.
//!
//! Data flows through the modules in this order:
//! `parse` (text → AST) → `catalog` (resolve against Postgres) → `plan` (pure: AST + catalog →
//! PipelinePlan) → `source` (binary COPY → Arrow) → `transform` (DataFusion expressions) →
//! `envelope` (Debezium: rows → Connect-typed key and value columns) → `encode`
//! (JSON bytes) → `sink` (Kafka) — driven by `runtime`, started from `cli`.
//! `report` renders user-facing diagnostics.

pub mod catalog;
pub mod cli;
pub mod connect;
pub mod encode;
pub mod envelope;
pub mod parse;
pub mod plan;
pub mod registry;
pub mod repl;
pub mod report;
pub mod runtime;
pub mod sink;
pub mod source;
pub mod transform;
pub mod types;
