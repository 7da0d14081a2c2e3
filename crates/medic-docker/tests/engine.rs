//! medic-docker against a real Docker engine: the one `scripts/test` starts
//! and names in `MEDIC_TEST_DOCKER_HOST`, with its images `medic-test/good:1`,
//! `medic-test/good:2` and `medic-test/bad:1`. Containers are made with the
//! docker CLI, as a person would; each test uses its own names and removes them.

use std::collections::HashMap;
use std::future::Future;
use std::io::{Read, Write};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use medic_docker::{
    ContainerEvent, ContainerSpec, ContainerState, DockerClient, Health, Selector, forensic_name,
    spec_differs,
};
use tokio::time::Instant;

/// MEDIC_TEST_SKIP, shared with the end-to-end suite.
#[path = "../../../tests/src/support/skip.rs"]
mod skip;

const DEADLINE: Duration = Duration::from_secs(30);
/// The deadline of each engine call of an action (the daemon's, for a container target).
const CALL: Duration = Duration::from_secs(30);

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
async fn capture_then_recreate_gives_back_the_same_container() {
    let Some(engine) = Engine::get() else { return };
    let name = unique("recreate");
    let _cleanup = engine.cleanup(&[&name]);
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("motd"), "hello from the host\n").unwrap();
    let port = free_port();
    let (port_env, bind) = (
        format!("PORT={port}"),
        format!("{}:/data:ro", data.path().display()),
    );
    engine.docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "host",
        "-e",
        &port_env,
        "-e",
        "EXTRA=yes",
        "-l",
        "medic.enable=true",
        "-l",
        "team=web",
        "-v",
        &bind,
        "--restart",
        "on-failure:2",
        "--stop-timeout",
        "3",
        "-w",
        "/www",
        "medic-test/good:1",
        "sh",
        "-c",
        "cat /data/motd; exec httpd -f -p 127.0.0.1:${PORT} -h /www",
    ]);
    eventually("httpd to answer", || async { http_health(port) }).await;

    let spec = engine.client.capture_spec(&name).await.unwrap();
    assert_eq!(spec.name, name);
    assert_eq!(spec.image, "medic-test/good:1");
    assert_eq!(spec.image_id, engine.image_id("medic-test/good:1"));
    assert_eq!(spec.network_parent(), None);
    // The daemon keeps the spec in its JSON state store.
    let stored = serde_json::to_string(&spec).unwrap();
    let spec: ContainerSpec = serde_json::from_str(&stored).unwrap();

    let conflict = engine.client.recreate(&spec, CALL).await.unwrap_err();
    assert!(
        conflict.is_conflict(),
        "the name is still taken: {conflict}"
    );

    let before = engine.format(&name, "{{json .Config.Env}} {{json .Config.Cmd}} {{json .HostConfig.Binds}} {{json .Config.Labels}} {{json .HostConfig.RestartPolicy}} {{.HostConfig.NetworkMode}} {{.Config.WorkingDir}} {{.Config.StopTimeout}} {{.Config.Image}}");
    engine.docker(&["rm", "-f", &name]);
    assert_eq!(engine.client.inspect(&name).await.unwrap(), None);

    let id = engine.client.recreate(&spec, CALL).await.unwrap();
    let after = engine.format(&name, "{{json .Config.Env}} {{json .Config.Cmd}} {{json .HostConfig.Binds}} {{json .Config.Labels}} {{json .HostConfig.RestartPolicy}} {{.HostConfig.NetworkMode}} {{.Config.WorkingDir}} {{.Config.StopTimeout}} {{.Config.Image}}");
    assert_eq!(after, before);
    let facts = engine.client.inspect(&name).await.unwrap().unwrap();
    assert_eq!(
        (facts.id.as_str(), facts.state),
        (id.as_str(), ContainerState::Running)
    );
    let health = eventually("the recreated httpd to answer", || async {
        http_health(port)
    })
    .await;
    assert!(health.ends_with("ok\n"), "{health}");
    assert_eq!(
        engine.client.tail_logs(&id, 10).await.unwrap(),
        ["hello from the host"]
    );

    let again = engine.client.capture_spec(&name).await.unwrap();
    assert!(
        !spec_differs(&again, &spec),
        "a recreated container is the same spec"
    );
    let mut other = spec.clone();
    other.image_id = engine.image_id("medic-test/good:2");
    assert!(spec_differs(&again, &other));
}

#[tokio::test]
async fn a_shared_network_namespace_is_recorded_by_parent_name() {
    let Some(engine) = Engine::get() else { return };
    let (parent, child) = (unique("ns-parent"), unique("ns-child"));
    let _cleanup = engine.cleanup(&[&parent, &child]);
    engine.docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &parent,
        "medic-test/good:1",
        "sleep",
        "600",
    ]);
    let mode = format!("container:{parent}");
    engine.docker(&[
        "run",
        "-d",
        "--network",
        &mode,
        "--name",
        &child,
        "medic-test/good:1",
        "sleep",
        "600",
    ]);
    assert!(
        engine
            .format(&child, "{{.HostConfig.NetworkMode}}")
            .starts_with("container:"),
        "Docker records the parent's id"
    );

    let parent_spec = engine.client.capture_spec(&parent).await.unwrap();
    let child_spec = engine.client.capture_spec(&child).await.unwrap();
    assert_eq!(child_spec.network_parent(), Some(parent.as_str()));

    // The parent is recreated (new id); the child's spec still finds it by name.
    engine.docker(&["rm", "-f", &child, &parent]);
    let parent_id = engine.client.recreate(&parent_spec, CALL).await.unwrap();
    engine.client.recreate(&child_spec, CALL).await.unwrap();
    assert_eq!(
        engine.format(&child, "{{.HostConfig.NetworkMode}}"),
        format!("container:{parent_id}")
    );
    assert_eq!(
        engine.client.inspect(&child).await.unwrap().unwrap().state,
        ContainerState::Running
    );
}

#[tokio::test]
async fn networks_and_aliases_survive_a_recreate() {
    let Some(engine) = Engine::get() else { return };
    let name = unique("nets");
    let (front, back) = (unique("front"), unique("back"));
    let mut cleanup = engine.cleanup(&[&name]);
    cleanup.networks = vec![front.clone(), back.clone()];
    engine.docker(&["network", "create", &front]);
    engine.docker(&["network", "create", &back]);
    engine.docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        &front,
        "--network-alias",
        "web",
        "medic-test/good:1",
        "sleep",
        "600",
    ]);
    engine.docker(&["network", "connect", "--alias", "api", &back, &name]);
    let spec = engine.client.capture_spec(&name).await.unwrap();

    engine.docker(&["rm", "-f", &name]);
    engine.client.recreate(&spec, CALL).await.unwrap();
    let aliases = |network: &str| {
        let text = engine.format(
            &name,
            &format!("{{{{json (index .NetworkSettings.Networks \"{network}\").Aliases}}}}"),
        );
        serde_json::from_str::<Vec<String>>(&text).unwrap()
    };
    assert!(
        aliases(&front).contains(&"web".to_owned()),
        "{:?}",
        aliases(&front)
    );
    assert!(
        aliases(&back).contains(&"api".to_owned()),
        "{:?}",
        aliases(&back)
    );
    assert_eq!(engine.format(&name, "{{.HostConfig.NetworkMode}}"), front);
    let again = engine.client.capture_spec(&name).await.unwrap();
    assert!(!spec_differs(&again, &spec));
}

#[tokio::test]
async fn rollback_keeps_the_failed_container_and_only_the_newest_three() {
    let Some(engine) = Engine::get() else { return };
    let name = unique("rollback");
    let _cleanup = engine.cleanup(&[&name]);
    let port = free_port();
    let port_env = format!("PORT={port}");
    let good_run = [
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "host",
        "-e",
        &port_env,
        "-l",
        "medic.enable=true",
        "--restart",
        "unless-stopped",
        "medic-test/good:1",
    ];
    engine.docker(&good_run);
    eventually("good:1 to serve", || async { http_health(port) }).await;
    let lkg = engine.client.capture_spec(&name).await.unwrap();
    let good = engine.image_id("medic-test/good:1");

    let stamps = [
        "20250101T000001Z",
        "20250101T000002Z",
        "20250101T000003Z",
        "20250101T000004Z",
    ];
    for stamp in stamps {
        // A deploy of a broken version under the same name: it crash-loops under Docker's policy.
        engine.docker(&["rm", "-f", &name]);
        engine.docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "host",
            "-l",
            "medic.enable=true",
            "--restart",
            "always",
            "medic-test/bad:1",
        ]);
        let current = engine.client.capture_spec(&name).await.unwrap();
        assert!(spec_differs(&current, &lkg));

        let id = engine
            .client
            .rollback(&name, &lkg, stamp, CALL)
            .await
            .unwrap();
        let facts = engine.client.inspect(&name).await.unwrap().unwrap();
        assert_eq!(
            (facts.id.as_str(), facts.image_id.as_str()),
            (id.as_str(), good.as_str())
        );
        eventually("the rolled back httpd to serve", || async {
            http_health(port)
        })
        .await;

        let kept = engine
            .client
            .inspect(&forensic_name(&name, stamp))
            .await
            .unwrap()
            .unwrap();
        assert!(kept.has_stopped(), "{kept:?}");
        assert_eq!(kept.image_id, engine.image_id("medic-test/bad:1"));
        assert_eq!(
            kept.restart_policy.as_deref(),
            Some("no"),
            "Docker must not bring it back"
        );
        // Forensic copies are not the service, even with its labels.
        let found = engine
            .client
            .find(&Selector::Name(name.clone()))
            .await
            .unwrap();
        assert_eq!(found.len(), 1);
    }
    let pattern = format!("name=^/{name}.medic-failed-");
    let mut kept: Vec<String> = engine
        .docker(&["ps", "-a", "--format", "{{.Names}}", "--filter", &pattern])
        .lines()
        .map(str::to_owned)
        .collect();
    kept.sort();
    let expect: Vec<String> = stamps[1..]
        .iter()
        .map(|s| forensic_name(&name, s))
        .collect();
    assert_eq!(kept, expect, "only the newest three are kept");

    // A rollback that cannot work leaves the running container alone.
    let running = engine.client.inspect(&name).await.unwrap().unwrap();
    let taken = engine
        .client
        .rollback(&name, &lkg, stamps[3], CALL)
        .await
        .unwrap_err();
    assert!(taken.is_conflict(), "{taken}");
    let mut pruned = lkg.clone();
    pruned.image_id = format!("sha256:{}", "0".repeat(64));
    let gone = engine
        .client
        .rollback(&name, &pruned, "20250101T000009Z", CALL)
        .await
        .unwrap_err();
    assert!(gone.is_not_found(), "{gone}");
    let after = engine.client.inspect(&name).await.unwrap().unwrap();
    assert_eq!(
        (after.id, after.state),
        (running.id, ContainerState::Running)
    );

    // With the failing container already gone, rollback is a plain recreate.
    engine.docker(&["rm", "-f", &name]);
    let id = engine
        .client
        .rollback(&name, &lkg, "20250101T000005Z", CALL)
        .await
        .unwrap();
    assert_eq!(engine.client.inspect(&name).await.unwrap().unwrap().id, id);
    assert!(
        engine
            .client
            .inspect(&forensic_name(&name, "20250101T000005Z"))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn events_report_start_die_and_destroy() {
    let Some(engine) = Engine::get() else { return };
    let (marker, name) = (unique("ev-marker"), unique("ev"));
    let _cleanup = engine.cleanup(&[&marker, &name]);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<ContainerEvent>();
    let events = engine.client.events();
    let reader = tokio::spawn(async move {
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            if tx.send(event.unwrap()).is_err() {
                return;
            }
        }
    });
    // The stream is live once it reports something: create markers until it does.
    let deadline = Instant::now() + DEADLINE;
    let mut markers = 0; // all removed by the cleanup of `marker`, a name prefix
    'live: loop {
        engine.docker(&[
            "create",
            "--network",
            "none",
            "--name",
            &format!("{marker}-{markers}"),
            "medic-test/good:1",
        ]);
        markers += 1;
        let wait = tokio::time::sleep(Duration::from_millis(200));
        tokio::pin!(wait);
        loop {
            tokio::select! {
                Some(event) = rx.recv() => {
                    if event.name.starts_with(&marker) {
                        break 'live;
                    }
                }
                () = &mut wait => break,
            }
        }
        assert!(
            Instant::now() < deadline,
            "the event stream never delivered"
        );
    }

    let id = engine.docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &name,
        "-l",
        "team=web",
        "medic-test/good:1",
        "sleep",
        "600",
    ]);
    engine.docker(&["kill", &name]);
    engine.docker(&["rm", &name]);
    let mut seen: HashMap<String, ContainerEvent> = HashMap::new();
    while !["create", "start", "kill", "die", "destroy"]
        .iter()
        .all(|a| seen.contains_key(*a))
    {
        let event = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("events so far: {:?}", seen.keys()))
            .unwrap();
        if event.id == id {
            seen.insert(event.action.clone(), event);
        }
    }
    let die = &seen["die"];
    assert_eq!(die.name, name);
    assert_eq!(die.exit_code, Some(137), "killed: 128 + SIGKILL");
    assert_eq!(die.labels.get("team").map(String::as_str), Some("web"));
    assert_eq!(die.image.as_deref(), Some("medic-test/good:1"));
    assert!(die.time_nanos > 0 && seen["destroy"].time_nanos >= die.time_nanos);
    reader.abort();
}

#[tokio::test]
async fn docker_health_checks_show_in_facts_and_events() {
    let Some(engine) = Engine::get() else { return };
    let name = unique("health");
    let _cleanup = engine.cleanup(&[&name]);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<ContainerEvent>();
    let events = engine.client.events();
    let reader = tokio::spawn(async move {
        let mut events = std::pin::pin!(events);
        while let Some(Ok(event)) = events.next().await {
            if tx.send(event).is_err() {
                return;
            }
        }
    });
    // Healthy while /tmp/ok exists.
    let id = engine.docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &name,
        "--health-cmd",
        "test -f /tmp/ok && echo fine || { echo missing; exit 1; }",
        "--health-interval",
        "1s",
        "--health-retries",
        "1",
        "medic-test/good:1",
        "sh",
        "-c",
        "touch /tmp/ok; exec sleep 600",
    ]);
    let facts = eventually("healthy", || async {
        engine
            .client
            .inspect(&name)
            .await
            .unwrap()
            .filter(|f| f.health == Some(Health::Healthy))
    })
    .await;
    assert!(facts.verdict().ok);
    engine.docker(&["exec", &name, "rm", "/tmp/ok"]);
    let facts = eventually("unhealthy", || async {
        engine
            .client
            .inspect(&name)
            .await
            .unwrap()
            .filter(|f| f.health == Some(Health::Unhealthy))
    })
    .await;
    let verdict = facts.verdict();
    assert!(!verdict.ok);
    assert!(
        verdict.message.contains("unhealthy: missing"),
        "{}",
        verdict.message
    );
    assert_eq!(
        facts.evidence()["health_log"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()["output"],
        "missing"
    );

    let deadline = Instant::now() + DEADLINE;
    loop {
        let event = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("a health_status event")
            .unwrap();
        if event.id == id && event.health() == Some("unhealthy") {
            assert_eq!(event.kind(), "health_status");
            break;
        }
    }
    reader.abort();
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
