//! The scheduled report digest (`[report] every = "7d"`, `sinks = [...]`): at
//! each period boundary — multiples of `every` counted from Monday 1970-01-05
//! 00:00 UTC, so "7d" is every Monday 00:00 UTC and "1d" every midnight UTC —
//! the Markdown report of the period that just ended goes to the listed
//! `[[alert]]` sinks, through the same crash-safe outbox as alerts. The end of
//! the last period sent is kept in `report-digest.json` (0600, replaced
//! atomically), so a restart neither repeats a digest nor skips one: a period
//! that ended while medic was down is sent when it starts again. On the very
//! first start nothing is sent for a period medic did not watch.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use medic_core::config::{Config, ReportDigest};
use medic_records::journal::AlertLine;
use medic_records::report;
use serde::{Deserialize, Serialize};

use crate::shell::{Event, Shell};

/// Monday 1970-01-05 00:00 UTC: where periods are counted from.
const ANCHOR_SECS: i64 = 4 * 86_400;

/// The state file.
#[derive(Debug, Default, Serialize, Deserialize)]
struct DigestState {
    /// End of the last period whose digest was handed to the sinks.
    last_period_end: Option<Timestamp>,
}

/// The latest period boundary at or before `now`.
pub fn boundary(now: Timestamp, every: Duration) -> Timestamp {
    let every = i64::try_from(every.as_secs()).unwrap_or(i64::MAX).max(1);
    let since = now.as_second() - ANCHOR_SECS;
    let start = ANCHOR_SECS + since.div_euclid(every) * every;
    Timestamp::from_second(start).unwrap_or(now)
}

/// Starts the digest task when `[report]` is configured.
pub fn start(config: &Config, shell: &Shell) {
    let Some(digest) = config.report.clone() else {
        return;
    };
    let task = Digest {
        digest,
        services: config.services.iter().map(|s| s.name.clone()).collect(),
        recovery_log: config.medic.recovery_log.clone(),
        state_dir: config.medic.state_dir.clone(),
        host: medic_alerts::hostname::hostname(),
    };
    shell.tracker.spawn(task.run(shell.clone()));
}

struct Digest {
    digest: ReportDigest,
    services: Vec<String>,
    recovery_log: PathBuf,
    state_dir: PathBuf,
    host: String,
}

impl Digest {
    fn state_path(&self) -> PathBuf {
        self.state_dir.join("report-digest.json")
    }

    async fn run(self, shell: Shell) {
        let path = self.state_path();
        let mut last = read_state(&path).last_period_end;
        if last.is_none() {
            // First start: the period now running is the first one medic watches.
            let now = boundary(crate::clock::wall_now(), self.digest.every);
            last = Some(now);
            write_state(&path, now);
        }
        loop {
            let due = boundary(crate::clock::wall_now(), self.digest.every);
            if last.is_some_and(|l| l < due) {
                let line = self.line(due);
                let event = Event::Digest {
                    line,
                    sinks: self.digest.sinks.clone(),
                };
                if shell.events.send(event).await.is_err() {
                    return;
                }
                write_state(&path, due);
                last = Some(due);
            }
            let next = due
                .checked_add(
                    SignedDuration::try_from(self.digest.every).unwrap_or(SignedDuration::MAX),
                )
                .unwrap_or(due);
            // Sleep until the next boundary, waking at least hourly so a
            // changed wall clock (sleep, NTP) is noticed.
            let wait = next
                .duration_since(crate::clock::wall_now())
                .unsigned_abs()
                .clamp(Duration::from_secs(1), Duration::from_secs(3600));
            tokio::select! {
                () = shell.cancel.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// The digest of the period ending at `end`, as an alert line.
    fn line(&self, end: Timestamp) -> AlertLine {
        let lines = report::read_recovery_log(&self.recovery_log);
        let history = report::read_history(&self.state_dir);
        let period = SignedDuration::try_from(self.digest.every).unwrap_or(SignedDuration::MAX);
        let built = report::build(&lines, history.as_ref(), &self.services, end, period, None);
        let mut evidence = serde_json::Map::new();
        if let Ok(serde_json::Value::Object(overall)) = serde_json::to_value(&built.overall) {
            evidence.insert("overall".into(), overall.into());
        }
        evidence.insert("from".into(), built.from.to_string().into());
        evidence.insert("to".into(), built.to.to_string().into());
        AlertLine {
            id: format!("report-{}", end.as_second()),
            ts: crate::clock::wall_now(),
            service: "medic".into(),
            severity: "info".into(),
            kind: "report".into(),
            incident: None,
            message: report::markdown(&built, &self.host),
            resolved: false,
            evidence,
        }
    }
}

fn read_state(path: &Path) -> DigestState {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Replaces the state file atomically (temp file, fsync, rename), mode 0600.
fn write_state(path: &Path, end: Timestamp) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let state = DigestState {
        last_period_end: Some(end),
    };
    let temp = path.with_extension("json.tmp");
    let written = (|| -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(&serde_json::to_vec(&state).unwrap_or_default())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if let Err(error) = written {
        tracing::warn!(path = %path.display(), %error, "Cannot record the report digest sent");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekly_periods_end_on_monday_midnight_utc() {
        let week = Duration::from_secs(7 * 86_400);
        let sunday: Timestamp = "2026-11-29T16:00:00Z".parse().unwrap();
        assert_eq!(boundary(sunday, week).to_string(), "2026-11-23T00:00:00Z");
        let monday: Timestamp = "2026-11-30T00:00:00Z".parse().unwrap();
        assert_eq!(boundary(monday, week), monday);
        let day = Duration::from_secs(86_400);
        assert_eq!(boundary(sunday, day).to_string(), "2026-11-29T00:00:00Z");
    }
}
