//! The front end's HTTP surface: the client WebSocket (`/ws`), Prometheus `/metrics`, and
//! `/healthz` (200 when the link to the chat server is up, 503 otherwise).

use std::sync::Arc;

use axum::extract::{State, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::FrontEnd;
use crate::telemetry::catalog;

/// The front end's routes.
pub fn router(fe: Arc<FrontEnd>) -> Router {
    crate::telemetry::recorder();
    Router::new()
        .route("/ws", get(upgrade))
        .route("/metrics", get(crate::telemetry::metrics_text))
        .route("/healthz", get(health))
        .merge(super::files::routes(&fe))
        .merge(super::rooms_api::routes())
        .with_state(fe)
}

/// Counts one client connection while it lives (released on drop, also when the upgrade
/// never completes).
struct Admitted(Arc<FrontEnd>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.release();
    }
}

async fn upgrade(State(fe): State<Arc<FrontEnd>>, ws: WebSocketUpgrade) -> Response {
    if !fe.admit() {
        metrics::counter!(catalog::BUSY.name).increment(1);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(axum::http::header::RETRY_AFTER, "5")],
            "server too busy\n",
        )
            .into_response();
    }
    let admitted = Admitted(fe.clone());
    let buf = fe.config.socket_buffer_bytes;
    ws.read_buffer_size(buf)
        .write_buffer_size(0)
        .max_write_buffer_size(fe.config.max_message_bytes.max(buf) * 4)
        .max_message_size(fe.config.max_message_bytes)
        .max_frame_size(fe.config.max_message_bytes)
        .on_upgrade(move |socket| async move {
            super::ws::serve(admitted.0.clone(), socket).await;
            drop(admitted);
        })
}

async fn health(State(fe): State<Arc<FrontEnd>>) -> Response {
    let (up, of) = fe.links_up();
    if up > 0 {
        (
            StatusCode::OK,
            format!(
                "ok role=frontend sessions={} links={up}/{of}\n",
                fe.session_count()
            ),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("no link to a chat server (0/{of})\n"),
        )
            .into_response()
    }
}
