//! medic's HTTP listeners besides the control API: `metrics_listen` serves
//! `/metrics` and, unless `status_listen` says otherwise, the status page;
//! `status_listen` serves the page alone, so a listener opened for Prometheus
//! need not show every incident's evidence.

use anyhow::Context;
use axum::Router;
use medic_core::config::{Settings, StatusListen};
use tokio::sync::mpsc;

use crate::shell::{ControlRequest, Shell};

/// Binds the configured listeners and serves them until shutdown.
pub fn serve(
    settings: &Settings,
    shell: &Shell,
    requests: mpsc::Sender<ControlRequest>,
) -> anyhow::Result<()> {
    let page = crate::page::routes(requests.clone());
    let metrics = crate::metrics::routes(requests);
    if let Some(listen) = &settings.metrics_listen {
        let app = match settings.status_listen {
            StatusListen::WithMetrics => metrics.merge(page.clone()),
            StatusListen::Own(_) | StatusListen::Off => metrics,
        };
        listen_on(listen, "metrics_listen", shell, app)?;
    }
    if let StatusListen::Own(listen) = &settings.status_listen {
        listen_on(listen, "status_listen", shell, page)?;
    }
    Ok(())
}

/// Serves `app` on `listen` (the config key `key` names it in errors).
fn listen_on(listen: &str, key: &str, shell: &Shell, app: Router) -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind(listen)
        .with_context(|| format!("cannot listen on {listen} ({key})"))?;
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let cancel = shell.cancel.clone();
    let key = key.to_owned();
    shell.tracker.spawn(async move {
        let server = axum::serve(listener, app)
            .with_graceful_shutdown(async move { cancel.cancelled().await });
        if let Err(error) = server.await {
            tracing::error!(%error, listener = %key, "HTTP listener stopped");
        }
    });
    Ok(())
}
