//! The front end's HTTP surface: the client WebSocket (`/ws`), Prometheus `/metrics`, and
//! `/healthz` (200 when the link to the chat server is up, 503 otherwise).

use std::sync::{Arc, OnceLock};

use axum::extract::{State, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use super::FrontEnd;

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process-wide Prometheus recorder (installed on first use; `None` if another
/// recorder was installed first).
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    PROMETHEUS
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .as_ref()
}

/// The front end's routes.
pub fn router(fe: Arc<FrontEnd>) -> Router {
    prometheus();
    Router::new()
        .route("/ws", get(upgrade))
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(health))
        .with_state(fe)
}

async fn upgrade(State(fe): State<Arc<FrontEnd>>, ws: WebSocketUpgrade) -> Response {
    let buf = fe.config.socket_buffer_bytes;
    ws.read_buffer_size(buf)
        .write_buffer_size(0)
        .max_write_buffer_size(fe.config.max_message_bytes.max(buf) * 4)
        .max_message_size(fe.config.max_message_bytes)
        .max_frame_size(fe.config.max_message_bytes)
        .on_upgrade(move |socket| super::ws::serve(fe, socket))
}

async fn metrics_text() -> Response {
    match prometheus() {
        Some(h) => h.render().into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder unavailable",
        )
            .into_response(),
    }
}

async fn health(State(fe): State<Arc<FrontEnd>>) -> Response {
    if fe.is_linked() {
        (
            StatusCode::OK,
            format!("ok sessions={}\n", fe.session_count()),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "no link to the chat server\n",
        )
            .into_response()
    }
}
