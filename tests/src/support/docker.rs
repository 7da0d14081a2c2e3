//! The private Docker engine of the test command, driven with the docker CLI.

use std::path::Path;
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

    /// The engine's address (`DOCKER_HOST`).
    pub fn host(&self) -> &str {
        &self.host
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

/// A second, private dockerd this test owns, so it can stop and restart it
/// without disturbing the shared engine. Images come from the shared engine.
pub struct OwnEngine {
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
    pub engine: Engine,
}

impl OwnEngine {
    /// Starts it and copies `images` into it from the shared engine.
    pub fn start(shared: &Engine, images: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("medic-own-dockerd")
            .tempdir_in("/tmp")
            .expect("a temp dir");
        let host = format!("unix://{}/docker.sock", dir.path().display());
        let mut own = Self {
            dir,
            child: None,
            engine: Engine { host },
        };
        own.spawn();
        for image in images {
            let save = Command::new("docker")
                .args(["save", image])
                .env("DOCKER_HOST", &shared.host)
                .output()
                .expect("docker save");
            let mut load = Command::new("docker")
                .arg("load")
                .env("DOCKER_HOST", &own.engine.host)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("docker load");
            use std::io::Write;
            load.stdin
                .take()
                .expect("piped stdin")
                .write_all(&save.stdout)
                .expect("write the image");
            assert!(
                load.wait().expect("docker load").success(),
                "loading {image}"
            );
        }
        own
    }

    /// The engine's address, for medic's DOCKER_HOST.
    pub fn host(&self) -> &str {
        &self.engine.host
    }

    /// Starts dockerd on this engine's directories and waits until it answers.
    pub fn spawn(&mut self) {
        let root = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(root.join("dockerd.log"))
            .expect("log");
        let child = Command::new(if Path::new("/usr/sbin/dockerd").exists() {
            "/usr/sbin/dockerd"
        } else {
            "dockerd"
        })
        .arg("-H")
        .arg(&self.engine.host)
        .arg("--data-root")
        .arg(root.join("data"))
        .arg("--exec-root")
        .arg(root.join("exec"))
        .arg("--pidfile")
        .arg(root.join("dockerd.pid"))
        .args(["--bridge=none", "--iptables=false", "--ip6tables=false"])
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start dockerd");
        self.child = Some(child);
        super::medic::eventually("the own dockerd to answer", || {
            self.engine.try_run(&["info"]).0.then_some(())
        });
    }

    /// Stops dockerd (SIGTERM) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid fits"));
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).ok();
            super::medic::eventually("dockerd to stop", || child.try_wait().ok().flatten());
        }
    }
}

impl Drop for OwnEngine {
    fn drop(&mut self) {
        if self.child.is_some() {
            let (_, ids) = self.engine.try_run(&["ps", "-aq"]);
            for id in ids.split_whitespace() {
                self.engine.try_run(&["rm", "-f", id]);
            }
            self.stop();
        }
    }
}
