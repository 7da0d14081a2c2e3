//! One task per sink: takes alerts from its bounded queue in order, delivers
//! each with retries and backoff (decided by `medic_core::delivery`), records
//! every outcome in the outbox, and for Alertmanager re-posts what fires.

use std::collections::VecDeque;
use std::time::Duration;

use jiff::Timestamp;
use medic_core::config::SinkKind;
use medic_core::delivery::{Outcome, retry_delay};
use medic_records::journal::AlertLine;
use tokio::sync::mpsc;
use tokio::time::{Instant, Interval};
use tokio_util::sync::CancellationToken;

use super::format::{self, Firing};
use super::outbox::{Outbox, Record};
use super::send::Sender;

/// A sink's delivery loop and what it owns.
pub(super) struct SinkTask {
    pub sender: Sender,
    pub outbox: Outbox,
    /// This host, its status page, the services' labels.
    pub origin: format::Origin,
    /// Alerts to deliver, oldest first, with the attempts already failed.
    pub queue: VecDeque<(AlertLine, u32)>,
    pub rx: mpsc::Receiver<AlertLine>,
    /// Alertmanager sinks: what fires there.
    pub firing: Firing,
    /// Counters for `/metrics`.
    pub stats: std::sync::Arc<super::stats::SinkStats>,
}

impl SinkTask {
    fn name(&self) -> &str {
        &self.sender.sink().name
    }

    fn repeat(&self) -> Option<Duration> {
        match &self.sender.sink().kind {
            SinkKind::Alertmanager {
                repeat_interval, ..
            } => Some(*repeat_interval),
            _ => None,
        }
    }

    /// Runs until cancelled; whatever is not delivered by then stays in the outbox.
    pub async fn run(mut self, cancel: CancellationToken) {
        let mut repost = self.repeat().map(|every| {
            let mut interval = tokio::time::interval_at(Instant::now() + every, every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval
        });
        let capacity = self.sender.sink().queue;
        let mut open = true;
        loop {
            while self.queue.len() < capacity {
                match self.rx.try_recv() {
                    Ok(line) => self.queue.push_back((line, 0)),
                    Err(_) => break,
                }
            }
            let Some((line, failures)) = self.queue.front().cloned() else {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    got = self.rx.recv(), if open => match got {
                        Some(line) => self.queue.push_back((line, 0)),
                        None => open = false,
                    },
                    () = tick(&mut repost) => self.repost().await,
                }
                continue;
            };
            let (body, am) = self.payload(&line);
            let result = tokio::select! {
                () = cancel.cancelled() => return,
                result = self.sender.attempt(&line.id, &body) => result,
            };
            let attempts = failures + 1;
            let (sink, id, ts) = (self.name().to_owned(), line.id.clone(), Timestamp::now());
            match result {
                Ok(()) => {
                    self.outbox.record(&Record::Delivered {
                        sink,
                        id,
                        ts,
                        attempts,
                    });
                    tracing::info!(sink = self.name(), alert = %line.id, attempts, "Alert delivered");
                    self.stats.delivered();
                    if let Some(alert) = am {
                        self.firing.delivered(&line, alert);
                    }
                    self.queue.pop_front();
                }
                Err(failure) if failure.outcome == Outcome::GiveUp => {
                    tracing::warn!(sink = self.name(), alert = %line.id, attempts, error = %failure.message, "Alert rejected by the sink; not retried");
                    let error = failure.message;
                    self.stats.rejected();
                    self.outbox.record(&Record::Failed {
                        sink,
                        id,
                        ts,
                        attempts,
                        error,
                    });
                    self.queue.pop_front();
                }
                Err(failure) => {
                    let s = self.sender.sink();
                    let delay = retry_delay(
                        attempts,
                        s.retry_backoff,
                        s.retry_backoff_max,
                        &format!("{}/{}", s.name, line.id),
                    );
                    tracing::warn!(
                        sink = self.name(),
                        alert = %line.id,
                        attempts,
                        error = %failure.message,
                        retry_in = %humantime::format_duration(Duration::from_millis(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX))),
                        "Alert delivery failed; will retry"
                    );
                    let error = failure.message;
                    self.stats.retried();
                    self.outbox.record(&Record::Retrying {
                        sink,
                        id,
                        ts,
                        attempts,
                        error,
                    });
                    if let Some(front) = self.queue.front_mut() {
                        front.1 = attempts;
                    }
                    // Wait out the backoff, still taking new alerts (up to the bound) and re-posting.
                    let until = Instant::now() + delay;
                    loop {
                        let room = open && self.queue.len() < capacity;
                        tokio::select! {
                            () = cancel.cancelled() => return,
                            () = tokio::time::sleep_until(until) => break,
                            got = self.rx.recv(), if room => match got {
                                Some(line) => self.queue.push_back((line, 0)),
                                None => open = false,
                            },
                            () = tick(&mut repost) => self.repost().await,
                        }
                    }
                }
            }
        }
    }

    /// The body for this sink's kind; for Alertmanager also the alert it posts.
    fn payload(&self, line: &AlertLine) -> (Vec<u8>, Option<format::AmAlert>) {
        match &self.sender.sink().kind {
            SinkKind::Webhook { .. } => (format::webhook_body(line, &self.origin), None),
            SinkKind::Slack { .. } => (format::slack_body(line, &self.origin), None),
            SinkKind::Alertmanager {
                repeat_interval, ..
            } => {
                let alert =
                    self.firing
                        .alert_for(line, &self.origin, Timestamp::now(), *repeat_interval);
                (
                    format::alertmanager_body(std::slice::from_ref(&alert)),
                    Some(alert),
                )
            }
            SinkKind::Exec { .. } => (format::webhook_body(line, &self.origin), None),
        }
    }

    /// Posts every firing alert again so Alertmanager keeps it active; a failure only waits for the next round.
    async fn repost(&mut self) {
        let Some(repeat) = self.repeat() else {
            return;
        };
        if self.firing.is_empty() {
            return;
        }
        let alerts = self.firing.repost(Timestamp::now(), repeat);
        let body = format::alertmanager_body(&alerts);
        if let Err(failure) = self.sender.attempt("repost", &body).await {
            tracing::warn!(sink = self.name(), error = %failure.message, firing = alerts.len(), "Cannot re-post firing alerts");
        } else {
            tracing::debug!(
                sink = self.name(),
                firing = alerts.len(),
                "Firing alerts re-posted"
            );
        }
    }
}

async fn tick(interval: &mut Option<Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}
