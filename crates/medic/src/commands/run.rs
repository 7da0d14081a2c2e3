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
    init_tracing();
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

/// Diagnostic logging to stderr (journald adds its own timestamps); RUST_LOG overrides the level.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
