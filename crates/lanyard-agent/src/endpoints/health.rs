//! The agent's health endpoint: `/healthz` (the process is up), `/readyz` (it holds a
//! valid agent SVID and has received its entries) and `/status` (JSON details).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use lanyard_net::{ConnectionLimiter, ListenerLimits};
use tokio::net::TcpListener;

use crate::manager::{Health, Manager};

/// Serves the health routes on `listener` with `limits` until the task is dropped.
pub async fn serve(manager: Arc<Manager>, listener: TcpListener, limits: ListenerLimits) {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/status", get(status))
        .with_state(manager);
    let limiter = ConnectionLimiter::for_listener("health endpoint", &limits);
    lanyard_net::serve_http(listener, limiter, limits, None, app, std::future::pending()).await;
}

/// Whether the agent can serve workloads: a valid agent SVID, entries received, not banned.
pub fn is_ready(health: &Health, now: u64) -> bool {
    health.synced && !health.banned && health.agent_svid_expires_at > now
}

async fn ready(State(manager): State<Arc<Manager>>) -> (StatusCode, &'static str) {
    if is_ready(&manager.health(), manager.now().as_secs()) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

async fn status(State(manager): State<Arc<Manager>>) -> Json<Health> {
    Json(manager.health())
}
