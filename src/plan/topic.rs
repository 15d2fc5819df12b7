//! Topic templates: `'shop.{schema}.{table}'` with `{database}`, `{schema}`, `{table}`,
//! `{pipeline}` placeholders, sanitised the way Debezium sanitises topic names.

use super::PlanError;
use crate::catalog::TableName;
use crate::parse::{SourceFile, Span, StringLit};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Database,
    Schema,
    Table,
    Pipeline,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicTemplate {
    parts: Vec<Part>,
}

const PLACEHOLDERS: &[&str] = &["database", "schema", "table", "pipeline"];

/// How one kind of template names itself in diagnostics, and which placeholders it has.
pub(crate) struct Placeholders<'a> {
    /// `topic name`, `dead_letter_topic`: ends "unclosed `{` in …" and "unknown placeholder in …".
    pub what: &'a str,
    pub names: &'a [&'a str],
    pub help: &'a str,
    /// Whether a "did you mean" suggestion is followed by `help` too.
    pub help_after_suggestion: bool,
}

/// A piece of a template: literal text, or the placeholder `names[i]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Text(String),
    Name(usize),
}

/// Split `template` into text and `{placeholder}`s. `span(from, to)` locates byte offsets of
/// the template in the file (the caller knows whether `${VAR}` expansion rewrote it).
pub(crate) fn parse_placeholders(
    file: &SourceFile,
    template: &str,
    span: impl Fn(usize, usize) -> Span,
    kind: &Placeholders<'_>,
) -> Result<Vec<Piece>, PlanError> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        text.push_str(&rest[..open]);
        let base = template.len() - rest.len() + open;
        let Some(close) = rest[open..].find('}') else {
            return Err(PlanError::new(
                file,
                format!("unclosed `{{` in {}", kind.what),
                span(base, template.len()),
                "no matching `}`",
            )
            .with_help(kind.help));
        };
        let name = &rest[open + 1..open + close];
        let Some(i) = kind.names.iter().position(|n| *n == name) else {
            let err = PlanError::new(
                file,
                // Not the name itself: it may come from a secret `${VAR}`; the labelled
                // source shows what was written.
                format!("unknown placeholder in {}", kind.what),
                span(base, base + close + 1),
                "unknown placeholder",
            );
            return Err(match super::closest(name, kind.names.iter().copied()) {
                Some(c) if kind.help_after_suggestion => {
                    err.with_help(format!("did you mean {{{c}}}? {}", kind.help))
                }
                Some(c) => err.with_help(format!("did you mean {{{c}}}?")),
                None => err.with_help(kind.help),
            });
        };
        if !text.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut text)));
        }
        pieces.push(Piece::Name(i));
        rest = &rest[open + close + 1..];
    }
    text.push_str(rest);
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

impl TopicTemplate {
    pub(crate) fn parse(file: &SourceFile, lit: &StringLit) -> Result<Self, PlanError> {
        // Spans point into the literal when it was not rewritten by ${VAR} expansion.
        let span = |from: usize, to: usize| {
            if lit.raw == lit.value {
                Span::new(lit.span.start + 1 + from, lit.span.start + 1 + to)
            } else {
                lit.span
            }
        };
        let kind = Placeholders {
            what: "topic name",
            names: PLACEHOLDERS,
            help: "placeholders are {database}, {schema}, {table} and {pipeline}",
            help_after_suggestion: false,
        };
        let parts: Vec<Part> = parse_placeholders(file, &lit.value, span, &kind)?
            .into_iter()
            .map(|p| match p {
                Piece::Text(t) => Part::Text(t),
                Piece::Name(0) => Part::Database,
                Piece::Name(1) => Part::Schema,
                Piece::Name(2) => Part::Table,
                Piece::Name(_) => Part::Pipeline,
            })
            .collect();
        if parts.is_empty() {
            return Err(PlanError::new(file, "empty topic name", lit.span, "empty"));
        }
        Ok(TopicTemplate { parts })
    }

    pub fn render(&self, database: &str, table: &TableName, pipeline: &str) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Database => out.push_str(database),
                Part::Schema => out.push_str(&table.schema),
                Part::Table => out.push_str(&table.name),
                Part::Pipeline => out.push_str(pipeline),
            }
        }
        sanitize_topic(&out)
    }

    /// Debezium's `topic.prefix` equivalent: the rendered text before the first
    /// `{schema}`/`{table}` placeholder, without its trailing separator; the pipeline name
    /// when that is empty.
    pub fn prefix(&self, database: &str, pipeline: &str) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Database => out.push_str(database),
                Part::Pipeline => out.push_str(pipeline),
                Part::Schema | Part::Table => break,
            }
        }
        let trimmed = out.trim_end_matches(['.', '_', '-']);
        if trimmed.is_empty() {
            pipeline.to_string()
        } else {
            sanitize_topic(trimmed)
        }
    }
}

/// Debezium's rule: characters outside `[A-Za-z0-9._-]` become `_`; at most 249 characters;
/// `.` and `..` are not valid names.
pub fn sanitize_topic(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(249)
        .collect();
    if s == "." || s == ".." {
        s = s.replace('.', "_");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizes_like_debezium() {
        assert_eq!(
            sanitize_topic("shop.public.Ordérs$1"),
            "shop.public.Ord_rs_1"
        );
        assert_eq!(sanitize_topic(".."), "__");
        assert_eq!(sanitize_topic(&"x".repeat(300)).len(), 249);
    }
}
