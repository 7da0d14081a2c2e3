//! The prefix medic is installed under, derived from where its executable is:
//! `/opt/homebrew` for Homebrew on Apple silicon, `/usr/local` on Intel or for
//! the tarball, `/usr` for the .deb. `medic install launchd` writes its paths
//! under it and the config search looks in its `etc/`.

use std::path::{Path, PathBuf};

/// The prefix of the running executable, if it lives in a `bin/` folder or a
/// Homebrew Cellar (symlinks resolved: `/opt/homebrew/bin/medic` points into
/// `/opt/homebrew/Cellar/medic/<version>/bin/medic`).
pub fn current() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    of(&std::fs::canonicalize(&exe).unwrap_or(exe))
}

/// The prefix of an executable at `exe`: what comes before `Cellar/`, else
/// the parent of its `bin/`.
pub fn of(exe: &Path) -> Option<PathBuf> {
    let parts: Vec<_> = exe.components().collect();
    if let Some(cellar) = parts.iter().position(|c| c.as_os_str() == "Cellar") {
        return Some(parts[..cellar].iter().collect());
    }
    let bin = exe.parent()?;
    if bin.file_name()? != "bin" {
        return None;
    }
    bin.parent().map(Path::to_path_buf)
}

/// Where a prefix keeps its config: `/etc` for `/usr` and `/`, else `<prefix>/etc`.
pub fn etc(prefix: &Path) -> PathBuf {
    beside(prefix, "etc")
}

/// Where a prefix keeps variable data (logs): `/var` for `/usr` and `/`, else `<prefix>/var`.
pub fn var(prefix: &Path) -> PathBuf {
    beside(prefix, "var")
}

/// The system's own `/etc` or `/var` for the system prefixes, else the prefix's.
fn beside(prefix: &Path, dir: &str) -> PathBuf {
    if prefix == Path::new("/usr") || prefix == Path::new("/") {
        Path::new("/").join(dir)
    } else {
        prefix.join(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn homebrew_and_plain_prefixes() {
        let of = |p: &str| of(Path::new(p)).map(|p| p.display().to_string());
        assert_eq!(
            of("/opt/homebrew/Cellar/medic/0.1.0/bin/medic").as_deref(),
            Some("/opt/homebrew")
        );
        assert_eq!(
            of("/opt/homebrew/bin/medic").as_deref(),
            Some("/opt/homebrew")
        );
        assert_eq!(of("/usr/local/bin/medic").as_deref(), Some("/usr/local"));
        assert_eq!(of("/usr/bin/medic").as_deref(), Some("/usr"));
        assert_eq!(of("/work/target/debug/medic"), None);
    }

    #[test]
    fn etc_of_the_system_prefix_is_etc() {
        assert_eq!(etc(Path::new("/usr")), Path::new("/etc"));
        assert_eq!(
            etc(Path::new("/opt/homebrew")),
            Path::new("/opt/homebrew/etc")
        );
        assert_eq!(var(Path::new("/usr")), Path::new("/var"));
        assert_eq!(var(Path::new("/usr/local")), Path::new("/usr/local/var"));
    }
}
