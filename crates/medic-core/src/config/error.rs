//! Config errors that point at the file, line and column, with a hint.

use std::fmt;
use std::ops::Range;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

/// Every problem found in one config file; nothing is reported piecemeal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors {
    /// The file name (or `<default>` for the embedded config).
    pub origin: String,
    /// The problems, in file order.
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.errors {
            writeln!(
                f,
                "{}:{}:{}: error: {}",
                self.origin, e.line, e.column, e.message
            )?;
            if let Some(hint) = &e.hint {
                writeln!(f, "  hint: {hint}")?;
            }
        }
        Ok(())
    }
}

/// Collects errors against one source text.
#[derive(Debug)]
pub(crate) struct Errors<'s> {
    source: &'s str,
    pub(crate) list: Vec<ConfigError>,
}

impl<'s> Errors<'s> {
    pub(crate) fn new(source: &'s str) -> Self {
        Self {
            source,
            list: Vec::new(),
        }
    }

    /// Records an error at a byte span.
    pub(crate) fn at(
        &mut self,
        span: Range<usize>,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let (line, column) = position(self.source, span.start);
        self.list.push(ConfigError {
            line,
            column,
            message: message.into(),
            hint,
        });
    }

    /// Records a deserialization error from toml, with a hint for unknown keys.
    pub(crate) fn toml(&mut self, error: &toml::de::Error, allowed: &[&str]) {
        let span = error.span().unwrap_or(0..0);
        let message = error.message().trim().to_owned();
        let expected = expected_keys(&message);
        let allowed = if expected.is_empty() {
            allowed.to_vec()
        } else {
            expected
        };
        let hint = unknown_key(&message).and_then(|key| suggest(key, &allowed));
        self.at(span, first_line(&message), hint);
    }

    /// The source text errors point into.
    pub(crate) fn source(&self) -> &'s str {
        self.source
    }

    /// `value` when nothing was recorded, else every error in file order.
    pub(crate) fn into_result<T>(self, origin: &str, value: T) -> Result<T, ConfigErrors> {
        if self.list.is_empty() {
            return Ok(value);
        }
        Err(self.finish(origin))
    }

    /// Every recorded error in file order.
    pub(crate) fn finish(mut self, origin: &str) -> ConfigErrors {
        self.list.sort_by_key(|e| (e.line, e.column));
        self.list.dedup();
        ConfigErrors {
            origin: origin.to_owned(),
            errors: self.list,
        }
    }
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or(message).to_owned()
}

/// The key named by serde's "unknown field `x`, expected …" message.
fn unknown_key(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

/// The keys serde lists after "expected one of" (the table's own allowed keys).
fn expected_keys(message: &str) -> Vec<&str> {
    let Some((_, expected)) = message.split_once("expected") else {
        return Vec::new();
    };
    expected.split('`').skip(1).step_by(2).collect()
}

/// "did you mean `x`?" for a near miss, else the list of allowed keys.
fn suggest(key: &str, allowed: &[&str]) -> Option<String> {
    let best = allowed
        .iter()
        .map(|candidate| (distance(key, candidate), *candidate))
        .min()
        .filter(|(d, _)| *d <= 2.max(key.len() / 3));
    best.map(|(_, candidate)| format!("did you mean `{candidate}`?"))
}

/// Levenshtein distance, for suggestions.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(current + 1);
            previous = current;
        }
    }
    row[b.len()]
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn position(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}
