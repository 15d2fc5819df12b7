//! Tab completion and multi-line input for the REPL (a rustyline helper).
//!
//! Completion looks at the words of the statement before the cursor to decide what may come
//! next: a command word, a keyword of the clause, a connection or pipeline name, a schema, a
//! table, a column (of the table after `FROM`, anywhere in the statement) or a pipeline option.
//! Names come from the session ([`Completions`]), tables and columns from the catalogs read
//! through the session's Postgres connections.

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};

use super::command::COMMAND_WORDS;
use super::lex::{ident_value, is_complete, tokens, Kind, Tok};
use super::session::Completions;
use crate::catalog::quote_ident;
use crate::parse::ConnectionKind;

use crate::plan::PIPELINE_OPTIONS;

/// Words that may follow in a SELECT.
const QUERY_KEYWORDS: &[&str] = &[
    "FROM", "WHERE", "AS", "AND", "OR", "NOT", "NULL", "IS", "IN", "LIKE", "BETWEEN", "CAST",
    "CASE", "WHEN", "THEN", "ELSE", "END", "TRUE", "FALSE", "COALESCE", "UPPER", "LOWER",
];

/// Keywords of CREATE statements.
const CREATE_KEYWORDS: &[&str] = &[
    "CONNECTION",
    "PIPELINE",
    "TO",
    "POSTGRES",
    "KAFKA",
    "FROM",
    "INTO",
    "TOPIC",
    "KEY",
    "FORMAT",
    "JSON",
    "AVRO",
    "ENVELOPE",
    "DEBEZIUM",
    "NATIVE",
    "WITH",
    "AS",
    "SELECT",
    "TABLES",
];

pub struct ReplHelper {
    pub data: Completions,
}

impl Helper for ReplHelper {}
impl Hinter for ReplHelper {
    type Hint = String;
}
impl Highlighter for ReplHelper {}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        Ok(if is_complete(ctx.input()) {
            ValidationResult::Valid(None)
        } else {
            ValidationResult::Incomplete
        })
    }
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        Ok(complete(&self.data, line, pos))
    }
}

/// Where the completed word starts and the candidates for it.
pub fn complete(data: &Completions, line: &str, pos: usize) -> (usize, Vec<Pair>) {
    let before = &line[..pos];
    let toks = tokens(before);
    // Nothing to complete inside a string, a quoted name or a comment.
    if let Some(t) = toks.last() {
        if t.end == pos && !matches!(t.kind, Kind::Word | Kind::Punct) {
            return (pos, Vec::new());
        }
    }
    // The current statement: tokens after the last `;`.
    let stmt_start = toks
        .iter()
        .rposition(|t| t.kind == Kind::Punct && &before[t.start..t.end] == ";")
        .map_or(0, |i| i + 1);
    let toks: Vec<Tok> = toks[stmt_start..]
        .iter()
        .copied()
        .filter(|t| t.kind != Kind::Comment)
        .collect();
    let text = |t: &Tok| &before[t.start..t.end];

    let (prefix_start, mut rest) = match toks.last() {
        Some(t) if t.end == pos && t.kind == Kind::Word => (t.start, &toks[..toks.len() - 1]),
        _ => (pos, &toks[..]),
    };
    let prefix = &before[prefix_start..pos];
    // `schema.` or `table.` before the word.
    let mut qualifier = None;
    if let [head @ .., q, dot] = rest {
        if text(dot) == "." && dot.end == prefix_start && q.kind == Kind::Word {
            qualifier = Some(ident_value(text(q)));
            rest = head;
        }
    }
    let words: Vec<String> = rest.iter().map(|t| text(t).to_ascii_uppercase()).collect();
    let prev = words.last().map(String::as_str).unwrap_or("");
    let has = |w: &str| words.iter().any(|x| x == w);
    let first = words.first().map(String::as_str).unwrap_or("");

    let mut names: Vec<String> = Vec::new();
    let mut keywords: Vec<&str> = Vec::new();
    let kind_connections = |kind: ConnectionKind| -> Vec<String> {
        data.connections
            .iter()
            .filter(|(_, k)| *k == kind)
            .map(|(n, _)| n.clone())
            .collect()
    };

    if let Some(q) = &qualifier {
        // Tables of a schema, or columns of a table.
        names.extend(
            data.tables
                .iter()
                .filter(|(_, s, _, _)| s == q)
                .map(|(_, _, t, _)| t.clone()),
        );
        names.extend(
            data.tables
                .iter()
                .filter(|(_, _, t, _)| t == q)
                .flat_map(|(_, _, _, cols)| cols.iter().cloned()),
        );
    } else if words.is_empty() {
        keywords.extend(COMMAND_WORDS);
    } else if first == "CREATE" {
        let in_query = has("SELECT");
        let in_tables = has("TABLES") && !has("SELECT");
        let in_with = open_paren_after(&words, "WITH");
        match prev {
            "CREATE" => keywords.extend(["CONNECTION", "PIPELINE"]),
            "TO" if words.get(1).map(String::as_str) == Some("CONNECTION") => {
                keywords.extend(["POSTGRES", "KAFKA"])
            }
            "FROM" if !in_query => names.extend(kind_connections(ConnectionKind::Postgres)),
            "INTO" => names.extend(kind_connections(ConnectionKind::Kafka)),
            "FORMAT" => keywords.extend(["JSON", "AVRO"]),
            "ENVELOPE" => keywords.extend(["DEBEZIUM", "NATIVE"]),
            "FROM" | "JOIN" => tables(data, &mut names),
            "(" | "," if in_tables => tables(data, &mut names),
            "(" | "," if in_with => names.extend(PIPELINE_OPTIONS.iter().map(|s| s.to_string())),
            _ if in_query => {
                let table = table_after_from(line, stmt_start_offset(before, stmt_start));
                names.extend(columns(data, table.as_ref()));
                keywords.extend(QUERY_KEYWORDS);
            }
            _ => keywords.extend(CREATE_KEYWORDS),
        }
    } else {
        match (first, prev, words.len()) {
            ("SHOW", _, 1) => keywords.extend(["CONNECTIONS", "PIPELINES", "TABLES"]),
            ("DROP", _, 1) => keywords.extend(["PIPELINE", "CONNECTION"]),
            ("DROP", "PIPELINE", 2) => names.extend(data.pipelines.iter().cloned()),
            ("DROP", "CONNECTION", 2) => {
                names.extend(data.connections.iter().map(|(n, _)| n.clone()))
            }
            ("EXPLAIN" | "PREVIEW" | "APPLY", _, 1) => names.extend(data.pipelines.iter().cloned()),
            ("PREVIEW", _, 2) => keywords.push("LIMIT"),
            ("APPLY", _, 2) => keywords.push("SNAPSHOT"),
            ("APPLY", "SNAPSHOT", 3) => keywords.push("ONLY"),
            ("DESCRIBE" | "DESC", _, 1) => {
                names.extend(data.pipelines.iter().cloned());
                tables(data, &mut names);
            }
            _ => {}
        }
    }

    // Keywords follow the case the user types in.
    let lower = prefix.chars().next().is_some_and(|c| c.is_lowercase());
    let p = prefix.to_lowercase();
    let mut out: Vec<Pair> = Vec::new();
    for k in keywords {
        if k.to_lowercase().starts_with(&p) {
            let k = if lower {
                k.to_lowercase()
            } else {
                k.to_string()
            };
            out.push(Pair {
                display: k.clone(),
                replacement: k,
            });
        }
    }
    for n in names {
        let shown = if n.contains('.') {
            n.clone()
        } else {
            quote_ident(&n)
        };
        if n.to_lowercase().starts_with(&p) || shown.to_lowercase().starts_with(&p) {
            out.push(Pair {
                display: shown.clone(),
                replacement: shown,
            });
        }
    }
    out.sort_by(|a, b| a.display.cmp(&b.display));
    out.dedup_by(|a, b| a.display == b.display);
    (prefix_start, out)
}

/// Byte offset in the line where the current statement's tokens start.
fn stmt_start_offset(before: &str, stmt_start: usize) -> usize {
    tokens(before)
        .get(stmt_start)
        .map_or(before.len(), |t| t.start)
}

/// True when the last `(` opened after `word` is still open.
fn open_paren_after(words: &[String], word: &str) -> bool {
    let Some(at) = words.iter().rposition(|w| w == word) else {
        return false;
    };
    let mut depth = 0i32;
    for w in &words[at..] {
        match w.as_str() {
            "(" => depth += 1,
            ")" => depth -= 1,
            _ => {}
        }
    }
    depth > 0
}

/// Table names: `schema.table`, and the bare name for tables in `public` (how a pipeline
/// resolves an unqualified name), plus the schemas themselves.
fn tables(data: &Completions, out: &mut Vec<String>) {
    for (_, schema, table, _) in &data.tables {
        out.push(format!("{}.{}", quote_ident(schema), quote_ident(table)));
        if schema == "public" {
            out.push(table.clone());
        }
    }
}

/// The table named after `FROM` in the statement that starts at `from` in `line` (which may
/// come after the cursor: the column list is written before the FROM).
fn table_after_from(line: &str, from: usize) -> Option<(Option<String>, String)> {
    let rest = &line[from.min(line.len())..];
    let toks: Vec<Tok> = tokens(rest)
        .into_iter()
        .filter(|t| t.kind != Kind::Comment)
        .collect();
    let text = |t: &Tok| &rest[t.start..t.end];
    let mut seen_select = false;
    for (i, t) in toks.iter().enumerate() {
        let w = text(t).to_ascii_uppercase();
        if w == ";" {
            break;
        }
        if w == "SELECT" {
            seen_select = true;
        }
        if seen_select && w == "FROM" {
            let name = toks.get(i + 1)?;
            if !matches!(name.kind, Kind::Word | Kind::QuotedIdent) {
                return None;
            }
            let is_dot = toks.get(i + 2).is_some_and(|d| text(d) == ".");
            return match (is_dot, toks.get(i + 3)) {
                (true, Some(table)) => {
                    Some((Some(ident_value(text(name))), ident_value(text(table))))
                }
                _ => Some((None, ident_value(text(name)))),
            };
        }
    }
    None
}

/// Columns of the table (any table when it is not known yet).
fn columns(data: &Completions, table: Option<&(Option<String>, String)>) -> Vec<String> {
    data.tables
        .iter()
        .filter(|(_, s, t, _)| match table {
            Some((schema, name)) => t == name && s == schema.as_deref().unwrap_or("public"),
            None => true,
        })
        .flat_map(|(_, _, _, cols)| cols.iter().cloned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Completions {
        Completions {
            connections: vec![
                ("pg".into(), ConnectionKind::Postgres),
                ("bus".into(), ConnectionKind::Kafka),
            ],
            pipelines: vec!["shop".into(), "audit".into()],
            tables: vec![
                (
                    "pg".into(),
                    "public".into(),
                    "orders".into(),
                    vec!["id".into(), "amount".into(), "status".into()],
                ),
                (
                    "pg".into(),
                    "public".into(),
                    "customers".into(),
                    vec!["id".into(), "name".into()],
                ),
                (
                    "pg".into(),
                    "sales".into(),
                    "Orders2".into(),
                    vec!["id".into()],
                ),
            ],
        }
    }

    fn cands(line: &str) -> Vec<String> {
        let (_, c) = complete(&data(), line, line.len());
        c.into_iter().map(|p| p.replacement).collect()
    }

    #[test]
    fn completes_by_context() {
        assert_eq!(cands("PRE"), vec!["PREVIEW"]);
        assert_eq!(cands("pre"), vec!["preview"]);
        assert_eq!(cands("PREVIEW s"), vec!["shop"]);
        assert_eq!(cands("SHOW p"), vec!["pipelines"]);
        assert_eq!(cands("CREATE PIPELINE x FROM "), vec!["pg"]);
        assert_eq!(cands("CREATE PIPELINE x FROM pg INTO "), vec!["bus"]);
        assert_eq!(
            cands("CREATE PIPELINE x FROM pg INTO bus TOPIC 't' FORMAT "),
            vec!["AVRO", "JSON"]
        );
        assert_eq!(
            cands("CREATE PIPELINE x FROM pg INTO bus TOPIC 't' FORMAT JSON ENVELOPE DEBEZIUM AS SELECT id FROM pub"),
            vec!["public.customers", "public.orders"]
        );
        assert_eq!(
            cands("CREATE PIPELINE x FROM pg INTO bus TOPIC 't' FORMAT JSON ENVELOPE DEBEZIUM AS SELECT id FROM sales."),
            vec!["\"Orders2\""]
        );
        assert_eq!(cands("DESCRIBE ord"), vec!["orders"]);
        assert_eq!(cands("x; DESCRIBE public.c"), vec!["customers"]);
        assert_eq!(
            cands("CREATE PIPELINE x FROM pg INTO bus TOPIC 't' FORMAT JSON ENVELOPE DEBEZIUM WITH (part"),
            vec!["partitions"]
        );
        assert_eq!(
            cands("CREATE PIPELINE x FROM pg INTO bus TOPIC 't' FORMAT JSON ENVELOPE DEBEZIUM TABLES (public.cu"),
            vec!["customers"]
        );
        assert!(cands("CREATE PIPELINE x FROM pg INTO bus TOPIC 'sho").is_empty());
    }

    #[test]
    fn completes_columns_of_the_from_table() {
        let line = "CREATE PIPELINE x FROM pg INTO bus TOPIC 't' FORMAT JSON ENVELOPE DEBEZIUM \
                    AS SELECT id, am FROM public.orders;";
        let pos = line.find(" FROM public").unwrap();
        let (start, c) = complete(&data(), line, pos);
        assert_eq!(&line[start..pos], "am");
        let c: Vec<String> = c.into_iter().map(|p| p.replacement).collect();
        assert_eq!(c, vec!["amount"]);
    }
}
