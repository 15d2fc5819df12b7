//! The pest parser generated from `grammar/cdcql.pest`. Its pairs are turned into the AST by
//! `build.rs`, its errors into words by `syntax.rs`.

#[derive(pest_derive::Parser)]
#[grammar = "grammar/cdcql.pest"]
pub struct CdcqlParser;
