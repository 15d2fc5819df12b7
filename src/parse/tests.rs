//! Unit tests of the parser as a whole: the AST of the examples in the design, spans, and that
//! no input makes it panic. Error messages are covered by the golden files
//! (tests/golden_parse.rs, tests/cases/parse/err/).

use super::grammar::{CdcqlParser, Rule};
use super::*;
use pest::Parser as _;

const EXAMPLE: &str = r#"
CREATE CONNECTION pg TO POSTGRES (url = '${PG_URL:-postgres://postgres@127.0.0.1:5432/shop}');
CREATE CONNECTION bus TO KAFKA (brokers = '127.0.0.1:9092', schema_registry = 'http://127.0.0.1:8081',
                                'compression.type' = 'lz4');        -- quoted keys pass through
CREATE PIPELINE orders FROM pg INTO bus TOPIC 'shop.{schema}.{table}'
    KEY (id, "Other") FORMAT JSON ENVELOPE DEBEZIUM
    WITH (json_schemas = true, tombstones = FALSE, partitions = 3, ratio = -1.5, snapshot = initial, x = 'str', pw = '${SECRET}')
AS SELECT id, amount, upper(note) AS note FROM public.orders WHERE amount > 0;
CREATE PIPELINE two FROM pg INTO bus TOPIC 't.{table}' FORMAT AVRO ENVELOPE NATIVE
AS (SELECT id FROM public.orders), (SELECT * FROM public.customers WHERE id > 3);
create pipeline Everything from pg into bus topic 'shop.{schema}.{table}' format json envelope debezium
    TABLES (public.orders, customers, "Weird"."Na""me");
"#;

fn env(name: &str) -> Option<String> {
    (name == "SECRET").then(|| "hunter2".to_string())
}

fn parse_str(text: &str) -> Result<Script, ParseError> {
    parse_with_env(&SourceFile::new("test.sql", text), &env)
}

fn at(span: Span) -> &'static str {
    &EXAMPLE[span.start..span.end]
}

#[test]
fn example_ast() {
    let script = parse_str(EXAMPLE).unwrap_or_else(|e| panic!("{}", crate::report::render(&e)));
    assert_eq!(script.statements.len(), 5);

    let Statement::CreateConnection(pg) = &script.statements[0] else {
        panic!("expected a connection")
    };
    assert_eq!(pg.name.value, "pg");
    assert_eq!(pg.kind, ConnectionKind::Postgres);
    assert_eq!(at(pg.kind_span), "POSTGRES");
    assert!(at(pg.span).starts_with("CREATE CONNECTION pg") && at(pg.span).ends_with("');"));
    let OptionValue::String(url) = &pg.options[0].value else {
        panic!("url is a string")
    };
    assert_eq!(url.value, "postgres://postgres@127.0.0.1:5432/shop");
    assert_eq!(
        url.raw,
        "${PG_URL:-postgres://postgres@127.0.0.1:5432/shop}"
    );
    assert!(!url.from_env);
    assert_eq!(
        at(url.span),
        "'${PG_URL:-postgres://postgres@127.0.0.1:5432/shop}'"
    );

    let Statement::CreateConnection(bus) = &script.statements[1] else {
        panic!("expected a connection")
    };
    let keys: Vec<_> = bus
        .options
        .iter()
        .map(|o| (o.key.as_str(), o.key_quoted, at(o.key_span)))
        .collect();
    assert_eq!(
        keys,
        [
            ("brokers", false, "brokers"),
            ("schema_registry", false, "schema_registry"),
            ("compression.type", true, "'compression.type'"),
        ]
    );

    let Statement::CreatePipeline(orders) = &script.statements[2] else {
        panic!("expected a pipeline")
    };
    assert_eq!(orders.name.value, "orders");
    assert_eq!(
        (orders.from.value.as_str(), orders.into.value.as_str()),
        ("pg", "bus")
    );
    assert_eq!(orders.topic.value, "shop.{schema}.{table}");
    let key: Vec<_> = orders
        .key
        .as_ref()
        .unwrap()
        .iter()
        .map(|k| (k.value.as_str(), k.quoted))
        .collect();
    assert_eq!(key, [("id", false), ("Other", true)]);
    assert_eq!(
        (orders.format, at(orders.format_span)),
        (Format::Json, "FORMAT JSON")
    );
    assert_eq!(
        (orders.envelope, at(orders.envelope_span)),
        (EnvelopeKind::Debezium, "ENVELOPE DEBEZIUM")
    );
    let values: Vec<_> = orders
        .options
        .iter()
        .map(|o| (o.key.as_str(), &o.value))
        .collect();
    assert!(matches!(
        values[0],
        ("json_schemas", OptionValue::Bool { value: true, .. })
    ));
    assert!(matches!(
        values[1],
        ("tombstones", OptionValue::Bool { value: false, .. })
    ));
    assert!(matches!(values[2], ("partitions", OptionValue::Number { text, .. }) if text == "3"));
    assert!(matches!(values[3], ("ratio", OptionValue::Number { text, .. }) if text == "-1.5"));
    assert!(matches!(values[4], ("snapshot", OptionValue::Word(w)) if w.value == "initial"));
    assert!(matches!(values[5], ("x", OptionValue::String(s)) if s.value == "str" && !s.from_env));
    assert!(
        matches!(values[6], ("pw", OptionValue::String(s)) if s.value == "hunter2" && s.from_env)
    );
    let PipelineBody::Queries(queries) = &orders.body else {
        panic!("expected queries")
    };
    assert_eq!(queries.len(), 1);
    assert_eq!(
        queries[0].sql,
        "SELECT id, amount, upper(note) AS note FROM public.orders WHERE amount > 0"
    );
    assert_eq!(at(queries[0].span), queries[0].sql);
    assert_eq!(queries[0].query.to_string(), queries[0].sql);
    assert!(at(orders.span).starts_with("CREATE PIPELINE orders"));
    assert!(at(orders.span).ends_with("amount > 0;"));

    let Statement::CreatePipeline(two) = &script.statements[3] else {
        panic!("expected a pipeline")
    };
    assert_eq!(
        (two.format, two.envelope),
        (Format::Avro, EnvelopeKind::Native)
    );
    let PipelineBody::Queries(queries) = &two.body else {
        panic!("expected queries")
    };
    let sql: Vec<_> = queries.iter().map(|q| at(q.span)).collect();
    assert_eq!(
        sql,
        [
            "SELECT id FROM public.orders",
            "SELECT * FROM public.customers WHERE id > 3"
        ]
    );

    let Statement::CreatePipeline(all) = &script.statements[4] else {
        panic!("expected a pipeline")
    };
    assert_eq!(all.name.value, "everything");
    let PipelineBody::Tables(tables) = &all.body else {
        panic!("expected tables")
    };
    let names: Vec<_> = tables
        .iter()
        .map(|t| {
            (
                t.schema
                    .as_ref()
                    .map(|s| (s.value.as_str(), s.quoted, at(s.span))),
                t.name.value.as_str(),
                at(t.name.span),
                at(t.span),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            (
                Some(("public", false, "public")),
                "orders",
                "orders",
                "public.orders"
            ),
            (None, "customers", "customers", "customers"),
            (
                Some(("Weird", true, "\"Weird\"")),
                "Na\"me",
                "\"Na\"\"me\"",
                "\"Weird\".\"Na\"\"me\""
            ),
        ]
    );
}

#[test]
fn whole_file_rule_accepts_the_example() {
    CdcqlParser::parse(Rule::script, EXAMPLE).unwrap();
}

#[test]
fn keywords_are_not_reserved() {
    let script = parse_str(
        "CREATE CONNECTION from TO POSTGRES (to = 'x');\n\
         CREATE CONNECTION topic TO KAFKA;\n\
         CREATE PIPELINE as FROM from INTO topic TOPIC 't' KEY (key) FORMAT JSON ENVELOPE NATIVE \
         WITH (format = json) TABLES (tables.with)",
    );
    // The last statement lacks its `;`.
    let err = script.unwrap_err();
    assert_eq!(err.message(), "expected `;` at the end of the statement");
    let script = parse_str(
        "CREATE CONNECTION from TO POSTGRES (to = 'x');\n\
         CREATE CONNECTION topic TO KAFKA;\n\
         CREATE PIPELINE as FROM from INTO topic TOPIC 't' KEY (key) FORMAT JSON ENVELOPE NATIVE \
         WITH (format = json) TABLES (tables.with);;",
    )
    .unwrap();
    assert_eq!(script.statements.len(), 3);
}

#[test]
fn query_text_respects_strings_comments_and_parentheses() {
    let script = parse_str(
        "CREATE PIPELINE p FROM a INTO b TOPIC 't' FORMAT JSON ENVELOPE NATIVE AS\n\
         SELECT ';' AS \"a;b\", E'\\';' AS c, $x$ ; $x$ AS d -- ;\n\
         /* ; /* ; */ ; */ FROM t WHERE x IN (SELECT 1) -- trailing ;\n\
         ;",
    )
    .unwrap_or_else(|e| panic!("{}", crate::report::render(&e)));
    let Statement::CreatePipeline(p) = &script.statements[0] else {
        panic!()
    };
    let PipelineBody::Queries(q) = &p.body else {
        panic!()
    };
    assert!(q[0].sql.starts_with("SELECT ';'"));
    assert!(q[0].sql.ends_with("(SELECT 1)"), "{}", q[0].sql);
}

#[test]
fn missing_semicolon_before_the_next_statement() {
    let text = "CREATE PIPELINE p FROM a INTO b TOPIC 't' FORMAT JSON ENVELOPE NATIVE\n\
                AS SELECT * FROM t -- all of it\n\
                CREATE CONNECTION a TO KAFKA;";
    let err = parse_str(text).unwrap_err();
    assert_eq!(err.message(), "expected `;` at the end of the statement");
    assert_eq!(
        &text[..err.span().start],
        text.split(" -- ").next().unwrap()
    );
}

#[test]
fn errors_do_not_show_secrets() {
    let text = "CREATE CONNECTION a TO KAFKA (x = '${SECRET}', x = '${SECRET}');";
    let err = parse_str(text).unwrap_err();
    assert!(!crate::report::render(&err).contains("hunter2"));
}

/// A tiny deterministic generator (no new crates): xorshift64*.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Parses `text` and, for an error, checks its span fits the text and that it renders.
fn must_not_panic(text: &str) {
    match parse_str(text) {
        Ok(_) => {}
        Err(e) => {
            let span = e.span();
            assert!(
                span.start <= span.end && span.end <= text.len(),
                "{text:?}: {span:?}"
            );
            assert!(text.is_char_boundary(span.start) && text.is_char_boundary(span.end));
            assert!(!e.message().is_empty());
            let rendered = crate::report::render(&e);
            // miette wraps long messages: look for their first word.
            let first = e.message().split(' ').next().unwrap_or_default();
            assert!(rendered.contains(first), "{text:?}: {rendered}");
        }
    }
}

#[test]
fn every_prefix_parses_or_errors() {
    for (i, _) in EXAMPLE.char_indices() {
        must_not_panic(&EXAMPLE[..i]);
    }
}

#[test]
fn mutations_parse_or_error() {
    const PIECES: &[&str] = &[
        "'", "\"", "(", ")", ";", ",", "$", "${", "}", "/*", "*/", "--", "\n", " ", "é", "\0",
        "CREATE", "AS", "SELECT", "E'", "$$", "=", ".", "-", "1", "x",
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..600 {
        let mut bytes = EXAMPLE.as_bytes().to_vec();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bytes.len() + 1);
            match rng.below(4) {
                0 if at < bytes.len() => bytes[at] ^= 1 << rng.below(8),
                1 if at < bytes.len() => {
                    bytes.remove(at);
                }
                2 => {
                    let piece = PIECES[rng.below(PIECES.len())];
                    bytes.splice(at..at, piece.bytes());
                }
                _ => bytes.truncate(at),
            }
        }
        must_not_panic(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn garbage_parses_or_errors() {
    for text in [
        "",
        ";",
        ";;;",
        "CREATE",
        "'",
        "\"",
        "/*",
        "/* /* */",
        "--",
        "$$",
        "${",
        "\u{FEFF}",
        "CREATE PIPELINE",
        "CREATE PIPELINE p FROM a INTO b TOPIC '${' FORMAT JSON ENVELOPE NATIVE AS SELECT 1;",
        "CREATE PIPELINE p FROM a INTO b TOPIC 't' FORMAT JSON ENVELOPE NATIVE AS",
        "CREATE PIPELINE p FROM a INTO b TOPIC 't' FORMAT JSON ENVELOPE NATIVE AS (",
        "CREATE PIPELINE p FROM a INTO b TOPIC 't' FORMAT JSON ENVELOPE NATIVE AS ()",
        "CREATE PIPELINE p FROM a INTO b TOPIC 't' FORMAT JSON ENVELOPE NATIVE AS (--\n);",
        "CREATE PIPELINE p FROM a INTO b TOPIC 't' FORMAT JSON ENVELOPE NATIVE AS SELECT $$",
        "CREATE PIPELINE p FROM a INTO b TOPIC 't' FORMAT JSON ENVELOPE NATIVE AS SELECT é FROM é;",
        "CREATE PIPELINE p FROM a INTO b TOPIC 't' FORMAT JSON ENVELOPE NATIVE AS SELECT 1\r\n, é\r\n, FROM x;",
        "CREATE CONNECTION \"\" TO KAFKA;",
        "CREATE CONNECTION a TO KAFKA ('' = 1);",
        "\0\0\0",
    ] {
        must_not_panic(text);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = "(".repeat(100_000);
    must_not_panic(&format!(
        "CREATE PIPELINE p FROM a INTO b TOPIC 't' FORMAT JSON ENVELOPE NATIVE AS SELECT {deep};"
    ));
    must_not_panic(&format!(
        "CREATE PIPELINE p FROM a INTO b TOPIC 't' FORMAT JSON ENVELOPE NATIVE AS {deep};"
    ));
    must_not_panic(&format!("/*{}", "/*".repeat(100_000)));
    must_not_panic(&format!(
        "CREATE CONNECTION a TO KAFKA {}",
        "/*".repeat(100_000)
    ));
}
