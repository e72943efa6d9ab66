//! Health, readiness, metrics and the web page's runtime configuration
//! (the OpenAPI document is served by `openapi.rs`, which it describes).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::SharedState;

#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "system",
    responses((status = 200, description = "The process is alive", body = String, content_type = "text/plain", example = "ok"))
)]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Which dependencies answer.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    database: bool,
    nats: bool,
}

/// Ready when PostgreSQL answers and the NATS connection is up.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "system",
    responses(
        (status = 200, description = "Ready: every dependency answers", body = Readiness),
        (status = 503, description = "Not ready (which dependency is named), or the request timed out",
            content((Readiness = "application/json"), (shared::problem::Problem = "application/problem+json")),
            headers(("Retry-After" = u64, description = "On a timeout: seconds to wait before retrying"))),
    )
)]
pub async fn readyz(State(state): State<SharedState>) -> (StatusCode, Json<Readiness>) {
    let database = ledger::ping(&state.pool).await;
    let nats = state.nats.connection_state() == async_nats::connection::State::Connected;
    let status = if database && nats {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(Readiness { database, nats }))
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "system",
    responses((status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain"))
)]
pub async fn metrics() -> Response {
    shared::metrics::handler().await.into_response()
}

/// What the web page needs at start (nothing secret).
#[derive(Serialize, ToSchema)]
pub struct PublicConfig {
    /// The notifier's WebSocket URL; empty when it is the page's own origin's `/v1/ws`.
    #[schema(example = "ws://127.0.0.1:8081/v1/ws")]
    ws_url: String,
    /// Most payments of an all-or-nothing (atomic) batch, so the page
    /// checks a file by the gateway's own limit.
    #[schema(example = 1000)]
    atomic_max: usize,
}

/// Public settings the web page needs at start (nothing secret).
#[utoipa::path(
    get,
    path = "/v1/config",
    operation_id = "getConfig",
    tag = "system",
    responses((status = 200, description = "Public settings", body = PublicConfig))
)]
pub async fn config(State(state): State<SharedState>) -> Json<PublicConfig> {
    Json(PublicConfig {
        ws_url: state.public_ws_url.clone(),
        atomic_max: shared::batch_line::ATOMIC_MAX,
    })
}
