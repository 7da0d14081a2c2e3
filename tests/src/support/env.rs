//! Where the components the test command started are: a private Docker engine,
//! the images it built and a private Alertmanager. Outside the test command a test that needs one says
//! loudly that it was skipped; under CI=true it fails instead.

/// The private Docker engine (`MEDIC_TEST_DOCKER_HOST`).
pub fn docker_host() -> Option<String> {
    require("a Docker engine", "MEDIC_TEST_DOCKER_HOST")
}

/// The private Podman service (`MEDIC_TEST_PODMAN_HOST`, its Docker-compatible socket).
pub fn podman_host() -> Option<String> {
    require("a Podman service", "MEDIC_TEST_PODMAN_HOST")
}

/// The .deb the test command built with cargo-deb (`MEDIC_TEST_DEB`).
pub fn deb() -> Option<String> {
    require("the .deb package", "MEDIC_TEST_DEB")
}

/// The Debian image that boots systemd as PID 1 (`MEDIC_TEST_SYSTEMD_IMAGE`).
pub fn systemd_image() -> Option<String> {
    require("the systemd container image", "MEDIC_TEST_SYSTEMD_IMAGE")
}

/// The private Alertmanager (`MEDIC_TEST_ALERTMANAGER`, e.g. `http://127.0.0.1:19093`).
pub fn alertmanager() -> Option<String> {
    require("an Alertmanager", "MEDIC_TEST_ALERTMANAGER")
}

/// A program the test command installs (`systemd-analyze`, `runuser`), found on PATH.
pub fn program(name: &str) -> Option<String> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.exists())
        .map(|path| path.display().to_string());
    found.or_else(|| {
        skip_or_fail(&format!(
            "`{name}` is not installed: run the tests with scripts/test"
        ))
    })
}

/// The component's address from `var`, or None after a loud SKIPPED line; panics under CI.
fn require(component: &str, var: &str) -> Option<String> {
    if let Ok(value) = std::env::var(var)
        && !value.is_empty()
    {
        return Some(value);
    }
    skip_or_fail(&format!(
        "{component} is not available ({var} unset): run the tests with scripts/test"
    ))
}

/// Outside CI: a loud SKIPPED line and None. Under CI=true: a failure.
fn skip_or_fail<T>(message: &str) -> Option<T> {
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{message}");
    }
    eprintln!("SKIPPED: {message}");
    None
}
