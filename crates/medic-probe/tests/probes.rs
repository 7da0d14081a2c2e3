//! The probes against real servers on 127.0.0.1 and real processes.

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Redirect;
use axum::routing::get;
use medic_core::Outcome;
use medic_core::config::{ExecProbe, HttpProbe, Probe, ProbeKind, TcpProbe};
use medic_probe::{ClientPool, ProbeRunner};

async fn serve(app: Router) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    port
}

fn app() -> Router {
    Router::new()
        .route("/ok", get(|| async { "all ok" }))
        .route(
            "/down",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down") }),
        )
        .route("/json", get(|| async { r#"{"status":"up","n":3}"# }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                "late"
            }),
        )
        .route("/huge", get(|| async { "x".repeat(50 << 20) }))
        .route("/moved", get(|| async { Redirect::temporary("/ok") }))
        .route(
            "/auth",
            get(|headers: HeaderMap| async move {
                match headers.get("authorization").and_then(|v| v.to_str().ok()) {
                    Some("Bearer s3cret") => (StatusCode::OK, "in"),
                    _ => (StatusCode::UNAUTHORIZED, "out"),
                }
            }),
        )
}

fn http(url: String) -> HttpProbe {
    HttpProbe {
        url,
        method: "GET".into(),
        headers: Vec::new(),
        expect_status: (200..300).collect(),
        body_contains: None,
        body_regex: None,
        json_pointer: None,
        max_latency: None,
        tls_verify: true,
        ca_file: None,
        follow_redirects: false,
        max_body: 1 << 20,
    }
}

fn http_kind(spec: HttpProbe) -> ProbeKind {
    ProbeKind::Http(Box::new(spec))
}

async fn run(kind: ProbeKind, timeout: Duration) -> medic_core::Observation {
    let probe = Probe {
        interval: Duration::from_secs(10),
        timeout,
        kind,
    };
    ProbeRunner::new(&probe, &ClientPool::default())
        .unwrap()
        .check()
        .await
}

#[track_caller]
fn expect(observation: &medic_core::Observation, outcome: Outcome, message: &str) {
    assert_eq!(observation.outcome, outcome, "{observation:?}");
    assert!(
        observation.message.contains(message),
        "{:?} does not contain {message:?}",
        observation.message
    );
}

#[tokio::test]
async fn http_judges_status_body_json_and_latency() {
    let port = serve(app()).await;
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let second = Duration::from_secs(1);

    expect(
        &run(http_kind(http(url("/ok"))), second).await,
        Outcome::Ok,
        "HTTP 200",
    );
    expect(
        &run(http_kind(http(url("/down"))), second).await,
        Outcome::Fail,
        "HTTP 503 (expected 2xx)",
    );

    let mut contains = http(url("/ok"));
    contains.body_contains = Some("nope".into());
    expect(
        &run(http_kind(contains), second).await,
        Outcome::Fail,
        "does not contain",
    );

    let mut regex = http(url("/ok"));
    regex.body_regex = Some(regex::Regex::new("^all").unwrap());
    expect(
        &run(http_kind(regex), second).await,
        Outcome::Ok,
        "HTTP 200",
    );

    let mut json = http(url("/json"));
    json.json_pointer = Some(("/status".into(), "up".into()));
    expect(
        &run(http_kind(json.clone()), second).await,
        Outcome::Ok,
        "HTTP 200",
    );
    json.json_pointer = Some(("/n".into(), 4.into()));
    expect(
        &run(http_kind(json), second).await,
        Outcome::Fail,
        "/n is 3, expected 4",
    );

    let mut fast = http(url("/ok"));
    fast.max_latency = Some(Duration::ZERO);
    expect(
        &run(http_kind(fast), second).await,
        Outcome::Fail,
        "slower than max_latency",
    );
}

#[tokio::test]
async fn http_enforces_the_timeout_and_caps_the_body() {
    let port = serve(app()).await;
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let started = std::time::Instant::now();
    let slow = run(http_kind(http(url("/slow"))), Duration::from_millis(300)).await;
    expect(&slow, Outcome::Fail, "timed out");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );

    let mut huge = http(url("/huge"));
    huge.body_contains = Some("y".into());
    let observation = run(http_kind(huge), Duration::from_secs(5)).await;
    assert_eq!(
        observation.evidence["body_truncated"],
        true,
        "{:?}",
        observation.evidence.keys()
    );
    expect(&observation, Outcome::Fail, "does not contain");
}

#[tokio::test]
async fn http_redirects_headers_and_refused_connections() {
    let port = serve(app()).await;
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let second = Duration::from_secs(1);
    expect(
        &run(http_kind(http(url("/moved"))), second).await,
        Outcome::Fail,
        "HTTP 307",
    );
    let mut follow = http(url("/moved"));
    follow.follow_redirects = true;
    expect(
        &run(http_kind(follow), second).await,
        Outcome::Ok,
        "HTTP 200",
    );

    let mut auth = http(url("/auth"));
    expect(
        &run(http_kind(auth.clone()), second).await,
        Outcome::Fail,
        "HTTP 401",
    );
    auth.headers = vec![("Authorization".into(), "Bearer s3cret".into())];
    expect(&run(http_kind(auth), second).await, Outcome::Ok, "HTTP 200");

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let refused = run(
        http_kind(http(format!("http://user:pw@127.0.0.1:{closed}/"))),
        second,
    )
    .await;
    expect(&refused, Outcome::Fail, "cannot connect");
    assert!(
        !refused.evidence["url"].as_str().unwrap().contains("pw"),
        "passwords never reach evidence"
    );
}

#[tokio::test]
async fn tcp_connects_or_fails() {
    let port = serve(app()).await;
    let tcp = |port: u16| {
        ProbeKind::Tcp(TcpProbe {
            address: format!("127.0.0.1:{port}"),
        })
    };
    expect(
        &run(tcp(port), Duration::from_secs(1)).await,
        Outcome::Ok,
        "connected",
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    expect(
        &run(tcp(closed), Duration::from_secs(1)).await,
        Outcome::Fail,
        "cannot connect",
    );
}

fn exec(argv: &[&str]) -> ProbeKind {
    ProbeKind::Exec(ExecProbe {
        argv: argv.iter().map(|s| (*s).to_owned()).collect(),
        expect_exit: 0,
        max_output: 64,
    })
}

#[tokio::test]
async fn exec_checks_the_exit_code_and_keeps_the_output_tail() {
    let second = Duration::from_secs(2);
    expect(&run(exec(&["true"]), second).await, Outcome::Ok, "exited 0");
    let failed = run(exec(&["sh", "-c", "echo broken >&2; exit 3"]), second).await;
    expect(&failed, Outcome::Fail, "exited 3, expected 0");
    assert_eq!(failed.evidence["exit_code"], 3);
    assert_eq!(failed.evidence["output"], "broken\n");
    let chatty = run(exec(&["sh", "-c", "seq 1 10000"]), second).await;
    assert_eq!(chatty.evidence["output_truncated"], true);
    assert!(
        chatty.evidence["output"]
            .as_str()
            .unwrap()
            .ends_with("10000\n"),
        "the tail is kept"
    );
    expect(
        &run(exec(&["/nonexistent/medic-probe"]), second).await,
        Outcome::Fail,
        "cannot run",
    );
}

#[tokio::test]
async fn exec_timeout_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let script = format!(
        "sleep 30 & echo $! > {0}; echo $$ >> {0}; wait",
        pids.display()
    );
    let started = std::time::Instant::now();
    let observation = run(exec(&["sh", "-c", &script]), Duration::from_millis(300)).await;
    expect(&observation, Outcome::Fail, "timed out");
    assert!(started.elapsed() < Duration::from_secs(3));
    let text = std::fs::read_to_string(&pids).unwrap();
    for pid in text.split_whitespace() {
        let proc = std::path::PathBuf::from(format!("/proc/{pid}"));
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        // A killed process may linger as a zombie until its parent reaps it.
        while proc.exists()
            && !std::fs::read_to_string(proc.join("stat"))
                .unwrap_or_default()
                .contains(") Z")
        {
            assert!(
                std::time::Instant::now() < deadline,
                "process {pid} survived the timeout"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
