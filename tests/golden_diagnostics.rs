//! The diagnostics users meet most, reviewed as a user would read them: one file per common
//! mistake in `tests/cases/diagnostics/` (its first line says what the mistake is), parsed and
//! planned against the fixture catalog `tests/cases/catalog.txt`, rendered with
//! `report::render` into `snapshots/diagnostics/`. A new mistake is a new file.
//!
//! A report must point at a line and column of the file. A mistake that is not caught yet is
//! recorded as `NOT CAUGHT` with what was planned, so that fixing it shows in the snapshot.

use std::collections::BTreeMap;
use std::path::Path;

use cdcql::catalog::Catalog;
use cdcql::parse::{parse_with_env, SourceFile};
use cdcql::plan::{plan_script, postgres_urls};

/// The rendered diagnostic for `path`, or `None` when the file plans without error (and the
/// plans' `explain` output).
fn diagnostic(path: &Path) -> Result<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).expect("read case");
    let name = path
        .strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string();
    let file = SourceFile::new(name, text);
    // Tests never see the real environment.
    let script = match parse_with_env(&file, &|_| None) {
        Ok(s) => s,
        Err(e) => return Ok(cdcql::report::render(&e)),
    };
    let catalog_text =
        std::fs::read_to_string(root.join("tests/cases/catalog.txt")).expect("read catalog");
    let catalog = Catalog::from_ddl_like(&catalog_text).expect("fixture catalog");
    let catalogs: BTreeMap<String, Catalog> = postgres_urls(&script)
        .into_iter()
        .map(|(name, _)| (name, catalog.clone()))
        .collect();
    match plan_script(&file, &script, &catalogs) {
        Err(e) => Ok(cdcql::report::render(&e)),
        Ok(plans) => Err(plans.iter().map(cdcql::cli::explain).collect()),
    }
}

#[test]
fn common_mistakes() {
    insta::with_settings!({snapshot_path => "../snapshots/diagnostics", prepend_module_to_snapshot => false}, {
        insta::glob!("cases/diagnostics/*.sql", |path| {
            let shown = match diagnostic(path) {
                Ok(rendered) => {
                    assert!(rendered.contains(".sql:"), "no location in:\n{rendered}");
                    rendered
                }
                // Recorded rather than failed: the snapshot shows the mistake is still
                // accepted, and changes once it is caught.
                Err(explain) => format!("NOT CAUGHT: the file plans without error\n\n{explain}"),
            };
            insta::assert_snapshot!(shown);
        });
    });
}
