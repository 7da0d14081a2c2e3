//! `medic config check [FILE]`: validate a config and print every error;
//! `medic config path`: which config file the other commands use, and why.

use std::path::PathBuf;

use clap::Subcommand;

use crate::config_file::ConfigArgs;

/// Config subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config file: every error with file:line:column; exit 0 valid, 1 invalid.
    Check {
        /// The config file [default: the one `medic config path` names].
        file: Option<PathBuf>,
    },
    /// Print the config file the other commands use and how it was found.
    Path {
        #[command(flatten)]
        config: ConfigArgs,
    },
}

/// Runs a config subcommand.
pub fn run(command: ConfigCommand) -> anyhow::Result<u8> {
    match command {
        ConfigCommand::Path { config } => {
            println!("{}", config.locate());
            Ok(0)
        }
        ConfigCommand::Check { file } => check(file),
    }
}

/// `medic config check`: 0 valid, 1 invalid or unreadable.
fn check(file: Option<PathBuf>) -> anyhow::Result<u8> {
    let Some(file) = file.or_else(|| ConfigArgs::default().path()) else {
        let config = medic_core::config::default_config();
        println!("<default>: ok ({} services)", config.services.len());
        return Ok(0);
    };
    match crate::config_file::load_file(&file) {
        Ok(config) => {
            for warning in &config.warnings {
                eprintln!("{warning}");
            }
            let warnings = match medic_daemon::web::exposure_warnings(&config.medic) {
                Ok(warnings) => warnings,
                Err(error) => {
                    eprintln!("{}: error: {error:#}", file.display());
                    return Ok(1);
                }
            };
            for warning in warnings {
                eprintln!("{}: warning: {warning}", file.display());
            }
            println!(
                "{}: ok ({} services)",
                file.display(),
                config.services.len()
            );
            Ok(0)
        }
        Err(error) if error.downcast_ref::<crate::Exit>().is_some() => Ok(1),
        Err(error) => Err(error),
    }
}
