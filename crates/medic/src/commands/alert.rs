//! `medic alert test SINK`: sends one test alert to a configured sink now and
//! says whether it arrived (exit 0) or why not (exit 1), secrets left out.

use clap::{Args, Subcommand};

use crate::config_file::ConfigArgs;

/// Work with the `[[alert]]` sinks.
#[derive(Debug, Subcommand)]
pub enum AlertCommand {
    /// Send a test alert to one sink.
    Test(TestArgs),
}

/// Arguments of `medic alert test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The sink's `name`.
    sink: String,
}

/// Runs an `alert` subcommand.
pub fn run(command: AlertCommand) -> anyhow::Result<u8> {
    let AlertCommand::Test(args) = command;
    let config = args.config.load()?;
    let Some(sink) = config.alerts.iter().find(|s| s.name == args.sink) else {
        let names: Vec<&str> = config.alerts.iter().map(|s| s.name.as_str()).collect();
        anyhow::bail!(
            "no [[alert]] sink named `{}` (configured: {})",
            args.sink,
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        );
    };
    let result = super::runtime()?.block_on(medic_alerts::send_test(&config, sink));
    match result {
        Ok(()) => {
            println!(
                "test alert delivered to `{}` ({})",
                sink.name,
                sink.kind.as_str()
            );
            Ok(0)
        }
        Err(error) => {
            eprintln!("test alert to `{}` failed: {error:#}", sink.name);
            Ok(1)
        }
    }
}
