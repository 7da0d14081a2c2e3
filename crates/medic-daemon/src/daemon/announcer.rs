//! The announcer: what medic tells people. The recovery log and the alerts
//! file (each a journal with its writer task), the `[[alert]]` sinks, the
//! storm's summaries, the per-service line budget on stderr, and medic's own
//! alerts (a storm, files it cannot write, a rejected reload). What is
//! trouble, what a storm holds and when it began or ended are the core's
//! word (`RecoveryEvent::notice`, `Alert::held`, `Action::Storm`): this room
//! only says it.

use std::path::PathBuf;
use std::sync::Arc;

use medic_core::config::Config;
use medic_core::notice::Level;
use medic_core::storm::{Active, Change, LineBudget};
use medic_core::supervisor::MEDIC_UNIT;
use medic_core::{Alert, Evidence, RecoveryEvent, Severity};
use medic_records::files::FileHealth;
use medic_records::journal::{AlertLine, Journal, Limit, Mark, RecoveryLine};

use crate::clock::WallClock;
use crate::shell::Shell;
use medic_alerts::{Post, Sinks};

/// The journals, the sinks and the rules for what reaches stderr.
pub(super) struct Announcer {
    recovery: Journal,
    alerts: Journal,
    /// The `[[alert]]` sinks every alert line is also handed to.
    sinks: Sinks,
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
    /// Opens the journals and starts the sinks (delivering to `post` in a simulation).
    pub(super) fn start(
        config: &Config,
        shell: &Shell,
        clock: WallClock,
        post: Option<Arc<dyn Post>>,
    ) -> anyhow::Result<Self> {
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
            sinks: Sinks::start(config, &shell.tracker, &shell.cancel, post)?,
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

    /// Writes a recovery event to the recovery log and, within the budget
    /// and outside a storm (`storming`), to stderr: at warn when the core
    /// calls it trouble.
    pub(super) fn log(&mut self, now: std::time::Instant, event: RecoveryEvent, storming: bool) {
        let (service, kind) = (&event.service, event.kind.as_str());
        let incident = event.incident.as_deref().unwrap_or("");
        if !self.loud(now, storming) {
            // In a storm, or past a few a second, the per-service lines are
            // in the recovery log; stderr gets the counts (`tick`).
            tracing::debug!(%service, event = kind, incident, "{}", event.message);
        } else if event.notice.level == Level::Trouble {
            tracing::warn!(%service, event = kind, incident, "{}", event.message);
        } else {
            tracing::info!(%service, event = kind, incident, "{}", event.message);
        }
        let line = RecoveryLine::new(crate::clock::wall_now(), event);
        self.recovery.append(&line);
    }

    /// Writes an alert to the alerts file and hands it to the sinks, unless
    /// the core says a storm holds it (the sinks get the storm's own alert instead).
    pub(super) fn alert(&mut self, now: std::time::Instant, alert: Alert, storming: bool) {
        let held = alert.held;
        if held || !self.loud(now, storming) {
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

    /// A found container's `medic.*` labels were rejected (it is watched with
    /// its service's policy): stderr and a `labels_rejected` alert with every problem.
    pub(super) fn labels_rejected(&mut self, unit: &str, problems: Vec<String>) {
        tracing::warn!(
            %unit,
            "Invalid medic.* labels; the service's policy applies: {}",
            problems.join("; ")
        );
        let message = format!(
            "invalid medic.* labels, watched with the service's policy: {}",
            problems.first().map_or("", String::as_str)
        );
        let mut evidence = Evidence::new();
        evidence.insert("errors".into(), problems.into());
        let mut alert = medic_alert(
            "labels_rejected",
            Severity::Warning,
            message,
            evidence,
            false,
        );
        alert.service = unit.to_owned();
        self.medic_alert(alert);
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

    /// A storm the state store kept goes on after a restart of medic.
    pub(super) fn storm_continues(&self, active: &Active) {
        tracing::warn!(
            "A storm continues after a restart of medic: {}",
            self.storm_line(active)
        );
    }

    /// Tells people the core's storm news: stderr and the sinks when one
    /// began or ended, stderr alone for a summary.
    pub(super) fn storm(&mut self, change: Change) {
        match change {
            Change::Began(active) => {
                let message = self.storm_line(&active);
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
            Change::Summary(active) => tracing::warn!("{}", self.storm_line(&active)),
            Change::Ended {
                since,
                failed,
                still_failing,
            } => {
                let mut evidence = Evidence::new();
                evidence.insert("failed".into(), failed.into());
                evidence.insert("still_failing".into(), still_failing.into());
                let message = format!(
                    "storm over: {} of {failed} services that failed since {} are back, {still_failing} still failing",
                    failed.saturating_sub(still_failing),
                    self.clock_time(since),
                );
                self.medic_trouble("storm", message, evidence, true);
            }
        }
    }

    /// Whether a per-service line goes to stderr: not in a storm, and only
    /// within the budget of a few a second.
    fn loud(&mut self, now: std::time::Instant, storming: bool) -> bool {
        if storming {
            return false;
        }
        self.held_lines(now);
        self.lines.admit(now)
    }

    /// The heartbeat's part: how many per-service lines stderr was spared,
    /// once their second is over (the storm's summaries come from the core).
    pub(super) fn tick(&mut self, now: std::time::Instant) {
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
        held: false,
    }
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
            Announcer::start(&config, &shell, WallClock::now(), None).expect("no sinks to start");
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

    /// A real core with ten units that all die: the announcer says what it
    /// decided, and decides nothing itself.
    #[tokio::test]
    async fn a_storm_is_one_alert_and_every_line_is_still_written() {
        use medic_core::{Action, Input, Observation, Supervisor, Urgency};

        let dir = tempfile::tempdir().expect("a temp dir");
        let (mut announcer, shell) = announcer(dir.path());
        let now = crate::clock::now();
        let mut sup = Supervisor::new("t", 0);
        let services = 10;
        for n in 0..services {
            sup.add_unit(now, &format!("s{n}"), medic_core::Policy::default());
        }
        for n in 0..services {
            let died = Observation::fail(std::time::Duration::ZERO, "died")
                .with_urgency(Urgency::Decisive);
            let unit = format!("s{n}");
            let input = Input::Observed {
                unit,
                probe: 0,
                observation: died,
            };
            sup.handle_input(now, input).expect("a unit it watches");
        }
        let (mut logged, mut storms) = (0, 0);
        while let Some(action) = sup.poll_action() {
            let storming = sup.storm().active().is_some();
            match action {
                Action::Log(event) => {
                    logged += 1;
                    announcer.log(now, event, storming);
                }
                Action::Storm(change) => {
                    storms += 1;
                    announcer.storm(change);
                }
                _ => {}
            }
        }
        assert_eq!(storms, 1, "the storm began once");
        let mut held = medic_alert(
            "down",
            Severity::Critical,
            "s3 is down".into(),
            Evidence::new(),
            false,
        );
        held.service = "s3".into();
        held.held = true;
        announcer.alert(now, held, true);
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
            logged,
            "every event is in the recovery log"
        );
    }
}
