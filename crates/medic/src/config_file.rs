//! Finding and loading the config: `--config`, `MEDIC_CONFIG`, the user's
//! `$XDG_CONFIG_HOME/medic/medic.toml`, the install prefix's
//! `etc/medic/medic.toml`, `/etc/medic/medic.toml`, or else the embedded
//! default job with paths that work for the user running medic.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::Args;
use medic_core::config::{self, Config, Settings};

use crate::Exit;

/// EX_CONFIG from sysexits.h: the config is invalid or cannot be read.
pub const EX_CONFIG: u8 = 78;

/// The `--config` option shared by every subcommand that needs the config.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigArgs {
    /// Config file (TOML). Without it: $MEDIC_CONFIG, else the first that exists of
    /// $XDG_CONFIG_HOME/medic/medic.toml (~/.config/…), <prefix>/etc/medic/medic.toml,
    /// /etc/medic/medic.toml, else the embedded default job (containers labelled
    /// medic.enable=true). `medic config path` says which.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
}

/// The config file a command uses and why that one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The file, or None for the embedded default job.
    pub path: Option<PathBuf>,
    /// How it was found: `--config`, `MEDIC_CONFIG`, `$XDG_CONFIG_HOME`, ….
    pub how: &'static str,
}

impl std::fmt::Display for Located {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.path {
            Some(path) => write!(f, "{} (from {})", path.display(), self.how),
            None => write!(f, "the embedded default job ({})", self.how),
        }
    }
}

impl ConfigArgs {
    /// The config file this command uses: `--config`, then `MEDIC_CONFIG`, then
    /// the first file that exists of the search list, else the embedded default.
    pub fn locate(&self) -> Located {
        locate(
            self.config.as_deref(),
            &|name| std::env::var_os(name),
            crate::prefix::current().as_deref(),
            &|path| path.is_file(),
        )
    }

    /// The config file, if any (None: the embedded default job).
    pub fn path(&self) -> Option<PathBuf> {
        self.locate().path
    }

    /// Loads and validates the config; prints every error and fails with EX_CONFIG when invalid.
    /// Every `${NAME}` of the `[[alert]]` sinks must be set: for commands that send alerts.
    pub fn load(&self) -> anyhow::Result<Config> {
        match self.path() {
            Some(path) => load_file(&path),
            None => Ok(default_job()),
        }
    }

    /// Like [`ConfigArgs::load`] for commands that never send an alert (`status`,
    /// `logs`, `alerts`, `pause`, …): a person's shell need not hold the daemon's
    /// secrets, so an unset `${NAME}` stands for a placeholder that is never used.
    pub fn load_without_secrets(&self) -> anyhow::Result<Config> {
        match self.path() {
            Some(path) => load_with(&path, &placeholder_for_unset),
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
        let Some(path) = self.path() else {
            return Ok(default_job().medic);
        };
        let source = read(&path)?;
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
    let source = read(path)?;
    config::parse_with_env(&source, &path.display().to_string(), env).map_err(|errors| {
        eprint!("{errors}");
        Exit(EX_CONFIG).into()
    })
}

/// A config file's text; one that cannot be read is a config medic cannot use (EX_CONFIG).
pub fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|e| {
        eprintln!("medic: error: cannot read {}: {e}", path.display());
        Exit(EX_CONFIG).into()
    })
}

/// For the commands whose codes are 0/1/2 (`check`, `status`): a config they
/// cannot use is their error, 2, rather than EX_CONFIG.
pub fn as_exit_2(error: anyhow::Error) -> anyhow::Error {
    match error.downcast_ref::<Exit>() {
        Some(_) => Exit(2).into(),
        None => error,
    }
}

/// Where the config is: an explicit file (`--config`, `MEDIC_CONFIG`), else the
/// first of the search list that `exists`, else the embedded default job.
fn locate(
    flag: Option<&Path>,
    env: &dyn Fn(&str) -> Option<OsString>,
    prefix: Option<&Path>,
    exists: &dyn Fn(&Path) -> bool,
) -> Located {
    if let Some(path) = flag {
        return Located {
            path: Some(path.to_owned()),
            how: "--config",
        };
    }
    let set = |name: &str| env(name).filter(|value| !value.is_empty());
    if let Some(path) = set("MEDIC_CONFIG") {
        return Located {
            path: Some(path.into()),
            how: "MEDIC_CONFIG",
        };
    }
    let mut candidates = Vec::new();
    if let Some(dir) = set("XDG_CONFIG_HOME") {
        candidates.push((PathBuf::from(dir), "$XDG_CONFIG_HOME"));
    } else if let Some(home) = set("HOME") {
        candidates.push((PathBuf::from(home).join(".config"), "~/.config"));
    }
    if let Some(prefix) = prefix {
        let etc = crate::prefix::etc(prefix);
        if etc != Path::new("/etc") {
            candidates.push((etc, "the install prefix"));
        }
    }
    candidates.push((PathBuf::from("/etc"), "/etc/medic"));
    candidates
        .into_iter()
        .map(|(dir, how)| (dir.join("medic/medic.toml"), how))
        .find(|(path, _)| exists(path))
        .map_or(
            Located {
                path: None,
                how: "no config file found",
            },
            |(path, how)| Located {
                path: Some(path),
                how,
            },
        )
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
    use std::ffi::OsString;
    use std::path::Path;

    use super::{Located, locate, medic_table};

    /// Where the config is found with these variables set and these files present.
    fn found(vars: &[(&str, &str)], files: &[&str], prefix: Option<&str>) -> Located {
        found_with(None, vars, files, prefix)
    }

    fn found_with(
        flag: Option<&str>,
        vars: &[(&str, &str)],
        files: &[&str],
        prefix: Option<&str>,
    ) -> Located {
        let env = |name: &str| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| OsString::from(v))
        };
        let exists = |path: &Path| files.iter().any(|f| Path::new(f) == path);
        locate(flag.map(Path::new), &env, prefix.map(Path::new), &exists)
    }

    #[test]
    fn the_search_list_in_order() {
        let home = [("HOME", "/home/ann")];
        let xdg = [("HOME", "/home/ann"), ("XDG_CONFIG_HOME", "/x")];
        let all = [
            "/x/medic/medic.toml",
            "/home/ann/.config/medic/medic.toml",
            "/opt/homebrew/etc/medic/medic.toml",
            "/etc/medic/medic.toml",
        ];
        let at = |l: Located| (l.path.map(|p| p.display().to_string()), l.how);
        assert_eq!(
            at(found(&xdg, &all, None)),
            (Some(all[0].into()), "$XDG_CONFIG_HOME")
        );
        assert_eq!(
            at(found(&home, &all, None)),
            (Some(all[1].into()), "~/.config")
        );
        assert_eq!(
            at(found(&home, &all[2..], Some("/opt/homebrew"))),
            (Some(all[2].into()), "the install prefix")
        );
        assert_eq!(
            at(found(&home, &all[2..], Some("/usr"))),
            (Some(all[3].into()), "/etc/medic")
        );
        assert_eq!(at(found(&home, &[], None)), (None, "no config file found"));
    }

    #[test]
    fn an_explicit_file_wins_even_when_missing() {
        let vars = [("MEDIC_CONFIG", "/srv/m.toml")];
        let files = ["/etc/medic/medic.toml"];
        let flag = found_with(Some("/a.toml"), &vars, &files, None);
        assert_eq!(flag.to_string(), "/a.toml (from --config)");
        let from_env = found(&vars, &files, None);
        assert_eq!(from_env.to_string(), "/srv/m.toml (from MEDIC_CONFIG)");
    }

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
