//! Records the git revision medic is built from, for `medic_build_info`.
//! `MEDIC_REVISION` in the environment wins (packaging from a tarball); without
//! git it is `unknown`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=MEDIC_REVISION");
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    if let Some(head) = git(&["rev-parse", "--git-path", "HEAD"]) {
        println!("cargo:rerun-if-changed={head}");
    }
    if let Some(refs) = git(&["rev-parse", "--git-common-dir"]) {
        println!("cargo:rerun-if-changed={refs}/refs/heads");
    }
    let revision = std::env::var("MEDIC_REVISION")
        .ok()
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=MEDIC_REVISION={revision}");
}
