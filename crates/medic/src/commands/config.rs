//! `medic config check FILE`: validate a config and print every error.

use std::path::PathBuf;

use clap::Subcommand;

/// Config subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config file: every error with file:line:column; exit 0 valid, 1 invalid.
    Check {
        /// The config file.
        file: PathBuf,
    },
}

/// Runs a config subcommand.
pub fn run(command: ConfigCommand) -> anyhow::Result<u8> {
    match command {
        ConfigCommand::Check { file } => match crate::config_file::load_file(&file) {
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
        },
    }
}
