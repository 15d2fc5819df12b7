//! Pest pairs of one statement → AST. The leaf rules are atomic, so names and literals are
//! decoded here from their text: identifiers folded or unquoted, strings unescaped and
//! `${VAR}`-expanded (expand.rs), the SELECT handed to sqlparser (query.rs). Also the checks
//! the grammar cannot express: duplicate options, empty quoted names, the `;` after a query.

use std::collections::HashMap;

use pest::iterators::Pair;

use super::expand::expand;
use super::grammar::Rule;
use super::query::parse_select;
use super::scan;
use super::*;

/// Builds the statement `pair` found in `file.text[base..]`; returns it and the offset where
/// it ends.
pub fn statement(
    file: &SourceFile,
    base: usize,
    pair: Pair<'_, Rule>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Statement, usize), ParseError> {
    let b = Builder { file, base, env };
    let end = b.span(&pair).end;
    let stmt = match pair.as_rule() {
        Rule::create_connection => Statement::CreateConnection(b.connection(pair)?),
        Rule::create_pipeline => Statement::CreatePipeline(b.pipeline(pair)?),
        other => return Err(b.bug(&pair, &format!("unexpected statement rule {other:?}"))),
    };
    Ok((stmt, end))
}

struct Builder<'a> {
    file: &'a SourceFile,
    /// Where the text pest parsed starts in the file.
    base: usize,
    env: &'a dyn Fn(&str) -> Option<String>,
}

type Result<T, E = ParseError> = std::result::Result<T, E>;

impl Builder<'_> {
    fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let s = pair.as_span();
        Span::new(self.base + s.start(), self.base + s.end())
    }

    fn text(&self) -> &str {
        &self.file.text
    }

    /// The grammar and this file disagree: never the user's fault.
    fn bug(&self, pair: &Pair<'_, Rule>, what: &str) -> ParseError {
        ParseError::new(
            self.file,
            self.span(pair),
            format!("internal error while parsing: {what}"),
            "here",
            Some("this is a bug in cdcql, please report it".to_string()),
        )
    }

    fn connection(&self, pair: Pair<'_, Rule>) -> Result<CreateConnection> {
        let span = self.span(&pair);
        let mut name = None;
        let mut kind = None;
        let mut options = Vec::new();
        for p in pair.clone().into_inner() {
            match p.as_rule() {
                Rule::connection_name => name = Some(self.ident(&p)?),
                Rule::kw_postgres => kind = Some((ConnectionKind::Postgres, self.span(&p))),
                Rule::kw_kafka => kind = Some((ConnectionKind::Kafka, self.span(&p))),
                Rule::option_list => options = self.options(p)?,
                _ => {}
            }
        }
        let (Some(name), Some((kind, kind_span))) = (name, kind) else {
            return Err(self.bug(&pair, "CREATE CONNECTION without a name or type"));
        };
        Ok(CreateConnection {
            name,
            kind,
            kind_span,
            options,
            span,
        })
    }

    fn pipeline(&self, pair: Pair<'_, Rule>) -> Result<CreatePipeline> {
        let start = self.span(&pair).start;
        let mut end = self.span(&pair).end;
        let mut name = None;
        let mut from = None;
        let mut into = None;
        let mut topic = None;
        let mut key = None;
        let mut format = None;
        let mut envelope = None;
        let mut options = Vec::new();
        let mut body = None;
        for p in pair.clone().into_inner() {
            match p.as_rule() {
                Rule::pipeline_name => name = Some(self.ident(&p)?),
                Rule::from_connection => from = Some(self.ident(&p)?),
                Rule::into_connection => into = Some(self.ident(&p)?),
                Rule::topic => topic = Some(self.string(&p)?),
                Rule::key_clause => key = Some(self.names(p, "column", "KEY")?),
                Rule::format_clause => {
                    format = self.choice(
                        p,
                        &[(Rule::kw_json, Format::Json), (Rule::kw_avro, Format::Avro)],
                    )
                }
                Rule::envelope_clause => {
                    envelope = self.choice(
                        p,
                        &[
                            (Rule::kw_debezium, EnvelopeKind::Debezium),
                            (Rule::kw_native, EnvelopeKind::Native),
                        ],
                    )
                }
                Rule::with_clause => {
                    if let Some(list) = p.into_inner().find(|p| p.as_rule() == Rule::option_list) {
                        options = self.options(list)?;
                    }
                }
                Rule::tables_body => body = Some(PipelineBody::Tables(self.tables(p)?)),
                Rule::as_body => {
                    let pipeline = name.as_ref().map_or("", |n: &Ident| n.value.as_str());
                    let (queries, body_end) = self.queries(p, pipeline)?;
                    body = Some(PipelineBody::Queries(queries));
                    end = body_end;
                }
                _ => {}
            }
        }
        match (name, from, into, topic, format, envelope, body) {
            (
                Some(name),
                Some(from),
                Some(into),
                Some(topic),
                Some((format, format_span)),
                Some((envelope, envelope_span)),
                Some(body),
            ) => Ok(CreatePipeline {
                name,
                from,
                into,
                topic,
                key,
                format,
                format_span,
                envelope,
                envelope_span,
                options,
                body,
                span: Span::new(start, end),
            }),
            _ => Err(self.bug(&pair, "CREATE PIPELINE with a clause missing")),
        }
    }

    /// `FORMAT JSON` → (Json, span of `FORMAT JSON`).
    fn choice<T: Copy>(&self, pair: Pair<'_, Rule>, choices: &[(Rule, T)]) -> Option<(T, Span)> {
        let span = self.span(&pair);
        pair.into_inner().find_map(|p| {
            choices
                .iter()
                .find(|(r, _)| *r == p.as_rule())
                .map(|(_, v)| (*v, span))
        })
    }

    /// The body after AS: the queries, and where the statement ends (after its `;`).
    fn queries(&self, pair: Pair<'_, Rule>, pipeline: &str) -> Result<(Vec<SelectQuery>, usize)> {
        let mut queries = Vec::new();
        let mut last_end = self.span(&pair).end;
        let mut semi = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::query_text => {
                    let s = self.span(&p);
                    queries.push(parse_select(self.file, s.start, s.end, pipeline)?);
                    last_end = s.end;
                }
                Rule::query_list => {
                    for q in p.into_inner() {
                        let s = self.span(&q);
                        match q.as_rule() {
                            Rule::query_inner => {
                                queries.push(parse_select(self.file, s.start, s.end, pipeline)?)
                            }
                            Rule::rparen => last_end = s.end,
                            _ => {}
                        }
                    }
                }
                Rule::semi => semi = Some(self.span(&p)),
                _ => {}
            }
        }
        match semi {
            Some(s) => Ok((queries, s.end)),
            None => {
                let at = scan::last_token_end(self.text(), self.base, last_end);
                Err(ParseError::new(
                    self.file,
                    Span::new(at, at),
                    "expected `;` at the end of the statement",
                    "add `;` here",
                    None,
                ))
            }
        }
    }

    fn tables(&self, pair: Pair<'_, Rule>) -> Result<Vec<ObjectName>> {
        let mut tables: Vec<ObjectName> = Vec::new();
        for p in pair
            .into_inner()
            .filter(|p| p.as_rule() == Rule::table_name)
        {
            let table = self.object_name(&p)?;
            let same = |t: &&ObjectName| {
                t.name.value == table.name.value
                    && t.schema.as_ref().map(|s| &s.value)
                        == table.schema.as_ref().map(|s| &s.value)
            };
            if let Some(first) = tables.iter().find(same) {
                let shown = &self.text()[table.span.start..table.span.end];
                return Err(ParseError::new(
                    self.file,
                    table.span,
                    format!("table `{shown}` is listed twice in TABLES"),
                    "listed again here",
                    Some(format!(
                        "it is first listed on line {}; remove one of them",
                        self.line_of(first.span.start)
                    )),
                ));
            }
            tables.push(table);
        }
        Ok(tables)
    }

    /// The names of `KEY (a, b)`.
    fn names(&self, pair: Pair<'_, Rule>, what: &str, clause: &str) -> Result<Vec<Ident>> {
        let mut names: Vec<Ident> = Vec::new();
        for p in pair
            .into_inner()
            .filter(|p| p.as_rule() == Rule::key_column)
        {
            let name = self.ident(&p)?;
            if let Some(first) = names.iter().find(|n| n.value == name.value) {
                return Err(ParseError::new(
                    self.file,
                    name.span,
                    format!("{what} `{}` is listed twice in {clause}", name.value),
                    "listed again here",
                    Some(format!(
                        "it is first listed on line {}; remove one of them",
                        self.line_of(first.span.start)
                    )),
                ));
            }
            names.push(name);
        }
        Ok(names)
    }

    fn options(&self, pair: Pair<'_, Rule>) -> Result<Vec<OptionItem>> {
        let mut items: Vec<OptionItem> = Vec::new();
        let mut seen: HashMap<String, Span> = HashMap::new();
        for p in pair.into_inner().filter(|p| p.as_rule() == Rule::option) {
            let item = self.option(p)?;
            if let Some(first) = seen.get(&item.key) {
                return Err(ParseError::new(
                    self.file,
                    item.key_span,
                    format!("option `{}` is set twice", item.key),
                    "set again here",
                    Some(format!(
                        "it is first set on line {}; remove one of them",
                        self.line_of(first.start)
                    )),
                ));
            }
            seen.insert(item.key.clone(), item.key_span);
            items.push(item);
        }
        Ok(items)
    }

    fn option(&self, pair: Pair<'_, Rule>) -> Result<OptionItem> {
        let span = self.span(&pair);
        let mut key = None;
        let mut value = None;
        for p in pair.clone().into_inner() {
            match p.as_rule() {
                Rule::option_key => key = Some(self.option_key(&p)?),
                Rule::string_value => value = Some(OptionValue::String(self.string(&p)?)),
                Rule::number => {
                    value = Some(OptionValue::Number {
                        text: p.as_str().to_string(),
                        span: self.span(&p),
                    })
                }
                Rule::boolean => {
                    value = Some(OptionValue::Bool {
                        value: p.as_str().eq_ignore_ascii_case("true"),
                        span: self.span(&p),
                    })
                }
                Rule::word => value = Some(OptionValue::Word(self.ident(&p)?)),
                _ => {}
            }
        }
        let (Some((key, key_quoted, key_span)), Some(value)) = (key, value) else {
            return Err(self.bug(&pair, "option without a key or value"));
        };
        Ok(OptionItem {
            key,
            key_quoted,
            key_span,
            value,
            span,
        })
    }

    /// An option name: an identifier, or a quoted name taken literally ('compression.type').
    fn option_key(&self, pair: &Pair<'_, Rule>) -> Result<(String, bool, Span)> {
        let span = self.span(pair);
        let s = pair.as_str();
        if let Some(inner) = s.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
            if inner.is_empty() {
                return Err(ParseError::new(
                    self.file,
                    span,
                    "empty option name",
                    "an option needs a name",
                    None,
                ));
            }
            return Ok((inner.replace("''", "'"), true, span));
        }
        let ident = self.ident(pair)?;
        Ok((ident.value, ident.quoted, span))
    }

    fn string(&self, pair: &Pair<'_, Rule>) -> Result<StringLit> {
        let span = self.span(pair);
        let s = pair.as_str();
        let raw = s
            .strip_prefix('\'')
            .and_then(|s| s.strip_suffix('\''))
            .ok_or_else(|| self.bug(pair, "string literal without quotes"))?;
        let expanded = expand(raw, self.env).map_err(|e| {
            let start = span.start + 1;
            ParseError::new(
                self.file,
                Span::new(start + e.start, start + e.end),
                e.message,
                e.label,
                e.help,
            )
        })?;
        Ok(StringLit {
            raw: raw.to_string(),
            value: expanded.value,
            from_env: expanded.from_env,
            span,
        })
    }

    fn ident(&self, pair: &Pair<'_, Rule>) -> Result<Ident> {
        self.ident_at(pair.as_str(), self.span(pair).start)
    }

    /// Decodes an identifier written as `s` at offset `start`: `"..."` keeps its case (`""` is
    /// a quote), anything else is folded to lower case, as PostgreSQL does.
    fn ident_at(&self, s: &str, start: usize) -> Result<Ident> {
        let span = Span::new(start, start + s.len());
        if let Some(inner) = s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
            if inner.is_empty() {
                return Err(ParseError::new(
                    self.file,
                    span,
                    "empty quoted identifier",
                    "a name needs at least one character",
                    None,
                ));
            }
            return Ok(Ident {
                value: inner.replace("\"\"", "\""),
                quoted: true,
                span,
            });
        }
        Ok(Ident {
            value: s.to_ascii_lowercase(),
            quoted: false,
            span,
        })
    }

    /// `schema.table` or `table`.
    fn object_name(&self, pair: &Pair<'_, Rule>) -> Result<ObjectName> {
        let span = self.span(pair);
        let s = pair.as_str();
        let first_end = ident_end(s);
        let first = self.ident_at(&s[..first_end], span.start)?;
        match s[first_end..].strip_prefix('.') {
            Some(rest) => Ok(ObjectName {
                schema: Some(first),
                name: self.ident_at(rest, span.start + first_end + 1)?,
                span,
            }),
            None => Ok(ObjectName {
                schema: None,
                name: first,
                span,
            }),
        }
    }

    fn line_of(&self, offset: usize) -> usize {
        self.text()[..offset].matches('\n').count() + 1
    }
}

/// The length of the identifier at the start of `s` (quoted or not).
fn ident_end(s: &str) -> usize {
    let bytes = s.as_bytes();
    if bytes.first() != Some(&b'"') {
        return s.find('.').unwrap_or(s.len());
    }
    let mut i = 1;
    while i < bytes.len() {
        if bytes[i] == b'"' {
            if bytes.get(i + 1) == Some(&b'"') {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    s.len()
}
