//! Compose projects under medic's default job (`medic.enable=true`), driven
//! with Debian's `docker-compose` v1 on the test engine: a `docker-compose rm
//! -sf` restored only after the removal completed, guarded deploys of a
//! Compose service (a recreate promoted, a scale-down retiring the replica),
//! pause and resume of one instance (and its log by the Compose service name), `depends_on` on a selector service, a
//! label override surviving a restart of medic, and a reload that changes a selector.

use std::process::{Command, Output};

use serde_json::Value;

use crate::deploy::text;
use crate::support::compose::Project;
use crate::support::medic::{Medic, bin, eventually, kinds};

/// A service of the compose file: busybox, host network, opted in to the default job.
/// `sleep` ignores SIGTERM as PID 1, so a stop takes the 1 s grace, then SIGKILL (exit 137).
fn service(name: &str, extra_labels: &str) -> String {
    format!(
        "  {name}:\n    image: medic-test/good:1\n    network_mode: host\n    command: [\"sh\", \"-c\", \"exec sleep 1000000\"]\n    stop_grace_period: 1s\n    labels:\n      medic.enable: \"true\"\n{extra_labels}"
    )
}

/// `medic deploy NAME -- docker-compose … ARGS` against this medic's config.
fn deploy(medic: &Medic, project: &Project, name: &str, args: &[&str]) -> Output {
    Command::new(bin("medic"))
        .args(["deploy", "--config"])
        .arg(&medic.config)
        .args([name, "--timeout", "30s", "--"])
        .args(project.argv(args))
        .env("DOCKER_HOST", project.engine.host())
        .output()
        .expect("run medic deploy")
}

/// `medic status --json [--service NAME]`: the units listed.
fn status(medic: &Medic, service: Option<&str>) -> Vec<Value> {
    let mut args = vec!["status", "--json"];
    args.extend(service.iter().flat_map(|s| ["--service", s]));
    let out = medic.cli(&args);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("status answered: {}", text(&out)));
    report["services"].as_array().cloned().unwrap_or_default()
}

fn healthy(medic: &Medic, units: &[&str]) {
    for unit in units {
        // A unit found while its container was still being put in place
        // reports `recovered` (without action) rather than `healthy`, or
        // `replaced` when its first look found no container yet (under load,
        // the listing after `create` can run ahead of the inspect).
        medic.wait_event(&format!("{unit} healthy"), |e| {
            e["service"] == *unit
                && ["healthy", "recovered", "replaced"].contains(&e["event"].as_str().unwrap_or(""))
        });
    }
}

#[test]
fn compose_rm_is_restored_once_the_removal_completes_and_one_instance_pauses() {
    let services = service("web", "") + &service("db", "");
    let Some(project) = Project::up("rm", &services) else {
        return;
    };
    let medic = Medic::start(&project.default_job());
    let (web_c, db_c) = (project.container("web", 1), project.container("db", 1));
    let (web, db) = (format!("docker/{web_c}"), format!("docker/{db_c}"));
    healthy(&medic, &[&web, &db]);

    // One instance by its full name (a `/` and `_` in it), and by its Compose service.
    let out = medic.cli(&["pause", &db]);
    assert!(out.status.success(), "{}", text(&out));
    let listed = status(&medic, Some("db"));
    assert_eq!(
        listed.len(),
        1,
        "--service db is the Compose service: {listed:?}"
    );
    assert_eq!(
        (listed[0]["name"].as_str(), &listed[0]["paused"]),
        (Some(db.as_str()), &Value::Bool(true))
    );
    let web_status = status(&medic, Some(&web));
    assert_eq!(
        web_status[0]["paused"], false,
        "only db is paused: {web_status:?}"
    );
    assert!(medic.cli(&["resume", &db]).status.success());
    medic.wait_event("db resumed", |e| {
        e["service"] == *db && e["event"] == "resumed"
    });
    // `medic logs --service db` means the Compose service too, as status does.
    let logs = medic.cli(&["logs", "--service", "db", "--json"]);
    let lines: Vec<Value> = String::from_utf8_lossy(&logs.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["service"] == *db && l["event"] == "resumed"),
        "db's events: {}",
        text(&logs)
    );
    assert!(
        lines.iter().all(|l| l["service"] == *db),
        "only db's events: {}",
        text(&logs)
    );
    // A Compose v2 style name with `-` and `.` reaches its unit too.
    let v2 = format!("{}-web-1.v2", project.name);
    let label = format!("com.docker.compose.project={}", project.name);
    let sleep = ["medic-test/good:1", "sh", "-c", "exec sleep 1000000"];
    let args = [
        "run",
        "-d",
        "--name",
        &v2,
        "--network",
        "host",
        "-l",
        "medic.enable=true",
        "-l",
        &label,
    ];
    project.engine.run(&[&args[..], &sleep[..]].concat());
    let v2 = format!("docker/{v2}");
    healthy(&medic, &[&v2]);
    let out = medic.cli(&["pause", &v2]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(status(&medic, Some(&v2))[0]["paused"], true);

    // The person's removal completes (medic does not start the container
    // again between Compose's stop and its removal) …
    let before = project.id(&web_c).expect("web runs");
    let out = project.run(&["rm", "-sf", "web"]);
    assert!(out.contains("Removing"), "{out}");
    assert_eq!(
        project.id(&web_c),
        None,
        "removed, not started again by medic"
    );
    // … then medic restores it, as Compose's own container.
    let events = medic.wait_event("web restored", |e| {
        e["service"] == *web && e["event"] == "recovered"
    });
    let after = project.id(&web_c).expect("web recreated");
    assert_ne!(
        before, after,
        "recreated from its spec, not the same container started"
    );
    let ps = project.run(&["ps"]);
    assert!(
        ps.contains(&web_c) && ps.contains("Up"),
        "Compose lists it: {ps}"
    );
    let web_events = kinds(&events, &web);
    assert_eq!(
        web_events.iter().filter(|k| *k == "restart").count(),
        1,
        "one restore, no restart fought the stop: {web_events:?}"
    );
    let failing = events
        .iter()
        .find(|e| e["service"] == *web && e["event"] == "failing")
        .unwrap_or_else(|| panic!("web failing: {events:?}"));
    let message = failing["message"].as_str().unwrap_or("");
    assert!(
        message.contains("stopped by a command") && message.contains("Compose"),
        "the log says whose stop it was and what medic does: {failing}"
    );
}

#[test]
fn guarded_deploys_of_a_compose_service_promote_a_recreate_and_retire_a_replica() {
    let services = service("web", "") + &service("db", "");
    let Some(project) = Project::up("deploy", &services) else {
        return;
    };
    let medic = Medic::start(&project.default_job());
    let web_c = project.container("web", 1);
    let (web, db) = (
        format!("docker/{web_c}"),
        format!("docker/{}", project.container("db", 1)),
    );
    healthy(&medic, &[&web, &db]);

    let before = project.id(&web_c);
    let out = deploy(
        &medic,
        &project,
        "web",
        &["up", "-d", "--force-recreate", "web"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("{web}: promoted")),
        "{}",
        text(&out)
    );
    assert_ne!(project.id(&web_c), before, "Compose replaced the container");
    let events = medic.events();
    assert!(
        events
            .iter()
            .any(|e| e["service"] == *web && e["event"] == "deployed"),
        "{events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| e["service"] == *db && e["event"] == "deploy"),
        "db is not part of a deploy of web"
    );

    // A second replica, found at once; then a guarded scale-down retires it.
    project.run(&["up", "-d", "--scale", "web=2", "web"]);
    let two = format!("docker/{}", project.container("web", 2));
    healthy(&medic, &[&two]);
    let out = deploy(
        &medic,
        &project,
        "web",
        &["up", "-d", "--scale", "web=1", "web"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("{two}: retired")),
        "{}",
        text(&out)
    );
    // The answer can come before the journal's writer has written the lines.
    let events = medic.wait_event("the replica's removal", |e| {
        e["service"] == *two && e["event"] == "removed"
    });
    let retired = events
        .iter()
        .find(|e| e["service"] == *two && e["event"] == "removed")
        .unwrap_or_else(|| panic!("a removed event for {two}: {events:?}"));
    assert!(
        retired["message"].as_str().unwrap().contains("retired"),
        "{retired}"
    );
    let names: Vec<Value> = status(&medic, None)
        .iter()
        .map(|s| s["name"].clone())
        .collect();
    assert!(
        !names.contains(&Value::from(two.clone())),
        "no longer watched: {names:?}"
    );
    assert_eq!(
        project.id(&project.container("web", 2)),
        None,
        "and not restored"
    );
}

#[test]
fn a_failed_deploy_of_a_compose_service_rolls_every_instance_back() {
    let services = service("web", "") + "    scale: 2\n";
    let Some(project) = Project::up("rollback", &services) else {
        return;
    };
    let medic = Medic::start(&project.default_job());
    let units: Vec<String> = (1..=2)
        .map(|n| format!("docker/{}", project.container("web", n)))
        .collect();
    healthy(&medic, &[&units[0], &units[1]]);
    eventually("both last known good specs", || {
        let state = medic.saved_state()?;
        units
            .iter()
            .all(|u| state["units"][u]["last_known_good"].is_object())
            .then_some(())
    });
    let ids: Vec<Option<String>> = (1..=2)
        .map(|n| project.id(&project.container("web", n)))
        .collect();

    // The new version exits at once: the deploy fails and both go back.
    let file = project.argv(&[])[4].clone();
    let breaks = format!(
        "sed -i 's/exec sleep 1000000/exit 3/' {file} && {}",
        project.argv(&["up", "-d", "web"]).join(" ")
    );
    let out = Command::new(bin("medic"))
        .args(["deploy", "--config"])
        .arg(&medic.config)
        .args(["web", "--timeout", "30s", "--", "sh", "-c", &breaks])
        .env("DOCKER_HOST", project.engine.host())
        .output()
        .expect("run medic deploy");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for unit in &units {
        assert!(
            stdout.contains(&format!("{unit}: rolled_back")),
            "{}",
            text(&out)
        );
    }
    for n in 1..=2 {
        let name = project.container("web", n);
        let running = project
            .engine
            .run(&["inspect", "-f", "{{.State.Running}} {{.Id}}", &name]);
        assert!(
            running.starts_with("true"),
            "{name} runs its last known good again: {running}"
        );
        assert!(
            !ids.contains(&running.split(' ').nth(1).map(str::to_owned)),
            "recreated, not the old one"
        );
    }
}

#[test]
fn depends_on_a_selector_service_holds_then_releases_and_reload_changes_a_selector() {
    let services = service("web", "") + &service("db", "");
    let Some(project) = Project::up("deps", &services) else {
        return;
    };
    let select = |service: &str| {
        format!(
            "container = {{ compose_project = \"{}\", compose_service = \"{service}\" }}",
            project.name
        )
    };
    let config = |web_selects: &str| {
        format!(
            "[[service]]\nname = \"db\"\n{}\n\n[[service]]\nname = \"app\"\ndepends_on = [\"db\"]\n{}\n",
            select("db"),
            select(web_selects)
        )
    };
    let medic = Medic::start(&config("web"));
    let (web_c, db_c) = (project.container("web", 1), project.container("db", 1));
    let (app, db) = (format!("app/{web_c}"), format!("db/{db_c}"));
    healthy(&medic, &[&app, &db]);

    // db is stopped and held by a pause; app fails meanwhile: held until every db instance is healthy.
    assert!(medic.cli(&["pause", "db"]).status.success());
    project.engine.run(&["kill", &db_c]);
    medic.wait_event("db failing", |e| {
        e["service"] == *db && e["event"] == "failing"
    });
    project.engine.run(&["kill", &web_c]);
    medic.wait_event("app held for db", |e| {
        e["service"] == *app && e["event"] == "waiting_for_dependency"
    });
    assert!(medic.cli(&["resume", "db"]).status.success());
    let events = medic.wait_event("app recovered", |e| {
        e["service"] == *app && e["event"] == "recovered"
    });
    let at = |unit: &str, kind: &str| {
        events
            .iter()
            .position(|e| e["service"] == *unit && e["event"] == kind)
            .unwrap_or_else(|| panic!("{kind} of {unit}: {events:?}"))
    };
    assert!(
        at(&db, "recovered") < at(&app, "restart"),
        "app restarted after db was healthy"
    );

    // The selector of app changes: its old instance is retired, the new one found at once.
    std::fs::write(&medic.config, {
        let text = std::fs::read_to_string(&medic.config).unwrap();
        text.replace(&select("web"), &select("db"))
    })
    .unwrap();
    let out = medic.cli(&["reload"]);
    assert!(out.status.success(), "{}", text(&out));
    let moved = format!("app/{db_c}");
    let events = medic.wait_event("the new instance watched", |e| {
        e["service"] == *moved && e["event"] == "watching"
    });
    let retired = events
        .iter()
        .find(|e| e["service"] == *app && e["event"] == "removed")
        .unwrap_or_else(|| panic!("{app} retired: {events:?}"));
    assert!(
        retired["message"]
            .as_str()
            .unwrap()
            .contains("no longer matches"),
        "{retired}"
    );
}

#[test]
fn a_label_override_survives_a_restart_of_medic() {
    let services = service("web", "      medic.on_stop: leave\n");
    let Some(project) = Project::up("label", &services) else {
        return;
    };
    let mut medic = Medic::start(&project.default_job());
    let web_c = project.container("web", 1);
    let web = format!("docker/{web_c}");
    healthy(&medic, &[&web]);
    medic.terminate();
    medic.spawn();
    eventually("watched again after the restart", || {
        let events = medic.events();
        (kinds(&events, &web)
            .iter()
            .filter(|k| *k == "watching")
            .count()
            == 2)
            .then_some(())
    });

    project.engine.run(&["stop", "-t", "1", &web_c]);
    eventually("the stop left alone (medic.on_stop=leave)", || {
        let listed = status(&medic, Some(&web));
        let message = listed.first()?["probes"][0]["message"].as_str()?.to_owned();
        message.contains("left alone").then_some(())
    });
    assert!(
        !kinds(&medic.events(), &web).contains(&"restart".to_owned()),
        "not restarted: {:?}",
        medic.events()
    );
}
