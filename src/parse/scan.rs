//! A small SQL-aware tokenizer over the file text, used around the pest grammar: to describe
//! the token an error was found at, to find where the previous token ended (where a missing
//! `;` belongs), to trim comments off a query, and to spot a string or comment that is never
//! closed (pest can only say that what follows is unexpected).
//!
//! It knows the same lexical rules as the grammar: `'...'` with `''`, `E'...'` with backslash
//! escapes, `"..."` with `""`, `$tag$...$tag$`, `-- ...` and nested `/* ... */`.

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokKind {
    /// A keyword, identifier or number.
    Word,
    /// `'...'` (or `E'...'`).
    String,
    /// `"..."`.
    QuotedIdent,
    /// `$tag$...$tag$`.
    DollarString,
    /// Any other single character.
    Punct,
    /// A literal or comment that runs to the end of the text without being closed.
    Unclosed(Unclosed),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unclosed {
    String,
    QuotedIdent,
    DollarString,
    Comment,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tok {
    pub start: usize,
    pub end: usize,
    pub kind: TokKind,
}

fn is_word_start(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || !c.is_ascii()
}

fn is_word_char(c: char) -> bool {
    is_word_start(c) || c == '$'
}

/// Skips whitespace and comments from `pos`. An unclosed block comment is not skipped, so that
/// `next_token` reports it.
pub fn skip_trivia(text: &str, mut pos: usize) -> usize {
    loop {
        let rest = &text[pos..];
        let Some(c) = rest.chars().next() else {
            return pos;
        };
        if matches!(c, ' ' | '\t' | '\r' | '\n' | '\u{0C}' | '\u{FEFF}') {
            pos += c.len_utf8();
        } else if rest.starts_with("--") {
            pos += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            match block_comment_end(text, pos) {
                Some(end) => pos = end,
                None => return pos,
            }
        } else {
            return pos;
        }
    }
}

/// The end of the (nested) block comment starting at `pos`, if it is closed.
fn block_comment_end(text: &str, pos: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = pos;
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// The end of a quoted token starting at `pos` with `quote`, where a doubled quote is an
/// escaped one (and, when `backslash`, `\x` is too).
fn quoted_end(text: &str, pos: usize, quote: u8, backslash: bool) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = pos + 1;
    while i < bytes.len() {
        if backslash && bytes[i] == b'\\' {
            i += 2;
        } else if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return Some(i + 1);
            }
        } else {
            i += 1;
        }
    }
    None
}

/// The length of a `$tag$` opener at `pos`, if there is one.
fn dollar_tag_len(text: &str, pos: usize) -> Option<usize> {
    let rest = &text.as_bytes()[pos..];
    if rest.first() != Some(&b'$') {
        return None;
    }
    let mut i = 1;
    if rest
        .get(1)
        .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
    {
        while rest
            .get(i)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            i += 1;
        }
    }
    (rest.get(i) == Some(&b'$')).then_some(i + 1)
}

/// The token starting at or after `pos` (after whitespace and comments), or `None` at the end.
pub fn next_token(text: &str, pos: usize) -> Option<Tok> {
    let start = skip_trivia(text, pos);
    let rest = &text[start..];
    let c = rest.chars().next()?;
    let tok = |end: usize, kind: TokKind| Some(Tok { start, end, kind });
    let unclosed = |what: Unclosed| tok(text.len(), TokKind::Unclosed(what));
    if rest.starts_with("/*") {
        // skip_trivia stops at a block comment only when it is never closed.
        return unclosed(Unclosed::Comment);
    }
    let bytes = rest.as_bytes();
    if (c == 'e' || c == 'E') && bytes.get(1) == Some(&b'\'') {
        return match quoted_end(text, start + 1, b'\'', true) {
            Some(end) => tok(end, TokKind::String),
            None => unclosed(Unclosed::String),
        };
    }
    if is_word_start(c) {
        let len = rest.find(|c: char| !is_word_char(c)).unwrap_or(rest.len());
        return tok(start + len, TokKind::Word);
    }
    match c {
        '\'' => match quoted_end(text, start, b'\'', false) {
            Some(end) => tok(end, TokKind::String),
            None => unclosed(Unclosed::String),
        },
        '"' => match quoted_end(text, start, b'"', false) {
            Some(end) => tok(end, TokKind::QuotedIdent),
            None => unclosed(Unclosed::QuotedIdent),
        },
        '$' => match dollar_tag_len(text, start) {
            Some(len) => {
                let tag = &rest[..len];
                match rest[len..].find(tag) {
                    Some(p) => tok(start + len + p + len, TokKind::DollarString),
                    None => unclosed(Unclosed::DollarString),
                }
            }
            None => tok(start + 1, TokKind::Punct),
        },
        _ => tok(start + c.len_utf8(), TokKind::Punct),
    }
}

/// The tokens that start in `from..to`.
pub fn tokens(text: &str, from: usize, to: usize) -> impl Iterator<Item = Tok> + '_ {
    let mut pos = from;
    std::iter::from_fn(move || {
        let tok = next_token(text, pos).filter(|t| t.start < to)?;
        pos = tok.end;
        Some(tok)
    })
}

/// The end of the last token that starts in `from..to` (so trailing comments and whitespace are
/// left out), or `from` when there is none.
pub fn last_token_end(text: &str, from: usize, to: usize) -> usize {
    tokens(text, from, to)
        .last()
        .map_or(from, |t| t.end.min(to))
}

/// The first literal or comment in `from..=to` that is never closed.
pub fn first_unclosed(text: &str, from: usize, to: usize) -> Option<(usize, Unclosed)> {
    tokens(text, from, to.saturating_add(1)).find_map(|t| match t.kind {
        TokKind::Unclosed(what) => Some((t.start, what)),
        _ => None,
    })
}

/// The first string or quoted name in `from..to` that spans the start of another statement
/// (a line beginning with CREATE PIPELINE or CREATE CONNECTION): its closing quote is almost
/// certainly missing, and the quote that closed it belongs to a later statement.
pub fn first_runaway(text: &str, from: usize, to: usize) -> Option<(usize, Unclosed)> {
    tokens(text, from, to).find_map(|t| {
        let what = match t.kind {
            TokKind::String => Unclosed::String,
            TokKind::QuotedIdent => Unclosed::QuotedIdent,
            _ => return None,
        };
        text[t.start..t.end]
            .lines()
            .skip(1)
            .any(starts_statement)
            .then_some((t.start, what))
    })
}

/// `line` starts with CREATE PIPELINE or CREATE CONNECTION.
fn starts_statement(line: &str) -> bool {
    let mut words = line.split_whitespace();
    words
        .next()
        .is_some_and(|w| w.eq_ignore_ascii_case("create"))
        && words.next().is_some_and(|w| {
            let w = w.trim_end_matches(|c: char| !c.is_ascii_alphabetic());
            w.eq_ignore_ascii_case("pipeline") || w.eq_ignore_ascii_case("connection")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(&str, TokKind)> {
        tokens(text, 0, text.len())
            .map(|t| (&text[t.start..t.end], t.kind))
            .collect()
    }

    #[test]
    fn tokenizes_sql() {
        use TokKind::*;
        assert_eq!(
            kinds("a$b, 'x''y' E'\\'' \"q\"\"\" $t$ ; $t$ $1 -- c\n /* /* n */ */ é;"),
            vec![
                ("a$b", Word),
                (",", Punct),
                ("'x''y'", String),
                ("E'\\''", String),
                ("\"q\"\"\"", QuotedIdent),
                ("$t$ ; $t$", DollarString),
                ("$", Punct),
                ("1", Word),
                ("é", Word),
                (";", Punct),
            ]
        );
    }

    #[test]
    fn unclosed() {
        assert_eq!(first_unclosed("a 'b", 0, 4), Some((2, Unclosed::String)));
        assert_eq!(
            first_unclosed("a \"b", 0, 4),
            Some((2, Unclosed::QuotedIdent))
        );
        assert_eq!(
            first_unclosed("a /* /* */", 0, 4),
            Some((2, Unclosed::Comment))
        );
        assert_eq!(
            first_unclosed("$$ x", 0, 4),
            Some((0, Unclosed::DollarString))
        );
        assert_eq!(first_unclosed("a 'b' c 'd", 0, 5), None);
    }

    #[test]
    fn runaway() {
        let text = "a = 'x);\n  create Pipeline b (y = '";
        assert_eq!(
            first_runaway(text, 0, text.len()),
            Some((4, Unclosed::String))
        );
        assert_eq!(first_runaway("'a\nb'", 0, 6), None);
        assert_eq!(first_runaway("'a\ncreated pipelines'", 0, 22), None);
    }

    #[test]
    fn last_token() {
        let text = "SELECT 1 -- c\n  /* d */ ;";
        assert_eq!(last_token_end(text, 0, text.len() - 1), 8);
        assert_eq!(last_token_end(text, 9, text.len() - 1), 9);
    }
}
