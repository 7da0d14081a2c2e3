//! `alerts/outbox.jsonl`: what each sink was given and what became of it.
//! Appended and fsynced like the journals: a `queued` record (holding the
//! alert) before a sink's task sees an alert, a `delivered`, `failed` or
//! `dropped` record when it is done, `retrying` after each failed attempt.
//! At start the file is compacted (temp file, fsync, rename) and what was not
//! done yet is handed to the sinks again, so nothing queued is lost to a crash
//! and nothing delivered is sent twice.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::journal::{AlertLine, Journal, parse_lines};

/// How many alerts (by id, newest) compaction keeps the records of.
const KEEP_ALERTS: usize = 1000;

/// One line of the outbox: the documented delivery-state contract `medic alerts` reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Record {
    /// The alert was handed to the sink's queue.
    Queued {
        /// The sink's name.
        sink: String,
        /// The alert line, as in the alerts file.
        alert: AlertLine,
    },
    /// An attempt failed; another follows after a backoff.
    Retrying {
        /// The sink's name.
        sink: String,
        /// The alert's id.
        id: String,
        /// When the attempt failed.
        ts: Timestamp,
        /// Failed attempts so far.
        attempts: u32,
        /// Why, with secrets removed.
        error: String,
    },
    /// The sink took it.
    Delivered {
        /// The sink's name.
        sink: String,
        /// The alert's id.
        id: String,
        /// When.
        ts: Timestamp,
        /// Attempts it took.
        attempts: u32,
    },
    /// The sink rejected it for good (a 4xx other than 408/425/429).
    Failed {
        /// The sink's name.
        sink: String,
        /// The alert's id.
        id: String,
        /// When.
        ts: Timestamp,
        /// Attempts made.
        attempts: u32,
        /// Why, with secrets removed.
        error: String,
    },
    /// The sink's queue was full: never sent.
    Dropped {
        /// The sink's name.
        sink: String,
        /// The alert's id.
        id: String,
        /// When.
        ts: Timestamp,
        /// Why.
        error: String,
    },
}

impl Record {
    fn key(&self) -> (&str, &str) {
        match self {
            Record::Queued { sink, alert } => (sink, &alert.id),
            Record::Retrying { sink, id, .. }
            | Record::Delivered { sink, id, .. }
            | Record::Failed { sink, id, .. }
            | Record::Dropped { sink, id, .. } => (sink, id),
        }
    }
}

/// Where one alert stands with one sink.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The alert, when its `queued` record is kept.
    pub alert: Option<AlertLine>,
    /// The latest record about it.
    pub last: Record,
}

impl Delivery {
    /// Not finished: queued or retrying.
    pub fn pending(&self) -> bool {
        matches!(self.last, Record::Queued { .. } | Record::Retrying { .. })
    }

    /// `queued`, `retrying`, `delivered`, `failed` or `dropped`.
    pub fn state(&self) -> &'static str {
        match self.last {
            Record::Queued { .. } => "queued",
            Record::Retrying { .. } => "retrying",
            Record::Delivered { .. } => "delivered",
            Record::Failed { .. } => "failed",
            Record::Dropped { .. } => "dropped",
        }
    }
}

/// Every (sink, alert id) in the order the alerts were queued.
#[derive(Debug, Default)]
pub struct Deliveries {
    /// (sink, id) → where it stands, ordered by first record.
    pub entries: Vec<((String, String), Delivery)>,
}

impl Deliveries {
    /// Reads an outbox; a missing file is empty and a torn last line is skipped.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        Ok(Self::from_records(parse_lines(&text)))
    }

    fn from_records(records: Vec<Record>) -> Self {
        let mut index: HashMap<(String, String), usize> = HashMap::new();
        let mut entries: Vec<((String, String), Delivery)> = Vec::new();
        for record in records {
            let key = {
                let (sink, id) = record.key();
                (sink.to_owned(), id.to_owned())
            };
            match index.get(&key) {
                Some(&at) => {
                    let entry = &mut entries[at].1;
                    if let Record::Queued { alert, .. } = &record {
                        entry.alert = Some(alert.clone());
                    }
                    entry.last = record;
                }
                None => {
                    index.insert(key.clone(), entries.len());
                    let alert = match &record {
                        Record::Queued { alert, .. } => Some(alert.clone()),
                        _ => None,
                    };
                    entries.push((
                        key,
                        Delivery {
                            alert,
                            last: record,
                        },
                    ));
                }
            }
        }
        Self { entries }
    }

    /// The alerts still to deliver to `sink`, oldest first.
    pub fn pending(&self, sink: &str) -> Vec<(AlertLine, u32)> {
        self.entries
            .iter()
            .filter(|((s, _), d)| s == sink && d.pending())
            .filter_map(|(_, d)| {
                let attempts = match d.last {
                    Record::Retrying { attempts, .. } => attempts,
                    _ => 0,
                };
                d.alert.clone().map(|a| (a, attempts))
            })
            .collect()
    }

    /// Each alert id's deliveries, for `medic alerts`.
    pub fn by_alert(&self) -> BTreeMap<&str, Vec<(&str, &Delivery)>> {
        let mut out: BTreeMap<&str, Vec<(&str, &Delivery)>> = BTreeMap::new();
        for ((sink, id), delivery) in &self.entries {
            out.entry(id.as_str())
                .or_default()
                .push((sink.as_str(), delivery));
        }
        out
    }

    /// The records worth keeping: everything about the newest alerts, the
    /// queued record and the latest state for each.
    fn compacted(&self) -> Vec<Record> {
        let mut ids: Vec<&str> = Vec::new();
        for ((_, id), _) in &self.entries {
            if !ids.contains(&id.as_str()) {
                ids.push(id);
            }
        }
        let keep: std::collections::HashSet<&str> =
            ids.iter().rev().take(KEEP_ALERTS).copied().collect();
        let mut out = Vec::new();
        for ((sink, id), delivery) in &self.entries {
            if !keep.contains(id.as_str()) && !delivery.pending() {
                continue;
            }
            if let Some(alert) = &delivery.alert {
                out.push(Record::Queued {
                    sink: sink.clone(),
                    alert: alert.clone(),
                });
            }
            if !matches!(delivery.last, Record::Queued { .. }) {
                out.push(delivery.last.clone());
            }
        }
        out
    }
}

/// The outbox file, shared by the supervisor loop (queued) and the sink tasks (the rest).
#[derive(Debug, Clone)]
pub struct Outbox {
    journal: Arc<Mutex<Journal>>,
}

impl Outbox {
    /// Loads the outbox at `path`, rewrites it compacted, and opens it for appending.
    pub fn open(path: &Path) -> anyhow::Result<(Self, Deliveries)> {
        let deliveries = Deliveries::load(path)?;
        rewrite(path, &deliveries.compacted())?;
        let journal = Journal::open(path)?;
        Ok((
            Self {
                journal: Arc::new(Mutex::new(journal)),
            },
            deliveries,
        ))
    }

    /// Appends one record durably; a failure is logged, never fatal: alerts still go out.
    pub fn record(&self, record: &Record) {
        let result = match self.journal.lock() {
            Ok(mut journal) => journal.append(record),
            Err(poisoned) => poisoned.into_inner().append(record),
        };
        if let Err(error) = result {
            tracing::error!(
                error = format!("{error:#}"),
                "Cannot write the alert outbox"
            );
        }
    }
}

/// Replaces the file atomically with `records`: temp file, fsync, rename, fsync the directory.
fn rewrite(path: &Path, records: &[Record]) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let temp = PathBuf::from(format!("{}.tmp", path.display()));
    let mut file = std::fs::File::create(&temp)
        .with_context(|| format!("cannot create {}", temp.display()))?;
    let mut text = Vec::new();
    for record in records {
        serde_json::to_writer(&mut text, record).context("cannot encode an outbox record")?;
        text.push(b'\n');
    }
    file.write_all(&text)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", temp.display()))?;
    std::fs::rename(&temp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    if let Ok(dir) = std::fs::File::open(dir) {
        dir.sync_all().ok();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(id: &str) -> AlertLine {
        AlertLine {
            id: id.into(),
            ts: Timestamp::UNIX_EPOCH,
            service: "web".into(),
            severity: "critical".into(),
            kind: "escalated".into(),
            incident: Some("i1".into()),
            message: "m".into(),
            resolved: false,
            evidence: medic_core::Evidence::new(),
        }
    }

    #[test]
    fn pending_survives_reopen_and_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts/outbox.jsonl");
        let (outbox, loaded) = Outbox::open(&path).unwrap();
        assert!(loaded.entries.is_empty());
        for id in ["a", "b"] {
            outbox.record(&Record::Queued {
                sink: "ops".into(),
                alert: alert(id),
            });
        }
        outbox.record(&Record::Delivered {
            sink: "ops".into(),
            id: "a".into(),
            ts: Timestamp::UNIX_EPOCH,
            attempts: 1,
        });
        outbox.record(&Record::Retrying {
            sink: "ops".into(),
            id: "b".into(),
            ts: Timestamp::UNIX_EPOCH,
            attempts: 2,
            error: "HTTP 500".into(),
        });
        drop(outbox);
        // A torn last line, as a kill -9 mid-write would leave.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"{\"op\":\"deliv").unwrap();
        let (_, loaded) = Outbox::open(&path).unwrap();
        let pending = loaded.pending("ops");
        assert_eq!(pending.len(), 1);
        assert_eq!((pending[0].0.id.as_str(), pending[0].1), ("b", 2));
        let states: Vec<&str> = loaded.entries.iter().map(|(_, d)| d.state()).collect();
        assert_eq!(states, ["delivered", "retrying"]);
        // Compaction kept the same meaning.
        let (_, again) = Outbox::open(&path).unwrap();
        assert_eq!(again.entries, loaded.entries);
    }
}
