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

impl TopicTemplate {
    pub(crate) fn parse(file: &SourceFile, lit: &StringLit) -> Result<Self, PlanError> {
        let s = &lit.value;
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = s.as_str();
        // Spans point into the literal when it was not rewritten by ${VAR} expansion.
        let offset_span = |from: usize, to: usize| {
            if lit.raw == lit.value {
                Span::new(lit.span.start + 1 + from, lit.span.start + 1 + to)
            } else {
                lit.span
            }
        };
        while let Some(open) = rest.find('{') {
            text.push_str(&rest[..open]);
            let base = s.len() - rest.len() + open;
            let Some(close) = rest[open..].find('}') else {
                return Err(PlanError::new(
                    file,
                    "unclosed `{` in topic name",
                    offset_span(base, s.len()),
                    "no matching `}`",
                )
                .with_help("placeholders are {database}, {schema}, {table} and {pipeline}"));
            };
            let name = &rest[open + 1..open + close];
            let part = match name {
                "database" => Part::Database,
                "schema" => Part::Schema,
                "table" => Part::Table,
                "pipeline" => Part::Pipeline,
                _ => {
                    let mut err = PlanError::new(
                        file,
                        // Not the name itself: it may come from a secret `${VAR}`; the
                        // labelled source shows what was written.
                        "unknown placeholder in topic name".to_string(),
                        offset_span(base, base + close + 1),
                        "unknown placeholder",
                    );
                    err = match super::closest(name, PLACEHOLDERS.iter().copied()) {
                        Some(c) => err.with_help(format!("did you mean {{{c}}}?")),
                        None => err.with_help(
                            "placeholders are {database}, {schema}, {table} and {pipeline}",
                        ),
                    };
                    return Err(err);
                }
            };
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            parts.push(part);
            rest = &rest[open + close + 1..];
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
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
