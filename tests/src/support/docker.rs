//! The private Docker engine of the test command, driven with the docker CLI.

use std::process::Command;

use serde_json::Value;

/// The docker CLI against the test engine.
pub struct Engine {
    host: String,
}

impl Engine {
    /// The test engine, or None when run outside scripts/test (panics under CI).
    pub fn get() -> Option<Self> {
        super::env::docker_host().map(|host| Self { host })
    }

    /// Runs `docker ARGS`; panics with its stderr when it fails.
    #[track_caller]
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.try_run(args);
        assert!(out.0, "docker {args:?} failed: {}", out.1);
        out.1
    }

    /// Runs `docker ARGS`; (success, stdout or stderr).
    pub fn try_run(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", &self.host)
            .output()
            .expect("run docker");
        let text = if out.status.success() {
            out.stdout
        } else {
            out.stderr
        };
        (
            out.status.success(),
            String::from_utf8_lossy(&text).trim().to_owned(),
        )
    }

    /// `docker inspect NAME` as JSON, or None when it does not exist.
    pub fn inspect(&self, name: &str) -> Option<Value> {
        let (ok, text) = self.try_run(&["inspect", name]);
        ok.then(|| serde_json::from_str::<Value>(&text).ok()?.get(0).cloned())
            .flatten()
    }

    /// The image id of an image reference.
    pub fn image_id(&self, reference: &str) -> String {
        self.run(&["image", "inspect", "-f", "{{.Id}}", reference])
    }
}

/// A container name unique to this test run.
pub fn unique(name: &str) -> String {
    format!("medic-e2e-{name}-{}", std::process::id())
}

/// Removes the named containers when dropped (also their forensic copies).
pub struct Cleanup<'a>(pub &'a Engine, pub Vec<String>);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for name in &self.1 {
            let (_, ids) = self
                .0
                .try_run(&["ps", "-aq", "--filter", &format!("name={name}")]);
            for id in ids.split_whitespace() {
                self.0.try_run(&["rm", "-f", id]);
            }
        }
    }
}
