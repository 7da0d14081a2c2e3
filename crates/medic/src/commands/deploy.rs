//! `medic deploy SERVICE -- CMD…`: holds recovery while the command runs,
//! then the new version must be healthy on fresh observations within the
//! timeout, or medic rolls back to the version from before. Through the
//! running daemon when there is one; otherwise an in-process daemon watching
//! only this service guards the deploy.

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use hyper::Method;
use medic_core::config::{Config, ContainerSelector, Target};
use medic_daemon::DeployOutcome;
use medic_daemon::control::{DeployBody, DeployFinishBody, DeployStarted};
use medic_daemon::status::StatusReport;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::client::{call, encode, service_path};
use crate::config_file::ConfigArgs;

/// Lines of the command's output kept as evidence.
const OUTPUT_TAIL_LINES: usize = 40;

/// Arguments of `medic deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The service to deploy (one unit: `service` or `service/container`).
    service: String,
    /// How long the new version has to be healthy on fresh observations once the command finished.
    #[arg(long, default_value = "2m", value_parser = medic_core::duration::parse)]
    timeout: Duration,
    /// The longest the deploy command may run; past it medic rolls back even if this CLI died.
    #[arg(long, default_value = "30m", value_parser = medic_core::duration::parse)]
    command_timeout: Duration,
    /// The deploy command and its arguments (no shell unless you write one).
    #[arg(last = true, required = true, num_args = 1..)]
    command: Vec<String>,
}

/// Runs the guarded deploy: exit 0 promoted, 1 rolled back or escalated, 2 when it cannot run.
pub fn run(args: DeployArgs) -> anyhow::Result<u8> {
    let config = args.config.load()?;
    super::runtime()?.block_on(async {
        let socket = config.medic.control_socket.clone();
        if tokio::net::UnixStream::connect(&socket).await.is_ok() {
            return guard(&socket, &args).await;
        }
        eprintln!(
            "medic: no daemon answers on {}: guarding the deploy in-process",
            socket.display()
        );
        let standalone = Standalone::start(config, &args.service)?;
        let result = async {
            standalone
                .ready(&socket, &args.service, args.timeout)
                .await?;
            guard(&socket, &args).await
        }
        .await;
        standalone.stop().await;
        result
    })
}

/// Begins the deploy, runs the command, reports how it ended and waits for the verdict.
async fn guard(socket: &Path, args: &DeployArgs) -> anyhow::Result<u8> {
    let service = &args.service;
    let body = DeployBody {
        command_timeout_secs: args.command_timeout.as_secs().max(1),
        verify_timeout_secs: args.timeout.as_secs().max(1),
    };
    let path = service_path(service, "deploy");
    let (status, json) = call(
        socket,
        Method::POST,
        &path,
        Some(serde_json::to_value(body)?),
    )
    .await?;
    if !status.is_success() {
        let error = json["error"].as_str().unwrap_or("refused");
        eprintln!("medic: cannot deploy {service}: {error}");
        return Ok(2);
    }
    let started: DeployStarted =
        serde_json::from_value(json).context("unexpected deploy answer")?;
    eprintln!(
        "medic: deploying {service} (now: {}); automatic recovery is held",
        describe(started.before.as_ref())
    );
    let finish = run_command(&args.command, args.command_timeout).await;
    let path = service_path(service, "deploy/finish");
    eprintln!(
        "medic: {}; waiting up to {} for {service} to be healthy",
        finish.message,
        humantime::format_duration(args.timeout)
    );
    let (status, json) = call(
        socket,
        Method::POST,
        &path,
        Some(serde_json::to_value(&finish)?),
    )
    .await?;
    if !status.is_success() {
        let error = json["error"].as_str().unwrap_or("no answer");
        anyhow::bail!("the daemon did not report how the deploy ended: {error}");
    }
    let outcome: DeployOutcome =
        serde_json::from_value(json).context("unexpected deploy outcome")?;
    for instance in &outcome.instances {
        println!(
            "  {}: {} ({} → {})",
            instance.unit,
            instance.outcome,
            describe(instance.before.as_ref()),
            describe(instance.after.as_ref())
        );
    }
    if outcome.promoted && !outcome.instances.is_empty() {
        println!("deployed {service}: {}", outcome.message);
        Ok(0)
    } else if outcome.promoted {
        println!(
            "deployed {service}: {} → {}",
            describe(outcome.before.as_ref()),
            describe(outcome.after.as_ref())
        );
        Ok(0)
    } else {
        eprintln!("medic: deploy of {service} failed: {}", outcome.message);
        Ok(1)
    }
}

/// Runs the deploy command in its own process group with its output streamed
/// through; at `timeout` the whole group is killed (the daemon rolls back at
/// that moment anyway); on Ctrl-C asks whether to roll back (without a
/// terminal: rolls back).
async fn run_command(argv: &[String], timeout: Duration) -> DeployFinishBody {
    let mut evidence = medic_core::Evidence::new();
    evidence.insert("command".into(), argv.into());
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            return DeployFinishBody {
                ok: false,
                message: format!("cannot run `{}`: {error}", argv[0]),
                evidence,
            };
        }
    };
    let tail = std::sync::Arc::new(std::sync::Mutex::new(VecDeque::new()));
    let out = tokio::spawn(tee(child.stdout.take(), false, tail.clone()));
    let err = tokio::spawn(tee(child.stderr.take(), true, tail.clone()));
    let group = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);
    let signal_group = |signal| {
        if let Some(group) = group {
            killpg(group, signal).ok();
        }
    };
    let exit = tokio::select! {
        status = child.wait() => Some(status),
        () = tokio::time::sleep(timeout) => {
            signal_group(Signal::SIGKILL);
            child.wait().await.ok();
            let message = format!(
                "`{}` did not finish within --command-timeout ({}): killed",
                argv[0],
                humantime::format_duration(timeout)
            );
            return DeployFinishBody { ok: false, message, evidence };
        }
        _ = tokio::signal::ctrl_c() => None,
    };
    let (ok, message) = match exit {
        Some(Ok(status)) => match status.code() {
            Some(0) => (true, format!("`{}` exited 0", argv[0])),
            Some(code) => {
                evidence.insert("exit_code".into(), code.into());
                (false, format!("`{}` exited {code}", argv[0]))
            }
            None => (false, format!("`{}` was killed by a signal", argv[0])),
        },
        Some(Err(error)) => (false, format!("cannot wait for `{}`: {error}", argv[0])),
        None => {
            // Its own process group gets no Ctrl-C from the terminal: pass it on,
            // then make sure the whole group is gone.
            signal_group(Signal::SIGINT);
            if tokio::time::timeout(Duration::from_secs(5), child.wait())
                .await
                .is_err()
            {
                signal_group(Signal::SIGKILL);
                child.wait().await.ok();
            }
            let keep = ask(
                "\nmedic: interrupted. Roll back to the version from before the deploy? [Y/n] ",
            )
            .is_some_and(|answer| matches!(answer.trim(), "n" | "N" | "no"));
            if keep {
                (
                    true,
                    "interrupted by Ctrl-C; the person kept the new version".to_owned(),
                )
            } else {
                (false, "interrupted by Ctrl-C".to_owned())
            }
        }
    };
    out.await.ok();
    err.await.ok();
    let lines: Vec<String> = tail
        .lock()
        .map(|t| t.iter().cloned().collect())
        .unwrap_or_default();
    evidence.insert("output_tail".into(), lines.into());
    DeployFinishBody {
        ok,
        message,
        evidence,
    }
}

/// Copies a stream of the command to ours line by line, keeping the last lines.
async fn tee(
    stream: Option<impl AsyncRead + Unpin>,
    stderr: bool,
    tail: std::sync::Arc<std::sync::Mutex<VecDeque<String>>>,
) {
    let Some(stream) = stream else { return };
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if stderr {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
        if let Ok(mut tail) = tail.lock() {
            if tail.len() == OUTPUT_TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    }
}

/// Asks a question on a terminal; None without one.
fn ask(question: &str) -> Option<String> {
    if !std::io::stdin().is_terminal() {
        eprintln!("{question}no terminal: rolling back");
        return None;
    }
    eprint!("{question}");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).ok()?;
    Some(answer)
}

/// `image (sha256:0123456789ab)` for a container version; `unknown` without one.
fn describe(version: Option<&serde_json::Value>) -> String {
    let Some(version) = version else {
        return "no recorded version".to_owned();
    };
    // A deploy of several instances: each one's version.
    if version.get("image").is_none()
        && let Some(instances) = version.as_object()
    {
        if instances.is_empty() {
            return "no recorded version".to_owned();
        }
        let each: Vec<String> = instances
            .iter()
            .map(|(unit, v)| format!("{unit}: {}", describe(Some(v))))
            .collect();
        return each.join(", ");
    }
    let image = version["image"].as_str();
    let id = version["image_id"].as_str().map(|id| {
        let hex = id.strip_prefix("sha256:").unwrap_or(id);
        hex.chars().take(12).collect::<String>()
    });
    match (image, id) {
        (Some(image), Some(id)) => format!("{image} ({id})"),
        (Some(image), None) => image.to_owned(),
        _ => version.to_string(),
    }
}

/// An in-process daemon watching only the deployed service, for when none runs.
struct Standalone {
    /// Containers get a last known good spec recorded once healthy; wait for it.
    records_versions: bool,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Standalone {
    fn start(mut config: Config, service: &str) -> anyhow::Result<Self> {
        let name = service.split('/').next().unwrap_or(service);
        if config.services.iter().any(|s| s.name == name) {
            config.services.retain(|s| s.name == name);
        } else {
            // A Compose service (`web`, `app/web`): the selector services that may watch it.
            config.services.retain(|s| {
                matches!(&s.target, Some(Target::Container(t)) if !matches!(t.selector, ContainerSelector::Name(_)))
            });
        }
        anyhow::ensure!(
            !config.services.is_empty(),
            "no service named `{name}` in the config"
        );
        let records_versions = matches!(config.services[0].target, Some(Target::Container(_)));
        config.medic.metrics_listen = None;
        config.medic.status_listen = medic_core::config::StatusListen::Off;
        config.medic.web_config = None;
        config.medic.control_tcp = None;
        let cancel = CancellationToken::new();
        let shutdown = cancel.clone().cancelled_owned();
        let task = tokio::spawn(medic_daemon::run(config, None, shutdown));
        Ok(Self {
            records_versions,
            cancel,
            task,
        })
    }

    /// Waits until the service has a verdict, and, when it is healthy and a
    /// rollback target can be recorded, until it is.
    async fn ready(&self, socket: &Path, service: &str, within: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if self.task.is_finished() {
                anyhow::bail!("the in-process daemon stopped (see the recovery log)");
            }
            // Every unit the name means (one, or a selector's instances) has a verdict.
            let path = format!("/v1/status?service={}", encode(service));
            if let Ok((_, json)) = call(socket, Method::GET, &path, None).await
                && let Ok(report) = serde_json::from_value::<StatusReport>(json)
                && !report.services.is_empty()
                && report.services.iter().all(|unit| {
                    unit.state != "starting"
                        && (unit.health != "healthy"
                            || unit.last_known_good.is_some()
                            || !self.records_versions)
                })
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!(
                    "`{service}` had no verdict within {}",
                    humantime::format_duration(within)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(self) {
        self.cancel.cancel();
        match self.task.await {
            Ok(Err(error)) => eprintln!("medic: the in-process daemon failed: {error:#}"),
            Err(error) => eprintln!("medic: the in-process daemon failed: {error}"),
            Ok(Ok(())) => {}
        }
    }
}
