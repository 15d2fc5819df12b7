//! Golden tests of the parser, one case per file:
//! - `tests/cases/parse/ok/*.sql`: a compact dump of the AST (spans of statements and queries,
//!   every option with its type, each query as written and as sqlparser prints it back);
//! - `tests/cases/parse/err/*.sql`: the rendered diagnostic.
//!
//! Snapshots live in `snapshots/parse/`. Variables come from a fixed map, never from the real
//! environment: `SECRET=hunter2`, `KAFKA_BROKERS=10.0.0.1:9092`, `EMPTY=`; nothing else is set.

use std::fmt::Write as _;
use std::path::Path;

use cdcql::parse::*;
use cdcql::report;

fn env(name: &str) -> Option<String> {
    match name {
        "SECRET" => Some("hunter2".into()),
        "KAFKA_BROKERS" => Some("10.0.0.1:9092".into()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

fn load(path: &Path) -> SourceFile {
    let text = std::fs::read_to_string(path).expect("read case");
    let name = path.file_name().expect("file name").to_string_lossy();
    SourceFile::new(name, text)
}

#[test]
fn ok_cases() {
    insta::with_settings!({snapshot_path => "../snapshots/parse", prepend_module_to_snapshot => false}, {
        insta::glob!("cases/parse/ok/*.sql", |path| {
            let file = load(path);
            let script = parse_with_env(&file, &env)
                .unwrap_or_else(|e| panic!("{}", report::render(&e)));
            check_spans(&file.text, &script);
            insta::assert_snapshot!(dump(&file.text, &script));
        });
    });
}

#[test]
fn err_cases() {
    insta::with_settings!({snapshot_path => "../snapshots/parse", prepend_module_to_snapshot => false}, {
        insta::glob!("cases/parse/err/*.sql", |path| {
            let file = load(path);
            let err = match parse_with_env(&file, &env) {
                Ok(script) => panic!("{} parsed: {script:#?}", file.name),
                Err(e) => e,
            };
            let rendered = report::render(&err);
            assert!(!rendered.contains("hunter2"), "a secret leaked:\n{rendered}");
            insta::assert_snapshot!(rendered);
        });
    });
}

// ---- the dump --------------------------------------------------------------------------------

fn dump(text: &str, script: &Script) -> String {
    let mut out = String::new();
    for statement in &script.statements {
        match statement {
            Statement::CreateConnection(c) => {
                let kind = match c.kind {
                    ConnectionKind::Postgres => "POSTGRES",
                    ConnectionKind::Kafka => "KAFKA",
                };
                let _ = writeln!(
                    out,
                    "CREATE CONNECTION {} TO {kind}  @{}",
                    ident(&c.name),
                    span(c.span)
                );
                options(&mut out, &c.options);
            }
            Statement::CreatePipeline(p) => {
                let _ = writeln!(out, "CREATE PIPELINE {}  @{}", ident(&p.name), span(p.span));
                let _ = writeln!(out, "  FROM {} INTO {}", ident(&p.from), ident(&p.into));
                let _ = writeln!(out, "  TOPIC {}", string(&p.topic));
                if let Some(key) = &p.key {
                    let key: Vec<_> = key.iter().map(ident).collect();
                    let _ = writeln!(out, "  KEY ({})", key.join(", "));
                }
                let format = match p.format {
                    Format::Json => "JSON",
                    Format::Avro => "AVRO",
                };
                let envelope = match p.envelope {
                    EnvelopeKind::Debezium => "DEBEZIUM",
                    EnvelopeKind::Native => "NATIVE",
                };
                let _ = writeln!(out, "  FORMAT {format} ENVELOPE {envelope}");
                options(&mut out, &p.options);
                match &p.body {
                    PipelineBody::Queries(queries) => {
                        for q in queries {
                            let _ = writeln!(out, "  QUERY @{}", span(q.span));
                            let _ = writeln!(out, "    sql:    {}", indent(&q.sql));
                            let _ = writeln!(out, "    parsed: {}", q.query);
                            assert_eq!(&text[q.span.start..q.span.end], q.sql);
                        }
                    }
                    PipelineBody::Tables(tables) => {
                        let tables: Vec<_> = tables.iter().map(object_name).collect();
                        let _ = writeln!(out, "  TABLES ({})", tables.join(", "));
                    }
                }
            }
        }
    }
    out
}

fn options(out: &mut String, options: &[OptionItem]) {
    for o in options {
        let key = if o.key_quoted {
            format!("'{}'", o.key.replace('\'', "''"))
        } else {
            o.key.clone()
        };
        let value = match &o.value {
            OptionValue::String(s) => format!("{} (string)", string(s)),
            OptionValue::Number { text, .. } => format!("{text} (number)"),
            OptionValue::Bool { value, .. } => format!("{value} (bool)"),
            OptionValue::Word(w) => format!("{} (word)", ident(w)),
        };
        let _ = writeln!(out, "  option {key} = {value}");
    }
}

fn span(s: Span) -> String {
    format!("{}..{}", s.start, s.end)
}

fn ident(i: &Ident) -> String {
    if i.quoted {
        format!("\"{}\"", i.value.replace('"', "\"\""))
    } else {
        i.value.clone()
    }
}

fn object_name(o: &ObjectName) -> String {
    match &o.schema {
        Some(s) => format!("{}.{}", ident(s), ident(&o.name)),
        None => ident(&o.name),
    }
}

/// A string's value, unless it came from the environment (it may be a secret), and how it was
/// written when that differs.
fn string(s: &StringLit) -> String {
    let value = if s.from_env {
        format!("<from env, {} bytes>", s.value.len())
    } else {
        format!("'{}'", s.value.replace('\'', "''"))
    };
    if s.raw == s.value.replace('\'', "''") {
        value
    } else {
        format!("{value} written '{}'", s.raw)
    }
}

fn indent(sql: &str) -> String {
    sql.replace('\n', "\n            ")
}

// ---- spans -------------------------------------------------------------------------------------

/// Every node's span is where it is written in the file.
fn check_spans(text: &str, script: &Script) {
    let at = |s: Span| &text[s.start..s.end];
    let check_ident = |i: &Ident| {
        let written = at(i.span);
        if i.quoted {
            assert_eq!(written, format!("\"{}\"", i.value.replace('"', "\"\"")));
        } else {
            assert_eq!(written.to_ascii_lowercase(), i.value);
        }
    };
    let check_string = |s: &StringLit| assert_eq!(at(s.span), format!("'{}'", s.raw));
    let check_options = |options: &[OptionItem]| {
        for o in options {
            assert_eq!(o.span.start, o.key_span.start);
            assert_eq!(o.span.end, o.value.span().end);
            match &o.value {
                OptionValue::String(s) => check_string(s),
                OptionValue::Number { text: n, span } => assert_eq!(at(*span), n),
                OptionValue::Bool { value, span } => {
                    assert_eq!(at(*span).to_ascii_lowercase(), value.to_string())
                }
                OptionValue::Word(w) => check_ident(w),
            }
        }
    };
    for statement in &script.statements {
        match statement {
            Statement::CreateConnection(c) => {
                assert!(at(c.span).to_ascii_uppercase().starts_with("CREATE"));
                assert!(at(c.span).ends_with(';'));
                check_ident(&c.name);
                assert!(["POSTGRES", "POSTGRESQL", "KAFKA"]
                    .contains(&at(c.kind_span).to_ascii_uppercase().as_str()));
                check_options(&c.options);
            }
            Statement::CreatePipeline(p) => {
                assert!(at(p.span).to_ascii_uppercase().starts_with("CREATE"));
                assert!(at(p.span).ends_with(';'));
                for i in [&p.name, &p.from, &p.into] {
                    check_ident(i);
                }
                check_string(&p.topic);
                p.key.iter().flatten().for_each(check_ident);
                assert!(at(p.format_span).to_ascii_uppercase().starts_with("FORMAT"));
                assert!(at(p.envelope_span)
                    .to_ascii_uppercase()
                    .starts_with("ENVELOPE"));
                check_options(&p.options);
                match &p.body {
                    PipelineBody::Queries(queries) => {
                        for q in queries {
                            assert_eq!(at(q.span), q.sql);
                        }
                    }
                    PipelineBody::Tables(tables) => {
                        for t in tables {
                            check_ident(&t.name);
                            assert_eq!(t.span.end, t.name.span.end);
                            match &t.schema {
                                Some(s) => {
                                    check_ident(s);
                                    assert_eq!(t.span.start, s.span.start);
                                }
                                None => assert_eq!(t.span.start, t.name.span.start),
                            }
                        }
                    }
                }
            }
        }
    }
}
