//! Health, readiness, metrics and the web page's runtime configuration.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::json;

use crate::state::SharedState;

pub async fn healthz() -> &'static str {
    "ok"
}

#[derive(Serialize)]
pub struct Readiness {
    database: bool,
    nats: bool,
}

/// Ready when PostgreSQL answers and the NATS connection is up.
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

/// Public settings the web page needs at start (nothing secret).
pub async fn config(State(state): State<SharedState>) -> Json<serde_json::Value> {
    Json(json!({ "ws_url": state.public_ws_url }))
}
