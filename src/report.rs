//! How mistakes in `.sql` files reach people: [`SourceDiagnostic`], the one shape every stage
//! uses for them (parse errors are one, plan errors wrap one), and [`render`], the same plain-text
//! rendering for the CLI, tests and snapshots (unicode, no colour, 100 columns, no terminal
//! links), so golden files stay stable.

use std::sync::Arc;

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme};

use crate::parse::{SourceFile, Span};

/// Renders `diag` with its source snippet: file name, line:column, the span underlined with its
/// label, and the help line.
pub fn render(diag: &dyn Diagnostic) -> String {
    if let Some(plain) = render_long_line(diag) {
        return plain;
    }
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

/// Lines longer than this are not drawn: miette draws underlines with the column as a format
/// width, which panics past 65,535 (found by tests/fuzz_parse.rs with a 65,504-character name).
const MAX_DRAWN_LINE: usize = 4096;

/// A report without the source snippet, when a labelled line is too long to draw.
fn render_long_line(diag: &dyn Diagnostic) -> Option<String> {
    let src = diag.source_code()?;
    let mut located = Vec::new();
    let mut too_long = false;
    for label in diag.labels()? {
        // One line of context before makes the contents start at a line start.
        let Ok(contents) = src.read_span(label.inner(), 1, 0) else {
            continue;
        };
        let data = contents.data();
        too_long |= data
            .split(|b| *b == b'\n' || *b == b'\r')
            .any(|line| line.len() > MAX_DRAWN_LINE);
        let before = &data[..label
            .inner()
            .offset()
            .saturating_sub(contents.span().offset())
            .min(data.len())];
        let line_start = before
            .iter()
            .rposition(|b| *b == b'\n' || *b == b'\r')
            .map_or(0, |p| p + 1);
        let newlines = String::from_utf8_lossy(before)
            .replace("\r\n", "\n")
            .chars()
            .filter(|c| *c == '\n' || *c == '\r')
            .count();
        let column = String::from_utf8_lossy(&before[line_start..])
            .chars()
            .count()
            + 1;
        located.push(format!(
            "  at {}:{}:{column}: {}",
            contents.name().unwrap_or("input"),
            contents.line() + newlines + 1,
            label.label().unwrap_or("here")
        ));
    }
    if !too_long {
        return None;
    }
    let mut out = format!("  × {diag}\n");
    for l in located {
        out.push_str(&l);
        out.push_str(" (the line is too long to show)\n");
    }
    if let Some(help) = diag.help() {
        out.push_str(&format!("  help: {help}\n"));
    }
    Some(out)
}

/// A mistake in a `.sql` file: what is wrong (`message`), where (`span`, with a short `label`),
/// and how to fix it when we know (`help`). Never contains the value of an environment variable.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{message}")]
pub struct SourceDiagnostic {
    pub message: String,
    #[source_code]
    pub src: miette::NamedSource<Arc<str>>,
    #[label("{label}")]
    pub span: miette::SourceSpan,
    pub label: String,
    #[help]
    pub help: Option<String>,
}

impl SourceDiagnostic {
    pub fn new(
        file: &SourceFile,
        span: Span,
        message: impl Into<String>,
        label: impl Into<String>,
        help: Option<String>,
    ) -> Self {
        // Keep the span inside the text and on character boundaries, whatever the caller
        // computed: miette refuses to render a report whose span does not fit its source.
        let text = &*file.text;
        let mut start = span.start.min(text.len());
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        let mut end = span.end.clamp(start, text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        SourceDiagnostic {
            message: message.into(),
            src: file.named_source(),
            span: Span::new(start, end).into(),
            label: label.into(),
            help,
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// Where the error is, as a byte range of the file.
    pub fn span(&self) -> Span {
        Span::new(self.span.offset(), self.span.offset() + self.span.len())
    }

    pub fn label(&self) -> &str {
        &self.label
    }
}
