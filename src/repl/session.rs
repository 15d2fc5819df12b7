//! The state of one REPL session and what each command does with it.
//!
//! The session keeps every accepted `CREATE` statement with the file (or typed input) it came
//! from. Each new statement is parsed alone first (so a syntax error points into what was just
//! typed), then all statements are parsed and planned together exactly as one file would be,
//! with catalogs freshly read through each Postgres connection. A planning error is mapped back
//! to the statement it belongs to, so its caret lands under the typed text or in the right file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::catalog::Catalog;
use crate::cli::preview::{self, text_table, PreviewOptions};
use crate::cli::progress::{self, Display, LogFormat, ProgressMode};
use crate::parse::{self, ConnectionKind, OptionValue, SourceFile, Span, Statement};
use crate::plan::{self, redact_url, Envelope, PipelinePlan};
use crate::report::{render, SourceDiagnostic};
use crate::runtime::metrics::Metrics;
use crate::runtime::{self, Replanner, RunContext};
use crate::source::postgres;

use super::command::{closest, Command, Name, HELP};

/// A `CREATE` statement the session accepted.
#[derive(Debug, Clone)]
struct Entry {
    file: SourceFile,
    span: Span,
    statement: Statement,
}

impl Entry {
    fn name(&self) -> &str {
        match &self.statement {
            Statement::CreateConnection(c) => &c.name.value,
            Statement::CreatePipeline(p) => &p.name.value,
        }
    }

    fn text(&self) -> &str {
        &self.file.text[self.span.start..self.span.end]
    }
}

/// What the REPL can complete, refreshed after every command.
#[derive(Debug, Clone, Default)]
pub struct Completions {
    pub connections: Vec<(String, ConnectionKind)>,
    pub pipelines: Vec<String>,
    /// (connection, schema, table, columns)
    pub tables: Vec<(String, String, String, Vec<String>)>,
}

#[derive(Default)]
pub struct Session {
    entries: Vec<Entry>,
    plans: Vec<PipelinePlan>,
    /// The catalog read through each Postgres connection at the last planning.
    catalogs: BTreeMap<String, Catalog>,
    /// What the last APPLY of each pipeline did.
    runs: BTreeMap<String, String>,
}

/// Text for people: the output of a command, or what went wrong.
pub type Reply = Result<String, String>;

impl Session {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn completions(&self) -> Completions {
        Completions {
            connections: self
                .entries
                .iter()
                .filter_map(|e| match &e.statement {
                    Statement::CreateConnection(c) => Some((c.name.value.clone(), c.kind)),
                    _ => None,
                })
                .collect(),
            pipelines: self.plans.iter().map(|p| p.name.clone()).collect(),
            tables: self
                .catalogs
                .iter()
                .flat_map(|(conn, cat)| {
                    cat.tables.values().map(move |t| {
                        (
                            conn.clone(),
                            t.name.schema.clone(),
                            t.name.name.clone(),
                            t.columns.iter().map(|c| c.name.clone()).collect(),
                        )
                    })
                })
                .collect(),
        }
    }

    /// Adds every statement of a file, or none of them.
    pub async fn load_file(&mut self, path: &Path) -> Reply {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let file = SourceFile::new(path.display().to_string(), text);
        let added = self.add(&file).await?;
        Ok(format!("{}: {added}", path.display()))
    }

    /// Runs one command. `file` holds the statement as typed (for error carets).
    pub async fn run(&mut self, file: &SourceFile, command: &Command) -> Reply {
        match command {
            Command::Create => self.add(file).await,
            Command::ShowConnections => Ok(self.show_connections()),
            Command::ShowPipelines => Ok(self.show_pipelines()),
            Command::ShowTables => Ok(self.show_tables()),
            Command::Describe(name) => self.describe(file, name),
            Command::Explain(name) => Ok(crate::cli::explain(self.pipeline(file, name)?)),
            Command::Preview { pipeline, limit } => {
                let plan = self.pipeline(file, pipeline)?;
                preview::preview(plan, &PreviewOptions::new(*limit))
                    .await
                    .map_err(|e| format!("PREVIEW {}: {e}", plan.name))
            }
            Command::Apply {
                pipeline,
                snapshot_only,
            } => self.apply(file, pipeline, *snapshot_only).await,
            Command::Status => Ok(self.status()),
            Command::DropPipeline(name) => self.drop_pipeline(file, name),
            Command::DropConnection(name) => self.drop_connection(file, name),
            Command::Help => Ok(format!("{HELP}\n")),
            Command::Quit => Ok(String::new()),
        }
    }

    /// Records that an APPLY was stopped by Ctrl-C.
    pub fn interrupted(&mut self, command: &Command) -> String {
        match command {
            Command::Apply { pipeline, .. } => {
                self.runs.insert(
                    pipeline.name.clone(),
                    "snapshot stopped by Ctrl-C; its topics hold part of the tables".to_string(),
                );
                format!(
                    "APPLY {}: stopped. Rows already handed to the producer are still delivered; \
                     the topics hold part of the snapshot.\n",
                    pipeline.name
                )
            }
            _ => "interrupted\n".to_string(),
        }
    }

    // ---- CREATE ----------------------------------------------------------------------------

    /// Parses `file` alone, then plans it together with everything accepted so far.
    async fn add(&mut self, file: &SourceFile) -> Reply {
        let script = parse::parse(file).map_err(|e| render(&e))?;
        let new: Vec<Entry> = script
            .statements
            .into_iter()
            .map(|statement| {
                let span = match &statement {
                    Statement::CreateConnection(c) => c.span,
                    Statement::CreatePipeline(p) => p.span,
                };
                Entry {
                    file: file.clone(),
                    span,
                    statement,
                }
            })
            .collect();
        if new.is_empty() {
            return Ok("nothing to add\n".to_string());
        }
        let mut entries = self.entries.clone();
        entries.extend(new.iter().cloned());
        let (plans, catalogs) = plan_entries(&entries).await?;
        self.entries = entries;
        self.plans = plans;
        self.catalogs = catalogs;
        let mut out = String::new();
        for e in &new {
            match &e.statement {
                Statement::CreateConnection(c) => {
                    let _ = write!(out, "connection {} defined", c.name.value);
                    match self.catalogs.get(&c.name.value) {
                        Some(cat) => {
                            let _ = writeln!(
                                out,
                                " (database {}, {} table(s))",
                                cat.database,
                                cat.tables.len()
                            );
                        }
                        None => {
                            let _ = writeln!(out);
                        }
                    }
                }
                Statement::CreatePipeline(p) => {
                    if let Some(plan) = self.plans.iter().find(|x| x.name == p.name.value) {
                        let _ = writeln!(
                            out,
                            "pipeline {} defined: {}",
                            plan.name,
                            plan.tables
                                .iter()
                                .map(|t| format!("{} → {}", t.table, t.topic))
                                .collect::<Vec<_>>()
                                .join(", ")
                        );
                        for w in &plan.warnings {
                            let _ = writeln!(out, "warning: {w}");
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    // ---- lookups -------------------------------------------------------------------------------

    fn pipeline(&self, file: &SourceFile, name: &Name) -> Result<&PipelinePlan, String> {
        if let Some(p) = self.plans.iter().find(|p| p.name == name.name) {
            return Ok(p);
        }
        let names: Vec<&str> = self.plans.iter().map(|p| p.name.as_str()).collect();
        let help = match closest(&name.name, names.iter().copied()) {
            Some(s) => format!("did you mean `{s}`?"),
            None if names.is_empty() => {
                "no pipeline is defined yet: CREATE PIPELINE name FROM ... ;".to_string()
            }
            None => format!("pipelines: {}", names.join(", ")),
        };
        Err(render(&SourceDiagnostic::new(
            file,
            name.span,
            format!("unknown pipeline `{}`", name.name),
            "not defined in this session",
            Some(help),
        )))
    }

    // ---- SHOW ------------------------------------------------------------------------------------

    fn show_connections(&self) -> String {
        let mut rows = vec![vec![
            "connection".to_string(),
            "kind".to_string(),
            "address".to_string(),
            "catalog".to_string(),
        ]];
        for e in &self.entries {
            let Statement::CreateConnection(c) = &e.statement else {
                continue;
            };
            let option = |key: &str| {
                c.options
                    .iter()
                    .find(|o| o.key == key && !o.key_quoted)
                    .and_then(|o| match &o.value {
                        OptionValue::String(s) => Some(s.value.clone()),
                        _ => None,
                    })
                    .unwrap_or_default()
            };
            let (kind, address, catalog) = match c.kind {
                ConnectionKind::Postgres => (
                    "POSTGRES",
                    redact_url(&option("url")),
                    self.catalogs
                        .get(&c.name.value)
                        .map(|cat| {
                            format!("database {}, {} table(s)", cat.database, cat.tables.len())
                        })
                        .unwrap_or_default(),
                ),
                ConnectionKind::Kafka => ("KAFKA", option("brokers"), String::new()),
            };
            rows.push(vec![
                c.name.value.clone(),
                kind.to_string(),
                address,
                catalog,
            ]);
        }
        if rows.len() == 1 {
            return "no connections yet: CREATE CONNECTION name TO POSTGRES (url = '...');\n"
                .to_string();
        }
        text_table(&rows)
    }

    fn show_pipelines(&self) -> String {
        if self.plans.is_empty() {
            return "no pipelines yet: CREATE PIPELINE name FROM ... ;\n".to_string();
        }
        let mut rows = vec![vec![
            "pipeline".to_string(),
            "from → into".to_string(),
            "format".to_string(),
            "envelope".to_string(),
            "table → topic".to_string(),
        ]];
        for p in &self.plans {
            for (i, t) in p.tables.iter().enumerate() {
                let first = i == 0;
                rows.push(vec![
                    if first { p.name.clone() } else { String::new() },
                    if first {
                        format!("{} → {}", p.postgres.name, p.kafka.name)
                    } else {
                        String::new()
                    },
                    if first { format_name(p) } else { String::new() },
                    if first {
                        envelope_name(p).to_string()
                    } else {
                        String::new()
                    },
                    format!("{} → {}", t.table, t.topic),
                ]);
            }
        }
        text_table(&rows)
    }

    fn show_tables(&self) -> String {
        if self.catalogs.is_empty() {
            return "no Postgres connection yet: CREATE CONNECTION name TO POSTGRES (url = '...');\n"
                .to_string();
        }
        let mut rows = vec![vec![
            "connection".to_string(),
            "table".to_string(),
            "columns".to_string(),
            "primary key".to_string(),
        ]];
        for (conn, cat) in &self.catalogs {
            for t in cat.tables.values() {
                rows.push(vec![
                    conn.clone(),
                    t.name.to_string(),
                    t.columns.len().to_string(),
                    if t.primary_key.is_empty() {
                        "(none)".to_string()
                    } else {
                        t.primary_key.join(", ")
                    },
                ]);
            }
        }
        text_table(&rows)
    }

    // ---- DESCRIBE --------------------------------------------------------------------------------

    fn describe(&self, file: &SourceFile, name: &Name) -> Reply {
        if name.schema.is_none() {
            if let Some(p) = self.plans.iter().find(|p| p.name == name.name) {
                return Ok(describe_pipeline(p));
            }
        }
        // A bare name is a table in `public`, as in a pipeline; failing that, the only table
        // of that name in any schema.
        let mut found: Vec<(&String, &crate::catalog::Table)> = Vec::new();
        for (conn, cat) in &self.catalogs {
            for t in cat.tables.values() {
                let schema_ok = match &name.schema {
                    Some(s) => &t.name.schema == s,
                    None => true,
                };
                if schema_ok && t.name.name == name.name {
                    found.push((conn, t));
                }
            }
        }
        if name.schema.is_none() && found.len() > 1 {
            let public: Vec<_> = found
                .iter()
                .copied()
                .filter(|(_, t)| t.name.schema == "public")
                .collect();
            if !public.is_empty() {
                found = public;
            }
        }
        if found.is_empty() {
            let mut candidates: Vec<String> = self.plans.iter().map(|p| p.name.clone()).collect();
            for cat in self.catalogs.values() {
                for t in cat.tables.keys() {
                    candidates.push(t.to_string());
                    candidates.push(t.name.clone());
                }
            }
            let written = match &name.schema {
                Some(s) => format!("{s}.{}", name.name),
                None => name.name.clone(),
            };
            let help = match closest(&written, candidates.iter().map(String::as_str)) {
                Some(s) => Some(format!("did you mean `{s}`?")),
                None if self.catalogs.is_empty() => Some(
                    "tables come from the POSTGRES connections: CREATE CONNECTION first"
                        .to_string(),
                ),
                None => Some("SHOW TABLES; lists the tables".to_string()),
            };
            return Err(render(&SourceDiagnostic::new(
                file,
                name.span,
                format!("no table or pipeline named `{written}`"),
                "unknown",
                help,
            )));
        }
        let mut out = String::new();
        for (conn, t) in found {
            let database = self
                .catalogs
                .get(conn)
                .map(|c| c.database.as_str())
                .unwrap_or("");
            let _ = writeln!(
                out,
                "table {} (connection {conn}, database {database})",
                t.name
            );
            let mut rows = vec![vec![
                "column".to_string(),
                "type".to_string(),
                "null".to_string(),
                "key".to_string(),
            ]];
            for c in &t.columns {
                let key = t
                    .primary_key
                    .iter()
                    .position(|k| k == &c.name)
                    .map(|i| format!("pk {}", i + 1))
                    .unwrap_or_default();
                rows.push(vec![
                    c.name.clone(),
                    c.pg_type.to_string(),
                    if c.nullable { "null" } else { "not null" }.to_string(),
                    key,
                ]);
            }
            for line in text_table(&rows).lines() {
                let _ = writeln!(out, "  {line}");
            }
            let readers: Vec<&str> = self
                .plans
                .iter()
                .filter(|p| {
                    p.postgres.name == *conn && p.tables.iter().any(|pt| pt.table == t.name)
                })
                .map(|p| p.name.as_str())
                .collect();
            if !readers.is_empty() {
                let _ = writeln!(out, "  read by pipeline(s): {}", readers.join(", "));
            }
        }
        Ok(out)
    }

    // ---- APPLY, STATUS -----------------------------------------------------------------------------

    async fn apply(&mut self, file: &SourceFile, name: &Name, snapshot_only: bool) -> Reply {
        let plan = self.pipeline(file, name)?.clone();
        let mut out = String::new();
        for w in &plan.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
        if !snapshot_only {
            return self.apply_streaming(plan, out).await;
        }
        let metrics = Arc::new(Metrics::new(&plan));
        // Dropped with this future when Ctrl-C stops the snapshot, which clears the bars.
        let display = progress_display(&metrics);
        let result = runtime::run_snapshot_with(&plan, metrics).await;
        display.finish().await;
        match result {
            Ok(report) => {
                let rows: u64 = report.tables.iter().map(|t| t.rows_read).sum();
                let secs = report.elapsed.as_secs_f64().max(1e-9);
                for t in &report.tables {
                    let _ = writeln!(
                        out,
                        "{} → {}: {} rows read, {} messages",
                        t.table, t.topic, t.rows_read, t.messages
                    );
                }
                let summary = format!(
                    "snapshot done: {} messages acknowledged ({:.1} MB) in {:.2} s, {:.0} rows/s",
                    report.delivered,
                    report.bytes as f64 / 1e6,
                    secs,
                    rows as f64 / secs
                );
                let _ = writeln!(out, "{summary}");
                self.runs.insert(plan.name.clone(), summary);
                Ok(out)
            }
            Err(e) => {
                self.runs
                    .insert(plan.name.clone(), format!("snapshot failed: {e}"));
                Err(format!("{out}APPLY {}: {e}\n", plan.name))
            }
        }
    }

    /// Snapshot (unless done before), then stream until Ctrl-C. Ctrl-C does not cancel the
    /// run: it asks it to stop, and the run drains, flushes and acknowledges what is in Kafka
    /// before the prompt comes back, exactly like `cdcql apply` on SIGINT.
    async fn apply_streaming(&mut self, plan: PipelinePlan, mut out: String) -> Reply {
        progress::write_stderr(
            format!(
                "{out}APPLY {}: running (slot {}); Ctrl-C stops it\n",
                plan.name, plan.replication.slot
            )
            .as_bytes(),
        );
        out.clear();
        let metrics = Arc::new(Metrics::new(&plan));
        let display = progress_display(&metrics);
        let (stop_tx, stop_rx) = watch::channel(false);
        let ctx = RunContext {
            replan: Some(self.replanner(&plan.name)),
            metrics: Some(metrics),
        };
        let run = runtime::run(&plan, stop_rx, ctx);
        tokio::pin!(run);
        let mut stopping = false;
        let result = loop {
            tokio::select! {
                r = &mut run => break r,
                _ = tokio::signal::ctrl_c() => {
                    if !stopping {
                        stopping = true;
                        let _ = stop_tx.send(true);
                    }
                    progress::write_stderr(
                        format!("APPLY {}: stopping (draining, flushing, acknowledging)...\n", plan.name)
                            .as_bytes(),
                    );
                }
            }
        };
        display.finish().await;
        match result {
            Ok(report) => {
                for t in &report.tables {
                    let _ = writeln!(out, "{} → {}: {} messages", t.table, t.topic, t.messages);
                }
                let summary = format!(
                    "stopped cleanly: {} snapshot rows, {} transactions, {} messages acknowledged \
                     by Kafka, source position {} acknowledged",
                    report.snapshot_rows,
                    report.transactions,
                    report.delivered,
                    report
                        .acked_lsn
                        .map(crate::cli::format_lsn)
                        .unwrap_or_else(|| "-".into())
                );
                let _ = writeln!(out, "APPLY {}: {summary}", plan.name);
                self.runs.insert(plan.name.clone(), summary);
                Ok(out)
            }
            Err(e) => {
                self.runs.insert(plan.name.clone(), format!("failed: {e}"));
                Err(format!("APPLY {}: {e}\n", plan.name))
            }
        }
    }

    /// Plans the pipeline again from this session's statements and the current catalog,
    /// when a table changes while it streams.
    fn replanner(&self, name: &str) -> Replanner {
        let entries = self.entries.clone();
        let name = name.to_string();
        Box::new(move || {
            let (entries, name) = (entries.clone(), name.clone());
            Box::pin(async move {
                let (plans, _) = plan_entries(&entries).await?;
                plans
                    .into_iter()
                    .find(|p| p.name == name)
                    .ok_or_else(|| format!("pipeline `{name}` is no longer defined"))
            })
        })
    }

    fn status(&self) -> String {
        let mut out = String::new();
        let conns = self
            .entries
            .iter()
            .filter(|e| matches!(e.statement, Statement::CreateConnection(_)))
            .count();
        let _ = writeln!(
            out,
            "{conns} connection(s), {} pipeline(s) defined in this session",
            self.plans.len()
        );
        for p in &self.plans {
            let run = self
                .runs
                .get(&p.name)
                .map(String::as_str)
                .unwrap_or("not applied in this session");
            let _ = writeln!(out, "  {}: {run}", p.name);
        }
        out
    }

    // ---- DROP --------------------------------------------------------------------------------------

    fn drop_pipeline(&mut self, file: &SourceFile, name: &Name) -> Reply {
        self.pipeline(file, name)?;
        self.entries.retain(|e| {
            !(matches!(e.statement, Statement::CreatePipeline(_)) && e.name() == name.name)
        });
        self.plans.retain(|p| p.name != name.name);
        self.runs.remove(&name.name);
        Ok(format!(
            "pipeline {} forgotten (nothing was deleted in Postgres or Kafka)\n",
            name.name
        ))
    }

    fn drop_connection(&mut self, file: &SourceFile, name: &Name) -> Reply {
        let exists = self.entries.iter().any(|e| {
            matches!(e.statement, Statement::CreateConnection(_)) && e.name() == name.name
        });
        if !exists {
            return Err(render(&SourceDiagnostic::new(
                file,
                name.span,
                format!("unknown connection `{}`", name.name),
                "not defined in this session",
                None,
            )));
        }
        let users: Vec<&str> = self
            .plans
            .iter()
            .filter(|p| p.postgres.name == name.name || p.kafka.name == name.name)
            .map(|p| p.name.as_str())
            .collect();
        if !users.is_empty() {
            return Err(render(&SourceDiagnostic::new(
                file,
                name.span,
                format!(
                    "connection `{}` is used by pipeline(s) {}",
                    name.name,
                    users.join(", ")
                ),
                "still in use",
                Some("DROP PIPELINE those first".to_string()),
            )));
        }
        self.entries.retain(|e| {
            !(matches!(e.statement, Statement::CreateConnection(_)) && e.name() == name.name)
        });
        self.catalogs.remove(&name.name);
        Ok(format!("connection {} forgotten\n", name.name))
    }
}

fn progress_display(metrics: &Arc<Metrics>) -> Display {
    Display::start(
        vec![metrics.clone()],
        ProgressMode::Auto,
        Duration::from_secs(10),
        LogFormat::Text,
    )
}

fn format_name(p: &PipelinePlan) -> String {
    match &p.encoding {
        plan::Encoding::Json { schemas: false } => "JSON".to_string(),
        plan::Encoding::Json { schemas: true } => "JSON + schemas".to_string(),
        plan::Encoding::Avro(_) => "AVRO".to_string(),
    }
}

fn envelope_name(p: &PipelinePlan) -> &'static str {
    match &p.envelope {
        Envelope::Debezium(_) => "DEBEZIUM",
        Envelope::Native(_) => "NATIVE",
    }
}

fn describe_pipeline(p: &PipelinePlan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "pipeline {}: {} → {}, FORMAT {}, ENVELOPE {}",
        p.name,
        p.postgres.name,
        p.kafka.name,
        format_name(p),
        envelope_name(p)
    );
    for t in &p.tables {
        let key: Vec<&str> = t.key.iter().map(|&i| t.output[i].name.as_str()).collect();
        let _ = writeln!(
            out,
            "  {} → topic {} (key: {})",
            t.table,
            t.topic,
            if key.is_empty() {
                "none".to_string()
            } else {
                key.join(", ")
            }
        );
        let mut rows = vec![vec![
            "column".to_string(),
            "type".to_string(),
            "null".to_string(),
        ]];
        for c in &t.output {
            rows.push(vec![
                c.name.clone(),
                c.pg_type.to_string(),
                if c.nullable { "null" } else { "not null" }.to_string(),
            ]);
        }
        for line in text_table(&rows).lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
    out
}

/// Parses all entries as one file and plans them, reading each Postgres connection's catalog.
/// Errors are rendered against the entry they point into.
async fn plan_entries(
    entries: &[Entry],
) -> Result<(Vec<PipelinePlan>, BTreeMap<String, Catalog>), String> {
    let mut text = String::new();
    let mut layout: Vec<(usize, &Entry)> = Vec::new();
    for e in entries {
        layout.push((text.len(), e));
        text.push_str(e.text());
        text.push_str("\n\n");
    }
    let file = SourceFile::new("session", text);
    let remap = |d: &SourceDiagnostic| -> String {
        let span = d.span();
        let owner = layout.iter().rev().find(|(start, _)| *start <= span.start);
        match owner {
            Some((start, e)) if span.start <= start + e.text().len() => {
                let shift = |p: usize| (e.span.start + (p - start)).min(e.span.end);
                let mapped = SourceDiagnostic::new(
                    &e.file,
                    Span::new(shift(span.start), shift(span.end.max(span.start))),
                    d.message.clone(),
                    d.label.clone(),
                    d.help.clone(),
                );
                render(&mapped)
            }
            _ => render(d),
        }
    };
    let script = parse::parse(&file).map_err(|e| remap(&e))?;
    let mut catalogs = BTreeMap::new();
    for (name, url) in plan::postgres_urls(&script) {
        let client = postgres::connect(&url)
            .await
            .map_err(|e| format!("connection {name}: {e}\n"))?;
        let catalog = Catalog::load(&client).await.map_err(|e| {
            format!(
                "reading tables through connection {name} ({}): {e}\n",
                redact_url(url.expose())
            )
        })?;
        catalogs.insert(name, catalog);
    }
    let plans = plan::plan_script(&file, &script, &catalogs).map_err(|e| remap(&e.0))?;
    Ok((plans, catalogs))
}
