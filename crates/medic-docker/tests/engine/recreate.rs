//! Capturing a container's create spec, recreating it from that spec (networks, aliases, a shared network namespace), and rolling back with forensic copies.

use medic_docker::{ContainerSpec, ContainerState, Selector, forensic_name, spec_differs};

use crate::{CALL, Engine, eventually, free_port, http_health, unique};

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
