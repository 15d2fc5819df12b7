//! `${NAME}` and `${NAME:-default}` inside string literals, expanded from the environment.
//!
//! Input: the text between the quotes of a literal exactly as written (so `''` is still doubled);
//! output: the literal's value. Rules:
//! - `NAME` is `[A-Za-z_][A-Za-z0-9_]*`;
//! - `${NAME:-default}` uses `default` when `NAME` is unset *or empty* (as the shell does);
//!   the default is taken literally (it may be empty, and may not contain `${`);
//! - expanded values are never expanded again, so there is no recursion;
//! - `$${` is a literal `${`; any other `$` is just a dollar sign.
//!
//! Errors carry byte offsets relative to the input; they never include a variable's value,
//! which may be a secret.

/// The value of a string literal after expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expanded {
    pub value: String,
    /// True when at least one `${NAME}` was replaced by the value of a set variable.
    pub from_env: bool,
}

/// A problem with a `${...}`, at `start..end` of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandError {
    pub start: usize,
    pub end: usize,
    pub message: String,
    pub label: String,
    pub help: Option<String>,
}

const SYNTAX_HELP: &str = "write ${NAME} or ${NAME:-default}; write $${ for a literal ${";

/// Expands `raw` (the text between the quotes, as written) and turns `''` into `'`.
pub fn expand(raw: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Expanded, ExpandError> {
    let mut value = String::with_capacity(raw.len());
    let mut from_env = false;
    let mut i = 0;
    while i < raw.len() {
        let rest = &raw[i..];
        if rest.starts_with("''") {
            value.push('\'');
            i += 2;
        } else if rest.starts_with("$${") {
            value.push_str("${");
            i += 3;
        } else if rest.starts_with("${") {
            let var = reference(raw, i)?;
            match env(var.name).filter(|v| !(var.default.is_some() && v.is_empty())) {
                Some(v) => {
                    value.push_str(&v);
                    from_env = true;
                }
                None => match var.default {
                    Some(default) => value.push_str(&default),
                    None => {
                        return Err(ExpandError {
                            start: i,
                            end: var.end,
                            message: format!("environment variable `{}` is not set", var.name),
                            label: format!("`{}` is not set", var.name),
                            help: Some(format!(
                                "set {0} in the environment, or give a default: ${{{0}:-...}}",
                                var.name
                            )),
                        })
                    }
                },
            }
            i = var.end;
        } else {
            let c = rest.chars().next().expect("i < raw.len()");
            value.push(c);
            i += c.len_utf8();
        }
    }
    Ok(Expanded { value, from_env })
}

/// One `${...}` of the input.
struct Reference<'a> {
    name: &'a str,
    /// The default after `:-`, with `''` already turned into `'`.
    default: Option<String>,
    /// Offset just after the closing `}`.
    end: usize,
}

/// Reads the `${...}` that starts at `start` (where `raw[start..]` begins with `${`).
fn reference(raw: &str, start: usize) -> Result<Reference<'_>, ExpandError> {
    let error = |s: usize, e: usize, message: &str, label: &str| ExpandError {
        start: s,
        end: e,
        message: message.to_string(),
        label: label.to_string(),
        help: Some(SYNTAX_HELP.to_string()),
    };
    let bytes = raw.as_bytes();
    let name_start = start + 2;
    let mut name_end = name_start;
    while name_end < bytes.len()
        && (bytes[name_end] == b'_'
            || bytes[name_end].is_ascii_alphabetic()
            || (name_end > name_start && bytes[name_end].is_ascii_digit()))
    {
        name_end += 1;
    }
    let name = &raw[name_start..name_end];
    // Where the `${...}` ends, for errors that cover all of it.
    let close = raw[start..].find('}').map(|p| start + p + 1);
    if name.is_empty() {
        let end = close.unwrap_or(name_start);
        return Err(error(
            start,
            end,
            "expected a variable name after `${`",
            "expected a name such as PG_URL",
        ));
    }
    let rest = &raw[name_end..];
    if rest.starts_with('}') {
        return Ok(Reference {
            name,
            default: None,
            end: name_end + 1,
        });
    }
    if let Some(after) = rest.strip_prefix(":-") {
        let default_start = name_end + 2;
        let Some(len) = after.find('}') else {
            return Err(error(
                start,
                raw.len(),
                "unterminated `${`: expected `}`",
                "this `${` is never closed",
            ));
        };
        let default = &raw[default_start..default_start + len];
        if let Some(nested) = default.find("${") {
            let s = default_start + nested;
            return Err(ExpandError {
                help: Some(
                    "defaults are taken literally; a `${` inside a default is not expanded".into(),
                ),
                ..error(s, s + 2, "`${` inside a default value", "not allowed here")
            });
        }
        return Ok(Reference {
            name,
            default: Some(default.replace("''", "'")),
            end: default_start + len + 1,
        });
    }
    if rest.is_empty() {
        return Err(error(
            start,
            raw.len(),
            "unterminated `${`: expected `}`",
            "this `${` is never closed",
        ));
    }
    let bad = rest.chars().next().expect("rest is not empty");
    Err(ExpandError {
        help: Some(format!(
            "write ${{{name}}} or ${{{name}:-default}}; names contain only letters, digits and `_`"
        )),
        ..error(
            name_end,
            name_end + bad.len_utf8(),
            &format!("expected `}}` or `:-default` after `${{{name}`"),
            &format!("unexpected `{bad}`"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SECRET" => Some("hunter2".into()),
            "EMPTY" => Some(String::new()),
            "NESTED" => Some("${SECRET}".into()),
            _ => None,
        }
    }

    fn ok(raw: &str) -> (String, bool) {
        let e = expand(raw, &env).unwrap_or_else(|e| panic!("{raw}: {e:?}"));
        (e.value, e.from_env)
    }

    fn err(raw: &str) -> ExpandError {
        expand(raw, &env).expect_err(raw)
    }

    #[test]
    fn plain_text_and_quotes() {
        assert_eq!(ok(""), ("".into(), false));
        assert_eq!(ok("abc"), ("abc".into(), false));
        assert_eq!(ok("it''s"), ("it's".into(), false));
        assert_eq!(
            ok("price: $5, $ {x} $"),
            ("price: $5, $ {x} $".into(), false)
        );
        assert_eq!(ok("é${SECRET}ü"), ("éhunter2ü".into(), true));
    }

    #[test]
    fn variables() {
        assert_eq!(ok("${SECRET}"), ("hunter2".into(), true));
        assert_eq!(ok("pw=${SECRET}!"), ("pw=hunter2!".into(), true));
        assert_eq!(ok("${EMPTY}"), ("".into(), true));
    }

    #[test]
    fn defaults() {
        assert_eq!(ok("${UNSET:-x}"), ("x".into(), false));
        assert_eq!(ok("${UNSET:-}"), ("".into(), false));
        assert_eq!(ok("${SECRET:-x}"), ("hunter2".into(), true));
        // Like the shell: an empty variable takes the default.
        assert_eq!(ok("${EMPTY:-x}"), ("x".into(), false));
        assert_eq!(
            ok("${PG_URL:-postgres://u@h:5432/db?x=1}"),
            ("postgres://u@h:5432/db?x=1".into(), false)
        );
        assert_eq!(ok("${UNSET:-it''s}"), ("it's".into(), false));
        assert_eq!(ok("a${UNSET:-b}c${SECRET}"), ("abchunter2".into(), true));
    }

    #[test]
    fn no_recursion() {
        assert_eq!(ok("${NESTED}"), ("${SECRET}".into(), true));
        assert_eq!(ok("$${SECRET}"), ("${SECRET}".into(), false));
        assert_eq!(ok("$$${SECRET}"), ("$${SECRET}".into(), false));
    }

    #[test]
    fn unset() {
        let e = err("x${PG_URL}y");
        assert_eq!((e.start, e.end), (1, 10));
        assert_eq!(e.message, "environment variable `PG_URL` is not set");
        assert_eq!(
            e.help.as_deref(),
            Some("set PG_URL in the environment, or give a default: ${PG_URL:-...}")
        );
    }

    #[test]
    fn malformed() {
        let e = err("a${");
        assert_eq!((e.start, e.end), (1, 3));
        assert!(e.message.contains("variable name"), "{e:?}");

        let e = err("${}");
        assert_eq!((e.start, e.end), (0, 3));

        let e = err("${1A}");
        assert!(e.message.contains("variable name"), "{e:?}");

        let e = err("${ABC");
        assert_eq!((e.start, e.end), (0, 5));
        assert!(e.message.contains("unterminated"), "{e:?}");

        let e = err("${ABC:-def");
        assert!(e.message.contains("unterminated"), "{e:?}");

        let e = err("${ABC-def}");
        assert_eq!((e.start, e.end), (5, 6));
        assert!(e.message.contains("`:-default`"), "{e:?}");

        let e = err("${A.B}");
        assert_eq!((e.start, e.end), (3, 4));

        let e = err("${A:-${B}}");
        assert_eq!((e.start, e.end), (5, 7));

        let e = err("${Aé}");
        assert_eq!((e.start, e.end), (3, 5));
    }

    #[test]
    fn errors_never_show_values() {
        let e = err("${SECRET}${UNSET}");
        assert!(!format!("{e:?}").contains("hunter2"));
    }
}
