//! `medic run`: the daemon, until SIGTERM or SIGINT.

use clap::Args;
use tokio::signal::unix::{SignalKind, signal};

use crate::config_file::ConfigArgs;

/// Arguments of `medic run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    config: ConfigArgs,
}

/// Runs the daemon; a bad config exits 64 before anything starts.
pub fn run(args: RunArgs) -> anyhow::Result<u8> {
    let config = args.config.load()?;
    crate::logging::init();
    super::runtime()?.block_on(async {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                _ = int.recv() => tracing::info!("SIGINT: stopping"),
            }
        };
        medic_daemon::run(config, args.config.config.clone(), shutdown).await
    })?;
    Ok(0)
}
