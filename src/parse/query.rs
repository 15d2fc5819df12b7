//! The SELECT of a pipeline: the grammar only finds where its text ends; sqlparser (PostgreSQL
//! dialect) parses it here. sqlparser reports "at Line: X, Column: Y" relative to the query
//! text; we turn that into a byte offset of the file so the error is ours, with a caret.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Expr, Query, Visit, Visitor};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Location, Token};

use super::scan;
use super::{ParseError, SelectQuery, SourceFile, Span};

/// Parses the query in `file.text[start..end]` (which may have comments around it) of the
/// pipeline called `pipeline`.
pub fn parse_select(
    file: &SourceFile,
    start: usize,
    end: usize,
    pipeline: &str,
) -> Result<SelectQuery, ParseError> {
    let text = &*file.text;
    let start = scan::skip_trivia(text, start).min(end);
    let end = scan::last_token_end(text, start, end).max(start);
    let message = format!("invalid SELECT in pipeline `{pipeline}`");
    if start == end {
        return Err(ParseError::new(
            file,
            Span::new(start, end),
            "expected a SELECT query",
            "expected SELECT ... FROM ...",
            None,
        ));
    }
    let sql = &text[start..end];
    let dialect = PostgreSqlDialect {};
    let error = |e: ParserError| {
        // A string that swallowed the next statement explains any error better than sqlparser.
        if let Some((at, what)) = scan::first_runaway(text, start, end) {
            return super::syntax::unclosed(file, at, what, true);
        }
        let (span, label) = describe(&e, sql, start);
        ParseError::new(file, span, message.clone(), label, None)
    };
    let mut parser = Parser::new(&dialect).try_with_sql(sql).map_err(error)?;
    let query = parser.parse_query().map_err(error)?;
    if too_deep(&query) {
        return Err(ParseError::new(
            file,
            Span::new(start, end),
            format!("an expression in pipeline `{pipeline}` is nested more than {MAX_DEPTH} levels deep"),
            "nested too deeply",
            Some("split it, or use IN (...) or CASE instead of long chains of AND, OR or +".into()),
        ));
    }
    let next = parser.peek_token();
    if next.token != Token::EOF {
        if let Some((at, what)) = scan::first_runaway(text, start, end) {
            return Err(super::syntax::unclosed(file, at, what, true));
        }
        let from = start + offset_of(sql, next.span.start);
        let to = scan::next_token(text, from).map_or(from, |t| t.end.min(end));
        let list_like = matches!(next.token, Token::Comma | Token::LParen) && sql.starts_with('(');
        let help = list_like.then(|| {
            "to give one query per table, write AS (SELECT ...), (SELECT ...);".to_string()
        });
        return Err(ParseError::new(
            file,
            Span::new(from, to),
            message,
            format!("unexpected `{}` after the end of the query", next.token),
            help,
        ));
    }
    Ok(SelectQuery {
        sql: sql.to_string(),
        span: Span::new(start, end),
        query,
    })
}

/// Deeper expressions are refused: planning them recurses once per level, and a long chain
/// such as `a + a + ... + a` would otherwise exhaust the stack.
pub const MAX_DEPTH: usize = 128;

/// True if some expression of `query` nests deeper than [`MAX_DEPTH`]. The walk stops there,
/// so it never goes deeper itself.
fn too_deep(query: &Query) -> bool {
    struct Depth(usize);
    impl Visitor for Depth {
        type Break = ();
        fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
            self.0 += 1;
            if self.0 > MAX_DEPTH {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
        fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
            self.0 -= 1;
            ControlFlow::Continue(())
        }
    }
    query.visit(&mut Depth(0)).is_break()
}

/// Where a sqlparser error is in the file and what it says, in our words.
fn describe(e: &ParserError, sql: &str, base: usize) -> (Span, String) {
    let raw = match e {
        ParserError::TokenizerError(s) | ParserError::ParserError(s) => s.as_str(),
        ParserError::RecursionLimitExceeded => {
            return (
                Span::new(base, base + sql.len()),
                "this query is nested too deeply".to_string(),
            )
        }
    };
    let (text, location) = split_location(raw);
    let Some(location) = location else {
        // No location means sqlparser ran out of tokens: point at the end of the query.
        return (
            Span::new(base + sql.len(), base + sql.len()),
            clean_message(text),
        );
    };
    let at = offset_of(sql, location);
    if text.starts_with("Unterminated") {
        // sqlparser points at the end of the text; the opening quote or `/*` is more useful.
        if let Some((start, _)) = scan::first_unclosed(sql, 0, at) {
            let len = if sql[start..].starts_with("/*") { 2 } else { 1 };
            return (
                Span::new(base + start, base + start + len),
                clean_message(text),
            );
        }
    }
    let mut token = scan::next_token(sql, at).filter(|t| t.start == at);
    // Some errors carry the location of the token after the one they name ("found: FROM" at
    // the table name): step back to the token the message is about.
    if let Some(found) = text.rsplit_once("found: ").map(|(_, f)| f.trim()) {
        let is_found = |t: &scan::Tok| sql[t.start..t.end].eq_ignore_ascii_case(found);
        if !token.as_ref().is_some_and(is_found) {
            if let Some(prev) = scan::tokens(sql, 0, at).last().filter(is_found) {
                token = Some(prev);
            }
        }
    }
    let span = match token {
        Some(t) => Span::new(base + t.start, base + t.end),
        None => Span::new(base + at, base + at),
    };
    (span, clean_message(text))
}

/// Splits "... at Line: 3, Column: 7" into the message and the location.
fn split_location(s: &str) -> (&str, Option<Location>) {
    let Some(p) = s.rfind(" at Line: ") else {
        return (s, None);
    };
    let loc = &s[p + " at Line: ".len()..];
    let parsed = loc.split_once(", Column: ").and_then(|(line, column)| {
        Some(Location {
            line: line.trim().parse().ok()?,
            column: column.trim().parse().ok()?,
        })
    });
    match parsed {
        Some(loc) => (&s[..p], Some(loc)),
        None => (s, None),
    }
}

/// The byte offset in `sql` of a sqlparser location (1-based line, 1-based column in
/// characters, lines separated by `\n`).
fn offset_of(sql: &str, loc: Location) -> usize {
    if loc.line == 0 {
        return sql.len();
    }
    let mut line_start = 0;
    for _ in 1..loc.line {
        match sql[line_start..].find('\n') {
            Some(p) => line_start += p + 1,
            None => return sql.len(),
        }
    }
    let line = &sql[line_start..];
    let line = &line[..line.find('\n').unwrap_or(line.len())];
    let col = usize::try_from(loc.column.saturating_sub(1)).unwrap_or(usize::MAX);
    line_start + line.char_indices().nth(col).map_or(line.len(), |(i, _)| i)
}

/// sqlparser's "Expected: an expression, found: FROM" → "expected an expression, found `FROM`".
fn clean_message(s: &str) -> String {
    let s = s.trim();
    if s.starts_with("Unterminated dollar-quoted") {
        return "unterminated dollar-quoted string: expected its closing `$tag$`".to_string();
    }
    if let Some(rest) = s.strip_prefix("Expected") {
        let rest = rest.trim_start_matches(':').trim_start();
        let (expected, found) = match rest.rsplit_once(", found: ") {
            Some((e, f)) => (e, Some(f.trim())),
            None => (rest, None),
        };
        // "expected )" reads better as "expected `)`".
        let expected = if !expected.is_empty() && !expected.contains(char::is_alphanumeric) {
            format!("`{expected}`")
        } else {
            expected.to_string()
        };
        return match found {
            Some("EOF") => format!("expected {expected}, found the end of the query"),
            Some(f) => format!("expected {expected}, found `{f}`"),
            None => format!("expected {expected}"),
        };
    }
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => "syntax error".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        let sql = "SELECT a,\n  é, FROM";
        assert_eq!(offset_of(sql, Location { line: 1, column: 1 }), 0);
        assert_eq!(offset_of(sql, Location { line: 2, column: 3 }), 12);
        assert_eq!(offset_of(sql, Location { line: 2, column: 6 }), 16);
        assert_eq!(offset_of(sql, Location { line: 9, column: 1 }), sql.len());
        assert_eq!(
            offset_of(
                sql,
                Location {
                    line: 1,
                    column: 99
                }
            ),
            9
        );
    }

    #[test]
    fn messages() {
        assert_eq!(
            split_location("Expected: x, found: y at Line: 2, Column: 10"),
            (
                "Expected: x, found: y",
                Some(Location {
                    line: 2,
                    column: 10
                })
            )
        );
        assert_eq!(
            clean_message("Expected: an expression, found: FROM"),
            "expected an expression, found `FROM`"
        );
        assert_eq!(
            clean_message("Expected an expression, found: FROM"),
            "expected an expression, found `FROM`"
        );
        assert_eq!(
            clean_message("Expected: ), found: EOF"),
            "expected `)`, found the end of the query"
        );
        assert_eq!(
            clean_message("Unterminated string literal"),
            "unterminated string literal"
        );
    }
}
