//! The private Docker engine of the test command, driven with the docker CLI.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// The docker CLI against the test engine (or the podman CLI against the test
/// Podman service).
#[derive(Clone)]
pub struct Engine {
    host: String,
    podman: bool,
}

impl Engine {
    /// The test engine; None only when `MEDIC_TEST_SKIP` names `docker`, a failure when it is missing.
    #[track_caller]
    pub fn get() -> Option<Self> {
        super::env::docker_host().map(|host| Self {
            host,
            podman: false,
        })
    }

    /// The test Podman service driven with `podman --remote` as a Podman user
    /// would (inspect still answers in Docker's format), or None outside scripts/test.
    pub fn podman() -> Option<Self> {
        super::env::podman_host().map(|host| Self { host, podman: true })
    }

    /// The engine's address, for medic's `docker_host`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Runs `docker ARGS` (`podman ARGS`); panics with its stderr when it fails.
    #[track_caller]
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.try_run(args);
        assert!(out.0, "{args:?} failed: {}", out.1);
        out.1
    }

    /// Runs `docker ARGS` (`podman ARGS`); (success, stdout or stderr).
    pub fn try_run(&self, args: &[&str]) -> (bool, String) {
        let mut command = match self.podman {
            true => {
                let mut podman = Command::new("podman");
                podman.args(["--remote", "--url", &self.host]);
                podman
            }
            false => Command::new("docker"),
        };
        let out = command
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

    /// `docker run -d --name NAME --network host ARGS…` (Podman here also needs
    /// its ulimits spelled out); the new container's id.
    #[track_caller]
    pub fn run_on_host(&self, name: &str, args: &[&str]) -> String {
        let mut all = vec!["run", "-d", "--name", name, "--network", "host"];
        if self.podman {
            all.extend([
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=1024:1024",
            ]);
        }
        all.extend(args);
        self.run(&all)
    }

    /// `docker inspect NAME` as JSON (Docker's format, on Podman too), or None when it does not exist.
    pub fn inspect(&self, name: &str) -> Option<Value> {
        let docker = Self {
            host: self.host.clone(),
            podman: false,
        };
        let (ok, text) = docker.try_run(&["inspect", name]);
        ok.then(|| serde_json::from_str::<Value>(&text).ok()?.get(0).cloned())
            .flatten()
    }

    /// The image id of an image reference (as Docker's API says it).
    pub fn image_id(&self, reference: &str) -> String {
        let docker = Self {
            host: self.host.clone(),
            podman: false,
        };
        docker.run(&["image", "inspect", "-f", "{{.Id}}", reference])
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
            engine: Engine {
                host,
                podman: false,
            },
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
