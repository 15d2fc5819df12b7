//! The REPL's own commands (`SHOW`, `DESCRIBE`, `EXPLAIN`, `PREVIEW`, `APPLY`, `STATUS`,
//! `DROP`, `\help`, `\q`), read from one typed statement. `CREATE ...` goes to the real parser
//! instead; anything else is a mistake reported with a caret like a parse error.

// A diagnostic carries its source text for rendering; there is at most one per typed
// statement, so its size does not matter.
#![allow(clippy::result_large_err)]

use crate::parse::{SourceFile, Span};
use crate::report::SourceDiagnostic;

use super::lex::{ident_value, tokens, Kind};

/// A name as typed: `name` or `schema.name`, identifiers already folded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    pub schema: Option<String>,
    pub name: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `CREATE CONNECTION` / `CREATE PIPELINE`: handled by the parser and planner.
    Create,
    ShowConnections,
    ShowPipelines,
    ShowTables,
    Describe(Name),
    Explain(Name),
    Preview {
        pipeline: Name,
        limit: usize,
    },
    Apply {
        pipeline: Name,
        snapshot_only: bool,
    },
    Status,
    DropPipeline(Name),
    DropConnection(Name),
    Help,
    Quit,
}

/// Rows per table that `PREVIEW` shows unless `LIMIT` says otherwise.
pub const DEFAULT_PREVIEW_LIMIT: usize = 5;

/// The command words, for suggestions and completion.
pub const COMMAND_WORDS: &[&str] = &[
    "CREATE", "SHOW", "DESCRIBE", "EXPLAIN", "PREVIEW", "APPLY", "STATUS", "DROP", "HELP",
];

pub const HELP: &str = "\
Statements (as in files, each ends with `;`; Enter inside a statement starts a new line):
  CREATE CONNECTION name TO POSTGRES (url = '...');
  CREATE CONNECTION name TO KAFKA (brokers = '...');
  CREATE PIPELINE name FROM pg INTO kafka TOPIC '...' FORMAT JSON ENVELOPE DEBEZIUM
      AS SELECT ... FROM schema.table;
Commands:
  SHOW CONNECTIONS;  SHOW PIPELINES;  SHOW TABLES;
  DESCRIBE table_or_pipeline;       columns of a table, or what a pipeline writes
  EXPLAIN pipeline;                 query plan, topics, keys and schemas
  PREVIEW pipeline [LIMIT n];       the messages for the first n rows (default 5); sends nothing
  APPLY pipeline;                   snapshot, then stream changes into Kafka until Ctrl-C
  APPLY pipeline SNAPSHOT ONLY;     only snapshot the tables into Kafka (Ctrl-C stops it)
  STATUS;                           what ran in this session
  DROP PIPELINE name;  DROP CONNECTION name;   forget a definition (nothing is deleted)
  \\help  \\q                         this help; quit (also Ctrl-D)
Tab completes keywords, connection and pipeline names, schemas, tables and columns.";

/// Reads one statement (with or without its `;`). `file` is the statement's text, for errors.
pub fn parse(file: &SourceFile) -> Result<Command, SourceDiagnostic> {
    let text = &*file.text;
    let toks: Vec<_> = tokens(text)
        .into_iter()
        .filter(|t| t.kind != Kind::Comment)
        .collect();
    let mut toks = &toks[..];
    if let Some(last) = toks.last() {
        if &text[last.start..last.end] == ";" {
            toks = &toks[..toks.len() - 1];
        }
    }
    let Some(first) = toks.first() else {
        return Err(SourceDiagnostic::new(
            file,
            Span::new(0, text.len()),
            "empty statement",
            "nothing here",
            Some("type \\help for the commands".to_string()),
        ));
    };
    let mut r = Reader {
        file,
        text,
        toks,
        pos: 0,
    };
    let word = &text[first.start..first.end];
    if word == "\\" {
        let cmd = text[first.end..].trim().to_ascii_lowercase();
        return match cmd.as_str() {
            "q" | "quit" => Ok(Command::Quit),
            "help" | "h" | "?" => Ok(Command::Help),
            _ => Err(SourceDiagnostic::new(
                file,
                Span::new(first.start, text.trim_end().len()),
                format!("unknown command `\\{cmd}`"),
                "not a command",
                Some("the backslash commands are \\help and \\q".to_string()),
            )),
        };
    }
    let command = match word.to_ascii_uppercase().as_str() {
        "CREATE" => return Ok(Command::Create),
        "QUIT" | "EXIT" => Command::Quit,
        "HELP" => Command::Help,
        "STATUS" => Command::Status,
        "SHOW" => {
            r.pos = 1;
            match r.keyword(&["CONNECTIONS", "PIPELINES", "TABLES"])? {
                "CONNECTIONS" => Command::ShowConnections,
                "PIPELINES" => Command::ShowPipelines,
                _ => Command::ShowTables,
            }
        }
        "DESCRIBE" | "DESC" => {
            r.pos = 1;
            Command::Describe(r.name("a table or pipeline name", true)?)
        }
        "EXPLAIN" => {
            r.pos = 1;
            Command::Explain(r.name("a pipeline name", false)?)
        }
        "PREVIEW" => {
            r.pos = 1;
            let pipeline = r.name("a pipeline name", false)?;
            let limit = if r.at_end() {
                DEFAULT_PREVIEW_LIMIT
            } else {
                r.keyword(&["LIMIT"])?;
                r.number()?
            };
            Command::Preview { pipeline, limit }
        }
        "APPLY" => {
            r.pos = 1;
            let pipeline = r.name("a pipeline name", false)?;
            let snapshot_only = if r.at_end() {
                false
            } else {
                r.keyword(&["SNAPSHOT"])?;
                r.keyword(&["ONLY"])?;
                true
            };
            Command::Apply {
                pipeline,
                snapshot_only,
            }
        }
        "DROP" => {
            r.pos = 1;
            match r.keyword(&["PIPELINE", "CONNECTION"])? {
                "PIPELINE" => Command::DropPipeline(r.name("a pipeline name", false)?),
                _ => Command::DropConnection(r.name("a connection name", false)?),
            }
        }
        _ => {
            let help = match closest(word, COMMAND_WORDS.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "statements start with CREATE; commands are SHOW, DESCRIBE, EXPLAIN, \
                         PREVIEW, APPLY, STATUS, DROP (\\help lists them)"
                    .to_string(),
            };
            return Err(SourceDiagnostic::new(
                file,
                Span::new(first.start, first.end),
                format!("unknown statement `{word}`"),
                "not a statement or command",
                Some(help),
            ));
        }
    };
    r.pos = r.pos.max(1);
    r.end()?;
    Ok(command)
}

struct Reader<'a> {
    file: &'a SourceFile,
    text: &'a str,
    toks: &'a [super::lex::Tok],
    pos: usize,
}

impl Reader<'_> {
    fn at_end(&self) -> bool {
        self.pos >= self.toks.len()
    }

    /// Where the next token is, or the end of the statement.
    fn here(&self) -> Span {
        match self.toks.get(self.pos) {
            Some(t) => Span::new(t.start, t.end),
            None => {
                let end = self.toks.last().map_or(0, |t| t.end);
                Span::new(end, end)
            }
        }
    }

    fn found(&self) -> String {
        match self.toks.get(self.pos) {
            Some(t) => format!("`{}`", &self.text[t.start..t.end]),
            None => "the end of the statement".to_string(),
        }
    }

    fn error(&self, expected: &str, help: Option<String>) -> SourceDiagnostic {
        SourceDiagnostic::new(
            self.file,
            self.here(),
            format!("expected {expected}, found {}", self.found()),
            format!("expected {expected}"),
            help,
        )
    }

    fn keyword(&mut self, words: &[&'static str]) -> Result<&'static str, SourceDiagnostic> {
        let list = words.join(" or ");
        if let Some(t) = self.toks.get(self.pos) {
            let w = self.text[t.start..t.end].to_ascii_uppercase();
            if let Some(k) = words.iter().find(|k| **k == w) {
                self.pos += 1;
                return Ok(k);
            }
            if t.kind == Kind::Word {
                if let Some(s) = closest(&w, words.iter().copied()) {
                    return Err(self.error(&list, Some(format!("did you mean `{s}`?"))));
                }
            }
        }
        Err(self.error(&list, None))
    }

    fn ident(&mut self, what: &str) -> Result<(String, Span), SourceDiagnostic> {
        match self.toks.get(self.pos) {
            Some(t) if matches!(t.kind, Kind::Word | Kind::QuotedIdent) => {
                self.pos += 1;
                Ok((
                    ident_value(&self.text[t.start..t.end]),
                    Span::new(t.start, t.end),
                ))
            }
            _ => Err(self.error(what, None)),
        }
    }

    fn name(&mut self, what: &str, qualified: bool) -> Result<Name, SourceDiagnostic> {
        let (first, span) = self.ident(what)?;
        let dot = self
            .toks
            .get(self.pos)
            .is_some_and(|t| &self.text[t.start..t.end] == ".");
        if qualified && dot {
            self.pos += 1;
            let (name, end) = self.ident("a table name after the `.`")?;
            return Ok(Name {
                schema: Some(first),
                name,
                span: Span::new(span.start, end.end),
            });
        }
        Ok(Name {
            schema: None,
            name: first,
            span,
        })
    }

    fn number(&mut self) -> Result<usize, SourceDiagnostic> {
        if let Some(t) = self.toks.get(self.pos) {
            if let Ok(n) = self.text[t.start..t.end].parse::<usize>() {
                self.pos += 1;
                return Ok(n);
            }
        }
        Err(self.error(
            "a number of rows",
            Some("for example PREVIEW shop LIMIT 3;".to_string()),
        ))
    }

    fn end(&self) -> Result<(), SourceDiagnostic> {
        if self.at_end() {
            Ok(())
        } else {
            Err(self.error("the end of the statement", None))
        }
    }
}

/// The candidate closest to `word` by edit distance, when it is close enough to be a typo.
pub fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let w = word.to_lowercase();
    candidates
        .map(|c| (edit_distance(&w, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (c.chars().count().max(w.chars().count()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(text: &str) -> Result<Command, String> {
        parse(&SourceFile::new("input", text)).map_err(|e| crate::report::render(&e))
    }

    fn name(n: &str) -> Name {
        Name {
            schema: None,
            name: n.to_string(),
            span: Span::default(),
        }
    }

    fn without_spans(c: Command) -> Command {
        let strip = |n: Name| Name {
            span: Span::default(),
            ..n
        };
        match c {
            Command::Preview { pipeline, limit } => Command::Preview {
                pipeline: strip(pipeline),
                limit,
            },
            Command::Apply {
                pipeline,
                snapshot_only,
            } => Command::Apply {
                pipeline: strip(pipeline),
                snapshot_only,
            },
            Command::Describe(n) => Command::Describe(strip(n)),
            Command::Explain(n) => Command::Explain(strip(n)),
            Command::DropPipeline(n) => Command::DropPipeline(strip(n)),
            other => other,
        }
    }

    #[test]
    fn reads_commands() {
        let ok = |t: &str| without_spans(cmd(t).unwrap_or_else(|e| panic!("{t}: {e}")));
        assert_eq!(ok("show pipelines;"), Command::ShowPipelines);
        assert_eq!(ok("SHOW CONNECTIONS"), Command::ShowConnections);
        assert_eq!(
            ok("PREVIEW Shop LIMIT 3;"),
            Command::Preview {
                pipeline: name("shop"),
                limit: 3
            }
        );
        assert_eq!(
            ok("preview \"Shop\";"),
            Command::Preview {
                pipeline: name("Shop"),
                limit: DEFAULT_PREVIEW_LIMIT
            }
        );
        assert_eq!(
            ok("APPLY shop SNAPSHOT ONLY;"),
            Command::Apply {
                pipeline: name("shop"),
                snapshot_only: true
            }
        );
        assert_eq!(
            ok("describe public.orders;"),
            Command::Describe(Name {
                schema: Some("public".into()),
                name: "orders".into(),
                span: Span::default()
            })
        );
        assert_eq!(ok("\\q"), Command::Quit);
        assert_eq!(ok("\\help"), Command::Help);
        assert_eq!(ok("create pipeline x"), Command::Create);
        assert_eq!(
            ok("DROP PIPELINE shop;"),
            Command::DropPipeline(name("shop"))
        );
    }

    #[test]
    fn mistakes_point_at_the_token() {
        let e = cmd("SHOW PIPLINES;").unwrap_err();
        assert!(
            e.contains("expected CONNECTIONS or PIPELINES or TABLES, found `PIPLINES`"),
            "{e}"
        );
        assert!(e.contains("did you mean `PIPELINES`?"), "{e}");
        assert!(e.contains("input:1:6"), "{e}");
        let e = cmd("PREVIEW shop LIMIT many;").unwrap_err();
        assert!(e.contains("expected a number of rows, found `many`"), "{e}");
        let e = cmd("EXPLAN shop;").unwrap_err();
        assert!(e.contains("did you mean `EXPLAIN`?"), "{e}");
        let e = cmd("EXPLAIN shop extra;").unwrap_err();
        assert!(
            e.contains("expected the end of the statement, found `extra`"),
            "{e}"
        );
    }
}
