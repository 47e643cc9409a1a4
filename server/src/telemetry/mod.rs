//! The server's metrics: the process-wide Prometheus recorder, the `/metrics` handler,
//! and the catalog of every metric the server emits.
//!
//! # Layout
//! - [`catalog`]: every metric's name, kind, unit and help; emitting code names metrics
//!   by its constants.
//! - this file: installing the recorder (once per process) with every family the
//!   process's role emits described and at zero, and rendering it.
//!
//! Depends only on the protocol and compliance enums (for label values), so that every
//! other module may emit metrics.

pub mod catalog;

use std::sync::OnceLock;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process-wide Prometheus recorder (installed on first use; `None` if another
/// recorder was installed first).
pub fn recorder() -> Option<&'static PrometheusHandle> {
    PROMETHEUS
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .as_ref()
}

/// Install the recorder and describe every family a process running a chat server
/// (`chat`) and/or a front end (`front`) emits, each series at zero: a scrape before
/// any load shows every family with its `# HELP` and `# TYPE`.
pub fn install(chat: bool, front: bool) {
    recorder();
    catalog::register(chat, front);
}

/// `/metrics`: the process's Prometheus text.
pub async fn metrics_text() -> Response {
    match recorder() {
        Some(h) => h.render().into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder unavailable",
        )
            .into_response(),
    }
}
