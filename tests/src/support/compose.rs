//! Docker Compose projects on the test engine, driven with Debian's
//! `docker-compose` (v1, which names containers `project_service_1`).

use std::path::PathBuf;
use std::process::Command;

use super::docker::Engine;

/// One Compose project of a test: its own directory and project name; `down`
/// (and the removal of whatever medic kept or recreated) when dropped.
pub struct Project {
    pub engine: Engine,
    pub name: String,
    file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Project {
    /// Writes `services` (the YAML under `services:`) as a compose file of a
    /// project unique to this test run, and runs `up -d`. None outside scripts/test.
    pub fn up(test: &str, services: &str) -> Option<Self> {
        let engine = Engine::get()?;
        super::env::program("docker-compose")?;
        let dir = tempfile::tempdir().expect("a temp dir");
        let file = dir.path().join("docker-compose.yml");
        std::fs::write(&file, format!("version: \"2.4\"\nservices:\n{services}"))
            .expect("write the compose file");
        let project = Self {
            engine,
            name: format!("medic{test}{}", std::process::id()),
            file,
            _dir: dir,
        };
        project.run(&["up", "-d"]);
        Some(project)
    }

    /// `docker-compose -p NAME -f FILE ARGS` as an argv (for `medic deploy … --`).
    pub fn argv(&self, args: &[&str]) -> Vec<String> {
        let file = self.file.display().to_string();
        let mut argv: Vec<String> = ["docker-compose", "-p", &self.name, "-f", &file]
            .map(str::to_owned)
            .to_vec();
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        argv
    }

    /// Runs `docker-compose ARGS` on this project; panics with its output when it fails.
    #[track_caller]
    pub fn run(&self, args: &[&str]) -> String {
        let argv = self.argv(args);
        let out = Command::new(&argv[0])
            .args(&argv[1..])
            .env("DOCKER_HOST", self.engine.host())
            .output()
            .expect("run docker-compose");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "docker-compose {args:?} failed: {text}"
        );
        text
    }

    /// The name Compose v1 gives replica `n` of a service.
    pub fn container(&self, service: &str, n: u32) -> String {
        format!("{}_{service}_{n}", self.name)
    }

    /// The id of a container, or None when there is none of that name.
    pub fn id(&self, container: &str) -> Option<String> {
        let (ok, id) = self
            .engine
            .try_run(&["inspect", "-f", "{{.Id}}", container]);
        ok.then_some(id)
    }

    /// The medic config of the default job (`medic.enable=true`), narrowed to
    /// this project so tests running in parallel do not see each other's containers.
    pub fn default_job(&self) -> String {
        format!(
            "[[service]]\nname = \"docker\"\ncontainer = {{ label = [\"medic.enable=true\", \"com.docker.compose.project={}\"] }}\n",
            self.name
        )
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let argv = self.argv(&["down", "-t", "0", "--remove-orphans"]);
        Command::new(&argv[0])
            .args(&argv[1..])
            .env("DOCKER_HOST", self.engine.host())
            .output()
            .ok();
        // What medic recreated after `down`, and its forensic copies.
        let filter = format!("label=com.docker.compose.project={}", self.name);
        let (_, ids) = self.engine.try_run(&["ps", "-aq", "--filter", &filter]);
        for id in ids.split_whitespace() {
            self.engine.try_run(&["rm", "-f", id]);
        }
    }
}
