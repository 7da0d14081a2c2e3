//! Alerts that reach a person: every line of the alerts file also goes to the
//! configured `[[alert]]` sinks (webhook, Slack, Alertmanager, exec), through a
//! crash-safe outbox. The supervisor loop only routes and enqueues
//! (an outbox record handed to its writer task and a `try_send`), so a dead or slow sink never
//! delays probing or recovery; one task per sink delivers (see `task.rs`).

mod format;
pub mod hostname;
pub mod outbox;
mod send;
pub mod stats;
mod task;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;
use medic_core::config::{AlertSink, Config, SinkKind};
use medic_core::delivery::{Route, Router, incident_key};
use medic_core::{Evidence, Severity};
use medic_records::journal::AlertLine;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use send::{Post, PostRun};

use outbox::{Deliveries, Outbox, Record};
use stats::SinkCounts;

/// The outbox's path under the state directory.
pub fn outbox_path(state_dir: &Path) -> PathBuf {
    state_dir.join("alerts/outbox.jsonl")
}

/// The running sinks, as the supervisor loop holds them.
#[derive(Debug)]
pub struct Sinks {
    router: Router,
    queues: Vec<(String, mpsc::Sender<AlertLine>, Arc<stats::SinkStats>)>,
    outbox: Option<Outbox>,
}

impl Sinks {
    /// Opens the outbox and starts one task per sink, each first given what it
    /// had not delivered before the last stop. The tasks run on `tracker` and
    /// stop with `cancel`. Their attempts go to `post` when one is given (a
    /// simulation), to the sinks themselves otherwise.
    pub fn start(
        config: &Config,
        tracker: &TaskTracker,
        cancel: &CancellationToken,
        post: Option<Arc<dyn Post>>,
    ) -> anyhow::Result<Self> {
        let mut sinks = Self {
            router: Router::new(&config.alerts),
            queues: Vec::new(),
            outbox: None,
        };
        if config.alerts.is_empty() {
            return Ok(sinks);
        }
        let (outbox, deliveries) = Outbox::open(&outbox_path(&config.medic.state_dir), tracker)?;
        for ((sink, _), delivery) in &deliveries.entries {
            if let Some(alert) = &delivery.alert {
                let key = incident_key(&alert.service, &alert.kind, alert.incident.as_deref());
                sinks.router.replay(sink, &key, alert.resolved);
            }
        }
        let origin = format::Origin::new(config);
        for sink in &config.alerts {
            let sender = send::Sender::new(sink, post.clone())?;
            let queue: VecDeque<(AlertLine, u32)> = deliveries.pending(&sink.name).into();
            if !queue.is_empty() {
                tracing::info!(sink = %sink.name, pending = queue.len(), "Delivering alerts queued before the restart");
            }
            let (tx, rx) = mpsc::channel(sink.queue);
            let stats = Arc::new(stats::SinkStats::default());
            stats.queued(queue.len() as u64);
            let task = task::SinkTask {
                stats: stats.clone(),
                sender,
                outbox: outbox.clone(),
                origin: origin.clone(),
                queue,
                rx,
                firing: firing_after(&deliveries, sink, &origin),
            };
            tracker.spawn(task.run(cancel.child_token()));
            sinks.queues.push((sink.name.clone(), tx, stats));
        }
        sinks.outbox = Some(outbox);
        Ok(sinks)
    }

    /// Hands a line that was just written to the alerts file to every sink that wants it. Never waits.
    pub fn send(&mut self, line: &AlertLine) {
        if self.outbox.is_none() {
            return;
        }
        let severity = match line.severity.as_str() {
            "critical" => Severity::Critical,
            "warning" => Severity::Warning,
            _ => Severity::Info,
        };
        let key = incident_key(&line.service, &line.kind, line.incident.as_deref());
        let route = Route {
            service: &line.service,
            severity,
            key: &key,
            resolved: line.resolved,
        };
        for index in self.router.route(route) {
            self.enqueue(index, line);
        }
    }

    /// Hands `line` to the named sinks, whatever their routing (the scheduled
    /// report digest goes to the sinks `[report]` lists).
    pub fn send_to(&self, names: &[String], line: &AlertLine) {
        for index in 0..self.queues.len() {
            if names.contains(&self.queues[index].0) {
                self.enqueue(index, line);
            }
        }
    }

    /// Records `line` as queued for sink `index` in the outbox and hands it to
    /// the sink's queue without waiting (a full queue drops it, recorded).
    fn enqueue(&self, index: usize, line: &AlertLine) {
        let Some(outbox) = &self.outbox else {
            return;
        };
        let Some((sink, queue, stats)) = self.queues.get(index) else {
            return;
        };
        outbox.record(&Record::Queued {
            sink: sink.clone(),
            alert: line.clone(),
        });
        match queue.try_send(line.clone()) {
            Ok(()) => stats.queued(1),
            Err(error) => {
                let full = matches!(error, mpsc::error::TrySendError::Full(_));
                let reason = if full { "queue full" } else { "sink stopped" };
                tracing::warn!(%sink, alert = %line.id, reason, "Alert not queued for delivery");
                if full {
                    stats.dropped();
                    outbox.record(&Record::Dropped {
                        sink: sink.clone(),
                        id: line.id.clone(),
                        ts: Timestamp::now(),
                        error: reason.to_owned(),
                    });
                }
            }
        }
    }

    /// The outbox's writer, when there are sinks.
    pub fn outbox(&self) -> Option<&medic_records::journal::Journal> {
        self.outbox.as_ref().map(Outbox::journal)
    }

    /// Every sink's name and delivery counters, for `/metrics`.
    pub fn counts(&self) -> impl Iterator<Item = (&str, SinkCounts)> + Clone {
        self.queues
            .iter()
            .map(|(name, _, stats)| (name.as_str(), stats.counts()))
    }
}

/// What fires in an Alertmanager sink, from the deliveries recorded before a restart.
fn firing_after(
    deliveries: &Deliveries,
    sink: &AlertSink,
    origin: &format::Origin,
) -> format::Firing {
    let mut firing = format::Firing::default();
    let SinkKind::Alertmanager {
        repeat_interval, ..
    } = &sink.kind
    else {
        return firing;
    };
    for ((name, _), delivery) in &deliveries.entries {
        if *name != sink.name {
            continue;
        }
        if let (Some(alert), Record::Delivered { ts, .. }) = (&delivery.alert, &delivery.last) {
            let posted = firing.alert_for(alert, origin, *ts, *repeat_interval);
            firing.delivered(alert, posted);
        }
    }
    firing
}

/// Sends one test alert to `sink` now, outside the outbox: `medic alert test SINK`.
pub async fn send_test(config: &Config, sink: &AlertSink) -> anyhow::Result<()> {
    let sender = send::Sender::new(sink, None)?;
    let now = Timestamp::now();
    let origin = format::Origin::new(config);
    let host = &origin.host;
    let mut evidence = Evidence::new();
    evidence.insert("sink".into(), sink.name.clone().into());
    let line = AlertLine {
        id: format!("test-{}", now.as_millisecond()),
        ts: now,
        service: "medic".into(),
        severity: Severity::Critical.as_str().into(),
        kind: "test".into(),
        incident: None,
        message: format!(
            "test alert from medic on {host}: sink `{}` works",
            sink.name
        ),
        resolved: false,
        evidence,
    };
    let body = match &sink.kind {
        SinkKind::Webhook { .. } | SinkKind::Exec { .. } => format::webhook_body(&line, &origin),
        SinkKind::Slack { .. } => format::slack_body(&line, &origin),
        SinkKind::Alertmanager {
            repeat_interval, ..
        } => {
            let alert = format::Firing::default().alert_for(&line, &origin, now, *repeat_interval);
            format::alertmanager_body(&[alert])
        }
    };
    sender
        .attempt(&line.id, &body)
        .await
        .map_err(|failure| anyhow::anyhow!("{}", failure.message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: u32) -> AlertLine {
        AlertLine {
            id: format!("a{n}"),
            ts: Timestamp::UNIX_EPOCH,
            service: "web".into(),
            severity: "critical".into(),
            kind: "escalated".into(),
            incident: Some(format!("i{n}")),
            message: "m".into(),
            resolved: false,
            evidence: Evidence::new(),
        }
    }

    /// A sink that takes connections and never answers: the queue fills, the
    /// overflow is dropped and recorded, and `send` never waits.
    #[tokio::test]
    async fn a_full_queue_drops_and_records_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let text = format!(
            "[medic]\nstate_dir = \"{}\"\n[[alert]]\nname = \"slow\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{port}/\"\nqueue = 1\ntimeout = \"1m\"\n",
            dir.path().display()
        );
        let config = medic_core::config::parse(&text, "t.toml").unwrap();
        let (tracker, cancel) = (TaskTracker::new(), CancellationToken::new());
        let mut sinks = Sinks::start(&config, &tracker, &cancel, None).unwrap();
        sinks.send(&line(1));
        // The task took the first alert off the queue once it is sending it.
        let (_held, _) =
            tokio::time::timeout(std::time::Duration::from_secs(10), listener.accept())
                .await
                .unwrap()
                .unwrap();
        let started = tokio::time::Instant::now();
        sinks.send(&line(2)); // waits in the queue
        sinks.send(&line(3)); // queue full: dropped
        assert!(
            started.elapsed() < std::time::Duration::from_millis(100),
            "send never waits"
        );
        let counts: Vec<(&str, SinkCounts)> = sinks.counts().collect();
        let [("slow", slow)] = counts[..] else {
            panic!("one sink: {counts:?}")
        };
        assert_eq!((slow.dropped, slow.waiting), (1, 2), "{slow:?}");
        cancel.cancel();
        sinks.outbox().expect("an outbox").close();
        tracker.close();
        tracker.wait().await;

        let deliveries = Deliveries::load(&outbox_path(dir.path())).unwrap();
        let states: Vec<(&str, &str)> = deliveries
            .entries
            .iter()
            .map(|((_, id), d)| (id.as_str(), d.state()))
            .collect();
        assert_eq!(
            states,
            [("a1", "queued"), ("a2", "queued"), ("a3", "dropped")]
        );
        // After a restart the two that were queued are delivered; the dropped one is not.
        let pending: Vec<String> = deliveries
            .pending("slow")
            .into_iter()
            .map(|(a, _)| a.id)
            .collect();
        assert_eq!(pending, ["a1", "a2"]);
    }
}
