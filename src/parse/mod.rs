//! Text of a `.sql` file → [`Script`] (the AST in `ast.rs`), or one [`ParseError`] pointing at
//! the first mistake.
//!
//! The statement grammar is `grammar/cdcql.pest` (pest); the SELECT of a pipeline is parsed by
//! sqlparser's PostgreSQL dialect. `${VAR}` / `${VAR:-default}` in string literals expand from
//! the environment. Every node carries its byte span in the file, so later stages (catalog,
//! plan) can report their own errors against the same source with [`SourceFile::named_source`].
//!
//! The file is read one statement at a time: pest finds the next statement, `build` turns it
//! into the AST (expanding strings, running sqlparser), then parsing goes on after it. So the
//! error reported is always the first one in the file, whichever part of the parser finds it.

// `ParseError` is big (it carries the source for its report), but there is at most one per
// parse and the API is `Result<_, ParseError>`; boxing it would only move the allocation.
#![allow(clippy::result_large_err)]

pub mod ast;
mod build;
mod expand;
mod grammar;
mod query;
mod scan;
mod syntax;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use pest::Parser as _;

pub use ast::*;
/// The parse stage reports mistakes as a plain [`SourceDiagnostic`].
pub type ParseError = crate::report::SourceDiagnostic;

use grammar::{CdcqlParser, Rule};

/// A source file: its name (for diagnostics) and its full text.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub name: String,
    pub text: Arc<str>,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<Arc<str>>) -> Self {
        SourceFile {
            name: name.into(),
            text: text.into(),
        }
    }

    /// The file for a miette `#[source_code]` field.
    pub fn named_source(&self) -> miette::NamedSource<Arc<str>> {
        miette::NamedSource::new(&self.name, Arc::clone(&self.text))
    }
}

/// Parses `file`, expanding `${VAR}` from the process environment.
pub fn parse(file: &SourceFile) -> Result<Script, ParseError> {
    parse_with_env(file, &|name| std::env::var(name).ok())
}

/// Parses `file`, expanding `${VAR}` with `env` (which returns `None` for an unset variable).
pub fn parse_with_env(
    file: &SourceFile,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Script, ParseError> {
    let text = &*file.text;
    let mut statements = Vec::new();
    let mut offset = 0;
    loop {
        let mut pairs = CdcqlParser::parse(Rule::next_statement, &text[offset..])
            .map_err(|e| syntax::syntax_error(file, offset, e))?;
        let next = pairs
            .next()
            .and_then(|p| p.into_inner().find(|p| p.as_rule() != Rule::EOI));
        let Some(pair) = next else {
            break;
        };
        let (statement, end) = build::statement(file, offset, pair, env)?;
        statements.push(statement);
        // Every statement starts with CREATE, so `end > offset`; the check keeps a grammar
        // bug from becoming an endless loop.
        if end <= offset {
            return Err(ParseError::new(
                file,
                Span::new(offset, offset),
                "internal error: the parser did not move forward",
                "here",
                Some("this is a bug in cdcql, please report it".to_string()),
            ));
        }
        offset = end;
    }
    Ok(Script { statements })
}
