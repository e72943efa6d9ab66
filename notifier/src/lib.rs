//! The notifier: pushes each user's transfer and balance events from Redis
//! to their WebSockets. Stateless apart from open sockets: run as many
//! replicas as needed; each receives every event and delivers its users'.

pub mod config;
pub mod events;
mod hub;
mod state;
#[cfg(test)]
mod tests;
mod ws;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use shared::shutdown::Shutdown;
use tokio::net::TcpListener;

pub use config::Config;
use state::AppState;

/// Wait between attempts to reach Redis at start-up: the notifier is not
/// ready until it can read the replay buffers.
const REDIS_RETRY_DELAY: Duration = Duration::from_secs(1);

pub async fn run(config: Config, shutdown: Shutdown) -> anyhow::Result<()> {
    shared::metrics::install();
    let listener = TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("bind {}", config.addr))?;
    serve(listener, config, shutdown).await
}

pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let client = shared::tls::redis_client(&config.redis_url).context("REDIS_URL")?;
    let redis = loop {
        match redis::aio::ConnectionManager::new(client.clone()).await {
            Ok(c) => break c,
            Err(e) => {
                tracing::warn!(error = %e, "Redis unavailable; retrying");
                if shutdown.is_triggered() {
                    return Ok(());
                }
                tokio::time::sleep(REDIS_RETRY_DELAY).await;
            }
        }
    };
    let hub = Arc::new(hub::Hub::default());
    let subscriber = tokio::spawn(events::subscribe(
        config.redis_url.clone(),
        config.redis_prefix.clone(),
        hub.clone(),
        shutdown.clone(),
    ));
    let revocations =
        shared::revocation::Revocations::start(&config.redis_url, &config.redis_prefix);
    let state = Arc::new(AppState {
        config,
        hub,
        redis,
        shutdown: shutdown.clone(),
        revocations,
    });
    let connections = state.config.connections;
    let app = router(state);
    tracing::info!(addr = %listener.local_addr()?, "notifier listening");
    shared::listen::serve(listener, app, connections, shutdown).await;
    let _ = subscriber.await;
    tracing::info!("notifier stopped");
    Ok(())
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/ws", get(ws::upgrade))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(shared::metrics::handler))
        .with_state(state)
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(
            // The default span records the URI, which carries the token.
            |r: &axum::http::Request<_>| tracing::info_span!("request", method = %r.method(), path = r.uri().path()),
        ))
}

/// Ready when Redis answers, the revocation list is in sync with it and the
/// event subscription is live (sockets are refused until then).
async fn readyz(State(state): State<Arc<AppState>>) -> StatusCode {
    if !state.revocations.is_live() || !state.hub.is_subscribed() {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let mut redis = state.redis.clone();
    match redis::cmd("PING").query_async::<String>(&mut redis).await {
        Ok(_) => StatusCode::OK,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}
