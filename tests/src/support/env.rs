//! Where the components the test command started are: a private Docker engine,
//! the images it built, a private Alertmanager, the programs it installed. A
//! test that needs one fails when it is missing, unless `MEDIC_TEST_SKIP` names
//! it (see `skip.rs`); then it gets None and returns, and the skip is recorded.

use super::skip;

/// The private Docker engine (`MEDIC_TEST_DOCKER_HOST`); component `docker`.
#[track_caller]
pub fn docker_host() -> Option<String> {
    require("docker", "MEDIC_TEST_DOCKER_HOST")
}

/// The private Podman service (`MEDIC_TEST_PODMAN_HOST`, its Docker-compatible socket);
/// component `podman`.
#[track_caller]
pub fn podman_host() -> Option<String> {
    require("podman", "MEDIC_TEST_PODMAN_HOST")
}

/// Where the private Podman service keeps its containers (`MEDIC_TEST_PODMAN_ROOT`,
/// holding `root/`, `run/` and `tmp/`), for a second service on the same
/// storage; component `podman`.
#[track_caller]
pub fn podman_root() -> Option<String> {
    require("podman", "MEDIC_TEST_PODMAN_ROOT")
}

/// The .deb scripts/package built for the test command (`MEDIC_TEST_DEB`, in
/// `MEDIC_TEST_DIST`); component `package`.
#[track_caller]
pub fn deb() -> Option<String> {
    require("package", "MEDIC_TEST_DEB")
}

/// The Debian image that boots systemd as PID 1 (`MEDIC_TEST_SYSTEMD_IMAGE`);
/// component `systemd`.
#[track_caller]
pub fn systemd_image() -> Option<String> {
    require("systemd", "MEDIC_TEST_SYSTEMD_IMAGE")
}

/// The private Alertmanager (`MEDIC_TEST_ALERTMANAGER`, e.g. `http://127.0.0.1:19093`);
/// component `alertmanager`.
#[track_caller]
pub fn alertmanager() -> Option<String> {
    require("alertmanager", "MEDIC_TEST_ALERTMANAGER")
}

/// A program the test command installs (`systemd-analyze`, `runuser`, `tmux`,
/// `chromium`, `prometheus`), found on PATH; the component is the program's
/// name, except helpers that belong to one (`chromedriver` to `chromium`,
/// `prometheus-alertmanager` to `alertmanager`, `promtool` to `prometheus`).
#[track_caller]
pub fn program(name: &str) -> Option<String> {
    let component = match name {
        "chromedriver" => "chromium",
        "prometheus-alertmanager" => "alertmanager",
        "promtool" => "prometheus",
        other => other,
    };
    skip::unless_skipped(component)?;
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.exists())
        .map(|path| path.display().to_string());
    found.or_else(|| skip::missing(component, &format!("`{name}` is not installed")))
}

/// The value of `var`, set by the test command for `component`; None only when
/// `MEDIC_TEST_SKIP` names the component, a failure when it is unset.
#[track_caller]
pub fn require(component: &str, var: &str) -> Option<String> {
    skip::unless_skipped(component)?;
    if let Ok(value) = std::env::var(var)
        && !value.is_empty()
    {
        return Some(value);
    }
    skip::missing(
        component,
        &format!("{component} is not available ({var} unset)"),
    )
}

/// Root, for the tests that mount a tmpfs to fill a disk (CI runs as root);
/// component `root`.
#[track_caller]
pub fn root() -> Option<()> {
    skip::unless_skipped("root")?;
    if nix::unistd::Uid::effective().is_root() {
        return Some(());
    }
    skip::missing("root", "mounting a tmpfs needs root")
}
