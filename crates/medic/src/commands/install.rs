//! `medic install systemd`: writes the unit, the sysusers and tmpfiles
//! snippets and a default config, then prints how to enable it.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

const UNIT: &str = include_str!("../../../../systemd/medic.service");
const SYSUSERS: &str = include_str!("../../../../systemd/medic.sysusers");
const TMPFILES: &str = include_str!("../../../../systemd/medic.tmpfiles");
const EXAMPLE_CONFIG: &str = include_str!("../../../../config/medic.toml");

/// What to install.
#[derive(Debug, Subcommand)]
pub enum InstallCommand {
    /// The systemd unit (Type=notify, watchdog, hardening), sysusers and tmpfiles snippets.
    Systemd(SystemdArgs),
}

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
    }
}

fn systemd(args: &SystemdArgs) -> anyhow::Result<u8> {
    let unit = UNIT.replace("/usr/bin/medic", &args.bin.display().to_string());
    let files = [
        ("etc/systemd/system/medic.service", unit.as_str(), true),
        ("usr/lib/sysusers.d/medic.conf", SYSUSERS, true),
        ("usr/lib/tmpfiles.d/medic.conf", TMPFILES, true),
        ("etc/medic/medic.toml", EXAMPLE_CONFIG, false),
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
    Ok(0)
}

fn write(path: &Path, contents: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}
