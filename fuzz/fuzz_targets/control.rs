//! Any request body on any control API route, through the very router the
//! socket serves, into a real core: no body can panic the handlers, and what
//! they accept (pauses, deploy timeouts, a deploy's result and evidence) is
//! carried into a `medic_core::Supervisor` and its timers run, as the daemon does.
//! The first byte picks the route, the rest is the body.
#![no_main]

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, header};
use libfuzzer_sys::fuzz_target;
use medic_core::{Control, Input, Policy, Supervisor};
use medic_daemon::{ControlCommand, ControlRequest};
use tokio::sync::mpsc;
use tower::ServiceExt;

const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/services/web/pause"),
    ("POST", "/v1/services/web/deploy"),
    ("POST", "/v1/services/web/deploy/finish"),
    ("POST", "/v1/services/web/resume"),
    ("POST", "/v1/services/web/reset"),
    ("POST", "/v1/services/web/recover"),
    ("POST", "/v1/services/web/nonsense"),
    ("POST", "/v1/services/web/forget"),
    ("GET", "/v1/services/web"),
    ("POST", "/v1/reload"),
    ("GET", "/v1/status"),
    ("GET", "/v1/status?service=web"),
];

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime builds")
});

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let (method, uri) = ROUTES[usize::from(pick) % ROUTES.len()];
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_vec()))
        .expect("a request from fixed parts");
    RUNTIME.block_on(async {
        let (tx, rx) = mpsc::channel(4);
        let app = medic_daemon::control::router(tx);
        let (response, ()) = tokio::join!(app.oneshot(request), answer(rx));
        let _ = response.expect("the router is infallible").status();
    });
});

/// Answers like the daemon: one unit `web`, the core deciding.
async fn answer(mut rx: mpsc::Receiver<ControlRequest>) {
    let now = Instant::now();
    let mut sup = Supervisor::new("fuzz", 1);
    sup.add_unit(now, "web", Policy::default());
    while let Some(request) = rx.recv().await {
        let input = match request {
            ControlRequest::Unit { control, reply, .. } => {
                reply.send(Ok(())).ok();
                let control = match control {
                    ControlCommand::Pause(duration) => Control::Pause {
                        until: duration.map(|d| now + d),
                    },
                    ControlCommand::Resume => Control::Resume,
                    ControlCommand::Reset => Control::Reset,
                    ControlCommand::Recover => Control::Recover,
                };
                Input::Control {
                    unit: "web".into(),
                    control,
                }
            }
            ControlRequest::DeployBegin {
                command_timeout,
                verify_timeout,
                reply,
                ..
            } => {
                reply.send(Ok(None)).ok();
                Input::Control {
                    unit: "web".into(),
                    control: Control::Deploy {
                        command_timeout,
                        verify_timeout,
                    },
                }
            }
            ControlRequest::DeployFinish { result, .. } => Input::DeployFinished {
                unit: "web".into(),
                result,
            },
            ControlRequest::Reload(reply) => {
                reply.send(Ok(())).ok();
                continue;
            }
            ControlRequest::Resolve { reply, .. } => {
                reply.send(vec!["web".into()]).ok();
                continue;
            }
            ControlRequest::Forget { reply, .. } => {
                reply.send(Err("`web` is a configured service".into())).ok();
                continue;
            }
            // Dropped: the handler answers 503, as when medic stops.
            ControlRequest::Status { .. }
            | ControlRequest::Metrics(..)
            | ControlRequest::Page(_) => {
                continue;
            }
        };
        sup.handle_input(now, input).ok();
        // Run the timers the input set, a few deadlines deep.
        for _ in 0..8 {
            while sup.poll_action().is_some() {}
            let Some(deadline) = sup.poll_timeout() else {
                break;
            };
            sup.handle_timeout(deadline.max(now) + Duration::from_millis(1));
        }
    }
}
