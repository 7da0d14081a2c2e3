//! Finding and loading the config: the file given with --config, or the
//! embedded default job with paths that work for the user running medic.

use std::path::{Path, PathBuf};

use clap::Args;
use medic_core::config::{self, Config, Settings};

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
            Some(path) => load_with(path, &placeholder_for_unset),
            None => Ok(default_job()),
        }
    }
}

impl ConfigArgs {
    /// Only the `[medic]` settings, for commands that only talk to the daemon
    /// (`status`, `pause`, …): read from that table alone, so finding the
    /// control socket in a config of 10,000 services costs a few lines, not the
    /// whole file. A file where the table cannot be cut out cleanly, or whose
    /// table alone does not validate, is read whole (for its errors' lines).
    pub fn load_settings(&self) -> anyhow::Result<Settings> {
        let Some(path) = &self.config else {
            return Ok(default_job().medic);
        };
        let source = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        if let Some(table) = medic_table(&source)
            && let Ok(config) =
                config::parse_with_env(&table, &path.display().to_string(), &placeholder_for_unset)
        {
            return Ok(config.medic);
        }
        Ok(self.load_without_secrets()?.medic)
    }
}

/// `${NAME}` from the environment, or a placeholder that is never used when unset.
fn placeholder_for_unset(name: &str) -> Option<String> {
    Some(std::env::var(name).unwrap_or_else(|_| format!("http://unset.invalid/{name}")))
}

/// The `[medic]` table of a config file's text (empty when there is none), or
/// None when keys of it may stand elsewhere (`medic.x = …` at the top, a
/// second `[medic]`).
fn medic_table(source: &str) -> Option<String> {
    let mut table = String::new();
    let mut inside = false;
    let mut seen = false;
    let mut top = true;
    for line in source.lines() {
        let text = line.trim_start();
        if text.starts_with('[') {
            top = false;
            let header = text.split('#').next().unwrap_or_default().trim();
            let name: String = header.chars().filter(|c| !c.is_whitespace()).collect();
            let medic = name == "[medic]" || name.starts_with("[medic.");
            if name == "[medic]" {
                if seen {
                    return None;
                }
                seen = true;
            }
            inside = medic;
        } else if top && text.starts_with("medic") {
            return None;
        }
        if inside {
            table.push_str(line);
            table.push('\n');
        }
    }
    Some(table)
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

#[cfg(test)]
mod tests {
    use super::medic_table;

    #[test]
    fn the_medic_table_is_cut_out_of_a_large_config() {
        let source = "# medic\n[defaults]\nfailure_threshold = 2\n\n[ medic ] # daemon\n\
                      control_socket = \"/tmp/c.sock\"\n[medic.x]\na = 1\n\n\
                      [[service]]\nname = \"medic\"\n";
        assert_eq!(
            medic_table(source).unwrap(),
            "[ medic ] # daemon\ncontrol_socket = \"/tmp/c.sock\"\n[medic.x]\na = 1\n\n"
        );
        assert_eq!(medic_table("[[service]]\nname = \"a\"\n").unwrap(), "");
    }

    #[test]
    fn keys_of_medic_elsewhere_mean_the_whole_file() {
        assert_eq!(medic_table("medic.state_dir = \"/x\"\n[[service]]\n"), None);
        assert_eq!(medic_table("medic = { state_dir = \"/x\" }\n"), None);
        assert_eq!(medic_table("[medic]\na = 1\n[medic]\nb = 2\n"), None);
    }
}
