//! Typed forms of the `( ... )` / `WITH ( ... )` option lists. Every list is checked against
//! the names it accepts; an unknown name is an error that lists the valid ones.

use super::PlanError;
use crate::parse::{OptionItem, OptionValue, SourceFile};

/// Reads a checked option list. Created with the names the statement accepts.
pub(crate) struct OptionReader<'a> {
    file: &'a SourceFile,
    items: &'a [OptionItem],
    what: &'static str,
}

impl<'a> OptionReader<'a> {
    /// Fails on the first unquoted key that is not in `valid`. Quoted keys are let through only
    /// when `pass_through` is set (they go to a client library as they are).
    pub fn new(
        file: &'a SourceFile,
        items: &'a [OptionItem],
        what: &'static str,
        valid: &[&str],
        pass_through: bool,
    ) -> Result<Self, PlanError> {
        for item in items {
            if item.key_quoted && pass_through {
                continue;
            }
            if !valid.contains(&item.key.as_str()) {
                // A close match is the whole answer; otherwise list what is valid.
                let mut help = match super::closest(&item.key, valid.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("valid options for {what}: {}", valid.join(", ")),
                };
                if pass_through {
                    help.push_str(
                        "; quote a key ('linger.ms' = '5') to pass it to librdkafka unchanged",
                    );
                }
                return Err(PlanError::new(
                    file,
                    format!("unknown option `{}` for {what}", item.key),
                    item.key_span,
                    "not a known option",
                )
                .with_help(help));
            }
        }
        Ok(OptionReader { file, items, what })
    }

    /// The item for an unquoted key, if given (for errors about options that do not apply).
    pub fn item(&self, key: &str) -> Option<&'a OptionItem> {
        self.find(key)
    }

    /// Like [`Self::choice`], case-insensitive, returning the upper-case spelling.
    pub fn choice_upper(&self, key: &str, choices: &[&str]) -> Result<Option<String>, PlanError> {
        match self.string(key)? {
            None => Ok(None),
            Some((v, item)) => {
                let upper = v.to_ascii_uppercase();
                if choices.contains(&upper.as_str()) {
                    Ok(Some(upper))
                } else {
                    let mut err = self.type_error(item, &format!("one of {}", choices.join(", ")));
                    if let Some(s) = super::closest(&upper, choices.iter().copied()) {
                        err = err.with_help(format!("did you mean '{s}'?"));
                    }
                    Err(err)
                }
            }
        }
    }

    fn find(&self, key: &str) -> Option<&'a OptionItem> {
        self.items.iter().find(|i| !i.key_quoted && i.key == key)
    }

    /// Quoted keys with their values as strings, for client libraries.
    pub fn pass_through(&self) -> Vec<(String, String)> {
        self.items
            .iter()
            .filter(|i| i.key_quoted)
            .map(|i| (i.key.clone(), value_text(&i.value)))
            .collect()
    }

    fn type_error(&self, item: &OptionItem, expected: &str) -> PlanError {
        PlanError::new(
            self.file,
            format!("option `{}` of {} expects {expected}", item.key, self.what),
            item.value.span(),
            format!("expected {expected}"),
        )
    }

    pub fn string(&self, key: &str) -> Result<Option<(String, &'a OptionItem)>, PlanError> {
        match self.find(key) {
            None => Ok(None),
            Some(item) => match &item.value {
                OptionValue::String(s) => Ok(Some((s.value.clone(), item))),
                OptionValue::Word(w) => Ok(Some((w.value.clone(), item))),
                _ => Err(self.type_error(item, "a string")),
            },
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, PlanError> {
        match self.find(key) {
            None => Ok(None),
            Some(item) => match &item.value {
                OptionValue::Bool { value, .. } => Ok(Some(*value)),
                OptionValue::String(s) if s.value == "true" || s.value == "false" => {
                    Ok(Some(s.value == "true"))
                }
                _ => Err(self.type_error(item, "true or false")),
            },
        }
    }

    pub fn int(&self, key: &str, min: i64, max: i64) -> Result<Option<i64>, PlanError> {
        match self.find(key) {
            None => Ok(None),
            Some(item) => {
                let text = match &item.value {
                    OptionValue::Number { text, .. } => text.clone(),
                    OptionValue::String(s) => s.value.clone(),
                    _ => return Err(self.type_error(item, "a whole number")),
                };
                match text.parse::<i64>() {
                    Ok(v) if (min..=max).contains(&v) => Ok(Some(v)),
                    _ => Err(self.type_error(item, &format!("a whole number from {min} to {max}"))),
                }
            }
        }
    }

    /// A duration: a number of milliseconds, or a string like `'500ms'`, `'10s'`, `'1min'`.
    pub fn duration_ms(&self, key: &str) -> Result<Option<u64>, PlanError> {
        let Some(item) = self.find(key) else {
            return Ok(None);
        };
        let text = match &item.value {
            OptionValue::Number { text, .. } => text.clone(),
            OptionValue::String(s) => s.value.clone(),
            _ => return Err(self.type_error(item, "a duration such as '10s' or 500 (ms)")),
        };
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let factor = match unit.trim() {
            "" | "ms" => 1,
            "s" => 1000,
            "min" | "m" => 60_000,
            "h" => 3_600_000,
            _ => 0,
        };
        match num.parse::<u64>() {
            Ok(n) if factor > 0 => Ok(Some(n.saturating_mul(factor))),
            _ => Err(self.type_error(item, "a duration such as '10s', '500ms' or 500 (ms)")),
        }
    }

    /// A string that must be one of `choices`.
    pub fn choice(&self, key: &str, choices: &[&str]) -> Result<Option<String>, PlanError> {
        match self.string(key)? {
            None => Ok(None),
            Some((v, item)) => {
                if choices.contains(&v.as_str()) {
                    Ok(Some(v))
                } else {
                    let expected = format!("one of {}", choices.join(", "));
                    let mut err = self.type_error(item, &expected);
                    if let Some(s) = super::closest(&v, choices.iter().copied()) {
                        err = err.with_help(format!("did you mean '{s}'?"));
                    }
                    Err(err)
                }
            }
        }
    }
}

fn value_text(v: &OptionValue) -> String {
    match v {
        OptionValue::String(s) => s.value.clone(),
        OptionValue::Number { text, .. } => text.clone(),
        OptionValue::Bool { value, .. } => value.to_string(),
        OptionValue::Word(w) => w.value.clone(),
    }
}
