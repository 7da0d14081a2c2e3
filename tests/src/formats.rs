//! The ecosystem's formats, read by the ecosystem's own tools: `/metrics` of
//! a medic with a healthy, a paused, a failing and an HTTPS service in the
//! text format (`promtool check metrics`, every family in one group, the
//! process families) and in OpenMetrics (the strict parser of Python's
//! `prometheus_client`); the HTTPS service's CA is trusted only through
//! `SSL_CERT_FILE`, and its certificate's expiry is exported to the second.
//! Needs `curl`, `promtool` (prometheus) and `/usr/bin/python3` with
//! `prometheus_client` (Debian's python3-prometheus-client).

use std::collections::BTreeSet;
use std::process::Command;

use crate::support::env;
use crate::support::https::{certificates, https_server};
use crate::support::medic::{Medic, eventually, free_port};
use crate::support::skip;

/// The HTTPS server's certificate expires 2031-05-17T00:00:00Z ...
const EXPIRY: (i32, u8, u8) = (2031, 5, 17);
/// ... which is this many Unix seconds.
const NOT_AFTER: i64 = 1_936_742_400;

/// `GET /metrics` with `accept` (when given): the Content-Type and the body.
fn scrape(curl: &str, port: u16, accept: Option<&str>) -> (String, String) {
    let mut command = Command::new(curl);
    command.args(["-sS", "--max-time", "10", "-w", "\n%{content_type}"]);
    if let Some(accept) = accept {
        command.args(["-H", &format!("Accept: {accept}")]);
    }
    let output = command
        .arg(format!("http://127.0.0.1:{port}/metrics"))
        .output()
        .expect("run curl");
    assert!(output.status.success(), "curl: {output:?}");
    let text = String::from_utf8(output.stdout).expect("utf-8");
    let (body, content_type) = text.rsplit_once('\n').expect("curl wrote the type");
    (content_type.to_owned(), body.to_owned())
}

/// Families whose samples are not in one group, or whose TYPE comes twice.
fn scattered_families(text: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut current = String::new();
    let mut problems = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().unwrap_or("").to_owned();
            if !seen.insert(name.clone()) {
                problems.push(format!("{name}: a second TYPE line"));
            }
            current = name;
        } else if !line.starts_with('#') && !line.is_empty() {
            let name = line.split(['{', ' ']).next().unwrap_or("");
            let family = ["_bucket", "_sum", "_count", "_total"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix).filter(|f| *f == current))
                .unwrap_or(name);
            if family != current {
                problems.push(format!("{name} under the family {current}"));
            }
        }
    }
    problems
}

/// The value of `name` for `service` in a text exposition.
fn value(text: &str, name: &str, service: &str) -> Option<f64> {
    text.lines()
        .find(|l| {
            l.starts_with(&format!("{name}{{")) && l.contains(&format!("service=\"{service}\""))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn metrics_speak_the_text_format_and_openmetrics_exactly() {
    let (Some(curl), Some(promtool)) = (env::program("curl"), env::program("promtool")) else {
        return;
    };
    let python = "/usr/bin/python3";
    let parser = Command::new(python)
        .args(["-c", "import prometheus_client.openmetrics.parser"])
        .status()
        .is_ok_and(|s| s.success());
    if !parser {
        // Fails the test unless MEDIC_TEST_SKIP names the component.
        let _: Option<()> = skip::missing(
            "prometheus_client",
            "/usr/bin/python3 cannot import prometheus_client (apt-get install python3-prometheus-client)",
        );
        return;
    }
    let dir = tempfile::tempdir().expect("a temp dir");
    certificates(dir.path(), EXPIRY);
    let https_port = free_port();
    let _https = https_server(python, dir.path(), https_port);
    let up = std::net::TcpListener::bind("127.0.0.1:0").expect("a listener");
    let up_port = up.local_addr().expect("its address").port();
    let closed = free_port();
    let metrics = free_port();
    let mut medic = Medic::prepare_with(
        &format!("metrics_listen = \"127.0.0.1:{metrics}\""),
        &format!(
            r#"
[defaults]
interval = "500ms"
timeout = "400ms"

[[service]]
name = "web"
labels = {{ team = "shop" }}
  [[service.probe]]
  kind = "tcp"
  address = "127.0.0.1:{up_port}"

[[service]]
name = "held"
  [[service.probe]]
  kind = "tcp"
  address = "127.0.0.1:{up_port}"

[[service]]
name = "down"
  [[service.probe]]
  kind = "tcp"
  address = "127.0.0.1:{closed}"

[[service]]
name = "secure"
  [[service.probe]]
  kind = "http"
  url = "https://127.0.0.1:{https_port}/"
"#
        ),
    );
    let ca = dir.path().join("ca.pem").display().to_string();
    medic.spawn_with_env(&[("SSL_CERT_FILE", &ca)]);
    medic.wait_listening();
    let paused = medic.cli(&["pause", "held"]);
    assert!(paused.status.success(), "{paused:?}");

    let text = eventually("every service judged and the certificate read", || {
        let (_, text) = scrape(&curl, metrics, None);
        let ready = value(&text, "medic_service_up", "secure") == Some(1.0)
            && value(&text, "medic_service_health", "down").is_some()
            && text.contains("medic_service_health{service=\"down\",health=\"unhealthy\"} 1")
            && value(
                &text,
                "medic_probe_ssl_earliest_cert_expiry_seconds",
                "secure",
            )
            .is_some();
        ready.then_some(text)
    });
    assert_eq!(
        value(
            &text,
            "medic_probe_ssl_earliest_cert_expiry_seconds",
            "secure"
        ),
        Some(NOT_AFTER as f64),
        "the certificate's notAfter, to the second"
    );
    assert_eq!(value(&text, "medic_service_paused", "held"), Some(1.0));
    assert_eq!(value(&text, "medic_service_up", "web"), Some(1.0));
    assert_eq!(value(&text, "medic_service_up", "down"), Some(0.0));
    let score = value(&text, "medic_health_score_ratio", "web").expect("a score");
    assert!((0.0..=1.0).contains(&score), "a ratio: {score}");
    assert_eq!(scattered_families(&text), Vec::<String>::new(), "{text}");
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        assert!(text.contains(&format!("\n{name} ")), "{name} missing");
    }
    let started: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("process_start_time_seconds "))
        .and_then(|v| v.parse().ok())
        .expect("a start time");
    let now = jiff::Timestamp::now().as_second() as f64;
    assert!(
        started <= now && started > now - 600.0,
        "started {started}, now {now}"
    );

    let file = dir.path().join("metrics.txt");
    std::fs::write(&file, &text).unwrap();
    let check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .expect("run promtool");
    assert!(
        check.status.success() && check.stdout.is_empty() && check.stderr.is_empty(),
        "promtool check metrics: {check:?}\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    let (content_type, open) = scrape(
        &curl,
        metrics,
        Some("application/openmetrics-text; version=1.0.0"),
    );
    assert!(
        content_type.starts_with("application/openmetrics-text; version=1.0.0"),
        "{content_type}"
    );
    assert!(open.ends_with("# EOF\n"), "{open}");
    assert!(open.contains("# TYPE medic_recoveries counter"), "{open}");
    let file = dir.path().join("metrics.om");
    std::fs::write(&file, &open).unwrap();
    let strict = Command::new(python)
        .args([
            "-c",
            "import sys\n\
             from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
             families = list(text_string_to_metric_families(open(sys.argv[1]).read()))\n\
             print(len(families))",
        ])
        .arg(&file)
        .output()
        .expect("run python3");
    assert!(
        strict.status.success(),
        "the strict OpenMetrics parser: {}\n{open}",
        String::from_utf8_lossy(&strict.stderr)
    );
    let (content_type, _) = scrape(&curl, metrics, None);
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    drop(up);
}

/// A node_exporter `web.yml` with every key of the exporter toolkit's (v0.14)
/// schema: medic starts with it, serves `/metrics` over TLS (inline `cert` and
/// `key`) behind basic auth, and warns about each key it cannot honour by name.
#[test]
fn a_web_yml_with_every_toolkit_key_is_taken_and_what_is_not_honoured_is_named() {
    let Some(curl) = env::program("curl") else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temp dir");
    let d = dir.path();
    certificates(d, EXPIRY);
    let indent = |pem: String| pem.replace('\n', "\n    ");
    let cert = indent(std::fs::read_to_string(d.join("cert.pem")).unwrap());
    let key = indent(std::fs::read_to_string(d.join("key.pem")).unwrap());
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    std::fs::write(
        d.join("web.yml"),
        format!(
            "tls_server_config:\n  cert: |\n    {cert}\n  key: |\n    {key}\n  client_auth_type: NoClientCert\n  client_ca_file: ca.pem\n  client_allowed_sans: [prometheus.example]\n  min_version: TLS12\n  max_version: TLS13\n  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n  prefer_server_cipher_suites: true\n  curve_preferences: [X25519, CurveP256]\nhttp_server_config:\n  http2: true\n  headers:\n    X-Frame-Options: deny\nbasic_auth_users:\n  prom: '{hash}'\nrate_limit:\n  interval: 1s\n  burst: 50\n"
        ),
    )
    .unwrap();
    let (metrics, up) = (
        free_port(),
        std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
    );
    let up_port = up.local_addr().unwrap().port();
    let keys = format!(
        "metrics_listen = \"127.0.0.1:{metrics}\"\nweb_config = \"{}\"",
        d.join("web.yml").display()
    );
    let medic = Medic::start_with(
        &keys,
        &format!(
            "[[service]]\nname = \"db\"\n  [[service.probe]]\n  kind = \"tcp\"\n  address = \"127.0.0.1:{up_port}\"\n"
        ),
    );
    medic.wait_listening();
    let ca = d.join("ca.pem").display().to_string();
    let get = |user: &str| {
        let output = Command::new(&curl)
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "10",
            ])
            .args(["--cacert", &ca, "-u", user])
            .arg(format!("https://127.0.0.1:{metrics}/metrics"))
            .output()
            .expect("run curl");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    eventually("/metrics over TLS with the password", || {
        (get("prom:s3cret") == "200").then_some(())
    });
    assert_eq!(get("prom:wrong"), "401");
    let stderr = medic.stderr();
    for key in [
        "tls_server_config.cipher_suites",
        "tls_server_config.curve_preferences",
        "tls_server_config.client_allowed_sans",
        "http_server_config.http2",
        "http_server_config.headers",
        "rate_limit",
    ] {
        assert!(
            stderr.contains(&format!("Not honoured: {key}")),
            "no warning naming {key}:\n{stderr}"
        );
    }
    drop(up);
}
