//! What the REPL needs to know about typed text before the parser sees it: where statements end
//! (a `;` outside strings, quoted names, comments and parentheses), whether the input is
//! complete, and the words before the cursor (for completion).
//!
//! It follows the lexical rules of the grammar (`grammar/cdcql.pest`) and of PostgreSQL:
//! `'...'` with `''`, `E'...'` with backslash escapes, `"..."` with `""`, `$tag$...$tag$`,
//! `-- ...` and nested `/* ... */`.

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A keyword, identifier or number.
    Word,
    /// `'...'` or `$tag$...$tag$`.
    String,
    /// `"..."`.
    QuotedIdent,
    Comment,
    /// Any other single character.
    Punct,
    /// A string, quoted name or comment that runs to the end of the text.
    Unclosed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tok {
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
}

fn is_word_start(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// Every token of `text`, whitespace skipped.
pub fn tokens(text: &str) -> Vec<Tok> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let c = text[i..].chars().next().unwrap_or(' ');
        let start = i;
        let (end, kind) = if c.is_whitespace() {
            i += c.len_utf8();
            continue;
        } else if text[i..].starts_with("--") {
            (
                text[i..].find('\n').map_or(text.len(), |n| i + n),
                Kind::Comment,
            )
        } else if text[i..].starts_with("/*") {
            block_comment(text, i)
        } else if c == '\'' {
            quoted(b, i + 1, b'\'', false, Kind::String)
        } else if (c == 'E' || c == 'e') && b.get(i + 1) == Some(&b'\'') {
            quoted(b, i + 2, b'\'', true, Kind::String)
        } else if c == '"' {
            quoted(b, i + 1, b'"', false, Kind::QuotedIdent)
        } else if c == '$' {
            match dollar_tag(text, i) {
                Some(tag) => match text[i + tag.len()..].find(tag) {
                    Some(n) => (i + tag.len() + n + tag.len(), Kind::String),
                    None => (text.len(), Kind::Unclosed),
                },
                None => (i + 1, Kind::Punct),
            }
        } else if is_word_start(c) {
            let len = text[i..]
                .char_indices()
                .find(|&(_, c)| !is_word_char(c))
                .map_or(text.len() - i, |(n, _)| n);
            (i + len, Kind::Word)
        } else {
            (i + c.len_utf8(), Kind::Punct)
        };
        out.push(Tok { start, end, kind });
        i = end;
    }
    out
}

/// `$tag$` at `i`, if one starts there.
fn dollar_tag(text: &str, i: usize) -> Option<&str> {
    let rest = &text[i + 1..];
    let len = rest
        .char_indices()
        .find(|&(_, c)| !(c.is_alphanumeric() || c == '_'))
        .map(|(n, _)| n)?;
    if rest[len..].starts_with('$') && !rest[..len].starts_with(|c: char| c.is_ascii_digit()) {
        Some(&text[i..i + len + 2])
    } else {
        None
    }
}

fn block_comment(text: &str, start: usize) -> (usize, Kind) {
    let mut depth = 0;
    let mut i = start;
    while i < text.len() {
        if text[i..].starts_with("/*") {
            depth += 1;
            i += 2;
        } else if text[i..].starts_with("*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return (i, Kind::Comment);
            }
        } else {
            i += text[i..].chars().next().map_or(1, char::len_utf8);
        }
    }
    (text.len(), Kind::Unclosed)
}

/// A quoted token whose body starts at `i`; the quote is doubled to escape it (and with
/// `backslash`, `\` escapes the next byte).
fn quoted(b: &[u8], mut i: usize, quote: u8, backslash: bool, kind: Kind) -> (usize, Kind) {
    while i < b.len() {
        if backslash && b[i] == b'\\' {
            i += 2;
        } else if b[i] == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return (i + 1, kind);
            }
        } else {
            i += 1;
        }
    }
    (b.len(), Kind::Unclosed)
}

/// The statements of `text`: byte ranges from the first token to the ending `;` included.
/// `rest` is where text after the last complete statement starts (it may hold only comments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub statements: Vec<(usize, usize)>,
    /// Start of an unfinished statement, if any.
    pub unfinished: Option<usize>,
}

/// Splits `text` into statements. A line whose statement starts with `\` is a command of its
/// own and ends at the end of the line.
pub fn split(text: &str) -> Split {
    let toks = tokens(text);
    let mut statements = Vec::new();
    let mut start: Option<usize> = None;
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        let t = toks[i];
        if t.kind == Kind::Comment {
            i += 1;
            continue;
        }
        let s = &text[t.start..t.end];
        if start.is_none() && s == "\\" {
            // A backslash command runs to the end of its line.
            let end = text[t.start..]
                .find('\n')
                .map_or(text.len(), |n| t.start + n);
            statements.push((t.start, end));
            while i < toks.len() && toks[i].start < end {
                i += 1;
            }
            continue;
        }
        if start.is_none() && s == ";" {
            i += 1;
            continue;
        }
        let st = *start.get_or_insert(t.start);
        match s {
            "(" if t.kind == Kind::Punct => depth += 1,
            ")" if t.kind == Kind::Punct => depth = depth.saturating_sub(1),
            ";" if t.kind == Kind::Punct && depth == 0 => {
                statements.push((st, t.end));
                start = None;
            }
            _ => {}
        }
        i += 1;
    }
    Split {
        statements,
        unfinished: start,
    }
}

/// True when nothing in `text` is unfinished (a statement without its `;`, an open string or
/// comment): Enter then runs what is there, if anything.
pub fn is_complete(text: &str) -> bool {
    let unclosed = tokens(text)
        .last()
        .is_some_and(|t| t.kind == Kind::Unclosed);
    split(text).unfinished.is_none() && !unclosed
}

/// The bare words that end the REPL without a `;`, as in psql.
pub fn is_quit_word(text: &str) -> bool {
    matches!(
        text.trim()
            .trim_end_matches(';')
            .trim()
            .to_ascii_lowercase()
            .as_str(),
        "quit" | "exit"
    )
}

/// An identifier as SQL reads it: unquoted names fold to lower case, `"Quoted"` keeps its case.
pub fn ident_value(text: &str) -> String {
    match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => text.to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &str) -> Vec<&str> {
        split(text)
            .statements
            .iter()
            .map(|&(a, b)| &text[a..b])
            .collect()
    }

    #[test]
    fn splits_at_top_level_semicolons() {
        let text = "SHOW PIPELINES; CREATE PIPELINE p FROM a INTO b TOPIC 'x;y' FORMAT JSON \
                    ENVELOPE DEBEZIUM AS SELECT \"a;b\", $$;$$ FROM t -- ;\n WHERE (x = ';');";
        let got = parts(text);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], "SHOW PIPELINES;");
        assert!(got[1].starts_with("CREATE") && got[1].ends_with("(x = ';');"));
    }

    #[test]
    fn completeness() {
        assert!(is_complete("SHOW PIPELINES;"));
        assert!(is_complete("SHOW PIPELINES; -- done"));
        assert!(is_complete(""));
        assert!(is_complete("\\q"));
        assert!(is_complete("\\help"));
        assert!(!is_complete("CREATE PIPELINE p"));
        assert!(!is_complete("CREATE PIPELINE p TOPIC 'a;"));
        assert!(!is_complete("SELECT (1;"));
        assert!(!is_complete("SHOW PIPELINES; /* open"));
        assert!(!is_complete("SHOW PIPELINES; SHOW"));
        assert!(is_complete("-- only a comment"));
        assert!(is_complete("E'it\\'s;';"));
    }

    #[test]
    fn backslash_commands_end_at_the_line() {
        assert_eq!(
            parts("\\q\nSHOW PIPELINES;"),
            vec!["\\q", "SHOW PIPELINES;"]
        );
    }

    #[test]
    fn identifiers() {
        assert_eq!(ident_value("Orders"), "orders");
        assert_eq!(ident_value("\"Or\"\"ders\""), "Or\"ders");
    }
}
