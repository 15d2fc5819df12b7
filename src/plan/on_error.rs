//! What happens to a row that cannot be delivered — a value the type mapping rejects, a message
//! larger than Kafka allows — and where dead letters go: the checked form of the pipeline
//! options `on_error` and `dead_letter_topic`. The runtime side is `runtime::poison`.

use super::options::OptionReader;
use super::topic::{parse_placeholders, Piece, Placeholders};
use super::{closest, sanitize_topic, PipelinePlan, PlanError, TablePlan};
use crate::catalog::TableName;
use crate::parse::{OptionItem, OptionValue, SourceFile, Span};

/// `on_error`: what to do with a row that cannot be decoded, converted, encoded or produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// Stop the pipeline before the row's position is acknowledged (the default).
    #[default]
    Fail,
    /// Write the row as plain JSON to the dead-letter topic, with headers saying why, and go on.
    DeadLetter,
    /// Drop the row with a warning and a count, and go on.
    Skip,
}

const CHOICES: &[&str] = &["fail", "dead_letter", "skip"];

impl OnError {
    pub fn as_str(self) -> &'static str {
        match self {
            OnError::Fail => "fail",
            OnError::DeadLetter => "dead_letter",
            OnError::Skip => "skip",
        }
    }
}

/// The default dead-letter topic: the table's topic with `.dlq` appended.
pub const DEFAULT_DEAD_LETTER_TOPIC: &str = "{topic}.dlq";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Topic,
    Database,
    Schema,
    Table,
    Pipeline,
}

const PLACEHOLDERS: &[&str] = &["topic", "database", "schema", "table", "pipeline"];

/// A pipeline's answer to rows that cannot be delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorPolicy {
    pub on_error: OnError,
    /// The dead-letter topic template as written (or the default), for `explain`.
    pub dead_letter_template: String,
    parts: Vec<Part>,
}

impl Default for ErrorPolicy {
    fn default() -> Self {
        ErrorPolicy {
            on_error: OnError::Fail,
            dead_letter_template: DEFAULT_DEAD_LETTER_TOPIC.into(),
            parts: vec![Part::Topic, Part::Text(".dlq".into())],
        }
    }
}

impl ErrorPolicy {
    /// The dead-letter topic of a table whose messages go to `topic`; `None` unless
    /// `on_error = 'dead_letter'`. Sanitised like topic names.
    pub fn dead_letter_topic(
        &self,
        database: &str,
        table: &TableName,
        topic: &str,
        pipeline: &str,
    ) -> Option<String> {
        if self.on_error != OnError::DeadLetter {
            return None;
        }
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Topic => out.push_str(topic),
                Part::Database => out.push_str(database),
                Part::Schema => out.push_str(&table.schema),
                Part::Table => out.push_str(&table.name),
                Part::Pipeline => out.push_str(pipeline),
            }
        }
        Some(sanitize_topic(&out))
    }
}

impl PipelinePlan {
    /// Where `table`'s dead letters go, when the pipeline writes any.
    pub fn dead_letter_topic(&self, table: &TablePlan) -> Option<String> {
        self.errors
            .dead_letter_topic(&self.database, &table.table, &table.topic, &self.name)
    }
}

/// Reads `on_error` and `dead_letter_topic`.
pub(crate) fn plan_errors(
    file: &SourceFile,
    opts: &OptionReader<'_>,
) -> Result<ErrorPolicy, PlanError> {
    let on_error = match opts.string("on_error")? {
        None => OnError::Fail,
        Some((v, item)) => match v.as_str() {
            "fail" => OnError::Fail,
            "dead_letter" => OnError::DeadLetter,
            "skip" => OnError::Skip,
            _ => return Err(bad_choice(file, &v, item)),
        },
    };
    let mut policy = ErrorPolicy {
        on_error,
        ..ErrorPolicy::default()
    };
    if let Some((template, item)) = opts.string("dead_letter_topic")? {
        if on_error != OnError::DeadLetter {
            return Err(PlanError::new(
                file,
                format!(
                    "option `dead_letter_topic` needs on_error = 'dead_letter' (this pipeline has on_error = '{}')",
                    on_error.as_str()
                ),
                item.key_span,
                "no dead letters are written",
            )
            .with_help("add on_error = 'dead_letter' to the WITH (...), or remove dead_letter_topic"));
        }
        policy.parts = parse_template(file, &template, item)?;
        policy.dead_letter_template = template;
    }
    Ok(policy)
}

fn bad_choice(file: &SourceFile, value: &str, item: &OptionItem) -> PlanError {
    let mut help = String::new();
    if let Some(c) = closest(value, CHOICES.iter().copied()) {
        help.push_str(&format!("did you mean '{c}'? "));
    }
    help.push_str(
        "on_error is 'fail' (stop the pipeline, the default), 'dead_letter' (write the row as \
         JSON to a dead-letter topic and go on) or 'skip' (drop the row with a warning and go on)",
    );
    PlanError::new(
        file,
        format!("option `on_error` of a pipeline expects one of 'fail', 'dead_letter', 'skip', not '{value}'"),
        item.value.span(),
        "not a valid value",
    )
    .with_help(help)
}

fn parse_template(
    file: &SourceFile,
    template: &str,
    item: &OptionItem,
) -> Result<Vec<Part>, PlanError> {
    // Spans point into the literal when it was not rewritten by ${VAR} expansion.
    let whole = item.value.span();
    let span = |from: usize, to: usize| match &item.value {
        OptionValue::String(lit) if lit.raw == lit.value => {
            Span::new(lit.span.start + 1 + from, lit.span.start + 1 + to)
        }
        _ => whole,
    };
    const HELP: &str = "placeholders are {topic} (the table's topic), {database}, {schema}, \
                        {table} and {pipeline}; a name without placeholders is one topic for \
                        every table";
    let kind = Placeholders {
        what: "dead_letter_topic",
        names: PLACEHOLDERS,
        help: HELP,
        help_after_suggestion: true,
    };
    let parts: Vec<Part> = parse_placeholders(file, template, span, &kind)?
        .into_iter()
        .map(|p| match p {
            Piece::Text(t) => Part::Text(t),
            Piece::Name(0) => Part::Topic,
            Piece::Name(1) => Part::Database,
            Piece::Name(2) => Part::Schema,
            Piece::Name(3) => Part::Table,
            Piece::Name(_) => Part::Pipeline,
        })
        .collect();
    if parts.is_empty() {
        return Err(
            PlanError::new(file, "empty dead_letter_topic", whole, "empty").with_help(HELP),
        );
    }
    Ok(parts)
}

/// A dead-letter topic must not be one the pipeline writes anything else to: its JSON records
/// would corrupt a data topic, and the progress and heartbeat topics are read back.
pub(crate) fn check_topics(
    file: &SourceFile,
    opts: &OptionReader<'_>,
    plan: &PipelinePlan,
    at: Span,
) -> Result<(), PlanError> {
    let span = opts
        .item("dead_letter_topic")
        .or_else(|| opts.item("on_error"))
        .map_or(at, |i| i.value.span());
    for t in &plan.tables {
        let Some(dlq) = plan.dead_letter_topic(t) else {
            return Ok(());
        };
        let clash = if let Some(other) = plan.tables.iter().find(|o| o.topic == dlq) {
            Some(format!("the topic of table {}", other.table))
        } else if dlq == plan.replication.offsets_topic {
            Some("the pipeline's offsets topic".into())
        } else if plan.replication.heartbeat_topic.as_deref() == Some(dlq.as_str()) {
            Some("the pipeline's heartbeat topic".into())
        } else {
            None
        };
        if let Some(what) = clash {
            return Err(PlanError::new(
                file,
                format!(
                    "the dead-letter topic of table {} would be `{dlq}`, which is {what}",
                    t.table
                ),
                span,
                "dead letters would mix with other records",
            )
            .with_help(format!(
                "choose another dead_letter_topic, for example '{DEFAULT_DEAD_LETTER_TOPIC}'"
            )));
        }
    }
    Ok(())
}
