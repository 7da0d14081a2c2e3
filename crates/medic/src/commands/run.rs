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

/// Runs the daemon; a config it cannot use exits 78 (EX_CONFIG) before
/// anything starts, which the systemd unit does not restart.
pub fn run(args: RunArgs) -> anyhow::Result<u8> {
    let located = args.config.locate();
    let config = args.config.load()?;
    crate::logging::init();
    tracing::info!("config: {located}");
    super::runtime()?.block_on(async {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                _ = int.recv() => tracing::info!("SIGINT: stopping"),
            }
        };
        let (max_size, keep) = (config.medic.journal_max_size, config.medic.journal_keep);
        tokio::select! {
            done = medic_daemon::run(config, located.path, shutdown) => done,
            () = crate::output_files::rotate(max_size, keep) => Ok(()),
        }
    })?;
    Ok(0)
}
