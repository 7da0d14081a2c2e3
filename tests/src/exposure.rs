//! Listeners safe to expose: `web_config` (TLS with a CA the test makes, basic
//! auth with bcrypt hashes) on the metrics, status and TCP control listeners,
//! checked with curl and scraped by a real Prometheus; certificates reloaded
//! on SIGHUP; `config check` warning about a bare listener off loopback.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

use crate::support::browser::http;
use crate::support::env;
use crate::support::medic::{DEADLINE, Medic, bin, eventually, free_port};
use crate::support::server::TestServer;

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

/// One `GET path` to 127.0.0.1:`port` from the local address `from` with
/// basic auth `credentials` (`user:password`): the status, the head
/// (lower-cased) and the body; None when no answer came.
async fn get_from(
    from: Ipv4Addr,
    port: u16,
    path: &str,
    credentials: &str,
) -> Option<(u16, String, String)> {
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind(SocketAddr::from((from, 0))).ok()?;
    let mut stream = socket
        .connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .ok()?;
    let token = base64::engine::general_purpose::STANDARD.encode(credentials);
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Basic {token}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut answer))
        .await
        .ok()?
        .ok()?;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, head.to_ascii_lowercase(), body.to_owned()))
}

/// How many threads the process `pid` runs now.
fn threads(pid: u32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse().ok())
        })
        .expect("/proc/PID/status names the thread count")
}

#[test]
fn a_flood_of_wrong_passwords_is_checked_one_at_a_time_and_probes_stay_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Cost 10: what the exporter toolkit's docs and `htpasswd -nBC 10` give.
    let hash = bcrypt::hash("s3cret", 10).unwrap();
    std::fs::write(
        d.join("web.yml"),
        format!("basic_auth_users:\n  prom: '{hash}'\n"),
    )
    .unwrap();
    // 20 healthy endpoints, probed by name: `localhost` resolves on tokio's
    // blocking pool, the pool every password check took a thread of.
    let servers: Vec<TestServer> = (0..20).map(|_| TestServer::start(free_port(), d)).collect();
    let services: String = servers
        .iter()
        .enumerate()
        .map(|(i, server)| {
            format!(
                "[[service]]\nname = \"web{i}\"\ninterval = \"1s\"\n  [[service.probe]]\n  kind = \"http\"\n  url = \"http://localhost:{}/health\"\n",
                server.port
            )
        })
        .collect();
    let metrics = free_port();
    let keys = format!(
        "metrics_listen = \"127.0.0.1:{metrics}\"\nweb_config = \"{}\"",
        d.join("web.yml").display()
    );
    let medic = Medic::start_with(&keys, &services);
    eventually("every endpoint healthy", || {
        let events = medic.events();
        (0..20)
            .all(|i| {
                let name = format!("web{i}");
                events
                    .iter()
                    .any(|e| e["service"] == name.as_str() && e["event"] == "healthy")
            })
            .then_some(())
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let scrape = || {
        runtime.block_on(get_from(
            Ipv4Addr::LOCALHOST,
            metrics,
            "/metrics",
            "prom:s3cret",
        ))
    };
    // Prometheus's scrape, checked once before the flood (then remembered).
    assert_eq!(scrape().map(|(status, ..)| status), Some(200));
    let idle = threads(medic.pid());

    // 30 clients (127.0.0.10 …), 10 wrong passwords each, all at once; the
    // thread count sampled meanwhile.
    let done = AtomicBool::new(false);
    let (answers, most, during) = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            let mut most = idle;
            while !done.load(Ordering::Relaxed) {
                most = most.max(threads(medic.pid()));
                std::thread::sleep(Duration::from_millis(20));
            }
            most
        });
        let (answers, during) = runtime.block_on(async {
            let mut flood = tokio::task::JoinSet::new();
            for client in 0..30u8 {
                for _ in 0..10 {
                    let from = Ipv4Addr::new(127, 0, 0, 10 + client);
                    flood.spawn(async move {
                        let answer = get_from(from, metrics, "/metrics", "prom:wrong").await;
                        (client, answer.map(|(status, head, _)| (status, head)))
                    });
                }
            }
            // Prometheus scrapes on meanwhile.
            let during = get_from(Ipv4Addr::LOCALHOST, metrics, "/metrics", "prom:s3cret").await;
            (flood.join_all().await, during.map(|(status, ..)| status))
        });
        done.store(true, Ordering::Relaxed);
        (answers, sampler.join().unwrap(), during)
    });

    assert!(
        most <= idle + 8,
        "medic went from {idle} to {most} threads under the flood"
    );
    // Every wrong password answered: 401, or 429 with Retry-After once the
    // client's failures are used up: at most 5 checked per client.
    for client in 0..30u8 {
        let mine: Vec<_> = answers
            .iter()
            .filter(|(c, _)| *c == client)
            .map(|(_, a)| a.clone())
            .collect();
        assert!(
            mine.iter().all(Option::is_some),
            "client {client}: {mine:?}"
        );
        let refused = mine.iter().flatten().filter(|(s, _)| *s == 401).count();
        let limited = mine
            .iter()
            .flatten()
            .filter(|(s, head)| *s == 429 && head.contains("retry-after:"))
            .count();
        assert_eq!(refused + limited, 10, "client {client}: {mine:?}");
        assert!(
            refused <= 5,
            "client {client}: {refused} wrong passwords checked"
        );
    }
    assert_eq!(during, Some(200), "Prometheus's scrape during the flood");
    // The probes stayed healthy throughout: no failed observation, no incident.
    let (_, _, body) = scrape().expect("a scrape after the flood");
    let failed: Vec<&str> = body
        .lines()
        .filter(|l| {
            l.starts_with("medic_probe_observations_total") && l.contains("outcome=\"fail\"")
        })
        .collect();
    assert!(failed.is_empty(), "failed probes: {failed:?}");
    let failing: Vec<Value> = medic
        .events()
        .into_iter()
        .filter(|e| e["event"] != "watching" && e["event"] != "healthy")
        .collect();
    assert!(failing.is_empty(), "{failing:?}");
}

/// `medic config check FILE` and `medic doctor --json --config FILE`: the
/// check's stderr and the doctor's `exposure` findings.
fn exposure(config: &Path) -> (String, Vec<Value>) {
    let check = Command::new(bin("medic"))
        .args(["config", "check"])
        .arg(config)
        .output()
        .expect("run medic config check");
    let stderr = String::from_utf8_lossy(&check.stderr).into_owned();
    assert!(check.status.success(), "{stderr}");
    let doctor = Command::new(bin("medic"))
        .args(["doctor", "--json", "--config"])
        .arg(config)
        .output()
        .expect("run medic doctor");
    let report: Value = serde_json::from_slice(&doctor.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor --json is JSON ({e}): {}",
            String::from_utf8_lossy(&doctor.stderr)
        )
    });
    let findings = report["findings"]
        .as_array()
        .expect("doctor lists findings")
        .iter()
        .filter(|f| f["check"] == "exposure")
        .cloned()
        .collect();
    (stderr, findings)
}

#[test]
fn config_check_and_doctor_warn_about_evidence_without_a_password_and_control_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certificate(d, "server");
    std::fs::write(
        d.join("web.yml"),
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server-key.pem\n",
    )
    .unwrap();
    std::fs::write(d.join("control.token"), "t0ken\n").unwrap();
    let service = "[[service]]\nname = \"db\"\n  [[service.probe]]\n  kind = \"tcp\"\n  address = \"127.0.0.1:1\"\n";
    let files = format!(
        "state_dir = \"{0}/state\"\ncontrol_socket = \"{0}/control.sock\"\n",
        d.display()
    );
    let config = d.join("medic.toml");

    // The status page on every address with TLS and no password: TLS is no door.
    std::fs::write(
        &config,
        format!(
            "[medic]\n{files}metrics_listen = \"0.0.0.0:{}\"\nweb_config = \"{}\"\n\n{service}",
            free_port(),
            d.join("web.yml").display()
        ),
    )
    .unwrap();
    let (stderr, findings) = exposure(&config);
    assert!(
        stderr.contains("is reachable from other hosts with TLS but without authentication")
            && stderr.contains("/metrics and the status page")
            && stderr.contains("add basic_auth_users to web_config"),
        "{stderr}"
    );
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0]["severity"], "warning");
    assert!(
        findings[0]["message"]
            .as_str()
            .unwrap()
            .contains("with TLS but without authentication"),
        "{findings:?}"
    );

    // Control on every address without TLS: its bearer token in clear.
    std::fs::write(
        &config,
        format!(
            "[medic]\n{files}metrics_listen = \"127.0.0.1:{}\"\ncontrol_listen = \"0.0.0.0:{}\"\ncontrol_token_file = \"{}\"\n\n{service}",
            free_port(),
            free_port(),
            d.join("control.token").display()
        ),
    )
    .unwrap();
    let (stderr, findings) = exposure(&config);
    assert!(
        stderr.contains("warning: control_listen = \"0.0.0.0:")
            && stderr.contains("without TLS: its bearer token")
            && stderr.contains("set tls_server_config in web_config"),
        "{stderr}"
    );
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(
        findings[0]["message"]
            .as_str()
            .unwrap()
            .contains("travels in clear text"),
        "{findings:?}"
    );

    // Both closed: TLS for control, a password for the page; no warning.
    let hash = bcrypt::hash("pw", 4).unwrap();
    std::fs::write(
        d.join("web.yml"),
        format!("tls_server_config:\n  cert_file: server.pem\n  key_file: server-key.pem\nbasic_auth_users:\n  prom: '{hash}'\n"),
    )
    .unwrap();
    std::fs::write(
        &config,
        format!(
            "[medic]\n{files}metrics_listen = \"0.0.0.0:{}\"\nweb_config = \"{}\"\ncontrol_listen = \"0.0.0.0:{}\"\ncontrol_token_file = \"{}\"\n\n{service}",
            free_port(),
            d.join("web.yml").display(),
            free_port(),
            d.join("control.token").display()
        ),
    )
    .unwrap();
    let (stderr, findings) = exposure(&config);
    assert!(!stderr.contains("warning"), "{stderr}");
    assert!(findings.is_empty(), "{findings:?}");
}
