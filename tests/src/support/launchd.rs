//! A fake launchd for the end-to-end tests: the `fake-launchctl` binary put on
//! PATH as `launchctl`, its state in a temp dir, and the jobs' plists in a
//! temp HOME's `Library/LaunchAgents`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::medic::{bin, eventually};

/// One fake launchd with its own state, PATH and HOME.
pub struct FakeLaunchd {
    dir: tempfile::TempDir,
}

impl FakeLaunchd {
    /// A fresh fake with no jobs loaded and no GUI login (so `gui/<uid>` does not exist).
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        for sub in ["bin", "state", "home/Library/LaunchAgents", "logs"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("create a dir");
        }
        std::os::unix::fs::symlink(bin("fake-launchctl"), dir.path().join("bin/launchctl"))
            .expect("link the fake launchctl");
        Self { dir }
    }

    /// The domain medic falls back to without a GUI login: `user/<uid>`.
    pub fn domain() -> String {
        format!("user/{}", nix::unistd::getuid())
    }

    /// PATH (the fake first), FAKE_LAUNCHCTL_DIR and HOME for medic.
    pub fn env(&self) -> Vec<(String, String)> {
        let path = format!(
            "{}:{}",
            self.dir.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        vec![
            ("PATH".into(), path),
            (
                "FAKE_LAUNCHCTL_DIR".into(),
                self.dir.path().join("state").display().to_string(),
            ),
            (
                "HOME".into(),
                self.dir.path().join("home").display().to_string(),
            ),
        ]
    }

    /// Runs the fake launchctl; panics when it fails.
    #[track_caller]
    pub fn launchctl(&self, args: &[&str]) -> Output {
        let output = Command::new(self.dir.path().join("bin/launchctl"))
            .args(args)
            .envs(self.env())
            .output()
            .expect("run the fake launchctl");
        assert!(
            output.status.success(),
            "launchctl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// Where a job's log files go.
    pub fn log(&self, name: &str) -> PathBuf {
        self.dir.path().join("logs").join(name)
    }

    /// The plist path of a label in the standard per-user folder.
    pub fn plist(&self, label: &str) -> PathBuf {
        self.dir
            .path()
            .join("home/Library/LaunchAgents")
            .join(format!("{label}.plist"))
    }

    /// Writes a LaunchAgent plist running `sh -c script` (RunAtLoad, logs to logs/<label>.{out,err}).
    pub fn write_agent(&self, label: &str, script: &str) -> PathBuf {
        self.write_agent_with(label, script, "")
    }

    /// Like `write_agent`, with extra plist keys (`<key>StartInterval</key><integer>60</integer>`).
    pub fn write_agent_with(&self, label: &str, script: &str, extra: &str) -> PathBuf {
        let escape = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        let plist = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>{label}</string>
	<key>ProgramArguments</key>
	<array>
		<string>/bin/sh</string>
		<string>-c</string>
		<string>{script}</string>
	</array>
	<key>RunAtLoad</key>
	<true/>
	<key>StandardOutPath</key>
	<string>{out}</string>
	<key>StandardErrorPath</key>
	<string>{err}</string>
{extra}</dict>
</plist>
"#,
            script = escape(script),
            out = self.log(&format!("{label}.out")).display(),
            err = self.log(&format!("{label}.err")).display(),
        );
        let path = self.plist(label);
        std::fs::write(&path, plist).expect("write the plist");
        path
    }

    /// Loads a job from its plist into the fallback domain.
    pub fn bootstrap(&self, plist: &Path) {
        self.launchctl(&["bootstrap", &Self::domain(), &plist.display().to_string()]);
    }

    /// Unloads a job and waits until it is gone.
    pub fn bootout(&self, label: &str) {
        let target = format!("{}/{label}", Self::domain());
        self.launchctl(&["bootout", &target]);
        eventually("the job to be booted out", || {
            (!self.job_dir(label).join("plist").exists()).then_some(())
        });
    }

    fn job_dir(&self, label: &str) -> PathBuf {
        self.dir
            .path()
            .join("state/jobs")
            .join(Self::domain().replace('/', "_"))
            .join(label)
    }

    /// The pid of a job's running program.
    pub fn pid(&self, label: &str) -> Option<i32> {
        let text = std::fs::read_to_string(self.job_dir(label).join("pid")).ok()?;
        let pid: i32 = text.trim().parse().ok()?;
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
        alive.then_some(pid)
    }

    /// kill -9 of a job's running program (a crash).
    #[track_caller]
    pub fn crash(&self, label: &str) {
        let pid = self.pid(label).expect("the job runs");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .expect("kill the job");
    }
}

impl Drop for FakeLaunchd {
    fn drop(&mut self) {
        // Stop every job still running, so no program outlives the test.
        let Ok(domains) = std::fs::read_dir(self.dir.path().join("state/jobs")) else {
            return;
        };
        for job in domains
            .flatten()
            .filter_map(|d| std::fs::read_dir(d.path()).ok())
            .flatten()
            .flatten()
        {
            if let Some(pid) = std::fs::read_to_string(job.path().join("pid"))
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok())
            {
                nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                )
                .ok();
            }
        }
    }
}
