//! Diagnostics as plain text: the same rendering for the CLI, for tests and for snapshots
//! (unicode, no colour, 100 columns, no terminal links), so golden files stay stable.

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme};

/// Renders `diag` with its source snippet: file name, line:column, the span underlined with its
/// label, and the help line.
pub fn render(diag: &dyn Diagnostic) -> String {
    let handler = GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
        .with_width(100)
        .with_links(false);
    let mut out = String::new();
    match handler.render_report(&mut out, diag) {
        Ok(()) => out,
        // Only a failing `Display` of the diagnostic gets here; still say what went wrong.
        Err(_) => format!("{diag}\n"),
    }
}
