//! Reading JSON Lines files back (the journals, the outbox, the state store's
//! change lines): every complete line parsed, a torn last line (a crash cut
//! it mid-write) skipped, and any other line that does not parse reported
//! with its file and line number, never skipped silently.

use std::fmt;
use std::path::Path;

use serde::de::DeserializeOwned;

/// What a file's lines gave.
#[derive(Debug, Clone, PartialEq)]
pub struct Lines<T> {
    /// The lines that parsed, in order.
    pub values: Vec<T>,
    /// The complete lines that did not (a torn last line is not one of them).
    pub bad: Vec<BadLine>,
}

/// A complete line that does not parse: a line a crash tore before medic
/// closed it with a newline at its next start, or a line edited by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based.
    pub line: usize,
    /// Why it does not parse.
    pub error: String,
}

impl fmt::Display for BadLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.error)
    }
}

/// Bad lines logged per file and read: the rest are counted.
const REPORTED: usize = 5;

impl<T> Lines<T> {
    /// The values, after logging each bad line (the first few, then a count)
    /// as `path:line`: for readers that go on with what parsed.
    pub fn reported(self, path: &Path) -> Vec<T> {
        for bad in self.bad.iter().take(REPORTED) {
            tracing::warn!(
                "{}:{}: line skipped, it does not parse: {}",
                path.display(),
                bad.line,
                bad.error
            );
        }
        if self.bad.len() > REPORTED {
            tracing::warn!(
                "{}: {} more lines skipped that do not parse",
                path.display(),
                self.bad.len() - REPORTED
            );
        }
        self.values
    }
}

/// Parses `text` line by line. The text after the last newline is a torn
/// line unless it parses (a file written without a final newline).
pub fn parse<T: DeserializeOwned>(text: &str) -> Lines<T> {
    let mut lines = Lines {
        values: Vec::new(),
        bad: Vec::new(),
    };
    let complete = text.rfind('\n').map_or(0, |end| end + 1);
    for (index, line) in text[..complete].lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(value) => lines.values.push(value),
            Err(error) => lines.bad.push(BadLine {
                line: index + 1,
                error: error.to_string(),
            }),
        }
    }
    let tail = &text[complete..];
    if !tail.trim().is_empty()
        && let Ok(value) = serde_json::from_str(tail)
    {
        lines.values.push(value);
    }
    lines
}

/// Reads and parses the file at `path`; a missing file has no lines.
pub fn read<T: DeserializeOwned>(path: &Path) -> std::io::Result<Lines<T>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(parse(&text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(parse("")),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(text: &str, values: &[u32], bad: &[usize]) {
        let lines: Lines<u32> = parse(text);
        assert_eq!(lines.values, values, "{text:?}");
        let at: Vec<usize> = lines.bad.iter().map(|b| b.line).collect();
        assert_eq!(at, bad, "{text:?}");
    }

    #[test]
    fn only_a_torn_last_line_is_skipped_without_a_word() {
        check("", &[], &[]);
        check("1\n2\n", &[1, 2], &[]);
        check("1\n2", &[1, 2], &[]);
        check("1\n\"to", &[1], &[]);
        // A torn line closed by the next start's newline is reported.
        check("1\n\"to\n3\n", &[1, 3], &[2]);
        check("x\n\n2\ny\n", &[2], &[1, 4]);
    }
}
