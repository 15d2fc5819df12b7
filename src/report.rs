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
