//! Pest's errors in words users know. Pest says which rules it tried at the furthest position
//! it reached ("positives"); the grammar's leaf rules are named for what they are
//! (`connection_name`, `kw_format`, `semi`...), so each set of rules maps to a sentence such as
//! "expected FORMAT JSON or FORMAT AVRO, found `ENVELOPE`", plus a help line where we can guess
//! the fix: a typo'd keyword, clauses in the wrong order, a trailing comma, a missing `;`.

use std::collections::BTreeSet;

use pest::error::{Error, ErrorVariant, InputLocation};

use super::grammar::Rule;
use super::scan::{self, Tok, TokKind, Unclosed};
use super::{ParseError, SourceFile, Span};

const CLAUSE_ORDER: &str = "the clauses of CREATE PIPELINE come in this order: FROM, INTO, TOPIC, \
     [KEY], FORMAT, ENVELOPE, [WITH], then AS SELECT ... or TABLES (...)";

/// Turns a pest error for the statement starting at `stmt_start` into our diagnostic.
pub fn syntax_error(file: &SourceFile, stmt_start: usize, err: Error<Rule>) -> ParseError {
    let text = &*file.text;
    let pos = stmt_start
        + match err.location {
            InputLocation::Pos(p) => p,
            InputLocation::Span((p, _)) => p,
        };
    // A string or comment that is never closed makes everything after it look wrong: say so.
    let runaway = scan::first_runaway(text, stmt_start, pos).map(|(at, what)| (at, what, true));
    let never = scan::first_unclosed(text, stmt_start, pos).map(|(at, what)| (at, what, false));
    if let Some((at, what, runaway)) = [runaway, never].into_iter().flatten().min() {
        return unclosed(file, at, what, runaway);
    }
    let positives = match err.variant {
        ErrorVariant::ParsingError { positives, .. } => positives,
        ErrorVariant::CustomError { message } => {
            return ParseError::new(
                file,
                Span::new(pos, pos),
                format!("cannot parse this statement: {message}"),
                "here",
                Some("this statement is nested too deeply".to_string()),
            )
        }
    };
    let expected: BTreeSet<Rule> = positives.into_iter().collect();
    let found = scan::next_token(text, pos).filter(|t| t.start == pos);
    Syntax {
        file,
        text,
        stmt_start,
        pos,
        expected,
        found,
    }
    .error()
}

/// A literal or comment opened at `at` and never closed; or, when `runaway`, closed only by a
/// quote of a later statement.
pub fn unclosed(file: &SourceFile, at: usize, what: Unclosed, runaway: bool) -> ParseError {
    let (len, message, label, help) = match what {
        Unclosed::String => (
            1,
            "unterminated string literal",
            "this string is never closed",
            "close it with `'`; write `''` for a quote inside a string",
        ),
        Unclosed::QuotedIdent => (
            1,
            "unterminated quoted identifier",
            "this name is never closed",
            "close it with `\"`; write `\"\"` for a double quote inside a name",
        ),
        Unclosed::Comment => (
            2,
            "unterminated block comment",
            "this comment is never closed",
            "close it with `*/` (block comments nest: each `/*` needs its own `*/`)",
        ),
        Unclosed::DollarString => (
            1,
            "unterminated dollar-quoted string",
            "this string is never closed",
            "close it with the same `$tag$` it starts with",
        ),
    };
    let label = if runaway {
        "not closed before the next statement"
    } else {
        label
    };
    ParseError::new(
        file,
        Span::new(at, at + len),
        message,
        label,
        Some(help.to_string()),
    )
}

struct Syntax<'a> {
    file: &'a SourceFile,
    text: &'a str,
    stmt_start: usize,
    pos: usize,
    expected: BTreeSet<Rule>,
    /// The token at the error position; `None` at the end of the file.
    found: Option<Tok>,
}

impl Syntax<'_> {
    fn error(&self) -> ParseError {
        use Rule::*;
        let found = self.found_text();
        let phrase = self.expected_phrase();
        let mut message = format!("expected {phrase}, found {}", self.found_desc());
        let mut label = format!("expected {phrase}");
        let mut span = self.found_span();
        let mut help = self.typo();

        if self.expects(kw_create) || self.expects(kw_connection) || self.expects(kw_pipeline) {
            message = "unknown statement: expected CREATE CONNECTION or CREATE PIPELINE".into();
            label = if self.expects(kw_create) {
                "expected CREATE CONNECTION or CREATE PIPELINE".into()
            } else {
                "expected CONNECTION or PIPELINE".into()
            };
            if help.is_none() {
                help = match found.to_ascii_uppercase().as_str() {
                    "SELECT" | "WITH" => Some(
                        "a SELECT is the body of a pipeline: CREATE PIPELINE ... AS SELECT ...;"
                            .into(),
                    ),
                    "SINK" | "SOURCE" | "TABLE" | "VIEW" | "TOPIC" => Some(
                        "cdcql has two statements: CREATE CONNECTION and CREATE PIPELINE".into(),
                    ),
                    _ => None,
                };
            }
        } else if self.expects(semi) && self.at_next_statement() {
            // The statement is complete but its `;` is missing: point where it belongs.
            let at = scan::last_token_end(self.text, self.stmt_start, self.pos);
            span = Span::new(at, at);
            message = "expected `;` at the end of the statement".into();
            label = "add `;` here".into();
            help = None;
        } else if self.expects(kw_format) {
            // Also when KEY could come here: the FORMAT is what is missing.
            message = format!(
                "expected FORMAT JSON or FORMAT AVRO, found {}",
                self.found_desc()
            );
            label = "expected FORMAT JSON or FORMAT AVRO".into();
        } else if self.expects(query_text) {
            message = format!(
                "expected a SELECT query after AS, found {}",
                self.found_desc()
            );
            label = "expected SELECT ...".into();
            help = help.or_else(|| {
                Some(
                    "write AS SELECT ... FROM schema.table; or TABLES (schema.table) to copy \
                     tables unchanged"
                        .into(),
                )
            });
        } else if self.expects(kw_as) && help.is_none() && (self.found.is_none() || found == ";") {
            help = Some(
                "a pipeline ends with what it reads: AS SELECT ... FROM schema.table; or \
                 TABLES (schema.table, ...);"
                    .into(),
            );
        }

        if help.is_none() {
            help = self.context_help(&found);
        }
        ParseError::new(self.file, span, message, label, help)
    }

    fn expects(&self, rule: Rule) -> bool {
        self.expected.contains(&rule)
    }

    /// The file is at the end, or at the next `CREATE`: what came before is a whole statement.
    fn at_next_statement(&self) -> bool {
        match self.found {
            None => true,
            Some(t) => self.text[t.start..t.end].eq_ignore_ascii_case("create"),
        }
    }

    fn found_text(&self) -> String {
        self.found
            .map(|t| self.text[t.start..t.end].to_string())
            .unwrap_or_default()
    }

    fn found_desc(&self) -> String {
        let Some(t) = self.found else {
            return "the end of the file".into();
        };
        let s = &self.text[t.start..t.end];
        let short: String = s.chars().take_while(|c| *c != '\n').take(40).collect();
        let s = if short.len() < s.len() {
            format!("{short}…")
        } else {
            short
        };
        match t.kind {
            TokKind::String | TokKind::DollarString => format!("the string {s}"),
            TokKind::QuotedIdent => format!("the quoted name {s}"),
            _ => format!("`{s}`"),
        }
    }

    fn found_span(&self) -> Span {
        match self.found {
            None => Span::new(self.text.len(), self.text.len()),
            Some(t) => {
                // A long string would underline several lines: stop at the end of the first.
                let end = self.text[t.start..t.end]
                    .find('\n')
                    .map_or(t.end, |p| t.start + p);
                Span::new(t.start, end.max(t.start + 1).min(t.end))
            }
        }
    }

    /// "X, Y or Z" for the rules pest tried.
    fn expected_phrase(&self) -> String {
        let mut phrases: Vec<&str> = Vec::new();
        for rule in &self.expected {
            // "expected `;`" says it all; the end of the file or the next statement are only
            // allowed there because the `;` is checked later.
            if matches!(rule, Rule::EOI | Rule::stmt_start) && self.expects(Rule::semi) {
                continue;
            }
            let p = phrase(*rule);
            if !phrases.contains(&p) {
                phrases.push(p);
            }
        }
        match phrases.as_slice() {
            [] => "something else".into(),
            [one] => (*one).into(),
            [init @ .., last] => format!("{} or {last}", init.join(", ")),
        }
    }

    /// "did you mean DEBEZIUM?" when the word found is close to a keyword that fits here.
    fn typo(&self) -> Option<String> {
        let t = self.found.filter(|t| t.kind == TokKind::Word)?;
        let word = self.text[t.start..t.end].to_ascii_uppercase();
        if word.len() > 24 || KEYWORDS.contains(&word.as_str()) {
            // A real keyword in the wrong place is not a typo.
            return None;
        }
        let best = self
            .expected
            .iter()
            .filter_map(|r| keyword(*r))
            .map(|k| (edit_distance(&word, k), k))
            .min()?;
        let (distance, keyword) = best;
        (distance <= 2 && distance * 3 <= keyword.len()).then(|| format!("did you mean {keyword}?"))
    }

    /// Help that depends on where we are: inside which list, after which token.
    fn context_help(&self, found: &str) -> Option<String> {
        use Rule::*;
        let kind = self.found.map(|t| t.kind);
        let prev = self.prev_token();
        let list = self.enclosing_list();
        let in_pipeline = scan::tokens(self.text, self.stmt_start, self.pos)
            .nth(1)
            .is_some_and(|t| self.text[t.start..t.end].eq_ignore_ascii_case("pipeline"));
        let found_upper = found.to_ascii_uppercase();
        if in_pipeline && PIPELINE_CLAUSES.contains(&found_upper.as_str()) {
            return Some(CLAUSE_ORDER.into());
        }
        if self.expects(kw_to)
            && matches!(found_upper.as_str(), "POSTGRES" | "POSTGRESQL" | "KAFKA")
        {
            return Some(format!(
                "give the connection a name: CREATE CONNECTION name TO {found_upper} (...)"
            ));
        }
        if self.expects(lparen) && !self.expects(semi) {
            if let Some(clause @ ("KEY" | "WITH" | "TABLES")) =
                prev.as_deref().map(str::to_ascii_uppercase).as_deref()
            {
                return Some(format!(
                    "{clause} takes a list in parentheses: {clause} (...)"
                ));
            }
        }
        if self.expects(lparen) && self.expects(semi) && found.eq_ignore_ascii_case("with") {
            return Some(
                "connection options follow the type directly: TO KAFKA (brokers = '...')".into(),
            );
        }
        if found == ")" && prev.as_deref() == Some(",") {
            return Some("remove the trailing `,`".into());
        }
        if found == ")" && prev.as_deref() == Some("(") {
            if self.expects(table_name) {
                return Some("TABLES needs at least one table, e.g. TABLES (public.orders)".into());
            }
            if self.expects(key_column) {
                return Some("KEY needs at least one column, e.g. KEY (id)".into());
            }
        }
        if kind == Some(TokKind::QuotedIdent) && (self.expects(topic) || self.expects(string_value))
        {
            let inner = found.trim_matches('"');
            return Some(format!("strings use single quotes: '{inner}'"));
        }
        if kind == Some(TokKind::Word) && self.expects(topic) {
            return Some(
                "put the topic in single quotes, e.g. TOPIC 'shop.{schema}.{table}'".into(),
            );
        }
        if kind == Some(TokKind::String) && self.expects_name() {
            return Some(
                "names are identifiers, not strings: write name or \"Name\", without single quotes"
                    .into(),
            );
        }
        if self.expects(string_value) {
            return Some(
                "a value is a 'string', a number, true, false or a word such as initial".into(),
            );
        }
        if self.expects(comma) && self.expects(rparen) {
            match (list.as_deref(), kind) {
                (Some("TABLES"), _) if found == "." => {
                    return Some("a table name is `table` or `schema.table`".into())
                }
                (Some("TABLES" | "KEY"), Some(TokKind::Word | TokKind::QuotedIdent)) => {
                    return Some("separate names with `,`".into())
                }
                (Some("TABLES" | "KEY"), _) => {}
                (_, Some(TokKind::Word | TokKind::String | TokKind::QuotedIdent)) => {
                    return Some("separate options with `,`".into())
                }
                (_, Some(TokKind::Punct)) if found != ";" => {
                    return Some(
                        "put values that contain punctuation in single quotes, e.g. 'a.b'".into(),
                    )
                }
                _ => {}
            }
        }
        None
    }

    fn expects_name(&self) -> bool {
        use Rule::*;
        [
            connection_name,
            pipeline_name,
            from_connection,
            into_connection,
            key_column,
            table_name,
        ]
        .iter()
        .any(|r| self.expects(*r))
    }

    /// The text of the token just before the error.
    fn prev_token(&self) -> Option<String> {
        scan::tokens(self.text, self.stmt_start, self.pos)
            .last()
            .map(|t| self.text[t.start..t.end].to_string())
    }

    /// The keyword before the innermost `(` that is open at the error: "TABLES", "KEY", "WITH"...
    fn enclosing_list(&self) -> Option<String> {
        let mut stack = Vec::new();
        let mut prev: Option<Tok> = None;
        for t in scan::tokens(self.text, self.stmt_start, self.pos) {
            match &self.text[t.start..t.end] {
                "(" => stack.push(
                    prev.map(|p| self.text[p.start..p.end].to_ascii_uppercase())
                        .unwrap_or_default(),
                ),
                ")" => {
                    stack.pop();
                }
                _ => {}
            }
            prev = Some(t);
        }
        stack.pop()
    }
}

/// Keywords of the language, upper case.
const KEYWORDS: &[&str] = &[
    "CREATE",
    "CONNECTION",
    "PIPELINE",
    "TO",
    "POSTGRES",
    "POSTGRESQL",
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
    "TABLES",
];

const PIPELINE_CLAUSES: &[&str] = &[
    "FROM", "INTO", "TOPIC", "KEY", "FORMAT", "ENVELOPE", "WITH", "AS", "TABLES",
];

/// The keyword a keyword rule matches.
fn keyword(rule: Rule) -> Option<&'static str> {
    use Rule::*;
    Some(match rule {
        kw_create => "CREATE",
        kw_connection => "CONNECTION",
        kw_pipeline => "PIPELINE",
        kw_to => "TO",
        kw_postgres => "POSTGRES",
        kw_kafka => "KAFKA",
        kw_from => "FROM",
        kw_into => "INTO",
        kw_topic => "TOPIC",
        kw_key => "KEY",
        kw_format => "FORMAT",
        kw_json => "JSON",
        kw_avro => "AVRO",
        kw_envelope => "ENVELOPE",
        kw_debezium => "DEBEZIUM",
        kw_native => "NATIVE",
        kw_with => "WITH",
        kw_as => "AS",
        kw_tables => "TABLES",
        _ => return None,
    })
}

/// What a rule stands for, in the words of the documentation.
fn phrase(rule: Rule) -> &'static str {
    use Rule::*;
    match rule {
        kw_create => "CREATE CONNECTION or CREATE PIPELINE",
        kw_connection | kw_pipeline => "CONNECTION or PIPELINE",
        kw_to => "TO POSTGRES or TO KAFKA",
        kw_postgres | kw_kafka => "the connection type POSTGRES or KAFKA",
        kw_from => "FROM and the source connection",
        kw_into => "INTO and the target connection",
        kw_topic => "TOPIC 'name'",
        kw_key => "KEY (...)",
        kw_format => "FORMAT JSON or FORMAT AVRO",
        kw_json | kw_avro => "JSON or AVRO after FORMAT",
        kw_envelope => "ENVELOPE DEBEZIUM or ENVELOPE NATIVE",
        kw_debezium | kw_native => "DEBEZIUM or NATIVE after ENVELOPE",
        kw_with => "WITH (...)",
        kw_as => "AS SELECT ...",
        kw_tables => "TABLES (...)",
        connection_name => "a connection name",
        pipeline_name => "a pipeline name",
        from_connection => "the name of the POSTGRES connection to read from",
        into_connection => "the name of the KAFKA connection to write to",
        topic => "a topic in single quotes",
        key_column => "a column name",
        table_name => "a table name",
        option_key => "an option name",
        string_value | number | boolean | word => "an option value",
        eq => "`=`",
        comma => "`,`",
        lparen => "`(`",
        rparen => "`)`",
        semi => "`;`",
        query_text | query_inner | query_list => "a SELECT query",
        stmt_start => "the next statement",
        EOI => "the end of the file",
        _ => "something else",
    }
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::edit_distance;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("DEBEZUIM", "DEBEZIUM"), 1);
        assert_eq!(edit_distance("JSN", "JSON"), 1);
        assert_eq!(edit_distance("FORMAT", "FORMAT"), 0);
        assert_eq!(edit_distance("", "AS"), 2);
        assert_eq!(edit_distance("KAFAK", "KAFKA"), 1);
    }
}
