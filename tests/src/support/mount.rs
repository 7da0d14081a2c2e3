//! File systems mounted for one test (root only: CI runs as root), e.g. a
//! small tmpfs as state_dir to fill up, or to make read-only.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted for one test, unmounted when dropped.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount`'s words: "2m") at `at`, creating it.
    pub fn mount(at: &Path, size: &str) -> Self {
        std::fs::create_dir_all(at).expect("mount point");
        mount(
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ],
            at,
        );
        Self(at.to_owned())
    }

    /// Remounts it read-only, or writable again.
    pub fn read_only(&self, read_only: bool) {
        let mode = if read_only {
            "remount,ro"
        } else {
            "remount,rw"
        };
        mount(&["-o", mode], &self.0);
    }
}

fn mount(args: &[&str], at: &Path) {
    let status = Command::new("mount")
        .args(args)
        .arg(at)
        .status()
        .expect("run mount");
    assert!(status.success(), "mount {args:?} {}", at.display());
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        Command::new("umount").arg("-l").arg(&self.0).status().ok();
    }
}
