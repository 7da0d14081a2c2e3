//! `medic check`: probe everything once and print a table or JSON.

use std::io::Write;

use clap::Args;
use serde::Serialize;

use crate::config_file::ConfigArgs;
use crate::table::{Cell, Table};

/// Arguments of `medic check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// One row of `medic check --json`.
#[derive(Debug, Serialize)]
struct CheckJson<'a> {
    service: &'a str,
    probe: &'a str,
    outcome: &'a str,
    latency_ms: u64,
    detail: &'a str,
    evidence: &'a medic_core::Evidence,
}

/// Exit 0 all ok, 1 any failing or blind, 2 when the checks cannot run.
pub fn run(args: CheckArgs) -> anyhow::Result<u8> {
    let config =
        args.config
            .load_without_secrets()
            .map_err(|e| match e.downcast_ref::<crate::Exit>() {
                Some(_) => crate::Exit(2).into(),
                None => e,
            })?;
    let runtime = super::runtime()?;
    let rows = runtime.block_on(medic_inspect::check::check_once(&config))?;
    let engine = runtime.block_on(medic_inspect::check::container_engine(&config))?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let json: Vec<CheckJson> = rows
            .iter()
            .map(|r| CheckJson {
                service: &r.service,
                probe: r.probe,
                outcome: r.observation.outcome.as_str(),
                latency_ms: medic_inspect::check::millis(r.observation.latency),
                detail: &r.observation.message,
                evidence: &r.observation.evidence,
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &json)?;
        writeln!(out)?;
    } else {
        let mut table = Table::new(["SERVICE", "PROBE", "RESULT", "LATENCY", "DETAIL"]);
        for r in &rows {
            let outcome = r.observation.outcome.as_str();
            table.row([
                Cell::plain(&r.service),
                Cell::plain(r.probe),
                Cell::status(outcome),
                Cell::plain(format!(
                    "{}ms",
                    medic_inspect::check::millis(r.observation.latency)
                )),
                Cell::plain(&r.observation.message),
            ]);
        }
        table.write(&mut out)?;
        match engine {
            Some(Ok(engine)) => writeln!(out, "container engine: {engine}")?,
            Some(Err(error)) => writeln!(out, "container engine: {error}")?,
            None => {}
        }
    }
    Ok(u8::try_from(medic_inspect::check::exit_code(&rows)).unwrap_or(1))
}
