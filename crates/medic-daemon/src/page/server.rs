//! The status page's routes: `/` (the page, rendered by `page.rs`),
//! `/api/status` (its data as JSON), `/page.css` and `/page.js`. Each answer
//! asks the supervisor loop for a snapshot; the recovery log is read outside it.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderName};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::{mpsc, oneshot};

use super::PageData;
use crate::shell::ControlRequest;

/// The page and its data, answered by the supervisor loop through `requests`.
pub fn routes(requests: mpsc::Sender<ControlRequest>) -> Router {
    Router::new()
        .route("/", get(page_html))
        .route("/api/status", get(page_json))
        .route("/page.css", get(page_css))
        .route("/page.js", get(page_js))
        .with_state(requests)
}

/// How long the page waits for the supervisor loop; a loop that does not answer
/// makes the page's poll fail, so it shows its data as stale.
const PAGE_ANSWER: Duration = Duration::from_secs(2);

/// The page's data from the loop, with the incidents read from the recovery log.
async fn page_data(requests: &mpsc::Sender<ControlRequest>) -> Option<PageData> {
    let (reply, answer) = oneshot::channel();
    requests.send(ControlRequest::Page(reply)).await.ok()?;
    let snapshot = tokio::time::timeout(PAGE_ANSWER, answer).await.ok()?.ok()?;
    // Reading the recovery log's tail is blocking file IO.
    tokio::task::spawn_blocking(move || PageData::new(snapshot))
        .await
        .ok()
}

/// What every page answer carries: no caching, and nothing loaded from anywhere but here.
const PAGE_HEADERS: [(HeaderName, &str); 2] = [
    (CACHE_CONTROL, "no-store"),
    (
        CONTENT_SECURITY_POLICY,
        "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
];

async fn page_html(State(requests): State<mpsc::Sender<ControlRequest>>) -> Response {
    match page_data(&requests).await {
        Some(data) => (
            PAGE_HEADERS,
            [(CONTENT_TYPE, "text/html; charset=utf-8")],
            super::render(&data),
        )
            .into_response(),
        None => unavailable(),
    }
}

async fn page_json(State(requests): State<mpsc::Sender<ControlRequest>>) -> Response {
    match page_data(&requests).await {
        Some(data) => (PAGE_HEADERS, axum::Json(data)).into_response(),
        None => unavailable(),
    }
}

async fn page_css() -> impl IntoResponse {
    (
        PAGE_HEADERS,
        [(CONTENT_TYPE, "text/css; charset=utf-8")],
        super::CSS,
    )
}

async fn page_js() -> impl IntoResponse {
    (
        PAGE_HEADERS,
        [(CONTENT_TYPE, "text/javascript; charset=utf-8")],
        super::JS,
    )
}

fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        PAGE_HEADERS,
        "medic's supervisor loop did not answer: no current status\n",
    )
        .into_response()
}
