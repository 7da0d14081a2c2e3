//! Where the components the test command started are: a private Docker engine
//! and the images it built. Outside the test command a test that needs one says
//! loudly that it was skipped; under CI=true it fails instead.

/// The private Docker engine (`MEDIC_TEST_DOCKER_HOST`).
pub fn docker_host() -> Option<String> {
    require("a Docker engine", "MEDIC_TEST_DOCKER_HOST")
}

/// The component's address from `var`, or None after a loud SKIPPED line; panics under CI.
fn require(component: &str, var: &str) -> Option<String> {
    if let Ok(value) = std::env::var(var)
        && !value.is_empty()
    {
        return Some(value);
    }
    let message =
        format!("{component} is not available ({var} unset): run the tests with scripts/test");
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{message}");
    }
    eprintln!("SKIPPED: {message}");
    None
}
