//! Finding and loading the config: the file given with --config, or the
//! embedded default job with paths that work for the user running medic.

use std::path::{Path, PathBuf};

use clap::Args;
use medic_core::config::{self, Config};

use crate::Exit;

/// EX_CONFIG from sysexits.h: the config is invalid.
pub const EX_CONFIG: u8 = 64;

/// The `--config` option shared by every subcommand that needs the config.
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// Config file (TOML). Without it: the embedded default job (containers labelled medic.enable=true).
    #[arg(long, short = 'c', env = "MEDIC_CONFIG")]
    pub config: Option<PathBuf>,
}

impl ConfigArgs {
    /// Loads and validates the config; prints every error and fails with EX_CONFIG when invalid.
    /// Every `${NAME}` of the `[[alert]]` sinks must be set: for commands that send alerts.
    pub fn load(&self) -> anyhow::Result<Config> {
        match &self.config {
            Some(path) => load_file(path),
            None => Ok(default_job()),
        }
    }

    /// Like [`ConfigArgs::load`] for commands that never send an alert (`status`,
    /// `logs`, `alerts`, `pause`, …): a person's shell need not hold the daemon's
    /// secrets, so an unset `${NAME}` stands for a placeholder that is never used.
    pub fn load_without_secrets(&self) -> anyhow::Result<Config> {
        match &self.config {
            Some(path) => load_with(path, &|name| {
                Some(std::env::var(name).unwrap_or_else(|_| format!("http://unset.invalid/{name}")))
            }),
            None => Ok(default_job()),
        }
    }
}

/// Reads and validates a config file; `${NAME}`s come from the environment.
pub fn load_file(path: &Path) -> anyhow::Result<Config> {
    load_with(path, &|name| std::env::var(name).ok())
}

fn load_with(path: &Path, env: config::Env<'_>) -> anyhow::Result<Config> {
    let source = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    config::parse_with_env(&source, &path.display().to_string(), env).map_err(|errors| {
        eprint!("{errors}");
        Exit(EX_CONFIG).into()
    })
}

/// The embedded default job. As root it keeps its files in /var/lib/medic and
/// /run/medic; as anyone else under the XDG state and runtime directories.
fn default_job() -> Config {
    let mut config = config::default_config();
    if !is_root() {
        let state = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .unwrap_or_else(std::env::temp_dir)
            .join("medic");
        let runtime = std::env::var_os("XDG_RUNTIME_DIR")
            .map_or_else(|| state.clone(), |r| PathBuf::from(r).join("medic"));
        config.medic.recovery_log = state.join("recovery.jsonl");
        config.medic.alerts_file = state.join("alerts/critical.jsonl");
        config.medic.control_socket = runtime.join("control.sock");
        config.medic.state_dir = state;
    }
    config
}

fn is_root() -> bool {
    // The owner of /proc/self is the effective uid, read without unsafe code.
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}
