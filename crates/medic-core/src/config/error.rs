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
    /// What is valid but should change (deprecated keys), in the same form.
    warnings: Vec<ConfigError>,
}

impl<'s> Errors<'s> {
    pub(crate) fn new(source: &'s str) -> Self {
        Self {
            source,
            list: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Records a warning at a byte span: the config stays valid.
    pub(crate) fn warn_at(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, column) = position(self.source, span.start);
        self.warnings.push(ConfigError {
            line,
            column,
            message: message.into(),
            hint: None,
        });
    }

    /// The warnings as `file:line:column: warning: …`, in file order.
    pub(crate) fn warnings(&mut self, origin: &str) -> Vec<String> {
        self.warnings.sort_by_key(|w| (w.line, w.column));
        self.warnings
            .iter()
            .map(|w| format!("{origin}:{}:{}: warning: {}", w.line, w.column, w.message))
            .collect()
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

    /// Records a syntax or deserialization error from toml, in plain words, with a
    /// "did you mean" hint for a near-miss unknown key.
    pub(crate) fn toml(&mut self, error: &toml::de::Error) {
        self.toml_in(error, &[], &[]);
    }

    /// Like [`Errors::toml`], for a table decoded in parts: when serde lists exactly
    /// `level` as the expected keys, the table also accepts `more` (a service's
    /// policy keys are decoded apart), so the message and the hint name both.
    pub(crate) fn toml_in(&mut self, error: &toml::de::Error, level: &[&str], more: &[&str]) {
        let span = error.span().unwrap_or(0..0);
        let message = first_line(error.message().trim());
        let Some(key) = unknown_key(&message) else {
            let hint = missing_key(&message).map(|key| format!("add `{key} = …` to this table"));
            self.at(span, plain(&message), hint);
            return;
        };
        let mut allowed = expected_keys(&message);
        let message = if !more.is_empty() && allowed == level {
            allowed.extend(more);
            let list: Vec<String> = allowed.iter().map(|k| format!("`{k}`")).collect();
            format!("unknown field `{key}`, expected one of {}", list.join(", "))
        } else {
            message.clone()
        };
        let hint = suggest(key, &allowed);
        self.at(span, message, hint);
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

/// serde's type names in the words of a config file.
fn plain(message: &str) -> String {
    const WORDS: &[(&str, &str)] = &[
        ("expected u16", "expected a non-negative integer"),
        ("expected u32", "expected a non-negative integer"),
        ("expected u64", "expected a non-negative integer"),
        ("expected usize", "expected a non-negative integer"),
        ("expected i32", "expected an integer"),
        ("expected i64", "expected an integer"),
        ("expected f64", "expected a number"),
        ("expected a sequence", "expected an array"),
        ("expected a map", "expected a table"),
    ];
    let mut message = message.to_owned();
    // `expected struct RawProbe` and the like: the names are internal.
    while let Some(at) = message.find("expected struct Raw") {
        let end = message[at + "expected struct ".len()..]
            .find(|c: char| !c.is_ascii_alphanumeric())
            .map_or(message.len(), |n| at + "expected struct ".len() + n);
        message.replace_range(at..end, "expected a table");
    }
    for (from, to) in WORDS {
        if let Some(rest) = message.strip_suffix(from) {
            message = format!("{rest}{to}");
        }
    }
    message
}

/// The key named by serde's "unknown field `x`, expected …" message.
fn unknown_key(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

/// The key named by serde's "missing field `x`" message.
pub(crate) fn missing_key(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}

/// The keys serde lists after "expected one of" (the table's own allowed keys).
fn expected_keys(message: &str) -> Vec<&str> {
    let Some((_, expected)) = message.split_once("expected") else {
        return Vec::new();
    };
    expected.split('`').skip(1).step_by(2).collect()
}

/// "did you mean `x`?" for a near miss.
pub(crate) fn suggest(key: &str, allowed: &[&str]) -> Option<String> {
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
