//! libpq connection strings, in both forms: `postgres://user:pw@host/db?k=v&...` and
//! `host=db user=u password='a b'`. Only what cdcql needs from them itself: the parameters
//! it handles (`sslmode`, `sslrootcert`), the string without them (for tokio-postgres, which
//! does not know them), and a form safe to print (every password replaced by `****`).

use std::ops::Range;

/// One `key=value` of a connection string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub key: String,
    /// Decoded: percent-escapes (URL) or quotes and backslashes (key=value) removed.
    pub value: String,
    /// The whole `key=value` as written.
    pub range: Range<usize>,
    /// The value as written.
    pub value_range: Range<usize>,
}

/// True for the URL form.
pub fn is_url(s: &str) -> bool {
    let s = s.trim_start();
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// The parameters of `s`: the query string of a URL, or every pair of a key=value string.
/// Malformed pieces are skipped: the driver reports them when it reads the string.
pub fn params(s: &str) -> Vec<Param> {
    if is_url(s) {
        url_params(s)
    } else {
        keyword_params(s)
    }
}

/// The value of `key`, the last one if given twice (as libpq reads it).
pub fn get(s: &str, key: &str) -> Option<String> {
    params(s)
        .into_iter()
        .rev()
        .find(|p| p.key == key)
        .map(|p| p.value)
}

/// `s` without the parameters named in `keys`.
pub fn without(s: &str, keys: &[&str]) -> String {
    let drop: Vec<Param> = params(s)
        .into_iter()
        .filter(|p| keys.contains(&p.key.as_str()))
        .collect();
    if drop.is_empty() {
        return s.to_string();
    }
    if is_url(s) {
        let Some(q) = s.find('?') else {
            return s.to_string();
        };
        let kept: Vec<&str> = s[q + 1..]
            .split('&')
            .scan(q + 1, |pos, piece| {
                let start = *pos;
                *pos += piece.len() + 1;
                Some((start, piece))
            })
            .filter(|(start, piece)| {
                !piece.is_empty() && !drop.iter().any(|p| p.range.start == *start)
            })
            .map(|(_, piece)| piece)
            .collect();
        if kept.is_empty() {
            s[..q].to_string()
        } else {
            format!("{}?{}", &s[..q], kept.join("&"))
        }
    } else {
        let mut out = String::with_capacity(s.len());
        let mut at = 0;
        for p in &drop {
            out.push_str(&s[at..p.range.start]);
            at = p.range.end;
        }
        out.push_str(&s[at..]);
        out.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// `s` with every password shown as `****`: the URL's `user:password@` and any `password`
/// parameter. Safe for logs, errors and `explain`.
pub fn redact(s: &str) -> String {
    let mut cuts: Vec<Range<usize>> = params(s)
        .into_iter()
        .filter(|p| p.key == "password")
        .map(|p| p.value_range)
        .collect();
    if let Some(r) = url_password(s) {
        cuts.push(r);
    }
    cuts.sort_by_key(|r| r.start);
    let mut out = String::with_capacity(s.len());
    let mut at = 0;
    for r in cuts {
        if r.start < at {
            continue;
        }
        out.push_str(&s[at..r.start]);
        out.push_str("****");
        at = r.end;
    }
    out.push_str(&s[at..]);
    out
}

/// Where the password of `scheme://user:password@host` is.
fn url_password(s: &str) -> Option<Range<usize>> {
    let scheme_end = s.find("://")? + 3;
    let rest = &s[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    // The last `@` ends the user info. A password may contain `@`, `/` or `?` only
    // percent-encoded, but people write them raw anyway: then the last `@` anywhere counts
    // (hiding too much is better than showing a password).
    let at = rest[..authority_end]
        .rfind('@')
        .or_else(|| rest.rfind('@'))?;
    let colon = rest[..at].find(':')?;
    Some(scheme_end + colon + 1..scheme_end + at)
}

fn url_params(s: &str) -> Vec<Param> {
    let Some(q) = s.find('?') else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut start = q + 1;
    for piece in s[q + 1..].split('&') {
        if let Some((k, v)) = piece.split_once('=') {
            let value_start = start + k.len() + 1;
            out.push(Param {
                key: percent_decode(k),
                value: percent_decode(v),
                range: start..start + piece.len(),
                value_range: value_start..value_start + v.len(),
            });
        }
        start += piece.len() + 1;
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `key = value` pairs; a value is a word or a single-quoted string with `\'` and `\\`.
fn keyword_params(s: &str) -> Vec<Param> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let skip_ws = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    loop {
        i = skip_ws(i);
        if i >= b.len() {
            break;
        }
        let start = i;
        while i < b.len() && b[i] != b'=' && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = &s[start..i];
        i = skip_ws(i);
        if i >= b.len() || b[i] != b'=' {
            // Not a pair: skip the word; the driver will complain about it.
            continue;
        }
        i = skip_ws(i + 1);
        let value_start = i;
        let mut value = Vec::new();
        if i < b.len() && b[i] == b'\'' {
            i += 1;
            while i < b.len() && b[i] != b'\'' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                value.push(b[i]);
                i += 1;
            }
            i = (i + 1).min(b.len());
        } else {
            while i < b.len() && !b[i].is_ascii_whitespace() {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                value.push(b[i]);
                i += 1;
            }
        }
        out.push(Param {
            key: key.to_string(),
            value: String::from_utf8_lossy(&value).into_owned(),
            range: start..i,
            value_range: value_start..i,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parameters() {
        let url = "postgres://u:p@db:5432/shop?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem&application_name=x";
        assert_eq!(get(url, "sslmode").as_deref(), Some("verify-full"));
        assert_eq!(get(url, "sslrootcert").as_deref(), Some("/tmp/ca.pem"));
        assert_eq!(
            without(url, &["sslmode", "sslrootcert"]),
            "postgres://u:p@db:5432/shop?application_name=x"
        );
        assert_eq!(
            without(
                "postgres://db/shop?sslmode=require",
                &["sslmode", "sslrootcert"]
            ),
            "postgres://db/shop"
        );
        assert_eq!(
            without("postgres://db/shop", &["sslmode"]),
            "postgres://db/shop"
        );
    }

    #[test]
    fn keyword_parameters() {
        let s = "host=db  sslmode = verify-ca sslrootcert='/a b/c\\'s.pem' user=u";
        assert_eq!(get(s, "sslmode").as_deref(), Some("verify-ca"));
        assert_eq!(get(s, "sslrootcert").as_deref(), Some("/a b/c's.pem"));
        assert_eq!(without(s, &["sslmode", "sslrootcert"]), "host=db user=u");
    }

    #[test]
    fn redacts_every_password() {
        assert_eq!(
            redact("postgres://bob:s3cret@db:5432/shop"),
            "postgres://bob:****@db:5432/shop"
        );
        assert_eq!(
            redact("postgres://bob:s3@cret@db/shop"),
            "postgres://bob:****@db/shop"
        );
        assert_eq!(
            redact("postgres://db/shop?user=bob&password=s3cret&sslmode=require"),
            "postgres://db/shop?user=bob&password=****&sslmode=require"
        );
        assert_eq!(
            redact("host=db password = 's3 cret' user=bob"),
            "host=db password = **** user=bob"
        );
        assert_eq!(
            redact("host=db password=s3\\ cret"),
            "host=db password=****"
        );
        assert_eq!(redact("postgres://bob@db/shop"), "postgres://bob@db/shop");
        assert_eq!(
            redact("postgres://bob:s/e?c@db/shop"),
            "postgres://bob:****@db/shop"
        );
        assert_eq!(redact("http://u:pw@r:8081"), "http://u:****@r:8081");
    }
}
