//! The `medic` command: parses arguments and dispatches to one module per subcommand.

mod client;
mod commands;
mod config_file;
mod logging;
mod output_files;
mod prefix;
mod table;

use std::process::ExitCode;

use clap::Parser;

use commands::Command;

/// medic keeps services alive: it probes containers, LaunchAgents and endpoints,
/// restarts what failed, rolls back bad versions and alerts with evidence.
#[derive(Debug, Parser)]
#[command(name = "medic", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// An error that carries its own exit code (EX_CONFIG for a bad config, …).
#[derive(Debug)]
pub struct Exit(pub u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}", self.0)
    }
}

impl std::error::Error for Exit {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match commands::run(cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            if let Some(Exit(code)) = error.downcast_ref::<Exit>() {
                return ExitCode::from(*code);
            }
            eprintln!("medic: error: {error:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
