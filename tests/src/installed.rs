//! medic as an installed program meets it: the config found without
//! `--config` (`MEDIC_CONFIG`, `$XDG_CONFIG_HOME`), the exit code of a config
//! it cannot use, and its own output files kept bounded.

use std::process::Command;

use crate::support::medic::{Medic, bin, eventually, free_port};

/// A tcp service on a port something listens on: healthy.
fn listening_service(name: &str) -> (std::net::TcpListener, String) {
    let port = free_port();
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let service = format!(
        "[[service]]\nname = \"{name}\"\n  [[service.probe]]\n  kind = \"tcp\"\n  address = \"127.0.0.1:{port}\"\n"
    );
    (listener, service)
}

/// `medic` with no config flag, HOME and XDG_CONFIG_HOME as given.
fn medic_without_flag(args: &[&str], vars: &[(&str, &std::path::Path)]) -> std::process::Output {
    Command::new(bin("medic"))
        .args(args)
        .env_remove("MEDIC_CONFIG")
        .env_remove("XDG_CONFIG_HOME")
        .envs(vars.iter().map(|(k, v)| (*k, *v)))
        .output()
        .unwrap()
}

#[test]
fn status_finds_the_config_in_xdg_config_home_and_medic_config() {
    let (_listener, service) = listening_service("found");
    let medic = Medic::start(&service);
    medic.wait_listening();
    let home = tempfile::tempdir().unwrap();

    // $XDG_CONFIG_HOME/medic/medic.toml.
    let xdg = home.path().join("xdg");
    std::fs::create_dir_all(xdg.join("medic")).unwrap();
    std::fs::copy(&medic.config, xdg.join("medic/medic.toml")).unwrap();
    let vars = [("HOME", home.path()), ("XDG_CONFIG_HOME", xdg.as_path())];
    let status = medic_without_flag(&["status"], &vars);
    let text = String::from_utf8_lossy(&status.stdout);
    assert_eq!(status.status.code(), Some(0), "{text}{status:?}");
    assert!(text.contains("found"), "{text}");
    let path = medic_without_flag(&["config", "path"], &vars);
    assert_eq!(
        String::from_utf8_lossy(&path.stdout).trim(),
        format!("{}/medic/medic.toml (from $XDG_CONFIG_HOME)", xdg.display())
    );

    // Without XDG_CONFIG_HOME: ~/.config/medic/medic.toml.
    std::fs::create_dir_all(home.path().join(".config/medic")).unwrap();
    std::fs::rename(
        xdg.join("medic/medic.toml"),
        home.path().join(".config/medic/medic.toml"),
    )
    .unwrap();
    let status = medic_without_flag(&["status"], &[("HOME", home.path())]);
    assert_eq!(status.status.code(), Some(0), "{status:?}");

    // MEDIC_CONFIG comes before the search list.
    let status = Command::new(bin("medic"))
        .args(["status"])
        .env("HOME", tempfile::tempdir().unwrap().path())
        .env_remove("XDG_CONFIG_HOME")
        .env("MEDIC_CONFIG", &medic.config)
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(0), "{status:?}");
}

#[test]
fn a_config_medic_cannot_use_exits_78() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let run = medic_without_flag(
        &["run", "--config", &missing.display().to_string()],
        &[("HOME", dir.path())],
    );
    assert_eq!(run.status.code(), Some(78), "{run:?}");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("cannot read"), "{stderr}");
    // `status` keeps its 0/1/2.
    let status = medic_without_flag(
        &["status", "--config", &missing.display().to_string()],
        &[("HOME", dir.path())],
    );
    assert_eq!(status.status.code(), Some(2), "{status:?}");
}

/// A LaunchAgent's StandardErrorPath grows forever unless medic rotates it:
/// past `journal_max_size` (64 MiB by default) it becomes `.1` and medic
/// writes on in a new file.
#[test]
fn an_output_file_past_the_journal_size_is_rotated() {
    let (_listener, service) = listening_service("quiet");
    let mut medic = Medic::prepare(&service);
    let stderr = medic.dir.path().join("medic.stderr");
    let big = 65 * 1024 * 1024;
    std::fs::File::create(&stderr)
        .unwrap()
        .set_len(big)
        .unwrap();
    medic.spawn();
    let rotated = medic.dir.path().join("medic.stderr.1");
    eventually("medic.stderr rotated to medic.stderr.1", || {
        (std::fs::metadata(&rotated).ok()?.len() >= big).then_some(())
    });
    medic.wait_listening();
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(&stderr).unwrap();
    assert!(meta.len() < big, "a new, small file: {} bytes", meta.len());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    // A line written after the rotation lands in the new file.
    medic.signal(nix::sys::signal::Signal::SIGHUP);
    eventually("medic writes on into the new file", || {
        std::fs::read_to_string(&stderr)
            .ok()?
            .contains("Config reloaded")
            .then_some(())
    });
}
