//! The announcer: what medic tells people. The recovery log and the alerts
//! file (each a journal with its writer task), the `[[alert]]` sinks, the
//! storm rule with its summaries, the per-service line budget on stderr, and
//! medic's own alerts (a storm, files it cannot write, a rejected reload).

use std::path::PathBuf;

use medic_core::config::Config;
use medic_core::storm::{Active, Change, LineBudget, SavedStorm, Storm, StormRule};
use medic_core::supervisor::MEDIC_UNIT;
use medic_core::{Alert, EventKind, Evidence, RecoveryEvent, Severity};
use medic_records::files::FileHealth;
use medic_records::journal::{AlertLine, Journal, Limit, Mark, RecoveryLine};

use crate::clock::WallClock;
use crate::shell::Shell;
use medic_alerts::Sinks;

/// The journals, the sinks and the rules for what reaches stderr.
pub(super) struct Announcer {
    recovery: Journal,
    alerts: Journal,
    /// The `[[alert]]` sinks every alert line is also handed to.
    sinks: Sinks,
    /// Many services failing at once: one summary and one alert instead of thousands.
    storm: Storm,
    /// Per-service lines on stderr, a few a second (the recovery log has them all).
    lines: LineBudget,
    /// The sinks were told that files are not writable (told once, then once when they are).
    unwritable: bool,
    /// Makes alert ids unique within a millisecond.
    alert_seq: u64,
    clock: WallClock,
    /// Where the recovery log is, for the line that says what stderr was spared.
    recovery_log: PathBuf,
    /// The status page's address, for storm lines (`metrics_listen`).
    status_page: Option<String>,
}

impl Announcer {
    /// Opens the journals and starts the sinks.
    pub(super) fn start(config: &Config, shell: &Shell, clock: WallClock) -> anyhow::Result<Self> {
        let settings = &config.medic;
        let rotate = Limit::Rotate {
            max_size: settings.journal_max_size,
            keep: settings.journal_keep,
        };
        let recovery = Journal::start(
            &settings.recovery_log,
            "recovery log",
            rotate,
            &shell.tracker,
        );
        let alerts = Journal::start(&settings.alerts_file, "alerts file", rotate, &shell.tracker);
        Ok(Self {
            recovery,
            alerts,
            sinks: Sinks::start(config, &shell.tracker, &shell.cancel)?,
            storm: Storm::new(settings.storm),
            lines: LineBudget::default(),
            unwritable: false,
            alert_seq: 0,
            clock,
            recovery_log: settings.recovery_log.clone(),
            status_page: settings
                .metrics_listen
                .as_ref()
                .map(|l| format!("http://{l}/")),
        })
    }

    /// Writes a recovery event to the recovery log (and, within the budget,
    /// to stderr) and feeds it to the storm rule; true when a storm began or
    /// ended (`services` is how many units are watched).
    pub(super) fn log(
        &mut self,
        now: std::time::Instant,
        event: RecoveryEvent,
        services: usize,
    ) -> bool {
        let turned = self.storm_track(now, &event, services);
        let (service, kind) = (&event.service, event.kind.as_str());
        let incident = event.incident.as_deref().unwrap_or("");
        if !self.loud(now) {
            // In a storm, or past a few a second, the per-service lines are
            // in the recovery log; stderr gets the counts (`tick`).
            tracing::debug!(%service, event = kind, incident, "{}", event.message);
        } else if is_trouble(event.kind) {
            tracing::warn!(%service, event = kind, incident, "{}", event.message);
        } else {
            tracing::info!(%service, event = kind, incident, "{}", event.message);
        }
        let line = RecoveryLine::new(crate::clock::wall_now(), event);
        self.recovery.append(&line);
        turned
    }

    /// Writes an alert to the alerts file and hands it to the sinks, unless
    /// a storm holds it (the sinks get the storm's own alert instead).
    pub(super) fn alert(&mut self, now: std::time::Instant, alert: Alert) {
        let held = self.storm.holds(&alert.service, alert.resolved);
        if held || !self.loud(now) {
            tracing::debug!(service = %alert.service, kind = alert.kind, "{}", alert.message);
        } else if alert.severity == Severity::Critical {
            tracing::error!(service = %alert.service, kind = alert.kind, "{}", alert.message);
        } else {
            tracing::warn!(service = %alert.service, kind = alert.kind, "{}", alert.message);
        }
        let line = self.alert_line(alert);
        self.alerts.append(&line);
        if !held {
            self.sinks.send(&line);
        }
    }

    /// Hands a line to the named sinks, whatever their routing (the digest).
    pub(super) fn send_to(&self, sinks: &[String], line: &AlertLine) {
        self.sinks.send_to(sinks, line);
    }

    /// Stamps an alert with the wall-clock time and a unique id.
    fn alert_line(&mut self, alert: Alert) -> AlertLine {
        self.alert_seq += 1;
        let ts = crate::clock::wall_now();
        let id = format!("{}-{}", ts.as_millisecond(), self.alert_seq);
        AlertLine::new(ts, id, alert)
    }

    /// Writes one of medic's own alerts and hands it to the sinks.
    fn medic_alert(&mut self, alert: Alert) {
        let line = self.alert_line(alert);
        self.alerts.append(&line);
        self.sinks.send(&line);
    }

    /// An alert about medic itself (a storm, a file it cannot write): critical, or info when resolved.
    fn medic_trouble(
        &mut self,
        kind: &'static str,
        message: String,
        evidence: Evidence,
        resolved: bool,
    ) {
        if resolved {
            tracing::info!(kind, "{message}");
        } else {
            tracing::warn!(kind, "{message}");
        }
        let severity = if resolved {
            Severity::Info
        } else {
            Severity::Critical
        };
        self.medic_alert(medic_alert(kind, severity, message, evidence, resolved));
    }

    /// Logs a rejected reload and writes a `config_rejected` alert with the errors.
    pub(super) fn config_rejected(&mut self, error: &str) {
        tracing::error!("Config reload rejected, the running config stays:\n{error}");
        let mut evidence = Evidence::new();
        evidence.insert(
            "errors".into(),
            error.lines().map(str::to_owned).collect::<Vec<_>>().into(),
        );
        let message = format!(
            "config reload rejected: {}",
            error.lines().next().unwrap_or(error)
        );
        let alert = medic_alert(
            "config_rejected",
            Severity::Warning,
            message,
            evidence,
            false,
        );
        self.medic_alert(alert);
    }

    /// Feeds incidents opening and closing to the storm rule; true when a storm began or ended.
    fn storm_track(
        &mut self,
        now: std::time::Instant,
        event: &RecoveryEvent,
        services: usize,
    ) -> bool {
        let change = match event.kind {
            EventKind::Failing => self
                .storm
                .failed(now, &event.service, &event.message, services),
            EventKind::Recovered | EventKind::RolledBack | EventKind::Reset => {
                self.storm.recovered(&event.service, services)
            }
            _ => None,
        };
        self.storm_changed(change)
    }

    /// Continues the storm the state store kept: its members (the units with
    /// an open incident, `failing`) stay held, and the sinks get its resolving
    /// line when it ends (at once when most incidents closed while medic was
    /// down). True when that ended it.
    pub(super) fn restore_storm(
        &mut self,
        now: std::time::Instant,
        saved: SavedStorm,
        failing: Vec<String>,
        services: usize,
    ) -> bool {
        let change = self.storm.restore(now, saved, failing, services);
        if let Some(active) = self.storm.active() {
            tracing::warn!(
                "A storm continues after a restart of medic: {}",
                self.storm_line(active)
            );
        }
        self.storm_changed(change)
    }

    /// A unit is no longer watched; true when that ended a storm.
    pub(super) fn forget(&mut self, unit: &str, services: usize) -> bool {
        let change = self.storm.forget(unit, services);
        self.storm_changed(change)
    }

    pub(super) fn set_storm_rule(&mut self, rule: StormRule) {
        self.storm.set_rule(rule);
    }

    /// The storm rule, whose state the state store keeps.
    pub(super) fn storm_mut(&mut self) -> &mut Storm {
        &mut self.storm
    }

    /// Tells people that a storm began or ended; true when one did.
    fn storm_changed(&mut self, change: Option<Change>) -> bool {
        match &change {
            Some(Change::Began(active)) => {
                let message = self.storm_line(active);
                let mut evidence = Evidence::new();
                evidence.insert("failing".into(), active.failing.into());
                let first: Vec<String> = active
                    .first
                    .iter()
                    .map(|(u, r)| format!("{u}: {r}"))
                    .collect();
                evidence.insert("first".into(), first.into());
                if let Some(page) = &self.status_page {
                    evidence.insert("status_page".into(), page.clone().into());
                }
                self.medic_trouble("storm", message, evidence, false);
            }
            Some(Change::Ended {
                since,
                failed,
                still_failing,
            }) => {
                let (failed, still_failing) = (*failed, *still_failing);
                let mut evidence = Evidence::new();
                evidence.insert("failed".into(), failed.into());
                evidence.insert("still_failing".into(), still_failing.into());
                let message = format!(
                    "storm over: {} of {failed} services that failed since {} are back, {still_failing} still failing",
                    failed.saturating_sub(still_failing),
                    self.clock_time(*since),
                );
                self.medic_trouble("storm", message, evidence, true);
            }
            None => {}
        }
        change.is_some()
    }

    /// Whether a per-service line goes to stderr: not in a storm, and only
    /// within the budget of a few a second.
    fn loud(&mut self, now: std::time::Instant) -> bool {
        if self.storm.active().is_some() {
            return false;
        }
        self.held_lines(now);
        self.lines.admit(now)
    }

    /// The heartbeat's part: the storm's summary on stderr while its count
    /// changes (at most every 30 s), and how many per-service lines stderr
    /// was spared, once their second is over.
    pub(super) fn tick(&mut self, now: std::time::Instant) {
        if let Some(active) = self.storm.summary_due(now).cloned() {
            tracing::warn!("{}", self.storm_line(&active));
        }
        self.held_lines(now);
    }

    /// Tells stderr how many per-service lines it was spared, once their second is over.
    fn held_lines(&mut self, now: std::time::Instant) {
        if let Some(held) = self.lines.held(now) {
            tracing::warn!(
                "{} more service events since {} are in the recovery log only ({}; stderr shows {} a second)",
                held.lines,
                self.clock_time(held.since),
                self.recovery_log.display(),
                medic_core::storm::LINES_PER_SECOND,
            );
        }
    }

    /// "9482 services failing since 14:10:24 UTC: first ep17 (HTTP 404), …; status page http://…/"
    fn storm_line(&self, active: &Active) -> String {
        let first: Vec<String> = active
            .first
            .iter()
            .map(|(u, r)| format!("{u} ({r})"))
            .collect();
        let page = self
            .status_page
            .as_ref()
            .map(|p| format!("; status page {p}"))
            .unwrap_or_default();
        format!(
            "{} services failing since {}: first {}, …{page}",
            active.failing,
            self.clock_time(active.since),
            first.join(", "),
        )
    }

    fn clock_time(&self, at: std::time::Instant) -> String {
        self.clock.to_wall(at).strftime("%H:%M:%S UTC").to_string()
    }

    /// Tells the sinks once when files become unwritable (`problems`, one
    /// line per file), and once when all are writable again.
    pub(super) fn check_storage(&mut self, problems: Vec<String>) {
        match (problems.is_empty(), self.unwritable) {
            (false, false) => {
                self.unwritable = true;
                let mut evidence = Evidence::new();
                evidence.insert("problems".into(), problems.clone().into());
                let message = format!(
                    "{}; medic keeps supervising and retries",
                    problems.join("; ")
                );
                self.medic_trouble("storage", message, evidence, false);
            }
            (true, true) => {
                self.unwritable = false;
                let message = "medic's files are writable again; the lines that waited are written"
                    .to_owned();
                self.medic_trouble("storage", message, Evidence::new(), true);
            }
            _ => {}
        }
    }

    /// Appends the sinks' delivery counters to a Prometheus exposition.
    pub(super) fn render_metrics(&self, out: &mut medic_exposition::Exposition) {
        crate::metrics::sinks::render(out, self.sinks.counts());
    }

    /// Each file this room writes and whether it is writable.
    pub(super) fn healths(&self) -> impl Iterator<Item = &FileHealth> {
        [
            self.recovery.health().as_ref(),
            self.alerts.health().as_ref(),
        ]
        .into_iter()
        .chain(self.sinks.outbox().map(|o| o.health().as_ref()))
    }

    /// The newest line of the alerts file and of the outbox, for the state
    /// store to follow (an alert is on disk before the state that says it went).
    pub(super) fn records(&self) -> Vec<Mark> {
        let outbox = self.sinks.outbox().map(Journal::mark);
        std::iter::once(self.alerts.mark()).chain(outbox).collect()
    }

    /// Lets the writers write what they hold, then stop (shutdown).
    pub(super) fn close(&self) {
        self.recovery.close();
        self.alerts.close();
        if let Some(outbox) = self.sinks.outbox() {
            outbox.close();
        }
    }
}

/// An alert about medic itself, not about a service.
fn medic_alert(
    kind: &'static str,
    severity: Severity,
    message: String,
    evidence: Evidence,
    resolved: bool,
) -> Alert {
    Alert {
        service: MEDIC_UNIT.to_owned(),
        severity,
        kind,
        incident: None,
        message,
        evidence,
        resolved,
    }
}

/// Recovery events that mean something is wrong: logged as warnings, so they
/// reach the journal at priority 4 (`journalctl -p warning -u medic`).
fn is_trouble(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::Failing
            | EventKind::RestartFailed
            | EventKind::RollbackFailed
            | EventKind::Escalated
            | EventKind::Blind
            | EventKind::Stale
            | EventKind::Interrupted
            | EventKind::DeployFailed
            | EventKind::Flapping
    )
}

#[cfg(test)]
mod tests {
    use tokio_util::sync::CancellationToken;
    use tokio_util::task::TaskTracker;

    use super::*;

    /// An announcer writing into a fresh directory, with no sinks.
    fn announcer(dir: &std::path::Path) -> (Announcer, Shell) {
        let mut config = medic_core::config::default_config();
        config.medic.state_dir = dir.to_owned();
        config.medic.recovery_log = dir.join("recovery.jsonl");
        config.medic.alerts_file = dir.join("alerts.jsonl");
        let (events, _) = tokio::sync::mpsc::channel(1);
        let shell = Shell {
            events,
            tracker: TaskTracker::new(),
            cancel: CancellationToken::new(),
        };
        let announcer =
            Announcer::start(&config, &shell, WallClock::now()).expect("no sinks to start");
        (announcer, shell)
    }

    /// Closes the journals, waits for their writers, and reads the alerts file back.
    async fn alerts(announcer: Announcer, shell: Shell, dir: &std::path::Path) -> Vec<AlertLine> {
        announcer.close();
        shell.tracker.close();
        shell.tracker.wait().await;
        let text = std::fs::read_to_string(dir.join("alerts.jsonl")).unwrap_or_default();
        medic_records::lines::parse(&text).values
    }

    #[tokio::test]
    async fn unwritable_files_are_told_once_and_once_when_writable_again() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let (mut announcer, shell) = announcer(dir.path());
        let problem = vec!["state store not writable: No space left on device".to_owned()];
        announcer.check_storage(problem.clone());
        announcer.check_storage(problem);
        announcer.check_storage(Vec::new());
        announcer.check_storage(Vec::new());
        let lines = alerts(announcer, shell, dir.path()).await;
        let told: Vec<_> = lines
            .iter()
            .map(|l| (l.kind.as_str(), l.severity.as_str(), l.resolved))
            .collect();
        assert_eq!(
            told,
            [("storage", "critical", false), ("storage", "info", true)]
        );
        assert!(lines[0].message.starts_with("state store not writable"));
        assert_ne!(lines[0].id, lines[1].id, "ids are unique");
    }

    #[tokio::test]
    async fn a_rejected_config_is_a_warning_with_every_error() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let (mut announcer, shell) = announcer(dir.path());
        announcer.config_rejected("medic.toml:3:1: unknown key `x`\nmedic.toml:9:5: bad duration");
        let lines = alerts(announcer, shell, dir.path()).await;
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(
            (
                line.service.as_str(),
                line.kind.as_str(),
                line.severity.as_str()
            ),
            (MEDIC_UNIT, "config_rejected", "warning")
        );
        assert_eq!(
            line.message,
            "config reload rejected: medic.toml:3:1: unknown key `x`"
        );
        assert_eq!(line.evidence["errors"].as_array().map(Vec::len), Some(2));
    }

    #[tokio::test]
    async fn a_storm_is_one_alert_and_every_line_is_still_written() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let (mut announcer, shell) = announcer(dir.path());
        let now = crate::clock::now();
        let services = 10;
        let mut turned = Vec::new();
        for n in 0..services {
            let event = RecoveryEvent {
                service: format!("s{n}"),
                kind: EventKind::Failing,
                incident: Some(format!("t-{n}")),
                state: "failing",
                attempt: None,
                message: "HTTP 503".to_owned(),
                evidence: Evidence::new(),
            };
            turned.push(announcer.log(now, event, services));
        }
        assert_eq!(
            turned.iter().filter(|t| **t).count(),
            1,
            "the storm began once: {turned:?}"
        );
        let held = medic_alert(
            "down",
            Severity::Critical,
            "s3 is down".into(),
            Evidence::new(),
            false,
        );
        announcer.alert(
            now,
            Alert {
                service: "s3".into(),
                ..held
            },
        );
        let lines = alerts(announcer, shell, dir.path()).await;
        let kinds: Vec<_> = lines
            .iter()
            .map(|l| (l.service.as_str(), l.kind.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [(MEDIC_UNIT, "storm"), ("s3", "down")],
            "the file has both"
        );
        assert!(
            lines[0].message.starts_with("10 services failing since"),
            "{}",
            lines[0].message
        );
        let recovery =
            std::fs::read_to_string(dir.path().join("recovery.jsonl")).unwrap_or_default();
        assert_eq!(
            recovery.lines().count(),
            services,
            "every event is in the recovery log"
        );
    }

    #[test]
    fn trouble_is_what_means_something_is_wrong() {
        assert!(is_trouble(EventKind::Failing));
        assert!(is_trouble(EventKind::Escalated));
        assert!(!is_trouble(EventKind::Recovered));
        assert!(!is_trouble(EventKind::Healthy));
    }
}
