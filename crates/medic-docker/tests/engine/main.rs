//! medic-docker against a real Docker engine: the one `scripts/test` starts
//! and names in `MEDIC_TEST_DOCKER_HOST`, with its images `medic-test/good:1`,
//! `medic-test/good:2` and `medic-test/bad:1`. Containers are made with the
//! docker CLI, as a person would; each test uses its own names and removes them.

use std::future::Future;
use std::io::{Read, Write};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use medic_docker::{ContainerState, DockerClient, Selector};
use tokio::time::Instant;

/// MEDIC_TEST_SKIP, shared with the end-to-end suite.
#[path = "../../../../tests/src/support/skip.rs"]
mod skip;

mod events;
mod recreate;

pub(crate) const DEADLINE: Duration = Duration::from_secs(30);
/// The deadline of each engine call of an action (the daemon's, for a container target).
pub(crate) const CALL: Duration = Duration::from_secs(30);

/// The test engine: its address and a client.
struct Engine {
    host: String,
    client: DockerClient,
}

impl Engine {
    /// The engine of `MEDIC_TEST_DOCKER_HOST`; None only when `MEDIC_TEST_SKIP`
    /// names `docker` (recorded), a failure when it is missing.
    #[track_caller]
    fn get() -> Option<Self> {
        skip::unless_skipped("docker")?;
        let Some(host) = std::env::var("MEDIC_TEST_DOCKER_HOST")
            .ok()
            .filter(|h| !h.is_empty())
        else {
            return skip::missing("docker", "MEDIC_TEST_DOCKER_HOST is not set");
        };
        let client = DockerClient::connect_to(&host).unwrap();
        Some(Self { host, client })
    }

    /// `docker ARGS` against the engine; its trimmed stdout. Panics on failure.
    #[track_caller]
    fn docker(&self, args: &[&str]) -> String {
        let out = Command::new("docker")
            .arg("-H")
            .arg(&self.host)
            .args(args)
            .output()
            .expect("run the docker CLI");
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// `docker inspect -f FORMAT NAME`.
    #[track_caller]
    fn format(&self, name: &str, format: &str) -> String {
        self.docker(&["inspect", "-f", format, name])
    }

    fn image_id(&self, reference: &str) -> String {
        self.docker(&["image", "inspect", "-f", "{{.Id}}", reference])
    }

    /// Removes these containers (and their forensic copies) when dropped.
    fn cleanup(&self, names: &[&str]) -> Cleanup {
        Cleanup {
            host: self.host.clone(),
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            networks: Vec::new(),
        }
    }
}

struct Cleanup {
    host: String,
    names: Vec<String>,
    networks: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let docker = |args: &[&str]| {
            Command::new("docker")
                .arg("-H")
                .arg(&self.host)
                .args(args)
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        };
        for name in &self.names {
            let ids = docker(&["ps", "-aq", "--filter", &format!("name=^/{name}")]);
            for id in ids.split_whitespace() {
                docker(&["rm", "-f", id]);
            }
        }
        for network in &self.networks {
            docker(&["network", "rm", network]);
        }
    }
}

/// A name no other test (or earlier run) uses.
fn unique(tag: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "mdt-{tag}-{}-{}-{nanos:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Polls `check` until it yields a value; panics after [`DEADLINE`].
async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// GET /health from the busybox httpd of `medic-test/good`.
fn http_health(port: u16) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.starts_with("HTTP/1.").then_some(response)
}

#[tokio::test]
async fn find_by_name_labels_and_compose_service() {
    let Some(engine) = Engine::get() else { return };
    let (plain, composed, oneoff) = (unique("find"), unique("find-web-1"), unique("find-web-run"));
    let _cleanup = engine.cleanup(&[&plain, &composed, &oneoff]);
    let tag = unique("tag");
    let project = unique("proj");
    let sleep = ["medic-test/good:1", "sleep", "600"];
    let label = format!("medic.test.find={tag}");
    engine.docker(
        &[
            &[
                "run",
                "-d",
                "--network",
                "none",
                "--name",
                &plain,
                "-l",
                &label,
                "-l",
                "medic.max_attempts=5",
            ][..],
            &sleep,
        ]
        .concat(),
    );
    let compose = |name: &str, oneoff: &str| {
        let project = format!("com.docker.compose.project={project}");
        let oneoff = format!("com.docker.compose.oneoff={oneoff}");
        engine.docker(
            &[
                &[
                    "create",
                    "--network",
                    "none",
                    "--name",
                    name,
                    "-l",
                    &project,
                ][..],
                &["-l", "com.docker.compose.service=web", "-l", &oneoff],
                &sleep,
            ]
            .concat(),
        );
    };
    compose(&composed, "False");
    compose(&oneoff, "True");

    let by_name = engine
        .client
        .find(&Selector::Name(plain.clone()))
        .await
        .unwrap();
    assert_eq!(by_name.len(), 1);
    assert_eq!(by_name[0].name, plain);
    assert_eq!(by_name[0].state, ContainerState::Running);
    assert!(by_name[0].is_running());
    assert_eq!(by_name[0].overrides()["max_attempts"], "5");
    assert_eq!(by_name[0].image_id, engine.image_id("medic-test/good:1"));
    let prefix = Selector::Name(plain[..plain.len() - 2].to_owned());
    assert!(
        engine.client.find(&prefix).await.unwrap().is_empty(),
        "names match exactly"
    );

    let by_label = Selector::Labels(vec![("medic.test.find".into(), Some(tag.clone()))]);
    let found = engine.client.find(&by_label).await.unwrap();
    assert_eq!(
        found.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        [plain.as_str()]
    );
    let by_key = Selector::Labels(vec![("medic.test.find".into(), None)]);
    assert!(
        engine
            .client
            .find(&by_key)
            .await
            .unwrap()
            .iter()
            .any(|c| c.name == plain)
    );

    let service = Selector::Compose {
        project: project.clone(),
        service: "web".into(),
    };
    let found = engine.client.find(&service).await.unwrap();
    assert_eq!(
        found.len(),
        1,
        "the one-off `compose run` container is not the service: {found:?}"
    );
    assert_eq!(found[0].name, composed);
    assert_eq!(
        found[0].state,
        ContainerState::Created,
        "stopped containers are found too"
    );
}

#[tokio::test]
async fn inspect_running_exited_and_missing() {
    let Some(engine) = Engine::get() else { return };
    let (running, failed) = (unique("up"), unique("bad"));
    let _cleanup = engine.cleanup(&[&running, &failed]);
    let id = engine.docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &running,
        "-l",
        "medic.interval=5s",
        "medic-test/good:1",
        "sleep",
        "600",
    ]);
    engine.docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &failed,
        "medic-test/bad:1",
    ]);

    let facts = engine.client.inspect(&running).await.unwrap().unwrap();
    assert_eq!(
        (facts.id.as_str(), facts.name.as_str()),
        (id.as_str(), running.as_str())
    );
    assert_eq!(facts.state, ContainerState::Running);
    assert_eq!(facts.health, None);
    assert_eq!(facts.image, "medic-test/good:1");
    assert_eq!(facts.image_id, engine.image_id("medic-test/good:1"));
    assert_eq!(facts.overrides()["interval"], "5s");
    assert!(facts.started_at.is_some() && facts.finished_at.is_none());
    let verdict = facts.verdict();
    assert!(verdict.ok && !verdict.starting, "{verdict:?}");
    assert_eq!(
        engine.client.inspect(&id).await.unwrap().unwrap().name,
        running,
        "by id"
    );

    let facts = eventually("the bad container to exit", || async {
        engine
            .client
            .inspect(&failed)
            .await
            .unwrap()
            .filter(|f| f.has_stopped())
    })
    .await;
    assert_eq!(
        (facts.state, facts.exit_code, facts.oom_killed),
        (ContainerState::Exited, Some(3), false)
    );
    assert!(facts.finished_at.is_some());
    let verdict = facts.verdict();
    assert!(!verdict.ok, "{verdict:?}");
    assert_eq!(verdict.message, "exited with exit code 3");
    let evidence = facts.evidence();
    assert_eq!(evidence["exit_code"], 3);
    assert_eq!(evidence["oom_killed"], false);
    assert_eq!(evidence["state"], "exited");
    assert_eq!(
        engine.client.tail_logs(&facts.id, 5).await.unwrap(),
        ["boom"]
    );

    assert_eq!(
        engine.client.inspect(&unique("missing")).await.unwrap(),
        None
    );
    // Docker itself would answer for an id prefix; medic asks for names.
    assert_eq!(engine.client.inspect(&id[..4]).await.unwrap(), None);
    assert!(
        engine
            .client
            .capture_spec(&unique("missing"))
            .await
            .unwrap_err()
            .is_not_found()
    );
}

#[tokio::test]
async fn start_and_restart_with_a_stop_timeout() {
    let Some(engine) = Engine::get() else { return };
    let name = unique("restart");
    let _cleanup = engine.cleanup(&[&name]);
    // `sleep` as PID 1 ignores SIGTERM: only the stop timeout's SIGKILL stops it.
    let id = engine.docker(&[
        "create",
        "--network",
        "none",
        "--name",
        &name,
        "medic-test/good:1",
        "sleep",
        "600",
    ]);
    assert_eq!(
        engine
            .client
            .inspect(&name)
            .await
            .unwrap()
            .unwrap()
            .verdict()
            .message,
        "created, not started"
    );
    engine.client.start(&name, CALL).await.unwrap();
    engine.client.start(&name, CALL).await.unwrap(); // already running: fine
    let started = engine.format(&name, "{{.State.StartedAt}}");

    let began = Instant::now();
    engine
        .client
        .restart(&id, Duration::from_secs(1), CALL)
        .await
        .unwrap();
    let took = began.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(8),
        "took {took:?}, Docker's default is 10 s"
    );
    let facts = engine.client.inspect(&name).await.unwrap().unwrap();
    assert_eq!(facts.state, ContainerState::Running);
    assert_ne!(engine.format(&name, "{{.State.StartedAt}}"), started);

    let missing = engine
        .client
        .restart(&unique("missing"), Duration::from_secs(1), CALL)
        .await
        .unwrap_err();
    assert!(
        missing.is_not_found() && !missing.is_unreachable(),
        "{missing}"
    );
}

#[tokio::test]
async fn tail_logs_returns_the_last_lines_capped() {
    let Some(engine) = Engine::get() else { return };
    let name = unique("logs");
    let _cleanup = engine.cleanup(&[&name]);
    // All stdout: the order of stdout and stderr lines in the log is not
    // defined (separate pipes). The bad:1 container of `inspect_…` logs to stderr.
    let script = "for i in 1 2 3 4 5; do echo line$i; done; printf '%03000d\\n' 0; echo last; exec sleep 600";
    let id = engine.docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &name,
        "medic-test/good:1",
        "sh",
        "-c",
        script,
    ]);
    let lines = eventually("the last log line", || async {
        let lines = engine.client.tail_logs(&id, 3).await.unwrap();
        (lines.last().map(String::as_str) == Some("last")).then_some(lines)
    })
    .await;
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0], "line5");
    assert!(
        lines[1].len() <= 1024 + '…'.len_utf8() && lines[1].starts_with("000"),
        "{}",
        lines[1].len()
    );
    assert_eq!(
        engine.client.tail_logs(&id, 0).await.unwrap(),
        Vec::<String>::new()
    );
    let all = engine.client.tail_logs(&id, 100).await.unwrap();
    assert_eq!(all.len(), 7, "{all:?}");
}
