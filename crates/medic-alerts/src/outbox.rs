//! `alerts/outbox.jsonl`: what each sink was given and what became of it.
//! Appended and fsynced like the journals: a `queued` record (holding the
//! alert) before a sink's task sees an alert, a `delivered`, `failed` or
//! `dropped` record when it is done, `retrying` after each failed attempt.
//! At start, and whenever it passes 1 MiB, the file is compacted (temp file,
//! fsync, rename) keeping the same meaning; at start what was not done yet is handed to the sinks again, so nothing queued is lost to a crash
//! and nothing delivered is sent twice.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use jiff::Timestamp;
use medic_records::journal::{AlertLine, Journal, Limit};
use serde::{Deserialize, Serialize};

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
    /// Reads an outbox; a missing file is empty, a torn last line is skipped
    /// and any other bad line logged with its number.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let lines = medic_records::lines::read(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Ok(Self::from_records(lines.reported(path)))
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

/// How large the outbox may grow before it is compacted while running.
const COMPACT_ABOVE: u64 = 1024 * 1024;

/// The outbox file, shared by the supervisor loop (queued) and the sink tasks
/// (the rest); its writer task appends, fsyncs per batch and compacts it
/// (`compact_file`) once it passes `COMPACT_ABOVE`.
#[derive(Debug, Clone)]
pub struct Outbox {
    journal: Journal,
}

impl Outbox {
    /// Loads the outbox at `path`, rewrites it compacted, and starts its writer.
    pub fn open(
        path: &Path,
        tracker: &tokio_util::task::TaskTracker,
    ) -> anyhow::Result<(Self, Deliveries)> {
        let deliveries = Deliveries::load(path)?;
        if let Err(error) = rewrite(path, &deliveries.compacted()) {
            // A read-only state_dir: the writer reports it and compacts once it can write.
            tracing::warn!(
                error = format!("{error:#}"),
                "Cannot compact the alert outbox at start"
            );
        }
        let limit = Limit::Compact {
            max_size: COMPACT_ABOVE,
            compact: compact_file,
        };
        let journal = Journal::start(path, "alert outbox", limit, tracker);
        Ok((Self { journal }, deliveries))
    }

    /// Appends one record; never waits for the disk, never fails: alerts still go out.
    pub fn record(&self, record: &Record) {
        self.journal.append(record);
    }

    /// The outbox's writer, for health and shutdown.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }
}

/// Rewrites the outbox at `path` with only the records worth keeping.
fn compact_file(path: &Path) -> anyhow::Result<bool> {
    rewrite(path, &Deliveries::load(path)?.compacted())?;
    Ok(true)
}

/// Replaces the file atomically and privately with `records`.
fn rewrite(path: &Path, records: &[Record]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    medic_records::files::replace(path, |out| {
        for record in records {
            serde_json::to_writer(&mut *out, record).context("cannot encode an outbox record")?;
            out.write_all(b"\n")?;
        }
        Ok(())
    })
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

    /// Opens the outbox, runs `use_it`, and waits until its writer is done.
    async fn with_outbox(path: &Path, use_it: impl FnOnce(&Outbox)) -> Deliveries {
        let tracker = tokio_util::task::TaskTracker::new();
        let (outbox, loaded) = Outbox::open(path, &tracker).unwrap();
        use_it(&outbox);
        outbox.journal().close();
        tracker.close();
        tracker.wait().await;
        loaded
    }

    #[tokio::test]
    async fn pending_survives_reopen_and_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts/outbox.jsonl");
        let loaded = with_outbox(&path, |outbox| {
            record_two(outbox);
        })
        .await;
        assert!(loaded.entries.is_empty());
        // A torn last line, as a kill -9 mid-write would leave.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"{\"op\":\"deliv").unwrap();
        let loaded = with_outbox(&path, |_| {}).await;
        let pending = loaded.pending("ops");
        assert_eq!(pending.len(), 1);
        assert_eq!((pending[0].0.id.as_str(), pending[0].1), ("b", 2));
        let states: Vec<&str> = loaded.entries.iter().map(|(_, d)| d.state()).collect();
        assert_eq!(states, ["delivered", "retrying"]);
        // Compaction kept the same meaning.
        let again = with_outbox(&path, |_| {}).await;
        assert_eq!(again.entries, loaded.entries);
    }

    fn record_two(outbox: &Outbox) {
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
    }

    #[tokio::test]
    async fn compacts_while_running() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts/outbox.jsonl");
        let size = || {
            std::fs::metadata(dir.path().join("alerts/outbox.jsonl"))
                .unwrap()
                .len()
        };
        with_outbox(&path, |outbox| {
            for n in 0..(6 * KEEP_ALERTS) {
                let id = format!("{n}");
                outbox.record(&Record::Queued {
                    sink: "ops".into(),
                    alert: alert(&id),
                });
                outbox.record(&Record::Delivered {
                    sink: "ops".into(),
                    id,
                    ts: Timestamp::UNIX_EPOCH,
                    attempts: 1,
                });
                if n % 100 == 0 {
                    outbox.journal().flush(std::time::Duration::from_secs(10));
                }
            }
        })
        .await;
        // Compacted on the way (6,000 alerts take about 2 MiB), the newest kept.
        assert!(
            size() <= COMPACT_ABOVE + 64 * 1024,
            "outbox grew to {}",
            size()
        );
        let loaded = Deliveries::load(&path).unwrap();
        assert!(
            loaded.entries.len() < 4 * KEEP_ALERTS,
            "{}",
            loaded.entries.len()
        );
        assert_eq!(
            loaded.entries.last().unwrap().0.1,
            format!("{}", 6 * KEEP_ALERTS - 1)
        );
    }
}
