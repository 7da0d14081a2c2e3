//! A tiny HTTP server the end-to-end tests start, kill and have medic restart:
//! `testsrv ADDR PIDFILE` serves `GET /health` → `ok` until killed.

use axum::Router;
use axum::routing::get;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(pid_file)) = (args.next(), args.next()) else {
        eprintln!("usage: testsrv ADDR PIDFILE");
        std::process::exit(2);
    };
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    std::fs::write(&pid_file, std::process::id().to_string())?;
    let app = Router::new().route("/health", get(|| async { "ok" }));
    axum::serve(listener, app).await
}
