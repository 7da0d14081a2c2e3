//! `medic report`: what happened over a period (default the last 7 days), per
//! service and overall, as a table, JSON (`--json`) or the Markdown note people
//! forward (`--markdown`). Read from the files, so it works with or without a
//! running daemon.

use std::io::Write;
use std::time::Duration;

use clap::Args;
use jiff::{SignedDuration, Timestamp};
use medic_records::report::{self, Report};

use crate::config_file::ConfigArgs;
use crate::table::{Cell, Table};

/// Arguments of `medic report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The period, ending now (e.g. 7d, 24h); compared with the period of the same length before.
    #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
    since: Duration,
    /// Only this service (and its instances, `service/…`).
    #[arg(long, short = 's')]
    service: Option<String>,
    /// The report as JSON.
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// The report as a Markdown note.
    #[arg(long)]
    markdown: bool,
}

/// Prints the report; exit 0.
pub fn run(args: ReportArgs) -> anyhow::Result<u8> {
    let config = args.config.load_without_secrets()?;
    let period = SignedDuration::try_from(args.since)
        .map_err(|_| anyhow::anyhow!("--since {:?} is too long", args.since))?;
    let lines = report::read_recovery_log(&config.medic.recovery_log);
    let history = report::read_history(&config.medic.state_dir);
    let configured: Vec<String> = config.services.iter().map(|s| s.name.clone()).collect();
    let report = report::build(
        &lines,
        history.as_ref(),
        &configured,
        Timestamp::now(),
        period,
        args.service.as_deref(),
    );
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else if args.markdown {
        write!(
            out,
            "{}",
            report::markdown(&report, &medic_alerts::hostname::hostname())
        )?;
    } else {
        table(&report, &mut out)?;
    }
    Ok(0)
}

fn table(report: &Report, out: &mut impl Write) -> anyhow::Result<()> {
    let mut table = Table::new([
        "SERVICE",
        "AVAILABLE",
        "DOWN",
        "INCIDENTS",
        "RESTARTS",
        "ROLLBACKS",
        "ESCALATIONS",
        "DEPLOYS",
        "RECOVER MEAN/WORST",
    ]);
    let rows = report
        .services
        .iter()
        .map(|s| (s.service.as_str(), &s.summary, &s.previous))
        .chain([("(all)", &report.overall, &report.previous)]);
    for (name, s, before) in rows {
        table.row([
            Cell::plain(name),
            Cell::plain(
                s.availability
                    .map_or("-".into(), |a| format!("{:.2}%", a * 100.0)),
            ),
            Cell::plain(report::minutes(s.downtime_minutes)),
            Cell::plain(format!(
                "{} ({:+})",
                s.incidents,
                i64::from(s.incidents) - i64::from(before.incidents)
            )),
            Cell::plain(s.restarts.to_string()),
            Cell::plain(s.rollbacks.to_string()),
            Cell::plain(s.escalations.to_string()),
            Cell::plain(format!("{}/{}", s.deploys_promoted, s.deploys_failed)),
            Cell::plain(format!(
                "{} / {}",
                s.recover_mean_secs.map_or("-".into(), report::duration),
                s.recover_worst_secs.map_or("-".into(), report::duration)
            )),
        ]);
    }
    table.write(&mut *out)?;
    if let Some(worst) = &report.worst_incident {
        writeln!(
            out,
            "\nworst incident: {} {} at {} ({}, {}): {}",
            worst.service,
            worst.id,
            worst.started.strftime("%Y-%m-%d %H:%M:%S"),
            worst.outcome,
            report::duration(worst.duration_secs),
            worst.message
        )?;
    }
    Ok(())
}
