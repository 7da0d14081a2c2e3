//! `medic status`, `pause`, `resume`, `reset`, `recover`: talk to the running daemon.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use clap::Args;
use hyper::Method;
use medic_daemon::status::{ServiceStatus, StatusReport};

use crate::client::{call, call_raw, encode, service_path};
use crate::config_file::ConfigArgs;
use crate::table::{Cell, Table};

/// Arguments of `medic status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Only services that are not healthy.
    #[arg(long)]
    failed_only: bool,
    /// Only this service (all its instances), one instance (`service/container`),
    /// or a Compose service (`web`, `project/web`).
    #[arg(long)]
    service: Option<String>,
}

/// Arguments of commands on one service.
#[derive(Debug, Args)]
pub struct UnitArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The service (or `service/container` for one instance).
    service: String,
}

/// Arguments of `medic pause`.
#[derive(Debug, Args)]
pub struct PauseArgs {
    #[command(flatten)]
    unit: UnitArgs,
    /// Resume automatically after this long (e.g. 30m); without it, until `medic resume`.
    #[arg(long = "for", value_parser = medic_core::duration::parse)]
    duration: Option<Duration>,
}

/// Arguments of `medic reload`.
#[derive(Debug, Args)]
pub struct ReloadArgs {
    #[command(flatten)]
    config: ConfigArgs,
}

/// Arguments of `medic ping`.
#[derive(Debug, Args)]
pub struct PingArgs {
    #[command(flatten)]
    config: ConfigArgs,
}

/// Whether the daemon's loop answers: a name lookup (`GET /v1/services/…`)
/// goes through the supervisor loop and costs the same for 1 or 10,000
/// services; found or not found, an answer is a live loop. Exit 0 or 2.
pub fn ping(args: PingArgs) -> anyhow::Result<u8> {
    let socket = socket_or_2(&args.config)?;
    let path = "/v1/services/medic-ping";
    let (status, _) = super::runtime()?.block_on(call(&socket, Method::GET, path, None))?;
    if status.is_success() || status == hyper::StatusCode::NOT_FOUND {
        println!("medic answers on {}", socket.display());
        Ok(0)
    } else {
        eprintln!("medic: {} answers {status}", socket.display());
        Ok(2)
    }
}

/// The control socket for the commands whose codes are 0/1/2 (`status`,
/// `ping`): a config they cannot use is their 2.
fn socket_or_2(config: &ConfigArgs) -> anyhow::Result<std::path::PathBuf> {
    Ok(config
        .load_settings()
        .map_err(crate::config_file::as_exit_2)?
        .control_socket)
}

/// Asks the daemon to re-read its config file; a rejected config is printed and exits 1.
/// The file is validated here first: an invalid one never reaches the daemon.
pub fn reload(args: ReloadArgs) -> anyhow::Result<u8> {
    let config = match args.config.load_without_secrets() {
        Ok(config) => config,
        Err(error) if error.downcast_ref::<crate::Exit>().is_some() => {
            eprintln!("medic: reload not sent: the running config stays");
            return Ok(1);
        }
        Err(error) => return Err(error),
    };
    let socket = config.medic.control_socket;
    let (status, json) =
        super::runtime()?.block_on(call(&socket, Method::POST, "/v1/reload", None))?;
    if status.is_success() {
        println!("reloaded");
        return Ok(0);
    }
    let error = json
        .get("error")
        .and_then(|e| e.as_str())
        .unwrap_or("refused");
    eprintln!("medic: reload rejected, the running config stays:\n{error}");
    Ok(1)
}

/// The one field of a status answer the exit code needs.
#[derive(serde::Deserialize)]
struct Overall {
    overall: String,
}

/// Prints every service's state; exit 0 all healthy, 1 otherwise, 2 when the daemon cannot be reached.
pub fn status(args: StatusArgs) -> anyhow::Result<u8> {
    let socket = socket_or_2(&args.config)?;
    let path = match &args.service {
        Some(name) => format!("/v1/status?service={}", encode(name)),
        None => "/v1/status".to_owned(),
    };
    let (status, body) = super::runtime()?.block_on(call_raw(&socket, Method::GET, &path, None))?;
    if !status.is_success() {
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let error = json["error"].as_str().unwrap_or("refused");
        anyhow::bail!("status: {error}");
    }
    let unexpected = |e: serde_json::Error| anyhow::anyhow!("unexpected status answer: {e}");
    let mut out = std::io::stdout().lock();
    if args.json && !args.failed_only && !out.is_terminal() {
        // Into a pipe, the answer as the daemon wrote it (one line): 10,000
        // services are not parsed, re-indented and doubled in size for nobody.
        let Overall { overall } = serde_json::from_slice::<Overall>(&body).map_err(unexpected)?;
        out.write_all(&body)?;
        writeln!(out)?;
        return Ok(u8::from(overall != "healthy"));
    }
    let mut report: StatusReport = serde_json::from_slice(&body).map_err(unexpected)?;
    if args.failed_only {
        report.services.retain(|s| s.health != "healthy");
    }
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        let mut table = Table::new([
            "SERVICE",
            "STATE",
            "HEALTH",
            "SINCE",
            "LAST SEEN",
            "ATTEMPTS",
            "AVAIL 24H",
            "INCIDENT",
            "AGENT",
        ]);
        for s in &report.services {
            let mut state = s.state.clone();
            if let Some(flapping) = &s.flapping {
                state = format!("{state} ({})", flapping.describe(report.generated));
            }
            if s.paused {
                state.push_str(" (paused)");
            }
            let since = ago(report.generated.duration_since(s.since).as_secs_f64());
            let seen = s
                .last_observation_ms
                .map_or("never".to_owned(), |ms| ago(ms as f64 / 1000.0));
            table.row([
                Cell::plain(&s.name),
                Cell::status(state),
                Cell::status(&s.health),
                Cell::plain(since),
                Cell::plain(seen),
                Cell::plain(s.attempts.to_string()),
                Cell::plain(
                    s.availability_24h
                        .map_or("-".to_owned(), |a| format!("{:.2}%", a * 100.0)),
                ),
                Cell::plain(incident(s)),
                Cell::status(agent(s)),
            ]);
        }
        table.write(&mut out)?;
        for selector in &report.selectors {
            writeln!(out, "{}: {}", selector.service, selector.message)?;
        }
        for problem in &report.problems {
            writeln!(out, "medic: {problem}")?;
        }
    }
    Ok(u8::from(report.overall != "healthy"))
}

/// The AGENT column: the classification and, when the job is not fine, why
/// ("failed: exited 78 (EX_CONFIG), spawn failed, 22138 runs").
fn agent(s: &ServiceStatus) -> String {
    let Some(class) = s.classification.as_deref() else {
        return "-".into();
    };
    let Some(agent) = s.agent.as_ref().filter(|_| class == "failed") else {
        return class.to_owned();
    };
    let text = |key: &str| {
        agent
            .get(key)
            .map(|v| v.as_str().map_or(v.to_string(), str::to_owned))
    };
    let why: Vec<String> = [
        text("last_exit"),
        text("job_state").filter(|j| j != "exited"),
        text("runs").map(|r| format!("{r} runs")),
    ]
    .into_iter()
    .flatten()
    .collect();
    format!("{class}: {}", why.join(", "))
}

/// Pauses a service.
pub fn pause(args: PauseArgs) -> anyhow::Result<u8> {
    let body = serde_json::json!({ "for_secs": args.duration.map(|d| d.as_secs()) });
    send(&args.unit, "pause", Some(body))
}

/// resume, reset or recover.
pub fn unit(args: UnitArgs, command: &str) -> anyhow::Result<u8> {
    send(&args, command, None)
}

/// Stops watching instances removed on purpose; prints each one forgotten.
pub fn forget(args: UnitArgs) -> anyhow::Result<u8> {
    let path = service_path(&args.service, "forget");
    let socket = args.config.load_settings()?.control_socket;
    let (status, json) = super::runtime()?.block_on(call(&socket, Method::POST, &path, None))?;
    if !status.is_success() {
        let error = json["error"].as_str().unwrap_or("refused");
        anyhow::bail!("forget {}: {error}", args.service);
    }
    for unit in json["units"].as_array().into_iter().flatten() {
        println!("forgot: {}", unit.as_str().unwrap_or_default());
    }
    Ok(0)
}

fn send(args: &UnitArgs, command: &str, body: Option<serde_json::Value>) -> anyhow::Result<u8> {
    let path = service_path(&args.service, command);
    let socket = args.config.load_settings()?.control_socket;
    let (status, json) = super::runtime()?.block_on(call(&socket, Method::POST, &path, body))?;
    if status.is_success() {
        println!("{command}: {}", args.service);
        Ok(0)
    } else {
        let error = json
            .get("error")
            .and_then(|e| e.as_str())
            .unwrap_or("refused");
        anyhow::bail!("{command} {}: {error}", args.service)
    }
}

/// The open incident, else how the last one ended.
fn incident(s: &ServiceStatus) -> String {
    match (&s.incident, &s.last_incident) {
        (Some(open), _) => format!("{open} (open)"),
        (None, Some(last)) => format!("{} ({})", last.id, last.outcome),
        (None, None) => "-".to_owned(),
    }
}

fn ago(secs: f64) -> String {
    let secs = secs.max(0.0);
    match secs {
        s if s < 1.0 => format!("{}ms ago", (s * 1000.0).round()),
        s if s < 120.0 => format!("{}s ago", s.round()),
        s if s < 7200.0 => format!("{}m ago", (s / 60.0).round()),
        s => format!("{}h ago", (s / 3600.0).round()),
    }
}
