//! The two append-only JSON Lines files people read: the recovery log and the
//! critical alerts file. One `write` per line on an O_APPEND file, so a crash
//! of medic loses at most the line being written and never corrupts the rest
//! (readers skip a torn last line); fsync once per batch of lines (`sync`), so
//! a power loss loses at most that batch and 10,000 units starting up do not
//! cost 10,000 fsyncs.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use jiff::Timestamp;
use medic_core::{Alert, Evidence, RecoveryEvent};
use serde::{Deserialize, Serialize};

/// One line of `recovery.jsonl`: the documented contract of the recovery log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveryLine {
    /// When medic recorded it (RFC 3339).
    pub ts: Timestamp,
    /// The unit.
    pub service: String,
    /// What happened: `failing`, `restart`, `recovered`, `escalated`, …
    pub event: String,
    /// The state after the event.
    pub state: String,
    /// The incident id, when part of one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// The restart attempt, for restart events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// One human line.
    pub message: String,
    /// The facts behind it.
    #[serde(default, skip_serializing_if = "Evidence::is_empty")]
    pub evidence: Evidence,
}

impl RecoveryLine {
    /// Stamps a core event with the wall-clock time.
    pub fn new(ts: Timestamp, event: RecoveryEvent) -> Self {
        Self {
            ts,
            service: event.service,
            event: event.kind.as_str().to_owned(),
            state: event.state.to_owned(),
            incident: event.incident,
            attempt: event.attempt,
            message: event.message,
            evidence: event.evidence,
        }
    }
}

/// One line of `alerts/critical.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertLine {
    /// Unique id of this alert line.
    pub id: String,
    /// When medic raised it (RFC 3339).
    pub ts: Timestamp,
    /// The unit.
    pub service: String,
    /// `critical`, `warning` or `info`.
    pub severity: String,
    /// `escalated`, `rolled_back`, `resolved`, …
    pub kind: String,
    /// The incident id, when part of one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// One human line.
    pub message: String,
    /// True on the line that ends an alerted incident.
    #[serde(default)]
    pub resolved: bool,
    /// The facts behind it.
    #[serde(default, skip_serializing_if = "Evidence::is_empty")]
    pub evidence: Evidence,
}

impl AlertLine {
    /// Stamps a core alert with the wall-clock time and an id.
    pub fn new(ts: Timestamp, id: String, alert: Alert) -> Self {
        Self {
            id,
            ts,
            service: alert.service,
            severity: alert.severity.as_str().to_owned(),
            kind: alert.kind.to_owned(),
            incident: alert.incident,
            message: alert.message,
            resolved: alert.resolved,
            evidence: alert.evidence,
        }
    }
}

/// An append-only JSON Lines file, reopened when it was rotated away.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    /// Lines written since the last fsync.
    unsynced: bool,
}

impl Journal {
    /// Opens (creating parents and the file) for appending.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let file = open_append(path)?;
        Ok(Self {
            path: path.to_owned(),
            file,
            unsynced: false,
        })
    }

    /// Appends one value as one line (one `write`); `sync` makes it durable.
    pub fn append(&mut self, value: &impl Serialize) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(value).context("cannot encode a journal line")?;
        line.push(b'\n');
        if !self.path.exists() {
            // Rotated away (renamed by logrotate): start a new file at the same path.
            self.file = open_append(&self.path)?;
        }
        self.unsynced = true;
        self.file
            .write_all(&line)
            .with_context(|| format!("cannot append to {}", self.path.display()))
    }

    /// Makes the lines appended so far durable (fsync), if there are any.
    pub fn sync(&mut self) -> anyhow::Result<()> {
        if std::mem::take(&mut self.unsynced) {
            self.file
                .sync_data()
                .with_context(|| format!("cannot fsync {}", self.path.display()))?;
        }
        Ok(())
    }
}

fn open_append(path: &Path) -> anyhow::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))
}

/// Parses the complete lines of a journal; a torn last line (crash mid-write) is skipped.
pub fn parse_lines<T: for<'de> Deserialize<'de>>(text: &str) -> Vec<T> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_lines_that_parse_back_and_survive_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/recovery.jsonl");
        let mut journal = Journal::open(&path).unwrap();
        let line = |n: u32| RecoveryLine {
            ts: Timestamp::UNIX_EPOCH,
            service: "web".into(),
            event: "restart".into(),
            state: "recovering".into(),
            incident: Some("i1".into()),
            attempt: Some(n),
            message: "restart".into(),
            evidence: Evidence::new(),
        };
        journal.append(&line(1)).unwrap();
        std::fs::rename(&path, dir.path().join("logs/recovery.jsonl.1")).unwrap();
        journal.append(&line(2)).unwrap();
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"torn\":");
        let lines: Vec<RecoveryLine> = parse_lines(&text);
        assert_eq!(lines, vec![line(2)]);
    }
}
