//! systemd as PID 1 in a container on a Docker engine, booted with the recipe
//! that works without `--privileged`: the e2e tests (`systemd.rs`,
//! `systemd_units.rs`) install the .deb in it, and `medic-bench`'s `units`
//! part measures detection in it (it includes this file with `#[path]`).
//!
//! Std only, and the docker CLI through the runner the caller gives, so both
//! binaries share it as it is.

use std::time::{Duration, Instant};

/// Runs `docker ARGS` against the engine: (success, stdout or stderr).
pub type Docker = Box<dyn Fn(&[&str]) -> (bool, String) + Send + Sync>;

/// One container running systemd as PID 1, removed when dropped.
pub struct Machine {
    docker: Docker,
    name: String,
}

impl Machine {
    /// Boots `image` as container `name` on the host's network, with the
    /// engine's socket at /run/docker.sock (`socket`: its path on the host)
    /// and `mounts` (`host:container[:ro]`), and waits until systemd has
    /// finished booting.
    pub fn boot(docker: Docker, name: &str, image: &str, socket: &str, mounts: &[String]) -> Self {
        let socket = format!("{socket}:/run/docker.sock");
        let mut args = vec![
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "host",
            "--cgroupns=host",
            "--cap-add",
            "SYS_ADMIN",
            "--security-opt",
            "seccomp=unconfined",
            "--security-opt",
            "apparmor=unconfined",
            "-e",
            "container=docker",
            "-v",
            "/sys/fs/cgroup:/sys/fs/cgroup:rw",
            "--tmpfs",
            "/run",
            "--tmpfs",
            "/run/lock",
            "--tmpfs",
            "/tmp",
            "-v",
            &socket,
        ];
        for mount in mounts {
            args.extend(["-v", mount.as_str()]);
        }
        args.extend([image, "/lib/systemd/systemd"]);
        let (ok, out) = docker(&args);
        assert!(ok, "booting {image} as {name}: {out}");
        let machine = Self {
            docker,
            name: name.to_owned(),
        };
        machine.wait_booted();
        machine
    }

    /// Waits until boot has finished: the manager's bus appears a moment
    /// after PID 1 starts (until then systemctl fails to connect, or reports
    /// "offline"), then `is-system-running --wait` returns at the end of boot.
    fn wait_booted(&self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        let state = loop {
            let state = self.sh("timeout 60 systemctl is-system-running --wait").1;
            if ["running", "degraded", "maintenance", "stopping"].contains(&state.as_str()) {
                break state;
            }
            assert!(
                Instant::now() < deadline,
                "systemd did not boot in {}: {state}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(
            state == "running" || state == "degraded",
            "systemd did not boot: {state}\n{}",
            self.sh("systemctl --failed --no-pager").1
        );
    }

    /// Runs `sh -c script` in the container as root: (success, stdout or stderr).
    pub fn sh(&self, script: &str) -> (bool, String) {
        (self.docker)(&["exec", &self.name, "sh", "-c", script])
    }

    /// Like `sh`, and panics when the script fails.
    #[track_caller]
    pub fn must(&self, script: &str) -> String {
        let (ok, out) = self.sh(script);
        assert!(ok, "`{script}` failed in the systemd container: {out}");
        out
    }

    /// Writes a file in the container (mode 0644, parents created).
    #[track_caller]
    pub fn write(&self, path: &str, contents: &str) {
        let (ok, out) = (self.docker)(&[
            "exec",
            &self.name,
            "sh",
            "-c",
            r#"mkdir -p "$(dirname "$2")" && printf '%s' "$1" > "$2""#,
            "sh",
            contents,
            path,
        ]);
        assert!(ok, "writing {path}: {out}");
    }

    /// One property of a unit (`systemctl show -p NAME --value`).
    pub fn show(&self, unit: &str, property: &str) -> String {
        self.sh(&format!("systemctl show {unit} -p {property} --value"))
            .1
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- journal of the systemd container ---\n{}",
                self.sh("journalctl --no-pager -n 150").1
            );
        }
        (self.docker)(&["rm", "-f", &self.name]);
    }
}
