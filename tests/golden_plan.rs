//! Golden tests of planning: every pipeline in `pipelines/` and `tests/cases/plan/**` is
//! parsed and planned against the fixture catalog `tests/cases/catalog.txt`; the snapshot is
//! the `explain` output, or the rendered diagnostic for files that must fail.

use std::collections::BTreeMap;
use std::path::Path;

use cdcql::catalog::Catalog;
use cdcql::parse::{parse_with_env, SourceFile};
use cdcql::plan::{plan_script, postgres_urls};

fn outcome(path: &Path) -> (String, bool) {
    let text = std::fs::read_to_string(path).unwrap();
    let name = path
        .strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(path)
        .display()
        .to_string();
    let file = SourceFile::new(name, text);
    // Fixed environment: tests never see the real one.
    let env = |k: &str| (k == "SECRET").then(|| "hunter2".to_string());
    let script = match parse_with_env(&file, &env) {
        Ok(s) => s,
        Err(e) => return (cdcql::report::render(&e), false),
    };
    let catalog_text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases/catalog.txt"),
    )
    .unwrap();
    let catalog = Catalog::from_ddl_like(&catalog_text).unwrap();
    let catalogs: BTreeMap<String, Catalog> = postgres_urls(&script)
        .into_iter()
        .map(|(name, _)| (name, catalog.clone()))
        .collect();
    match plan_script(&file, &script, &catalogs) {
        Ok(plans) => (
            plans
                .iter()
                .map(cdcql::cli::explain)
                .collect::<Vec<_>>()
                .join("\n"),
            true,
        ),
        Err(e) => (cdcql::report::render(&e), false),
    }
}

#[test]
fn pipelines_plan() {
    insta::with_settings!({snapshot_path => "../snapshots/plan", prepend_module_to_snapshot => false}, {
        insta::glob!("../pipelines", "*.sql", |path| {
            let (out, ok) = outcome(path);
            assert!(ok, "{} must plan:\n{out}", path.display());
            assert!(!out.contains("s3cret") && !out.contains("hunter2"), "secret leaked:\n{out}");
            insta::assert_snapshot!(out);
        });
        insta::glob!("../tests/cases/plan/ok", "*.sql", |path| {
            let (out, ok) = outcome(path);
            assert!(ok, "{} must plan:\n{out}", path.display());
            assert!(!out.contains("s3cret") && !out.contains("hunter2"), "secret leaked:\n{out}");
            insta::assert_snapshot!(out);
        });
    });
}

#[test]
fn plan_errors_are_diagnostics() {
    insta::with_settings!({snapshot_path => "../snapshots/plan", prepend_module_to_snapshot => false}, {
        insta::glob!("../tests/cases/plan/err", "*.sql", |path| {
            let (out, ok) = outcome(path);
            assert!(!ok, "{} must fail to plan, got:\n{out}", path.display());
            // Every diagnostic points at a line and column of the file.
            assert!(out.contains(".sql:"), "no location in:\n{out}");
            insta::assert_snapshot!(out);
        });
    });
}
