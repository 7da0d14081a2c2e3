//! The subcommands; the enum only dispatches.

mod alert;
mod alerts;
mod check;
mod completions;
mod config;
mod control;
mod deploy;
mod doctor;
mod install;
mod logs;
mod output;
mod report;
mod run;
mod top;

use clap::Subcommand;

/// What medic can be asked to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon (without --config: watch containers labelled medic.enable=true).
    Run(run::RunArgs),
    /// Probe everything once and print a table; exit 0 healthy, 1 unhealthy, 2 error.
    Check(check::CheckArgs),
    /// Show each service's state from the running daemon; exit like `check`.
    Status(control::StatusArgs),
    /// A live terminal dashboard: services, recent events, pause/resume/recover keys.
    Top(top::TopArgs),
    /// Read and follow the recovery log.
    Logs(logs::LogsArgs),
    /// What happened over a period: availability, incidents, restarts, deploys, time to recover.
    Report(report::ReportArgs),
    /// Pause automatic recovery of a service.
    Pause(control::PauseArgs),
    /// Resume automatic recovery of a service.
    Resume(control::UnitArgs),
    /// Clear a service's escalation and attempt count.
    Reset(control::UnitArgs),
    /// Restart a service now, with a fresh attempt budget.
    Recover(control::UnitArgs),
    /// Stop watching an instance removed on purpose (else it is restored): `medic forget web/app-web-3`.
    Forget(control::UnitArgs),
    /// Run a deploy command under guard: healthy in time or rolled back to the version before.
    Deploy(deploy::DeployArgs),
    /// List recent alerts and where each was delivered.
    Alerts(alerts::AlertsArgs),
    /// Work with the [[alert]] notification sinks.
    #[command(subcommand)]
    Alert(alert::AlertCommand),
    /// Re-read the config file in the running daemon (like SIGHUP); a bad config is rejected.
    Reload(control::ReloadArgs),
    /// Work with config files.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Check the host and the config for what would break; exit 0 ok, 1 warnings, 2 errors.
    Doctor(doctor::DoctorArgs),
    /// Install medic as a system service.
    #[command(subcommand)]
    Install(install::InstallCommand),
    /// Exit 0 when the running daemon answers on its control socket, 2 when not (the image's HEALTHCHECK).
    Ping(control::PingArgs),
    /// Print shell completions: `medic completions bash > /usr/share/bash-completion/completions/medic`.
    Completions(completions::CompletionsArgs),
    /// Write the man pages into a folder (for packaging).
    #[command(hide = true)]
    Manpages(completions::ManpagesArgs),
}

/// Runs a subcommand; returns the process exit code.
pub fn run(command: Command) -> anyhow::Result<u8> {
    match command {
        Command::Run(args) => run::run(args),
        Command::Check(args) => check::run(args),
        Command::Status(args) => control::status(args),
        Command::Top(args) => top::run(args),
        Command::Logs(args) => logs::run(args),
        Command::Report(args) => report::run(args),
        Command::Pause(args) => control::pause(args),
        Command::Resume(args) => control::unit(args, "resume"),
        Command::Reset(args) => control::unit(args, "reset"),
        Command::Recover(args) => control::unit(args, "recover"),
        Command::Forget(args) => control::forget(args),
        Command::Reload(args) => control::reload(args),
        Command::Deploy(args) => deploy::run(args),
        Command::Alerts(args) => alerts::run(args),
        Command::Alert(command) => alert::run(command),
        Command::Config(command) => config::run(command),
        Command::Doctor(args) => doctor::run(args),
        Command::Install(command) => install::run(command),
        Command::Ping(args) => control::ping(args),
        Command::Completions(args) => completions::completions(&args),
        Command::Manpages(args) => completions::manpages(&args),
    }
}

/// A tokio runtime for one command. One thread: medic's work is waiting on
/// sockets and timers, and a single thread wakes no other thread to hand it
/// over (the daemon's idle CPU was mostly such wake-ups).
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}
