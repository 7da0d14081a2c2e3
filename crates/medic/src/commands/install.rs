//! `medic install systemd`: writes the unit, the sysusers and tmpfiles
//! snippets and a default config, then prints how to enable it.
//! `medic install launchd`: writes the LaunchAgent plist that runs medic on macOS.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

const UNIT: &str = include_str!("../../../../systemd/medic.service");
const SYSUSERS: &str = include_str!("../../../../systemd/medic.sysusers");
const TMPFILES: &str = include_str!("../../../../systemd/medic.tmpfiles");
/// The config a package installs: the default job, with the socket open to group medic.
const PACKAGED_CONFIG: &str = include_str!("../../../../packaging/medic.toml");

/// What to install.
#[derive(Debug, Subcommand)]
pub enum InstallCommand {
    /// The systemd unit (Type=notify, watchdog, hardening), sysusers and tmpfiles snippets.
    Systemd(SystemdArgs),
    /// A LaunchAgent plist that keeps medic running (KeepAlive, ThrottleInterval, log files).
    Launchd(LaunchdArgs),
}

/// Arguments of `medic install launchd`. With `--prefix /opt/homebrew` it
/// writes exactly `launchd/com.medic.agent.plist` of the repository.
#[derive(Debug, Args)]
pub struct LaunchdArgs {
    /// Folder the plist is written to [default: ~/Library/LaunchAgents].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The prefix medic is installed under [default: where this medic runs from:
    /// /opt/homebrew for /opt/homebrew/bin/medic (Homebrew, Apple silicon), /usr/local on Intel].
    #[arg(long)]
    prefix: Option<PathBuf>,
    /// The medic binary the agent runs [default: <prefix>/bin/medic].
    #[arg(long)]
    bin: Option<PathBuf>,
    /// The config file the agent runs with [default: <prefix>/etc/medic/medic.toml].
    #[arg(long)]
    config: Option<PathBuf>,
    /// Folder of medic's stdout and stderr files, which medic rotates
    /// (journal_max_size, journal_keep) [default: <prefix>/var/log/medic].
    #[arg(long)]
    log_dir: Option<PathBuf>,
}

/// The paths a LaunchAgent runs medic with.
#[derive(Debug)]
struct AgentPaths {
    bin: PathBuf,
    config: PathBuf,
    log_dir: PathBuf,
}

impl LaunchdArgs {
    /// Each path as given, else under the prefix (given, else derived from this executable).
    fn paths(&self) -> anyhow::Result<AgentPaths> {
        let prefix = || {
            self.prefix.clone().or_else(crate::prefix::current).with_context(|| {
                "cannot tell the install prefix from this medic's path: pass --prefix (e.g. /opt/homebrew)"
            })
        };
        Ok(AgentPaths {
            bin: match &self.bin {
                Some(bin) => bin.clone(),
                None => prefix()?.join("bin/medic"),
            },
            config: match &self.config {
                Some(config) => config.clone(),
                None => crate::prefix::etc(&prefix()?).join("medic/medic.toml"),
            },
            log_dir: match &self.log_dir {
                Some(dir) => dir.clone(),
                None => crate::prefix::var(&prefix()?).join("log/medic"),
            },
        })
    }
}

/// The label of medic's own LaunchAgent.
const LAUNCHD_LABEL: &str = "com.medic.agent";

/// Arguments of `medic install systemd`.
#[derive(Debug, Args)]
pub struct SystemdArgs {
    /// Install under this root instead of / (for packaging and tests).
    #[arg(long, default_value = "/")]
    root: PathBuf,
    /// The medic binary the unit runs.
    #[arg(long, default_value = "/usr/bin/medic")]
    bin: PathBuf,
}

/// Runs an install subcommand.
pub fn run(command: InstallCommand) -> anyhow::Result<u8> {
    match command {
        InstallCommand::Systemd(args) => systemd(&args),
        InstallCommand::Launchd(args) => launchd(&args),
    }
}

fn launchd(args: &LaunchdArgs) -> anyhow::Result<u8> {
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => std::env::var_os("HOME")
            .map(|home| PathBuf::from(home).join("Library/LaunchAgents"))
            .context("HOME is not set: pass --dir")?,
    };
    let paths = args.paths()?;
    let path = dir.join(format!("{LAUNCHD_LABEL}.plist"));
    write(&path, &launchd_plist(&paths)?)?;
    println!("wrote    {}", path.display());
    println!(
        "\nEdit {config} (`medic config check {config}`), then:",
        config = paths.config.display()
    );
    println!(
        "  mkdir -p {} && launchctl bootstrap gui/$(id -u) {}",
        paths.log_dir.display(),
        path.display()
    );
    Ok(0)
}

/// The LaunchAgent plist: runs `medic run --config …` at login, restarted by
/// launchd whenever it exits (at most every 10 s), stdout and stderr to files.
fn launchd_plist(args: &AgentPaths) -> anyhow::Result<String> {
    use plist::{Dictionary, Value};
    let text = |p: &Path| Value::String(p.display().to_string());
    let mut dict = Dictionary::new();
    dict.insert("Label".into(), LAUNCHD_LABEL.into());
    dict.insert(
        "ProgramArguments".into(),
        Value::Array(vec![
            text(&args.bin),
            "run".into(),
            "--config".into(),
            text(&args.config),
        ]),
    );
    dict.insert("RunAtLoad".into(), true.into());
    dict.insert("KeepAlive".into(), true.into());
    dict.insert("ThrottleInterval".into(), 10.into());
    // medic stops within its 5 s shutdown grace; launchd waits this long before SIGKILL.
    dict.insert("ExitTimeOut".into(), 10.into());
    dict.insert(
        "StandardOutPath".into(),
        text(&args.log_dir.join("medic.out.log")),
    );
    dict.insert(
        "StandardErrorPath".into(),
        text(&args.log_dir.join("medic.err.log")),
    );
    let mut xml = Vec::new();
    Value::Dictionary(dict)
        .to_writer_xml(&mut xml)
        .context("cannot render the plist")?;
    xml.push(b'\n');
    String::from_utf8(xml).context("the plist is not UTF-8")
}

fn systemd(args: &SystemdArgs) -> anyhow::Result<u8> {
    let unit = UNIT.replace("/usr/bin/medic", &args.bin.display().to_string());
    let files = [
        ("etc/systemd/system/medic.service", unit.as_str(), true),
        ("usr/lib/sysusers.d/medic.conf", SYSUSERS, true),
        ("usr/lib/tmpfiles.d/medic.conf", TMPFILES, true),
        ("etc/medic/medic.toml", PACKAGED_CONFIG, false),
    ];
    for (relative, contents, replace) in files {
        let path = args.root.join(relative);
        if !replace && path.exists() {
            println!("kept     {} (already there)", path.display());
            continue;
        }
        write(&path, contents)?;
        println!("wrote    {}", path.display());
    }
    println!("\nEdit /etc/medic/medic.toml (`medic config check /etc/medic/medic.toml`), then:");
    println!(
        "  systemd-sysusers && systemd-tmpfiles --create && systemctl daemon-reload && systemctl enable --now medic"
    );
    println!(
        "\nCommand targets that restart units or write files need the opt-in drop-in and polkit rule\n(docs/running.md, \"Command targets that act\"); `medic doctor` checks what the unit allows."
    );
    Ok(0)
}

fn write(path: &Path, contents: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Install {
        #[command(subcommand)]
        command: InstallCommand,
    }

    #[test]
    fn the_launchd_example_is_what_the_defaults_write() {
        let Install {
            command: InstallCommand::Launchd(args),
        } = Install::parse_from(["install", "launchd", "--prefix", "/opt/homebrew"])
        else {
            panic!("launchd parses as launchd");
        };
        let example = include_str!("../../../../launchd/com.medic.agent.plist");
        assert_eq!(launchd_plist(&args.paths().unwrap()).unwrap(), example);
    }
}
