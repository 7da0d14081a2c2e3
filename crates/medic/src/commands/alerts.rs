//! `medic alerts`: the alerts file joined with the outbox, so each alert shows
//! where it went: delivered, retrying (and why), failed or dropped per sink.

use std::io::Write;
use std::time::Duration;

use clap::Args;
use jiff::Timestamp;
use medic_alerts::outbox::{Deliveries, Delivery, Record};
use medic_alerts::outbox_path;
use medic_records::journal::AlertLine;
use serde::Serialize;

use crate::config_file::ConfigArgs;
use crate::table::{Cell, Table};

/// Arguments of `medic alerts`.
#[derive(Debug, Args)]
pub struct AlertsArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Only alerts newer than this (e.g. 10m, 2h, 7d).
    #[arg(long, value_parser = medic_core::duration::parse)]
    since: Option<Duration>,
    /// One JSON object per alert and line (the alert line plus `deliveries`).
    #[arg(long)]
    json: bool,
}

/// One alert with its deliveries: the `--json` contract.
#[derive(Debug, Serialize)]
struct AlertView<'a> {
    #[serde(flatten)]
    alert: &'a AlertLine,
    deliveries: Vec<DeliveryView<'a>>,
}

/// Where the alert stands with one sink.
#[derive(Debug, Serialize)]
struct DeliveryView<'a> {
    sink: &'a str,
    /// queued, retrying, delivered, failed or dropped.
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ts: Option<Timestamp>,
}

impl<'a> DeliveryView<'a> {
    fn new(sink: &'a str, delivery: &'a Delivery) -> Self {
        let (attempts, error, ts) = match &delivery.last {
            Record::Queued { .. } => (None, None, None),
            Record::Retrying {
                attempts,
                error,
                ts,
                ..
            }
            | Record::Failed {
                attempts,
                error,
                ts,
                ..
            } => (Some(*attempts), Some(error.as_str()), Some(*ts)),
            Record::Delivered { attempts, ts, .. } => (Some(*attempts), None, Some(*ts)),
            Record::Dropped { error, ts, .. } => (None, Some(error.as_str()), Some(*ts)),
        };
        Self {
            sink,
            state: delivery.state(),
            attempts,
            error,
            ts,
        }
    }

    fn summary(&self) -> String {
        let mut text = format!("{}: {}", self.sink, self.state);
        if let Some(attempts) = self.attempts.filter(|a| *a > 1 || self.error.is_some()) {
            text.push_str(&format!(" ({attempts} attempts)"));
        }
        if let Some(error) = self.error {
            text.push_str(&format!(" {error}"));
        }
        text
    }
}

/// Prints the alerts and their delivery state.
pub fn run(args: AlertsArgs) -> anyhow::Result<u8> {
    let config = args.config.load_without_secrets()?;
    let path = &config.medic.alerts_file;
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
    };
    let since = args.since.and_then(|d| {
        Timestamp::now()
            .checked_sub(jiff::SignedDuration::try_from(d).ok()?)
            .ok()
    });
    let alerts: Vec<AlertLine> = medic_records::lines::parse::<AlertLine>(&text)
        .reported(path)
        .into_iter()
        .filter(|a| since.is_none_or(|since| a.ts >= since))
        .collect();
    let deliveries = Deliveries::load(&outbox_path(&config.medic.state_dir))?;
    let by_alert = deliveries.by_alert();
    let views: Vec<AlertView<'_>> = alerts
        .iter()
        .map(|alert| AlertView {
            alert,
            deliveries: by_alert
                .get(alert.id.as_str())
                .map(|list| list.iter().map(|(s, d)| DeliveryView::new(s, d)).collect())
                .unwrap_or_default(),
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if args.json {
        for view in &views {
            serde_json::to_writer(&mut out, view)?;
            writeln!(out)?;
        }
        return Ok(0);
    }
    let mut table = Table::new([
        "TIME", "SEVERITY", "SERVICE", "KIND", "INCIDENT", "MESSAGE", "DELIVERY",
    ]);
    for view in &views {
        let a = view.alert;
        let delivery: Vec<String> = view.deliveries.iter().map(DeliveryView::summary).collect();
        table.row([
            Cell::plain(a.ts.strftime("%Y-%m-%d %H:%M:%S").to_string()),
            Cell::plain(a.severity.clone()),
            Cell::plain(a.service.clone()),
            Cell::plain(a.kind.clone()),
            Cell::plain(a.incident.clone().unwrap_or_default()),
            Cell::plain(a.message.clone()),
            Cell::plain(if delivery.is_empty() {
                "-".to_owned()
            } else {
                delivery.join("; ")
            }),
        ]);
    }
    table.write(&mut out)?;
    Ok(0)
}
