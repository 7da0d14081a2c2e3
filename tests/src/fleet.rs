//! Many hosts: three medic daemons on loopback scraped by a real Prometheus
//! that evaluates the shipped rules (`packaging/prometheus/medic-rules.yml`,
//! unmodified) and sends to a real Alertmanager running the shipped routing
//! (`packaging/prometheus/alertmanager.yml`), to which every medic also pushes
//! its own alerts. Every query of the shipped Grafana dashboard
//! (`packaging/grafana/medic.json`) and every rule runs against them, and the
//! alerts fire when the test drives their condition: a killed medic, an
//! escalation, a failing service, a certificate near expiry.
//! Needs prometheus, alertmanager and python3 (the HTTPS server).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::browser::http;
use crate::support::env;
use crate::support::https::{Process, certificates, https_server};
use crate::support::medic::{Medic, eventually, eventually_within, free_port};

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

/// The shipped dashboard, parsed.
fn dashboard() -> Value {
    let text = std::fs::read_to_string(repo_file("packaging/grafana/medic.json"))
        .expect("the shipped dashboard");
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

/// What Grafana needs to import the dashboard and lay it out: a uid and a
/// current schema, panels with unique ids on a 24-column grid without
/// overlaps, every query on the `datasource` variable, and every `$variable`
/// a query uses defined.
#[test]
fn the_dashboard_is_laid_out_and_every_variable_is_defined() {
    let dashboard = dashboard();
    assert_eq!(dashboard["uid"], "medic-fleet");
    assert!(
        dashboard["schemaVersion"].as_u64() >= Some(36),
        "a current schema"
    );
    let variables: BTreeSet<&str> = dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    let mut cells = BTreeSet::new();
    for panel in panels {
        let title = &panel["title"];
        assert!(
            ids.insert(panel["id"].as_u64().expect("an id")),
            "{title}: id taken"
        );
        let grid = |k: &str| panel["gridPos"][k].as_u64().expect("gridPos");
        assert!(grid("x") + grid("w") <= 24, "{title}: wider than the grid");
        for x in grid("x")..grid("x") + grid("w") {
            for y in grid("y")..grid("y") + grid("h") {
                assert!(cells.insert((x, y)), "{title}: overlaps another panel");
            }
        }
        for target in panel["targets"].as_array().into_iter().flatten() {
            assert_eq!(target["datasource"]["uid"], "${datasource}", "{title}");
            let expr = target["expr"].as_str().expect("an expr");
            for used in expr.split('$').skip(1) {
                let name: String = used
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                assert!(
                    name.starts_with("__") || variables.contains(name.as_str()),
                    "{title}: ${name} is not a variable"
                );
            }
        }
    }
}

/// The queries of the shipped dashboard, its variables filled in as Grafana
/// would for every host of job `medic` (`$__rate_interval` at least four
/// scrape intervals, `$__range` the time shown); the query variables'
/// `label_values(selector, label)` as their selector.
fn dashboard_queries() -> Vec<String> {
    let dashboard = dashboard();
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut queries: Vec<String> = panels
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| {
            t["expr"]
                .as_str()
                .expect("each target has an expr")
                .to_owned()
        })
        .collect();
    assert!(queries.len() > 10, "the dashboard's queries: {queries:?}");
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("variables");
    queries.extend(variables.iter().filter_map(|v| {
        let query = v["query"]["query"].as_str()?;
        let inner = query.strip_prefix("label_values(")?.rsplit_once(',')?.0;
        Some(inner.to_owned())
    }));
    queries
        .into_iter()
        .map(|q| {
            q.replace("$__rate_interval", "1m")
                .replace("$__range", "5m")
                .replace("$instance", ".+")
                .replace("$job", "medic")
        })
        .collect()
}

/// The series names a PromQL expression reads (medic's, its recording rules',
/// `up` and the process families), quoted label values left out.
fn series_names(promql: &str) -> BTreeSet<String> {
    let unquoted: String = promql.split('"').step_by(2).collect();
    unquoted
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| {
            w.starts_with("medic_")
                || w.starts_with("medic:")
                || w.starts_with("process_")
                || *w == "up"
        })
        .map(str::to_owned)
        .collect()
}

/// Today plus `days`, as (year, month, day) in UTC.
fn days_ahead(days: i64) -> (i32, u8, u8) {
    let date = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .checked_add(jiff::Span::new().days(days))
        .expect("a date");
    (
        i32::from(date.year()),
        u8::try_from(date.month()).expect("a month"),
        u8::try_from(date.day()).expect("a day"),
    )
}

/// The firing alert named `name` whose label `key` is `value`, if Alertmanager holds it.
fn am_alert(port: u16, name: &str, key: &str, value: &str) -> Option<Value> {
    am_alerts(port)
        .into_iter()
        .find(|a| a["labels"]["alertname"] == name && a["labels"][key] == value)
}

#[test]
fn prometheus_and_alertmanager_watch_three_medics() {
    let (Some(prometheus), Some(alertmanager), Some(python)) = (
        env::program("prometheus"),
        env::program("prometheus-alertmanager"),
        env::program("python3"),
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

    // Prometheus first (it only needs the ports), so it sees every service
    // before anything fails: scrape and evaluate every second, the shipped
    // rules as they are.
    let metrics: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let targets: Vec<String> = metrics.iter().map(|p| format!("'127.0.0.1:{p}'")).collect();
    let prom_port = free_port();
    std::fs::write(
        path("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: ['{}']\nalerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\nscrape_configs:\n  - job_name: medic\n    static_configs:\n      - targets: [{}]\n",
            repo_file("packaging/prometheus/medic-rules.yml").display(),
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

    // Three hosts, each with a healthy service; the second also an HTTPS
    // service whose certificate expires in a week; the third a service that
    // fails once Prometheus saw it healthy, and escalates.
    let up = std::net::TcpListener::bind("127.0.0.1:0").expect("a listener");
    let up_port = up.local_addr().expect("its address").port();
    let pay = std::net::TcpListener::bind("127.0.0.1:0").expect("a listener");
    let pay_port = pay.local_addr().expect("its address").port();
    certificates(dir.path(), days_ahead(7));
    let https_port = free_port();
    let _https = https_server(&python, dir.path(), https_port);
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
            if i == 1 {
                services.push_str(&format!(
                    r#"
[[service]]
name = "shop"
  [[service.probe]]
  kind = "http"
  url = "https://127.0.0.1:{https_port}/"
  ca_file = "{}"
"#,
                    path("ca.pem").display()
                ));
            }
            if i == 2 {
                services.push_str(&format!(
                    r#"
[[service]]
name = "payments"
labels = {{ team = "money" }}
command = {{ restart = ["true"], rollback = ["false"], timeout = "5s" }}
  [[service.probe]]
  kind = "tcp"
  address = "127.0.0.1:{pay_port}"
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

    // The fleet in one query: every medic's services, summed per host, all up.
    let per_host = eventually("all three medics healthy in one query", || {
        query(prom_port, "sum by (instance) (medic_service_up)")
            .filter(|r| r.len() == 3)
            .filter(|_| query(prom_port, "medic_service_up == 0").is_some_and(|r| r.is_empty()))
    });
    let mut hosts: Vec<&str> = per_host
        .iter()
        .filter_map(|r| r["metric"]["instance"].as_str())
        .collect();
    hosts.sort_unstable();
    let mut expected: Vec<String> = metrics.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    expected.sort_unstable();
    assert_eq!(hosts, expected);

    // One medic dies now (MedicDown waits its shipped minute while the rest
    // is checked); payments' port closes: it fails, and escalates.
    medics[0].kill9();
    let killed = Instant::now();
    drop(pay);

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
        am_alert(am2_port, "medic", "service", "payments")
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

    // The failing service burns its error budget (both windows), and the
    // certificate a week from expiry warns, each with its runbook.
    for window in ["1h", "6h"] {
        let burn = eventually(&format!("MedicErrorBudgetBurn over {window}"), || {
            am_alerts(am_port).into_iter().find(|a| {
                a["labels"]["alertname"] == "MedicErrorBudgetBurn"
                    && a["labels"]["window"] == window
                    && a["labels"]["service"] == "payments"
            })
        });
        assert_eq!(burn["labels"]["instance"], third.as_str(), "{burn}");
    }
    let cert = eventually("MedicCertificateExpiringSoon", || {
        am_alert(am_port, "MedicCertificateExpiringSoon", "service", "shop")
    });
    assert_eq!(
        cert["labels"]["instance"],
        format!("127.0.0.1:{}", metrics[1]).as_str()
    );
    assert!(
        cert["annotations"]["runbook_url"]
            .as_str()
            .is_some_and(|u| u.ends_with("operating.md#mediccertificateexpiringsoon")),
        "{cert}"
    );

    // Every rule parses and evaluates without error, and every series a rule
    // or a dashboard query reads exists; every dashboard query returns series.
    let rules = eventually("every rule evaluated", || {
        let (_, body) = http(prom_port, "GET", "/api/v1/rules", None)?;
        let answer: Value = serde_json::from_str(&body).ok()?;
        let rules: Vec<Value> = answer["data"]["groups"]
            .as_array()?
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        rules.iter().all(|r| r["health"] == "ok").then_some(rules)
    });
    assert!(rules.len() >= 15, "the shipped rules loaded: {rules:?}");
    let dashboard = dashboard_queries();
    let names: BTreeSet<String> = rules
        .iter()
        .map(|r| r["query"].as_str().expect("a rule's query").to_owned())
        .chain(dashboard.iter().cloned())
        .flat_map(|q| series_names(&q))
        .collect();
    assert!(names.contains("medic:up") && names.contains("medic_service_state"));
    for name in &names {
        eventually(&format!("series of {name}"), || {
            query(prom_port, name).filter(|r| !r.is_empty())
        });
    }
    for promql in &dashboard {
        eventually(&format!("the dashboard's {promql}"), || {
            query(prom_port, promql).filter(|r| !r.is_empty())
        });
    }

    // The dead medic: the shipped MedicDown fires after its `for: 1m`, for
    // exactly that host.
    let first = format!("127.0.0.1:{}", metrics[0]);
    let down = eventually_within(
        Duration::from_secs(150),
        "MedicDown in Alertmanager",
        || am_alert(am_port, "MedicDown", "instance", &first),
    );
    assert!(
        killed.elapsed() >= Duration::from_secs(60),
        "MedicDown waited its minute"
    );
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
