//! http probes against a real axum server on 127.0.0.1.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Redirect;
use axum::routing::get;
use medic_core::Outcome;
use medic_core::config::{HttpProbe, ProbeKind, Secret};
use medic_probe::{ClientPool, ProbeError, ProbeRunner};

use crate::util::{closed_port, expect, http, probe, run_http, serve, wait_until};

const SECOND: Duration = Duration::from_secs(1);

fn app() -> Router {
    Router::new()
        .route("/ok", get(|| async { "all ok" }))
        .route(
            "/down",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down") }),
        )
        .route("/json", get(|| async { r#"{"status":"up","n":3}"# }))
        .route(
            "/sluggish",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                "late but fine"
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "too late"
            }),
        )
        .route(
            "/trickle",
            get(|| async {
                // Headers at once, then one byte per 100 ms, forever.
                let bytes = futures_util::stream::unfold((), |()| async {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Some((Ok::<_, Infallible>(Bytes::from_static(b".")), ()))
                });
                Body::from_stream(bytes)
            }),
        )
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
        .route(
            "/echo",
            get(|headers: HeaderMap| async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("none")
                    .to_owned();
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("you sent {auth}"),
                )
            }),
        )
        .route(
            "/agent",
            get(|headers: HeaderMap| async move {
                headers
                    .get("user-agent")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("none")
                    .to_owned()
            }),
        )
}

async fn base() -> impl Fn(&str) -> String {
    let port = serve(app()).await;
    move |path: &str| format!("http://127.0.0.1:{port}{path}")
}

#[tokio::test]
async fn a_good_answer_is_ok_with_evidence() {
    let url = base().await;
    let observation = run_http(http(url("/ok")), SECOND).await;
    expect(&observation, Outcome::Ok, "HTTP 200");
    let evidence = &observation.evidence;
    assert_eq!(evidence["status"], 200);
    assert_eq!(evidence["body"], "all ok");
    assert_eq!(evidence["url"], url("/ok"));
    assert!(evidence["latency_ms"].is_u64());
    assert!(!evidence.contains_key("failed_check"));
    assert!(!evidence.contains_key("body_truncated"));
}

#[tokio::test]
async fn a_wrong_status_fails() {
    let url = base().await;
    let observation = run_http(http(url("/down")), SECOND).await;
    expect(&observation, Outcome::Fail, "HTTP 503 (expected 2xx)");
    assert_eq!(observation.evidence["failed_check"], "status");
    assert_eq!(observation.evidence["body"], "down");

    let mut accept_503 = http(url("/down"));
    accept_503.expect_status = [503].into();
    expect(&run_http(accept_503, SECOND).await, Outcome::Ok, "HTTP 503");
}

#[tokio::test]
async fn the_body_must_contain_the_text_and_match_the_regex() {
    let url = base().await;
    let mut contains = http(url("/ok"));
    contains.body_contains = Some("nope".into());
    let observation = run_http(contains.clone(), SECOND).await;
    expect(
        &observation,
        Outcome::Fail,
        "body does not contain \"nope\"",
    );
    assert_eq!(observation.evidence["failed_check"], "body_contains");
    contains.body_contains = Some("all".into());
    expect(&run_http(contains, SECOND).await, Outcome::Ok, "HTTP 200");

    let mut regex = http(url("/ok"));
    regex.body_regex = Some(regex::Regex::new("^all o+k$").unwrap());
    expect(
        &run_http(regex.clone(), SECOND).await,
        Outcome::Ok,
        "HTTP 200",
    );
    regex.body_regex = Some(regex::Regex::new("^ok").unwrap());
    let observation = run_http(regex, SECOND).await;
    expect(&observation, Outcome::Fail, "body does not match /^ok/");
    assert_eq!(observation.evidence["failed_check"], "body_regex");
}

#[tokio::test]
async fn a_json_pointer_must_have_the_expected_value() {
    let url = base().await;
    let mut json = http(url("/json"));
    json.json_pointer = Some(("/status".into(), "up".into()));
    expect(
        &run_http(json.clone(), SECOND).await,
        Outcome::Ok,
        "HTTP 200",
    );

    json.json_pointer = Some(("/n".into(), 4.into()));
    let observation = run_http(json.clone(), SECOND).await;
    expect(&observation, Outcome::Fail, "/n is 3, expected 4");
    assert_eq!(observation.evidence["failed_check"], "json_pointer");

    json.json_pointer = Some(("/missing".into(), 1.into()));
    expect(
        &run_http(json, SECOND).await,
        Outcome::Fail,
        "/missing is missing",
    );

    let mut not_json = http(url("/ok"));
    not_json.json_pointer = Some(("/status".into(), "up".into()));
    expect(
        &run_http(not_json, SECOND).await,
        Outcome::Fail,
        "body is not JSON",
    );
}

#[tokio::test]
async fn a_slow_answer_fails_max_latency() {
    let url = base().await;
    let mut fast = http(url("/sluggish"));
    fast.max_latency = Some(Duration::from_millis(50));
    let observation = run_http(fast.clone(), SECOND).await;
    expect(&observation, Outcome::Fail, "slower than max_latency 50ms");
    assert_eq!(observation.evidence["failed_check"], "max_latency");
    assert!(observation.latency >= Duration::from_millis(200));

    fast.max_latency = Some(Duration::from_millis(900));
    expect(&run_http(fast, SECOND).await, Outcome::Ok, "HTTP 200");
}

#[tokio::test]
async fn a_server_slower_than_the_timeout_fails_within_it() {
    let url = base().await;
    let timeout = Duration::from_millis(300);
    let slack = Duration::from_millis(500);

    let started = std::time::Instant::now();
    let observation = run_http(http(url("/slow")), timeout).await;
    assert!(
        started.elapsed() < timeout + slack,
        "{:?}",
        started.elapsed()
    );
    expect(&observation, Outcome::Fail, "timed out after 300ms");
    assert_eq!(observation.evidence["timed_out"], true);
    assert!(!observation.evidence.contains_key("status"));

    // The timeout covers the body too, not just the headers.
    let started = std::time::Instant::now();
    let observation = run_http(http(url("/trickle")), timeout).await;
    assert!(
        started.elapsed() < timeout + slack,
        "{:?}",
        started.elapsed()
    );
    expect(
        &observation,
        Outcome::Fail,
        "timed out after 300ms reading the body (HTTP 200)",
    );
    assert_eq!(observation.evidence["status"], 200);
}

/// Counts the bytes a streamed response body hands to hyper and notices when
/// hyper drops it (the client hung up).
struct Counted {
    sent: Arc<AtomicUsize>,
    dropped: Arc<AtomicBool>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_huge_body_is_read_only_up_to_max_body() {
    const TOTAL: usize = 50 << 20;
    const CHUNK: usize = 64 << 10;
    let sent = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicBool::new(false));
    let counted = Counted {
        sent: sent.clone(),
        dropped: dropped.clone(),
    };
    let body = Arc::new(std::sync::Mutex::new(Some(counted)));
    let app = Router::new().route(
        "/huge",
        get(move || {
            let counted = body.lock().unwrap().take().expect("requested once");
            async move {
                let chunks = futures_util::stream::unfold(counted, |counted| async move {
                    let so_far = counted.sent.fetch_add(CHUNK, Ordering::SeqCst);
                    (so_far < TOTAL)
                        .then(|| (Ok::<_, Infallible>(Bytes::from(vec![b'x'; CHUNK])), counted))
                });
                Body::from_stream(chunks)
            }
        }),
    );
    let port = serve(app).await;
    let mut spec = http(format!("http://127.0.0.1:{port}/huge"));
    spec.max_body = 256 << 10;
    spec.body_contains = Some("y".into());

    let started = std::time::Instant::now();
    let observation = run_http(spec, Duration::from_secs(10)).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    expect(&observation, Outcome::Fail, "body does not contain \"y\"");
    assert_eq!(observation.evidence["body_truncated"], true);
    assert_eq!(observation.evidence["body"].as_str().unwrap().len(), 512);

    // The client hung up after max_body: the server stops streaming long
    // before 50 MiB (what it got out is max_body plus socket buffers).
    wait_until(
        Duration::from_secs(10),
        "the server notices the hang-up",
        || dropped.load(Ordering::SeqCst),
    )
    .await;
    let streamed = sent.load(Ordering::SeqCst);
    assert!(streamed < 16 << 20, "the server streamed {streamed} bytes");
}

#[tokio::test]
async fn redirects_are_judged_unless_followed() {
    let url = base().await;
    let observation = run_http(http(url("/moved")), SECOND).await;
    expect(&observation, Outcome::Fail, "HTTP 307");
    assert!(!observation.evidence.contains_key("final_url"));

    let mut accept_307 = http(url("/moved"));
    accept_307.expect_status = [307].into();
    expect(&run_http(accept_307, SECOND).await, Outcome::Ok, "HTTP 307");

    let mut follow = http(url("/moved"));
    follow.follow_redirects = true;
    follow.body_contains = Some("all ok".into());
    let observation = run_http(follow, SECOND).await;
    expect(&observation, Outcome::Ok, "HTTP 200");
    assert_eq!(observation.evidence["final_url"], url("/ok"));
}

#[tokio::test]
async fn headers_and_the_user_agent_are_sent() {
    let url = base().await;
    let mut auth = http(url("/auth"));
    expect(
        &run_http(auth.clone(), SECOND).await,
        Outcome::Fail,
        "HTTP 401",
    );
    auth.headers = vec![("Authorization".into(), Secret::new("Bearer s3cret"))];
    expect(&run_http(auth, SECOND).await, Outcome::Ok, "HTTP 200");

    let mut agent = http(url("/agent"));
    agent.body_contains = Some(format!("medic/{}", env!("CARGO_PKG_VERSION")));
    expect(&run_http(agent, SECOND).await, Outcome::Ok, "HTTP 200");
}

#[tokio::test]
async fn header_values_are_secrets() {
    let url = base().await;
    let mut echo = http(url("/echo"));
    echo.headers = vec![("Authorization".into(), Secret::new("Bearer s3cret-token"))];
    let shown = format!("{echo:?}");
    assert!(!shown.contains("s3cret"), "Debug of the probe: {shown}");
    let observation = run_http(echo, SECOND).await;
    expect(&observation, Outcome::Fail, "HTTP 500");
    let everything = format!("{observation:?}");
    assert!(
        !everything.contains("s3cret") && everything.contains("you sent <redacted>"),
        "the echoed header is redacted from message and evidence: {everything}"
    );
}

#[tokio::test]
async fn a_refused_connection_fails_and_hides_the_password() {
    let port = closed_port();
    let observation = run_http(http(format!("http://user:pw@127.0.0.1:{port}/")), SECOND).await;
    expect(
        &observation,
        Outcome::Fail,
        "cannot connect: connection refused",
    );
    assert_eq!(observation.evidence["failed_check"], "connect");
    assert_eq!(
        observation.evidence["url"],
        format!("http://127.0.0.1:{port}/")
    );
}

#[test]
fn probes_with_the_same_settings_share_one_client() {
    let clients = ClientPool::new();
    for port in 1..=1000 {
        let spec = http(format!("http://127.0.0.1:{port}/health"));
        ProbeRunner::new(
            &probe(ProbeKind::Http(std::sync::Arc::new(spec)), SECOND),
            &clients,
        )
        .unwrap();
    }
    assert_eq!(clients.client_count(), 1);
    assert!(
        !clients.has_system_roots(),
        "plain http:// never speaks TLS: no roots read or kept"
    );
    let mut follow = http("http://127.0.0.1:1/".into());
    follow.follow_redirects = true;
    ProbeRunner::new(
        &probe(ProbeKind::Http(std::sync::Arc::new(follow)), SECOND),
        &clients,
    )
    .unwrap();
    assert_eq!(clients.client_count(), 2);
    assert!(
        clients.has_system_roots(),
        "a redirect may lead to https://"
    );
    ProbeRunner::new(
        &probe(
            ProbeKind::Http(std::sync::Arc::new(http("https://127.0.0.1:1/".into()))),
            SECOND,
        ),
        &clients,
    )
    .unwrap();
    assert_eq!(clients.client_count(), 3);
}

#[test]
fn bad_specs_and_adapter_kinds_are_errors() {
    let build = |kind: ProbeKind| ProbeRunner::new(&probe(kind, SECOND), &ClientPool::new());
    let http_kind = |spec: HttpProbe| ProbeKind::Http(std::sync::Arc::new(spec));

    let mut header = http("http://127.0.0.1:1/".into());
    header.headers = vec![("bad header".into(), Secret::new("x"))];
    assert!(matches!(
        build(http_kind(header)),
        Err(ProbeError::Header(_))
    ));

    let mut method = http("http://127.0.0.1:1/".into());
    method.method = "GE T".into();
    assert!(matches!(
        build(http_kind(method)),
        Err(ProbeError::Method(_))
    ));

    let url = http("http://u:secret@[::1/".into());
    let error = build(http_kind(url)).unwrap_err();
    assert!(matches!(error, ProbeError::Url { .. }), "{error}");
    assert!(!error.to_string().contains("secret"), "{error}");

    let error = build(ProbeKind::Container).unwrap_err();
    assert!(matches!(error, ProbeError::NotHere("container")));
    assert!(error.to_string().contains("handled by their adapter"));
    assert!(matches!(
        build(ProbeKind::LaunchAgent),
        Err(ProbeError::NotHere("launch_agent"))
    ));
}
