//! Running as a service: the systemd unit, the sd_notify protocol against a
//! real NOTIFY_SOCKET, config reload, and the control socket's permissions.

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::support::env;
use crate::support::medic::{DEADLINE, Medic, bin, eventually, free_port};

pub(crate) fn tcp_service(name: &str, port: u16) -> String {
    format!(
        "[[service]]\nname = \"{name}\"\n  [[service.probe]]\n  kind = \"tcp\"\n  address = \"127.0.0.1:{port}\"\n\n"
    )
}

pub(crate) const FAST: &str = "[defaults]\ninterval = \"200ms\"\ntimeout = \"150ms\"\n\n";

#[test]
fn install_writes_a_unit_that_systemd_analyze_verifies() {
    let Some(analyze) = env::program("systemd-analyze") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let medic = bin("medic");
    let out = Command::new(&medic)
        .args(["install", "systemd", "--root"])
        .arg(root.path())
        .arg("--bin")
        .arg(&medic)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("systemctl enable --now medic"));
    for file in [
        "usr/lib/sysusers.d/medic.conf",
        "usr/lib/tmpfiles.d/medic.conf",
        "etc/medic/medic.toml",
    ] {
        assert!(root.path().join(file).exists(), "{file} written");
    }
    let unit = root.path().join("etc/systemd/system/medic.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
    ] {
        assert!(text.contains(line), "{line} in the unit");
    }
    assert!(
        !text.contains("\nSupplementaryGroups="),
        "the unit starts where no docker group exists"
    );
    assert_verifies(&analyze, &unit);
}

/// `systemd-analyze verify UNIT` passes without a word about medic.service.
#[track_caller]
fn assert_verifies(analyze: &str, unit: &std::path::Path) {
    let verify = Command::new(analyze)
        .arg("verify")
        .arg(unit)
        .output()
        .unwrap();
    let messages = String::from_utf8_lossy(&verify.stderr);
    assert!(
        verify.status.success() && !messages.contains("medic.service:"),
        "systemd-analyze verify: {messages}"
    );
}

/// Reads datagrams until `want` arrives; returns everything read so far.
fn read_until(socket: &UnixDatagram, seen: &mut Vec<String>, want: &str) {
    let start = Instant::now();
    let mut buffer = [0u8; 4096];
    while !seen.iter().any(|m| m.lines().any(|l| l == want)) {
        assert!(start.elapsed() < DEADLINE, "no {want} in {seen:?}");
        if let Ok(n) = socket.recv(&mut buffer) {
            seen.push(String::from_utf8_lossy(&buffer[..n]).into_owned());
        }
    }
}

#[test]
fn sd_notify_ready_status_watchdog_reload_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let port = free_port();
    let _listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let mut medic = Medic::prepare(&(FAST.to_owned() + &tcp_service("db", port)));
    let socket_path = path.display().to_string();
    medic.spawn_under_watchdog(&[("NOTIFY_SOCKET", &socket_path), ("WATCHDOG_USEC", "400000")]);

    let mut seen = Vec::new();
    read_until(&socket, &mut seen, "READY=1");
    let ready = seen.iter().find(|m| m.contains("READY=1")).unwrap();
    assert!(
        ready.contains("STATUS=1 services: 1 healthy"),
        "READY after the first round, with a status: {ready}"
    );
    // The line itself is written by the journal's writer task, just after.
    medic.wait_event("the healthy line", |e| e["event"] == "healthy");

    // WATCHDOG=1 at half of WATCHDOG_USEC: at least 4 within a second.
    seen.clear();
    let start = Instant::now();
    let mut buffer = [0u8; 4096];
    while start.elapsed() < Duration::from_secs(1) {
        if let Ok(n) = socket.recv(&mut buffer) {
            seen.push(String::from_utf8_lossy(&buffer[..n]).into_owned());
        }
    }
    let pings = seen.iter().filter(|m| m.contains("WATCHDOG=1")).count();
    assert!(pings >= 4, "{pings} watchdog pings in 1 s: {seen:?}");

    seen.clear();
    medic.signal(Signal::SIGHUP);
    read_until(&socket, &mut seen, "RELOADING=1");
    read_until(&socket, &mut seen, "READY=1");
    let reloading = seen.iter().position(|m| m.contains("RELOADING=1")).unwrap();
    let ready = seen.iter().rposition(|m| m.contains("READY=1")).unwrap();
    assert!(reloading < ready, "{seen:?}");
    assert!(
        seen[reloading].contains("MONOTONIC_USEC="),
        "{}",
        seen[reloading]
    );

    seen.clear();
    medic.signal(Signal::SIGTERM);
    read_until(&socket, &mut seen, "STOPPING=1");
}

#[test]
fn a_broken_reload_keeps_the_running_config() {
    let port = free_port();
    let _listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let medic = Medic::start(&(FAST.to_owned() + &tcp_service("db", port)));
    medic.wait_event("healthy", |e| e["event"] == "healthy");

    let good = std::fs::read_to_string(&medic.config).unwrap();
    std::fs::write(
        &medic.config,
        good.clone() + "[[service]]\nname = \"db\"\nbogus = 1\n",
    )
    .unwrap();
    medic.signal(Signal::SIGHUP);
    let file = medic.config.display().to_string();
    let alert = eventually("a config_rejected alert", || {
        medic
            .alerts()
            .into_iter()
            .find(|a| a["kind"] == "config_rejected")
    });
    assert_eq!(alert["service"], "medic");
    assert!(
        alert["evidence"]["errors"][0]
            .as_str()
            .unwrap()
            .starts_with(&format!("{file}:")),
        "{alert}"
    );
    assert!(
        medic.stderr().contains(&format!("{file}:")),
        "the daemon logs file:line:column"
    );
    // `medic reload` validates first and prints the same errors.
    let out = medic.cli(&["reload"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("{file}:")));

    // The old config keeps running: db is still watched and healthy.
    std::fs::write(&medic.config, good).unwrap();
    let status = medic.cli(&["status", "--json"]);
    assert_eq!(
        status.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );
}

#[test]
fn a_reload_that_changes_one_service_keeps_the_others_attempt_counts() {
    let (down, up) = (free_port(), free_port());
    let _listener = std::net::TcpListener::bind(("127.0.0.1", up)).unwrap();
    // "broken" keeps failing; its restart command fails and the backoff is long, so its count stays at 1.
    let broken = format!(
        "[[service]]\nname = \"broken\"\nbackoff = \"1h\"\ncommand = {{ restart = [\"false\"] }}\n  [[service.probe]]\n  kind = \"tcp\"\n  address = \"127.0.0.1:{down}\"\n\n"
    );
    let config = FAST.to_owned() + &broken + &tcp_service("other", up);
    let medic = Medic::start(&config);
    medic.wait_event("the failed restart", |e| {
        e["service"] == "broken" && e["event"] == "restart_failed"
    });
    medic.wait_event("other healthy", |e| {
        e["service"] == "other" && e["event"] == "healthy"
    });

    let written = std::fs::read_to_string(&medic.config).unwrap();
    let other = tcp_service("other", up);
    let changed = written.replace(
        &other,
        &other.replace("[[service]]\n", "[[service]]\nfailure_threshold = 5\n"),
    ) + &tcp_service("added", up);
    std::fs::write(&medic.config, changed).unwrap();
    let out = medic.cli(&["reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = eventually("the added service in status", || {
        let out = medic.cli(&["status", "--json"]);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let names: Vec<&str> = report["services"]
            .as_array()?
            .iter()
            .filter_map(|s| s["name"].as_str())
            .collect();
        names.contains(&"added").then_some(report)
    });
    let broken = report["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "broken")
        .unwrap();
    assert_eq!(
        broken["attempts"], 1,
        "the untouched service kept its attempt count: {broken}"
    );
    assert!(broken["incident"].is_string(), "and its incident: {broken}");
}

#[test]
fn the_deb_holds_the_binary_the_unit_and_the_config() {
    let Some(deb) = env::deb() else { return };
    let Some(analyze) = env::program("systemd-analyze") else {
        return;
    };
    let listing = Command::new("dpkg").args(["-c", &deb]).output().unwrap();
    assert!(listing.status.success());
    let listing = String::from_utf8_lossy(&listing.stdout);
    for file in [
        "./usr/bin/medic",
        "./usr/lib/systemd/system/medic.service",
        "./usr/lib/sysusers.d/medic.conf",
        "./usr/lib/tmpfiles.d/medic.conf",
        "./etc/medic/medic.toml",
        "./usr/share/doc/medic/copyright",
        "./usr/share/medic/prometheus/medic-rules.yml",
        "./usr/share/medic/prometheus/alertmanager.yml",
        "./usr/share/medic/grafana/medic.json",
    ] {
        assert!(
            listing.lines().any(|l| l.ends_with(file)),
            "{file} in the .deb:\n{listing}"
        );
    }
    let conffiles = Command::new("dpkg-deb")
        .args(["-I", &deb, "conffiles"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&conffiles.stdout).trim(),
        "/etc/medic/medic.toml"
    );

    // What it unpacks to works: the binary runs, the config is valid, the unit verifies.
    let root = tempfile::tempdir().unwrap();
    let unpacked = Command::new("dpkg")
        .args(["-x", &deb])
        .arg(root.path())
        .status()
        .unwrap();
    assert!(unpacked.success());
    let medic = root.path().join("usr/bin/medic");
    let check = Command::new(&medic)
        .args(["config", "check"])
        .arg(root.path().join("etc/medic/medic.toml"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let unit = root.path().join("usr/lib/systemd/system/medic.service");
    let text = std::fs::read_to_string(&unit)
        .unwrap()
        .replace("/usr/bin/medic", &medic.display().to_string());
    let unit = root.path().join("medic.service");
    std::fs::write(&unit, text).unwrap();
    assert_verifies(&analyze, &unit);
}

#[test]
fn the_control_socket_refuses_another_user() {
    let Some(runuser) = env::program("runuser") else {
        return;
    };
    let port = free_port();
    let _listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let medic = Medic::start(&(FAST.to_owned() + &tcp_service("db", port)));
    medic.wait_event("healthy", |e| e["event"] == "healthy");
    // Let `nobody` reach the socket file and read the config, so only the socket's own mode decides.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(medic.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&medic.config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let socket = medic.dir.path().join("control.sock");
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let as_root = medic.cli(&["status"]);
    assert_eq!(
        as_root.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&as_root.stderr)
    );
    let medic_bin = bin("medic");
    let as_nobody = Command::new(runuser)
        .args(["-u", "nobody", "--"])
        .arg(&medic_bin)
        .args(["status", "--config"])
        .arg(&medic.config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&as_nobody.stderr);
    assert_ne!(as_nobody.status.code(), Some(0));
    assert!(
        stderr.contains("Permission denied"),
        "refused by the socket's mode: {stderr}"
    );
}

/// GET http://127.0.0.1:PORT/PATH with extra header lines: the status code and the body.
/// A medic running `config` with a metrics listener, and its `/metrics` once
/// `failing` has failed and the exposition holds `series`.
pub(crate) fn scraped(config: &str, failing: &str, series: &str) -> (Medic, String) {
    let port = free_port();
    let medic = Medic::start_with(&format!("metrics_listen = \"127.0.0.1:{port}\""), config);
    medic.wait_event("a failing service", |e| {
        e["service"] == failing && e["event"] == "failing"
    });
    let body = eventually(&format!("a scrape with {series}"), || {
        http_get(port, "/metrics", "")
            .map(|(_, body)| body)
            .filter(|b| b.contains(series))
    });
    (medic, body)
}

pub(crate) fn http_get(port: u16, path: &str, headers: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: localhost\r\n{headers}\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

#[test]
fn tcp_control_needs_the_bearer_token_and_the_socket_takes_its_group() {
    let (port, control) = (free_port(), free_port());
    let _listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let token_dir = tempfile::tempdir().unwrap();
    let token_file = token_dir.path().join("token");
    std::fs::write(&token_file, "s3cret-token\n").unwrap();
    let keys = format!(
        "control_listen = \"127.0.0.1:{control}\"\ncontrol_token_file = \"{}\"\ncontrol_socket_mode = \"0660\"\ncontrol_socket_group = \"nogroup\"",
        token_file.display()
    );
    let medic = Medic::start_with(&keys, &(FAST.to_owned() + &tcp_service("db", port)));
    medic.wait_event("healthy", |e| e["event"] == "healthy");

    let get = |headers: &str| {
        eventually("the TCP control API", || {
            http_get(control, "/v1/status", headers)
        })
    };
    assert_eq!(get("").0, 401, "no token");
    assert_eq!(
        get("Authorization: Bearer wrong\r\n").0,
        401,
        "a wrong token"
    );
    assert_eq!(
        get("Authorization: Bearer s3cret-token-and-more\r\n").0,
        401,
        "a longer token"
    );
    let (status, body) = get("Authorization: Bearer s3cret-token\r\n");
    assert_eq!(status, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["services"][0]["name"], "db");

    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let socket = std::fs::metadata(medic.dir.path().join("control.sock")).unwrap();
    assert_eq!(socket.permissions().mode() & 0o777, 0o660);
    let nogroup = nix::unistd::Group::from_name("nogroup").unwrap().unwrap();
    assert_eq!(socket.gid(), nogroup.gid.as_raw());
}

#[test]
fn metrics_parse_as_prometheus_text() {
    let (up, down) = (free_port(), free_port());
    let _listener = std::net::TcpListener::bind(("127.0.0.1", up)).unwrap();
    let db = tcp_service("db", up).replacen(
        "name = \"db\"\n",
        "name = \"db\"\nlabels = { team = \"data\", tier = \"1\" }\n",
        1,
    );
    let config = FAST.to_owned() + &db + &tcp_service("cache", down);
    let (_medic, body) = scraped(&config, "cache", "medic_service_up");
    let lines = body.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text format");
    let value = |name: &str, service: &str| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && s.labels.get("service") == Some(service))
            .map(|s| match s.value {
                prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
    };
    assert_eq!(value("medic_service_up", "db"), Some(1.0));
    assert_eq!(value("medic_service_up", "cache"), Some(0.0));
    assert_eq!(value("medic_service_failing_streak", "db"), Some(0.0));
    assert_eq!(value("medic_service_flapping", "cache"), Some(0.0));
    assert_eq!(value("medic_availability_ratio", "db"), Some(1.0));
    assert_eq!(value("medic_health_score_ratio", "db"), Some(1.0));
    assert!(value("medic_error_budget_remaining_ratio", "cache").is_some_and(|v| v < 1.0));
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "medic_probe_latency_seconds"),
        "a latency histogram"
    );
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "process_resident_memory_bytes")
    );
    assert_eq!(
        scrape.docs.get("medic_service_up").map(String::as_str),
        Some("1 when healthy on fresh observations, 0 otherwise (unknown is 0).")
    );
    // Prometheus conventions: build info, user labels on every series of the
    // service, counters ending in _total, and the availability SLI as counters.
    let info = scrape
        .samples
        .iter()
        .find(|s| s.metric == "medic_build_info")
        .expect("medic_build_info");
    assert_eq!(info.labels.get("version"), Some(env!("CARGO_PKG_VERSION")));
    assert!(info.labels.get("revision").is_some_and(|r| !r.is_empty()));
    for sample in scrape
        .samples
        .iter()
        .filter(|s| s.labels.get("service") == Some("db"))
    {
        assert_eq!(sample.labels.get("team"), Some("data"), "{sample:?}");
        assert_eq!(sample.labels.get("tier"), Some("1"), "{sample:?}");
    }
    for sample in &scrape.samples {
        if matches!(sample.value, prometheus_parse::Value::Counter(_)) {
            assert!(sample.metric.ends_with("_total"), "{sample:?}");
        }
    }
    let known = value("medic_service_known_seconds_total", "db").expect("SLI total");
    let healthy = value("medic_service_healthy_seconds_total", "db").expect("SLI good");
    assert!(known > 0.0 && healthy <= known, "{healthy} of {known}");
    assert_eq!(
        value("medic_service_healthy_seconds_total", "cache"),
        Some(0.0)
    );
}

#[test]
fn probes_never_run_more_than_max_concurrent_probes_at_once() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    // A slow endpoint that counts the requests it is serving at once.
    let most = Arc::new(AtomicUsize::new(0));
    let (in_flight, peak) = (Arc::new(AtomicUsize::new(0)), most.clone());
    let app = axum::Router::new().route(
        "/health",
        axum::routing::get(move || {
            let (in_flight, peak) = (in_flight.clone(), peak.clone());
            async move {
                let serving = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(serving, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                "ok"
            }
        }),
    );
    let port = crate::support::server::serve_in_background(app);
    let mut config = "[defaults]\ninterval = \"1s\"\ntimeout = \"500ms\"\n\n".to_owned();
    for i in 0..6 {
        config.push_str(&format!(
            "[[service]]\nname = \"web{i}\"\n  [[service.probe]]\n  kind = \"http\"\n  url = \"http://127.0.0.1:{port}/health\"\n\n"
        ));
    }
    let medic = Medic::start_with("max_concurrent_probes = 2", &config);
    // Six first rounds start together; all six are observed, two at a time.
    for i in 0..6 {
        let name = format!("web{i}");
        medic.wait_event("every service healthy", |e| {
            e["service"] == name.as_str() && e["event"] == "healthy"
        });
    }
    assert_eq!(most.load(Ordering::SeqCst), 2);
}
