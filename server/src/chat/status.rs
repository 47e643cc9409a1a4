//! The HTTP surface of a chat server running on its own (`--role chat`): Prometheus
//! `/metrics` and `/healthz` (sessions and front-end links held now).

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::Router;

use super::Hub;

/// The chat server's routes.
pub fn router(hub: Arc<Hub>) -> Router {
    crate::telemetry::recorder();
    Router::new()
        .route("/metrics", get(crate::telemetry::metrics_text))
        .route("/healthz", get(health))
        .with_state(hub)
}

async fn health(State(hub): State<Arc<Hub>>) -> String {
    format!(
        "ok role=chat sessions={} links={}\n",
        hub.session_count(),
        hub.link_count()
    )
}
