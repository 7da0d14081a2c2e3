//! Many hosts: three medic daemons on loopback scraped by a real Prometheus
//! that evaluates the shipped rules (`packaging/prometheus/medic-rules.yml`)
//! and sends to a real Alertmanager running the shipped routing
//! (`packaging/prometheus/alertmanager.yml`), to which every medic also pushes
//! its own alerts.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::support::browser::http;
use crate::support::env;
use crate::support::medic::{Medic, eventually, free_port};

/// A process this test started, killed and reaped when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// Starts `program` with `args`, its output in `log`, and waits until
/// `GET /-/ready` on `port` answers 200.
fn start_ready(program: &str, args: &[String], log: &Path, port: u16) -> Process {
    let log = std::fs::File::create(log).expect("create the log");
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("start {program}: {e}"));
    let process = Process(child);
    eventually(&format!("{program} to be ready"), || {
        http(port, "GET", "/-/ready", None).filter(|(status, _)| *status == 200)
    });
    process
}

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// `%`-encodes a PromQL query for a URL.
fn encode(query: &str) -> String {
    query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The result vector of an instant query, when Prometheus answers.
fn query(port: u16, promql: &str) -> Option<Vec<Value>> {
    let (status, body) = http(
        port,
        "GET",
        &format!("/api/v1/query?query={}", encode(promql)),
        None,
    )?;
    let answer: Value = serde_json::from_str(&body).ok()?;
    (status == 200).then(|| answer["data"]["result"].as_array().cloned())?
}

/// Every alert Alertmanager holds (active, inhibited and silenced).
fn am_alerts(port: u16) -> Vec<Value> {
    http(port, "GET", "/api/v2/alerts", None)
        .and_then(|(_, body)| serde_json::from_str(&body).ok())
        .unwrap_or_default()
}

#[test]
fn prometheus_and_alertmanager_watch_three_medics() {
    let (Some(prometheus), Some(alertmanager)) = (
        env::program("prometheus"),
        env::program("prometheus-alertmanager"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = |name: &str| dir.path().join(name);

    // Two Alertmanagers on the shipped routing (medic posts to both, as to the
    // members of a cluster; Prometheus to the first), each with its own data;
    // and a third member that is down.
    let start_am = |name: &str| {
        let port = free_port();
        std::fs::create_dir(path(name)).expect("am data dir");
        let config = repo_file("packaging/prometheus/alertmanager.yml");
        let am = start_ready(
            &alertmanager,
            &[
                format!("--config.file={}", config.display()),
                format!("--storage.path={}", path(name).display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
                "--cluster.listen-address=".into(),
            ],
            &path(&format!("{name}.log")),
            port,
        );
        (am, port)
    };
    let (_am, am_port) = start_am("am1");
    let (_am2, am2_port) = start_am("am2");
    let am_down = free_port();

    // Three hosts: each with a healthy service; the third also one that escalates.
    let up = std::net::TcpListener::bind("127.0.0.1:0").expect("a listener");
    let up_port = up.local_addr().expect("its address").port();
    let closed = free_port();
    let metrics: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut medics: Vec<Medic> = metrics
        .iter()
        .enumerate()
        .map(|(i, port)| {
            let mut services = format!(
                r#"
[defaults]
interval = "200ms"
timeout = "150ms"
failure_threshold = 2
backoff = "100ms"
recover_timeout = "1s"

[[service]]
name = "web"
labels = {{ team = "shop" }}
  [[service.probe]]
  kind = "tcp"
  address = "127.0.0.1:{up_port}"

[[alert]]
name = "am"
kind = "alertmanager"
urls = ["http://127.0.0.1:{am_port}", "http://127.0.0.1:{am2_port}", "http://127.0.0.1:{am_down}"]
min_severity = "critical"
repeat_interval = "1s"
"#
            );
            if i == 2 {
                services.push_str(&format!(
                    r#"
[[service]]
name = "payments"
labels = {{ team = "money" }}
command = {{ restart = ["true"], rollback = ["false"], timeout = "5s" }}
  [[service.probe]]
  kind = "tcp"
  address = "127.0.0.1:{closed}"
"#
                ));
            }
            Medic::start_with(
                &format!(
                    "metrics_listen = \"127.0.0.1:{port}\"\nexternal_url = \"http://127.0.0.1:{port}\""
                ),
                &services,
            )
        })
        .collect();

    // Prometheus: scrape and evaluate every second; the shipped rules, with
    // only MedicDown's `for: 1m` shortened so the test need not wait a minute.
    let rules = std::fs::read_to_string(repo_file("packaging/prometheus/medic-rules.yml"))
        .expect("the shipped rules");
    let down = "expr: up{job=\"medic\"} == 0\n        for: 1m";
    assert!(
        rules.contains(down),
        "MedicDown's shape changed: update this test"
    );
    std::fs::write(
        path("rules.yml"),
        rules.replace(down, "expr: up{job=\"medic\"} == 0\n        for: 0s"),
    )
    .expect("write the rules");
    let targets: Vec<String> = metrics.iter().map(|p| format!("'127.0.0.1:{p}'")).collect();
    let prom_port = free_port();
    std::fs::write(
        path("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: ['{}']\nalerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\nscrape_configs:\n  - job_name: medic\n    static_configs:\n      - targets: [{}]\n",
            path("rules.yml").display(),
            targets.join(", ")
        ),
    )
    .expect("write the Prometheus config");
    let _prometheus = start_ready(
        &prometheus,
        &[
            format!("--config.file={}", path("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", path("prom-data").display()),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ],
        &path("prometheus.log"),
        prom_port,
    );

    // The fleet in one query: every medic's services, summed per host.
    let per_host = eventually("all three medics in one query", || {
        query(prom_port, "sum by (instance) (medic_service_up)").filter(|r| r.len() == 3)
    });
    let mut hosts: Vec<&str> = per_host
        .iter()
        .filter_map(|r| r["metric"]["instance"].as_str())
        .collect();
    hosts.sort_unstable();
    let mut expected: Vec<String> = metrics.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    expected.sort_unstable();
    assert_eq!(hosts, expected);

    // An escalation on the third host: the rule fires with the service's
    // labels, and medic's own push arrives once; the rule's alert is inhibited
    // by it (the shipped routing), so a person is paged once.
    let third = format!("127.0.0.1:{}", metrics[2]);
    let (rule, push) = eventually("MedicServiceEscalated and medic's own alert", || {
        let alerts = am_alerts(am_port);
        let find = |name: &str| -> Vec<Value> {
            alerts
                .iter()
                .filter(|a| {
                    a["labels"]["alertname"] == name && a["labels"]["service"] == "payments"
                })
                .cloned()
                .collect()
        };
        let (rule, push) = (find("MedicServiceEscalated"), find("medic"));
        (!rule.is_empty() && !push.is_empty()).then_some((rule, push))
    });
    assert_eq!(rule.len(), 1, "{rule:?}");
    assert_eq!(
        push.len(),
        1,
        "one alert per incident, however often re-posted: {push:?}"
    );
    let (rule, push) = (&rule[0], &push[0]);
    assert_eq!(rule["labels"]["instance"], third.as_str(), "{rule}");
    assert_eq!(rule["labels"]["team"], "money");
    assert_eq!(rule["labels"]["severity"], "critical");
    assert_eq!(rule["labels"]["host"], push["labels"]["host"]);
    assert_eq!(push["labels"]["kind"], "escalated", "{push}");
    assert_eq!(push["labels"]["team"], "money");
    assert_eq!(push["generatorURL"], format!("http://{third}").as_str());
    assert!(
        push["annotations"]["evidence"]
            .as_str()
            .is_some_and(|e| e.contains("127.0.0.1")),
        "the evidence in the annotations: {push}"
    );
    // Every member of the cluster got medic's alert; the dead one held nothing up.
    let second = eventually("medic's alert in the second Alertmanager", || {
        am_alerts(am2_port)
            .into_iter()
            .find(|a| a["labels"]["alertname"] == "medic" && a["labels"]["service"] == "payments")
    });
    assert_eq!(second["labels"], push["labels"]);
    eventually("the rule's alert inhibited by medic's own", || {
        let alerts = am_alerts(am_port);
        alerts
            .iter()
            .find(|a| a["labels"]["alertname"] == "MedicServiceEscalated")
            .filter(|a| a["status"]["state"] == "suppressed")
            .filter(|a| {
                a["status"]["inhibitedBy"]
                    .as_array()
                    .is_some_and(|i| !i.is_empty())
            })
            .cloned()
    });

    // One medic dies: the shipped MedicDown fires for exactly that host.
    medics[0].kill9();
    let first = format!("127.0.0.1:{}", metrics[0]);
    let down = eventually("MedicDown in Alertmanager", || {
        am_alerts(am_port)
            .into_iter()
            .find(|a| a["labels"]["alertname"] == "MedicDown")
    });
    assert_eq!(down["labels"]["instance"], first.as_str(), "{down}");
    assert_eq!(down["labels"]["severity"], "critical");
    assert!(
        am_alerts(am_port)
            .iter()
            .filter(|a| a["labels"]["alertname"] == "MedicDown")
            .all(|a| a["labels"]["instance"] == first.as_str()),
        "only the dead medic is down"
    );
    drop(up);
}
