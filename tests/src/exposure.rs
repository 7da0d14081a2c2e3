//! Listeners safe to expose: `web_config` (TLS with a CA the test makes, basic
//! auth with bcrypt hashes) on the metrics, status and TCP control listeners,
//! checked with curl and scraped by a real Prometheus; certificates reloaded
//! on SIGHUP; `config check` warning about a bare listener off loopback.

use std::path::Path;
use std::process::Command;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

use crate::support::browser::http;
use crate::support::env;
use crate::support::medic::{Medic, bin, eventually, free_port};

/// A CA and a certificate for 127.0.0.1 it signed, written as PEM files `{name}-ca.pem`,
/// `{name}.pem` and `{name}-key.pem` in `dir`.
fn certificate(dir: &Path, name: &str) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Distinct names: with rcgen's default for both, OpenSSL takes the leaf for self-signed.
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("medic test CA {name}"));
    let ca_key = KeyPair::generate().unwrap();
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    let leaf = leaf.signed_by(&key, &ca).unwrap();
    std::fs::write(dir.join(format!("{name}-ca.pem")), ca.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), leaf.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}-key.pem")), key.serialize_pem()).unwrap();
}

/// curl's HTTP status for `url` (0 when no HTTP answer came), with extra arguments.
fn curl(curl: &str, url: &str, args: &[&str]) -> u16 {
    let output = Command::new(curl)
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
        ])
        .args(args)
        .arg(url)
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn web_config_guards_metrics_page_and_control_with_tls_and_basic_auth() {
    let Some(curl_bin) = env::program("curl") else {
        return;
    };
    let Some(prometheus) = env::program("prometheus") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certificate(d, "first");
    certificate(d, "second");
    // medic reads these names; SIGHUP later swaps in the second certificate.
    std::fs::copy(d.join("first.pem"), d.join("server.pem")).unwrap();
    std::fs::copy(d.join("first-key.pem"), d.join("server-key.pem")).unwrap();
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    std::fs::write(
        d.join("web.yml"),
        format!(
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server-key.pem\nbasic_auth_users:\n  prom: '{hash}'\n"
        ),
    )
    .unwrap();
    std::fs::write(d.join("control.token"), "t0ken\n").unwrap();
    let (metrics, status, control, up) = (free_port(), free_port(), free_port(), free_port());
    let _up = std::net::TcpListener::bind(("127.0.0.1", up)).unwrap();
    let keys = format!(
        "metrics_listen = \"127.0.0.1:{metrics}\"\nstatus_listen = \"127.0.0.1:{status}\"\nweb_config = \"{}\"\ncontrol_listen = \"127.0.0.1:{control}\"\ncontrol_token_file = \"{}\"",
        d.join("web.yml").display(),
        d.join("control.token").display()
    );
    let services = format!(
        "[[service]]\nname = \"db\"\ninterval = \"200ms\"\ntimeout = \"150ms\"\n  [[service.probe]]\n  kind = \"tcp\"\n  address = \"127.0.0.1:{up}\"\n"
    );
    let medic = Medic::start_with(&keys, &services);
    medic.wait_event("db healthy", |e| e["event"] == "healthy");
    let ca = d.join("first-ca.pem").display().to_string();
    let tls = ["--cacert", ca.as_str()];
    let url = |port: u16, path: &str| format!("https://127.0.0.1:{port}{path}");
    let with = |user: &'static str| [&tls[..], &["-u", user]].concat();
    eventually("the metrics listener over TLS", || {
        (curl(&curl_bin, &url(metrics, "/metrics"), &with("prom:s3cret")) == 200).then_some(())
    });

    // Credentials: none, a wrong password, an unknown user → 401; right → 200.
    for port in [metrics, status] {
        let path = if port == metrics {
            "/metrics"
        } else {
            "/api/status"
        };
        assert_eq!(
            curl(&curl_bin, &url(port, path), &tls),
            401,
            "{path} without credentials"
        );
        assert_eq!(
            curl(&curl_bin, &url(port, path), &with("prom:wrong")),
            401,
            "{path} wrong password"
        );
        assert_eq!(
            curl(&curl_bin, &url(port, path), &with("root:s3cret")),
            401,
            "{path} unknown user"
        );
        assert_eq!(
            curl(&curl_bin, &url(port, path), &with("prom:s3cret")),
            200,
            "{path} with credentials"
        );
    }
    // The page is refused without credentials and lives only on status_listen.
    assert_eq!(curl(&curl_bin, &url(status, "/"), &tls), 401);
    assert_eq!(
        curl(&curl_bin, &url(status, "/"), &with("prom:s3cret")),
        200
    );
    for path in ["/", "/api/status"] {
        assert_eq!(
            curl(&curl_bin, &url(metrics, path), &with("prom:s3cret")),
            404,
            "{path} on metrics_listen"
        );
    }
    // Plain HTTP gets no answer; a client without the CA refuses the certificate.
    assert!(http(metrics, "GET", "/metrics", None).is_none_or(|(status, _)| status != 200));
    assert_eq!(
        curl(&curl_bin, &url(metrics, "/metrics"), &["-u", "prom:s3cret"]),
        0
    );
    // TCP control takes the TLS and keeps its bearer token.
    let bearer = [&tls[..], &["-H", "Authorization: Bearer t0ken"]].concat();
    assert_eq!(curl(&curl_bin, &url(control, "/v1/status"), &bearer), 200);
    assert_eq!(curl(&curl_bin, &url(control, "/v1/status"), &tls), 401);

    // A real Prometheus scrapes with tls_config and basic_auth.
    let prom_port = free_port();
    std::fs::write(
        d.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: medic\n    scheme: https\n    tls_config:\n      ca_file: {ca}\n    basic_auth:\n      username: prom\n      password: s3cret\n    static_configs:\n      - targets: ['127.0.0.1:{metrics}']\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(d.join("prometheus.log")).unwrap();
    let mut child = Command::new(&prometheus)
        .arg(format!(
            "--config.file={}",
            d.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            d.join("prom-data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start prometheus");
    let scraped = std::panic::catch_unwind(|| {
        eventually(
            "Prometheus to scrape medic over TLS with basic auth",
            || {
                let (_, body) = http(
                    prom_port,
                    "GET",
                    "/api/v1/query?query=medic_service_up%7Bjob%3D%22medic%22%7D",
                    None,
                )?;
                let answer: serde_json::Value = serde_json::from_str(&body).ok()?;
                let result = answer["data"]["result"].as_array()?.first()?.clone();
                (result["metric"]["service"] == "db").then_some(())
            },
        )
    });
    child.kill().ok();
    child.wait().ok();
    if let Err(panic) = scraped {
        let log = std::fs::read_to_string(d.join("prometheus.log")).unwrap_or_default();
        eprintln!("prometheus log:\n{log}");
        std::panic::resume_unwind(panic);
    }

    // SIGHUP: new connections get the new certificate.
    let second = d.join("second-ca.pem").display().to_string();
    let second_tls = ["--cacert", second.as_str(), "-u", "prom:s3cret"];
    assert_eq!(
        curl(&curl_bin, &url(metrics, "/metrics"), &second_tls),
        0,
        "not yet the second certificate"
    );
    std::fs::copy(d.join("second.pem"), d.join("server.pem")).unwrap();
    std::fs::copy(d.join("second-key.pem"), d.join("server-key.pem")).unwrap();
    medic.signal(nix::sys::signal::Signal::SIGHUP);
    eventually("the second certificate after SIGHUP", || {
        (curl(&curl_bin, &url(metrics, "/metrics"), &second_tls) == 200).then_some(())
    });
}

#[test]
fn config_check_warns_about_a_bare_listener_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("medic.toml");
    let service = "[[service]]\nname = \"db\"\n  [[service.probe]]\n  kind = \"tcp\"\n  address = \"127.0.0.1:1\"\n";
    std::fs::write(
        &config,
        format!("[medic]\nmetrics_listen = \"0.0.0.0:9464\"\n\n{service}"),
    )
    .unwrap();
    let check = || {
        Command::new(bin("medic"))
            .args(["config", "check"])
            .arg(&config)
            .output()
            .expect("run medic config check")
    };
    let output = check();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: metrics_listen = \"0.0.0.0:9464\" is reachable from other hosts with neither TLS nor authentication")
            && stderr.contains("/metrics and the status page"),
        "{stderr}"
    );

    // Page on loopback, metrics out with basic auth: no warning.
    let hash = bcrypt::hash("pw", 4).unwrap();
    std::fs::write(
        dir.path().join("web.yml"),
        format!("basic_auth_users:\n  prom: '{hash}'\n"),
    )
    .unwrap();
    std::fs::write(
        &config,
        format!(
            "[medic]\nmetrics_listen = \"0.0.0.0:9464\"\nstatus_listen = \"127.0.0.1:9463\"\nweb_config = \"{}\"\n\n{service}",
            dir.path().join("web.yml").display()
        ),
    )
    .unwrap();
    let output = check();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && !stderr.contains("warning"),
        "{stderr}"
    );

    // A web config that is not one: an error naming it.
    std::fs::write(
        dir.path().join("web.yml"),
        "basic_auth_users:\n  prom: plaintext\n",
    )
    .unwrap();
    let output = check();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not a bcrypt hash"), "{stderr}");
}
