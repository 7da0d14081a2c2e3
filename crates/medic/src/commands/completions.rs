//! `medic completions bash|zsh|fish` and `medic manpages DIR`: shell
//! completions and man pages generated from the CLI definition itself, so they
//! never drift from it (`scripts/package` ships both).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, CommandFactory, ValueEnum};

/// The shells medic writes completions for.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// Arguments of `medic completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash (to /usr/share/bash-completion/completions/medic), zsh (a
    /// `_medic` file in $fpath) or fish (~/.config/fish/completions/medic.fish).
    shell: Shell,
}

/// Arguments of `medic manpages`.
#[derive(Debug, Args)]
pub struct ManpagesArgs {
    /// Folder the pages are written to: medic.1 and medic-<subcommand>.1 for each subcommand.
    dir: PathBuf,
}

/// Prints the completion script for one shell on stdout.
pub fn completions(args: &CompletionsArgs) -> anyhow::Result<u8> {
    let generator = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(
        generator,
        &mut crate::Cli::command(),
        "medic",
        &mut std::io::stdout().lock(),
    );
    Ok(0)
}

/// Writes medic.1 and one page per subcommand (`medic-config-check.1`, …) into the folder.
pub fn manpages(args: &ManpagesArgs) -> anyhow::Result<u8> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    clap_mangen::generate_to(crate::Cli::command(), &args.dir)
        .with_context(|| format!("cannot write the man pages to {}", args.dir.display()))?;
    Ok(0)
}
