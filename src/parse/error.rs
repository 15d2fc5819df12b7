//! The error of the parse stage: one diagnostic with a span in the file, rendered by miette
//! (see `crate::report`).

use std::sync::Arc;

use super::{SourceFile, Span};

/// A mistake in a `.sql` file: what is wrong (`message`), where (`span`, with a short `label`),
/// and how to fix it when we know (`help`). Never contains the value of an environment variable.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{message}")]
pub struct ParseError {
    pub message: String,
    #[source_code]
    pub src: miette::NamedSource<Arc<str>>,
    #[label("{label}")]
    pub span: miette::SourceSpan,
    pub label: String,
    #[help]
    pub help: Option<String>,
}

impl ParseError {
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
        ParseError {
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

    pub fn help(&self) -> Option<&str> {
        self.help.as_deref()
    }
}
