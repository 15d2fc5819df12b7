//! Bad input never panics: valid pipeline files, mutated at random (cuts, deleted ranges,
//! duplicated and garbled tokens, random unicode, huge identifiers, deeply nested and very long
//! SELECT expressions, `${VAR}` forms including ones whose values look like references), go
//! through `parse` and `plan_script` exactly as `cdcql validate` runs them. The property: no
//! panic; a failure is a diagnostic whose span lies inside the text on character boundaries,
//! which `report::render` can show, and which never contains a variable's value.
//!
//! Bounded: `PROPTEST_CASES` cases per property (default 4000, about 30 s for both in a debug
//! build; CI keeps the default), and each property prints how many cases it ran and how many
//! ended in a diagnostic.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use cdcql::catalog::Catalog;
use cdcql::parse::{parse_with_env, SourceFile};
use cdcql::plan::{plan_script, postgres_urls};
use cdcql::report::{self, SourceDiagnostic};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};

/// A value no diagnostic may print: it only ever comes from the environment.
const SECRET: &str = "hunter2";

/// The fuzzer's environment. `LOOP` and `NESTED` hold text that looks like references: values
/// are never expanded again, so they must come out literally, whatever they contain.
fn env(name: &str) -> Option<String> {
    match name {
        "SECRET" => Some(SECRET.into()),
        "LOOP" => Some("${LOOP}".into()),
        "NESTED" => Some("${SECRET}${NESTED:-${LOOP}}".into()),
        "PG_URL" => Some(format!("postgres://bob:{SECRET}@db:5432/shop")),
        "KAFKA_BROKERS" => Some("127.0.0.1:9092".into()),
        "EMPTY" => Some(String::new()),
        "QUOTE" => Some("'; DROP TABLE x; --".into()),
        _ => None,
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000)
}

fn config() -> Config {
    Config {
        cases: cases(),
        // Findings become golden cases under tests/cases/parse/err, not regression files.
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        max_shrink_iters: 2000,
        ..Config::default()
    }
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Valid (or nearly valid) files to start from: the examples, the golden cases, and a few
/// written here to reach every clause.
fn seeds() -> Vec<String> {
    let mut out = vec![
        "CREATE CONNECTION pg TO POSTGRES (url = '${PG_URL:-postgres://postgres@127.0.0.1/shop}');\n\
         CREATE CONNECTION bus TO KAFKA (brokers = '${KAFKA_BROKERS}', schema_registry = \
         'http://u:${SECRET}@127.0.0.1:8081', 'sasl.password' = '${SECRET}');\n\
         CREATE PIPELINE p FROM pg INTO bus TOPIC 'x.{schema}.{table}' KEY (id) FORMAT JSON \
         ENVELOPE DEBEZIUM WITH (partitions = 3, tombstones = false, snapshot = 'never', \
         heartbeat_interval = '10s', publication_name = 'pub_x')\n\
         AS SELECT id, upper(note) AS n, CASE WHEN amount > 1 THEN 'a' ELSE 'b' END AS c \
         FROM public.orders WHERE status <> 'x' AND id BETWEEN 1 AND 9;\n"
            .to_string(),
        "CREATE CONNECTION pg TO POSTGRES (url = 'host=db user=u password=${SECRET}');\n\
         CREATE CONNECTION k TO KAFKA (brokers = 'b:9092', schema_registry = 'http://r:8081', \
         schema_registry_user = 'u', schema_registry_password = '${SECRET}');\n\
         CREATE PIPELINE q FROM pg INTO k TOPIC '{table}' FORMAT AVRO ENVELOPE NATIVE \
         WITH (deleted_marker = true, subject_strategy = 'record', compatibility = 'backward')\n\
         AS (SELECT * FROM public.customers), (SELECT order_id, line_no, qty * price AS total \
         FROM public.line_items WHERE sku LIKE 'a%');\n"
            .to_string(),
        "CREATE CONNECTION pg TO POSTGRES (url = '${NESTED}${LOOP:-x}$${LOOP}');\n\
         CREATE CONNECTION k TO KAFKA (brokers = '${QUOTE}');\n\
         CREATE PIPELINE r FROM pg INTO k TOPIC 't' FORMAT JSON ENVELOPE DEBEZIUM \
         TABLES (public.orders, customers);\n"
            .to_string(),
    ];
    for dir in [
        "pipelines",
        "tests/cases/parse/ok",
        "tests/cases/plan/ok",
        "tests/cases/plan/err",
        "tests/cases/diagnostics",
    ] {
        let Ok(entries) = std::fs::read_dir(root().join(dir)) else {
            continue;
        };
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            if path.extension().is_some_and(|e| e == "sql") {
                if let Ok(text) = std::fs::read_to_string(&path) {
                    // A value written in the file is no secret; make it come from `${SECRET}`.
                    out.push(text.replace(SECRET, "${SECRET}"));
                }
            }
        }
    }
    out
}

fn catalog() -> Catalog {
    let text = std::fs::read_to_string(root().join("tests/cases/catalog.txt")).expect("catalog");
    Catalog::from_ddl_like(&text).expect("catalog parses")
}

/// Fragments that matter to the grammar, the expander or sqlparser.
const FRAGMENTS: &[&str] = &[
    "(",
    ")",
    "'",
    "\"",
    "''",
    ";",
    ",",
    "=",
    ".",
    "*",
    "--",
    "/*",
    "*/",
    "$$",
    "$tag$",
    "${",
    "}",
    "${SECRET}",
    "${LOOP}",
    "${NESTED}",
    "${SECRET:-}",
    "${UNSET:-${SECRET}}",
    "$${SECRET}",
    "${:-x}",
    "${A:-",
    "${1}",
    "${SECRET",
    "${SECRET}}",
    "CREATE",
    "PIPELINE",
    "CONNECTION",
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
    "WHERE",
    "TABLES",
    "JOIN",
    "GROUP BY",
    "ORDER BY",
    "LIMIT 1",
    "UNION SELECT 1",
    "OVER ()",
    "count(*)",
    "E'\\x'",
    "U&'\\0000'",
    "1e999999",
    "-9223372036854775809",
    "0x",
    "NULL",
    "true",
    "{table}",
    "{schema}",
    "{",
    "\u{0}",
    "\u{feff}",
    "\u{202e}",
    "é",
    "e\u{301}",
    "😀",
    "\u{2028}",
    "\r",
    "\r\n",
    "\t",
    "“",
    "”",
    "‘",
    "’",
    "：",
    "；",
    "\\",
    "::",
    "::numeric(1000,1000)",
    "ARRAY[1,2]",
    "ROW(1,2)",
    "(SELECT 1)",
    "EXISTS (SELECT 1)",
    "CAST(id AS text)",
];

/// Names the planner resolves: catalog tables and columns, options, placeholders.
const NAMES: &[&str] = &[
    "id",
    "amount",
    "note",
    "status",
    "created_at",
    "customer_id",
    "name",
    "email",
    "sku",
    "qty",
    "price",
    "payload",
    "at",
    "location",
    "label",
    "orders",
    "customers",
    "line_items",
    "events",
    "places",
    "public",
    "missing",
    "pg",
    "bus",
    "k",
    "shop_pg",
    "partitions",
    "tombstones",
    "snapshot",
    "json_schemas",
    "topic_prefix",
    "slot_name",
    "publication_name",
    "heartbeat_interval",
    "decimal_handling",
    "compatibility",
    "subject_strategy",
    "url",
    "brokers",
    "schema_registry",
    "key",
    "upper",
    "lower",
    "length",
    "coalesce",
    "now",
    "Other",
];

/// Values for option strings and literals.
const VALUES: &[&str] = &[
    "''",
    "'-1'",
    "'0'",
    "'1'",
    "'99999999999999999999'",
    "'1e3'",
    "'true'",
    "'yes'",
    "'10s'",
    "'10 parsecs'",
    "'-5ms'",
    "'${SECRET}'",
    "'${EMPTY}'",
    "'${LOOP}'",
    "'{table}'",
    "'{tabel}'",
    "'{'",
    "'}'",
    "'{schema}.{table}.{database}.{pipeline}'",
    "'a b'",
    "'UPPER'",
    "'precise'",
    "'never'",
    "'record'",
    "'backward'",
    "'compact,delete'",
    "1",
    "0",
    "-1",
    "2147483648",
    "1.5",
    "true",
    "false",
    "NULL",
];

#[derive(Debug, Clone)]
enum Mutation {
    /// Replace one identifier with a name the planner knows (the syntax stays valid).
    Rename(Index, &'static str),
    /// Replace one literal (quoted string, number, true/false) with another value.
    Value(Index, &'static str),
    /// Keep only the text before this point.
    Cut(Index),
    /// Remove up to `len` characters from here.
    Delete(Index, usize),
    /// Repeat one whitespace-separated token.
    Duplicate(Index, usize),
    /// Replace one token.
    Replace(Index, String),
    /// Insert text at a character position.
    Insert(Index, String),
    /// Make one token a very long word.
    Huge(Index, usize),
    /// Put a deeply nested expression at the first SELECT.
    Nest(usize),
    /// Put a long chain of operators (with a term that suits them) at the first SELECT.
    Chain(usize, &'static str, &'static str),
    /// Swap two tokens.
    Swap(Index, Index),
}

fn insertion() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(FRAGMENTS).prop_map(str::to_string),
        2 => "\\PC{0,8}",
        1 => ".{0,4}",
        1 => "[a-z_]{1,12}",
        1 => "[0-9.eE+-]{1,24}",
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => any::<Index>().prop_map(Mutation::Cut),
        2 => (any::<Index>(), 1usize..40).prop_map(|(i, n)| Mutation::Delete(i, n)),
        2 => (any::<Index>(), 1usize..4).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
        4 => (any::<Index>(), insertion()).prop_map(|(i, s)| Mutation::Replace(i, s)),
        5 => (any::<Index>(), insertion()).prop_map(|(i, s)| Mutation::Insert(i, s)),
        1 => (any::<Index>(), prop_oneof![64usize..300, 60_000usize..70_000])
            .prop_map(|(i, n)| Mutation::Huge(i, n)),
        1 => prop_oneof![1usize..60, 200usize..3000].prop_map(Mutation::Nest),
        1 => (
            prop_oneof![1usize..140, 500usize..5000],
            prop::sample::select(
                &[
                    (" + ", "id"),
                    (" * ", "id"),
                    (" || ", "'x'"),
                    (" AND ", "id > 0"),
                    (" OR ", "id IS NULL"),
                    (" = ", "id"),
                ][..]
            )
        )
            .prop_map(|(n, (op, term))| Mutation::Chain(n, op, term)),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        5 => (any::<Index>(), prop::sample::select(NAMES)).prop_map(|(i, n)| Mutation::Rename(i, n)),
        5 => (any::<Index>(), prop::sample::select(VALUES)).prop_map(|(i, v)| Mutation::Value(i, v)),
    ]
}

/// Character boundaries of `text`, including its end.
fn boundaries(text: &str) -> Vec<usize> {
    text.char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
        .collect()
}

/// Byte ranges of the whitespace-separated tokens.
fn tokens(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, text.len()));
    }
    out
}

/// Byte ranges of identifiers (outside quotes and comments, roughly: words of letters,
/// digits and `_` that start with a letter).
fn identifiers(text: &str) -> Vec<(usize, usize)> {
    words(text, |w| {
        w.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// Byte ranges of literals: `'...'` without a quote inside, numbers, true and false.
fn literals(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut in_quote = None;
    for (i, c) in text.char_indices() {
        if c == '\'' {
            match in_quote {
                None => in_quote = Some(i),
                Some(start) => {
                    out.push((start, i + 1));
                    in_quote = None;
                }
            }
        }
    }
    out.extend(words(text, |w| {
        w.parse::<f64>().is_ok()
            || w.eq_ignore_ascii_case("true")
            || w.eq_ignore_ascii_case("false")
    }));
    out
}

fn words(text: &str, keep: impl Fn(&str) -> bool) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        let part = c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-';
        match (part, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                if keep(&text[s..i]) {
                    out.push((s, i));
                }
                start = None;
            }
            _ => {}
        }
    }
    out
}

fn at_select(text: &str, expr: &str) -> String {
    match text.find("SELECT ") {
        Some(i) => format!("{}SELECT {expr} AS deep, {}", &text[..i], &text[i + 7..]),
        None => format!("{text}\nSELECT {expr} AS deep FROM public.orders;"),
    }
}

fn apply(text: &str, m: &Mutation) -> String {
    let b = boundaries(text);
    let toks = tokens(text);
    match m {
        Mutation::Cut(i) => text[..b[i.index(b.len())]].to_string(),
        Mutation::Delete(i, n) => {
            let start = i.index(b.len());
            let end = (start + n).min(b.len() - 1);
            format!("{}{}", &text[..b[start]], &text[b[end]..])
        }
        Mutation::Insert(i, s) => {
            let at = b[i.index(b.len())];
            format!("{}{s}{}", &text[..at], &text[at..])
        }
        Mutation::Duplicate(i, n) if !toks.is_empty() => {
            let (s, e) = toks[i.index(toks.len())];
            let tok = &text[s..e];
            format!(
                "{}{}{}",
                &text[..e],
                format!(" {tok}").repeat(*n),
                &text[e..]
            )
        }
        Mutation::Replace(i, with) if !toks.is_empty() => {
            let (s, e) = toks[i.index(toks.len())];
            format!("{}{with}{}", &text[..s], &text[e..])
        }
        Mutation::Huge(i, n) if !toks.is_empty() => {
            let (s, e) = toks[i.index(toks.len())];
            let word: String = "abcdefghij".chars().cycle().take(*n).collect();
            format!("{}{word}{}", &text[..s], &text[e..])
        }
        Mutation::Swap(a, c) if !toks.is_empty() => {
            let (mut x, mut y) = (toks[a.index(toks.len())], toks[c.index(toks.len())]);
            if x.0 > y.0 {
                std::mem::swap(&mut x, &mut y);
            }
            if x == y {
                return text.to_string();
            }
            format!(
                "{}{}{}{}{}",
                &text[..x.0],
                &text[y.0..y.1],
                &text[x.1..y.0],
                &text[x.0..x.1],
                &text[y.1..]
            )
        }
        Mutation::Rename(i, name) => {
            let ids = identifiers(text);
            if ids.is_empty() {
                return text.to_string();
            }
            let (s, e) = ids[i.index(ids.len())];
            format!("{}{name}{}", &text[..s], &text[e..])
        }
        Mutation::Value(i, value) => {
            let lits = literals(text);
            if lits.is_empty() {
                return text.to_string();
            }
            let (s, e) = lits[i.index(lits.len())];
            format!("{}{value}{}", &text[..s], &text[e..])
        }
        Mutation::Nest(depth) => {
            let expr = format!("{}id{}", "(".repeat(*depth), ")".repeat(*depth));
            at_select(text, &expr)
        }
        Mutation::Chain(n, op, term) => {
            let expr = vec![*term; n + 1].join(op);
            at_select(text, &expr)
        }
        _ => text.to_string(),
    }
}

/// What a run of the property found, for the report line.
#[derive(Default)]
struct Counts {
    cases: AtomicUsize,
    parse_errors: AtomicUsize,
    plan_errors: AtomicUsize,
    planned: AtomicUsize,
}

impl Counts {
    fn report(&self, what: &str, started: Instant) {
        eprintln!(
            "fuzz {what}: {} executions in {:.1} s: {} parse errors, {} plan errors, {} planned",
            self.cases.load(Ordering::Relaxed),
            started.elapsed().as_secs_f64(),
            self.parse_errors.load(Ordering::Relaxed),
            self.plan_errors.load(Ordering::Relaxed),
            self.planned.load(Ordering::Relaxed),
        );
    }
}

fn check_diagnostic(text: &str, d: &SourceDiagnostic) -> Result<(), TestCaseError> {
    let span = d.span();
    prop_assert!(
        span.start <= span.end && span.end <= text.len(),
        "span {span:?} outside the text ({} bytes): {}",
        text.len(),
        d.message()
    );
    prop_assert!(
        text.is_char_boundary(span.start) && text.is_char_boundary(span.end),
        "span {span:?} not on character boundaries: {}",
        d.message()
    );
    prop_assert!(!d.message().trim().is_empty(), "empty message");
    let rendered = report::render(d);
    // The renderer wraps long messages (even inside a word) behind a `│` gutter.
    let words = |s: &str| {
        s.chars()
            .filter(|c| *c != '│' && !c.is_whitespace())
            .collect::<String>()
    };
    prop_assert!(
        words(&rendered).contains(&words(d.message())),
        "rendering lost the message {:?}:\n{rendered}",
        d.message()
    );
    prop_assert!(
        !rendered.contains(SECRET),
        "a variable's value leaked into a diagnostic:\n{rendered}"
    );
    Ok(())
}

/// Parse and plan `text` as `cdcql validate` does (with the fixture catalog for every
/// Postgres connection).
fn check_text(text: &str, catalog: &Catalog, counts: &Counts) -> Result<(), TestCaseError> {
    counts.cases.fetch_add(1, Ordering::Relaxed);
    let file = SourceFile::new("fuzz.sql", text);
    let script = match parse_with_env(&file, &env) {
        Ok(s) => s,
        Err(e) => {
            counts.parse_errors.fetch_add(1, Ordering::Relaxed);
            return check_diagnostic(text, &e);
        }
    };
    let catalogs: BTreeMap<String, Catalog> = postgres_urls(&script)
        .into_iter()
        .map(|(name, _)| (name, catalog.clone()))
        .collect();
    match plan_script(&file, &script, &catalogs) {
        Ok(plans) => {
            counts.planned.fetch_add(1, Ordering::Relaxed);
            for p in &plans {
                let shown = cdcql::cli::explain(p);
                prop_assert!(
                    !shown.contains(&format!(":{SECRET}@")),
                    "explain shows a password:\n{shown}"
                );
            }
            Ok(())
        }
        Err(e) => {
            counts.plan_errors.fetch_add(1, Ordering::Relaxed);
            check_diagnostic(text, &e.0)
        }
    }
}

/// Deep expressions recurse in sqlparser and DataFusion: run on a stack the size of the
/// CLI's main thread (8 MiB), not the test harness's 2 MiB.
fn on_big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(f)
        .expect("spawn")
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e));
}

#[test]
fn mutated_files_give_diagnostics() {
    on_big_stack(|| {
        let seeds = seeds();
        let catalog = catalog();
        let counts = Counts::default();
        let started = Instant::now();
        let strategy = (0..seeds.len(), prop::collection::vec(mutation(), 1..5));
        let mut runner = TestRunner::new(config());
        let result = runner.run(&strategy, |(seed, mutations)| {
            let mut text = seeds[seed].clone();
            for m in &mutations {
                text = apply(&text, m);
            }
            check_text(&text, &catalog, &counts)
        });
        counts.report("mutated files", started);
        if let Err(e) = result {
            panic!("{e}");
        }
    });
}

/// Random bytes as `cdcql validate` reads a file: invalid UTF-8 is refused before parsing
/// (with the offset of the first bad byte), everything else must parse or give a diagnostic.
#[test]
fn random_bytes_give_diagnostics() {
    on_big_stack(|| {
        let seeds = seeds();
        let catalog = catalog();
        let counts = Counts::default();
        let started = Instant::now();
        let strategy = (
            0..seeds.len(),
            any::<Index>(),
            prop::collection::vec(any::<u8>(), 0..16),
        );
        let mut runner = TestRunner::new(config());
        let result = runner.run(&strategy, |(seed, at, bytes)| {
            let seed = seeds[seed].as_bytes();
            let at = at.index(seed.len() + 1);
            let mut raw = seed[..at].to_vec();
            raw.extend_from_slice(&bytes);
            raw.extend_from_slice(&seed[at..]);
            match String::from_utf8(raw) {
                Ok(text) => check_text(&text, &catalog, &counts),
                Err(e) => {
                    counts.cases.fetch_add(1, Ordering::Relaxed);
                    let valid = e.utf8_error().valid_up_to();
                    prop_assert!(std::str::from_utf8(&e.as_bytes()[..valid]).is_ok());
                    Ok(())
                }
            }
        });
        counts.report("random bytes", started);
        if let Err(e) = result {
            panic!("{e}");
        }
    });
}

/// The CLI itself on a file with invalid UTF-8: exit code 2 and a message naming the byte,
/// not a panic. Needs no services: the file is refused before any connection.
#[test]
fn cli_refuses_invalid_utf8() {
    let dir = std::env::temp_dir().join(format!("cdcql-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let cases: [&[u8]; 4] = [
        b"CREATE CONNECTION pg TO POSTGRES (url = '\xff');",
        b"\xef\xbb\xbfCREATE \xc3\x28 CONNECTION",
        b"CREATE PIPELINE p FROM pg INTO k TOPIC 't' FORMAT JSON ENVELOPE DEBEZIUM AS SELECT \xed\xa0\x80 FROM t;",
        b"\x00\x01\x02\x80",
    ];
    for (i, bytes) in cases.iter().enumerate() {
        let path = dir.join(format!("bad{i}.sql"));
        std::fs::write(&path, bytes).expect("write case");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cdcql"))
            .arg("validate")
            .arg(&path)
            .output()
            .expect("run cdcql");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "case {i}: {stderr}");
        assert!(
            stderr.contains("is not valid UTF-8 (byte"),
            "case {i}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "case {i}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Values that look like references come out literally: expansion never recurses.
#[test]
fn values_are_not_expanded_again() {
    let file = SourceFile::new(
        "env.sql",
        "CREATE CONNECTION pg TO POSTGRES (url = '${NESTED}|${LOOP}|$${SECRET}');",
    );
    let script = match parse_with_env(&file, &env) {
        Ok(s) => s,
        Err(e) => panic!("{}", report::render(&e)),
    };
    let urls = postgres_urls(&script);
    assert_eq!(
        urls[0].1.expose(),
        "${SECRET}${NESTED:-${LOOP}}|${LOOP}|${SECRET}"
    );
}

/// Found by `mutated_files_give_diagnostics`: a `${VAR}` inside a topic placeholder used to
/// put its value in the "unknown placeholder" message (the dead-letter topic has the same rule).
#[test]
fn secret_in_a_placeholder_stays_out_of_the_message() {
    for (topic, with) in [
        ("shop.{${SECRET}table}", ""),
        (
            "shop.{table}",
            "WITH (on_error = 'dead_letter', dead_letter_topic = 'x.{${SECRET}}')",
        ),
    ] {
        let counts = Counts::default();
        let text = format!(
            "CREATE CONNECTION shop_pg TO POSTGRES (url = 'postgres://u@h/shop');
CREATE CONNECTION bus TO KAFKA (brokers = '127.0.0.1:9092');
CREATE PIPELINE shop FROM shop_pg INTO bus TOPIC '{topic}'
    FORMAT JSON ENVELOPE DEBEZIUM {with}
    TABLES (public.orders);"
        );
        check_text(&text, &catalog(), &counts).unwrap();
        assert_eq!(
            counts.plan_errors.load(Ordering::Relaxed),
            1,
            "refused: {text}"
        );
    }
}
