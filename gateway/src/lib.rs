//! The gateway: authenticates, validates, publishes transfers to JetStream
//! (202 only after JetStream's ack) and serves reads from the ledger.
//!
//! Layout: `routes/*` are thin handlers (extract → call → map) and import
//! neither each other nor `openapi`; the work is in named modules:
//! `submit_transfer` and `submit_batch` (money in), `check_accounts`,
//! `batch_input` (uploads, read with `shared::batch_line`), `batch_report`,
//! `timeline`, `login` and `tokens`, `page` (pagination). `publish` talks
//! to JetStream; `error` maps every failure to RFC 9457 in one place and
//! `responses` holds the shared responses; `guard` and `rate_limit` meter
//! requests, `backlog` sheds new work while the queue is too long; `http`
//! holds the cross-cutting layers (security headers, CORS, body limits,
//! metrics).

mod account_access;
mod accounts_cache;
mod audit;
mod backlog;
mod backlog_pace;
mod batch_input;
mod batch_report;
mod check_accounts;
pub mod config;
pub mod error;
mod extract;
mod guard;
mod http;
mod lockout;
mod login;
mod lookup;
pub mod openapi;
mod page;
mod password;
mod publish;
pub mod quotas;
mod rate_limit;
mod redis_link;
mod responses;
pub mod routes;
mod shed_early;
mod state;
mod statement_body;
mod submit_batch;
mod submit_hold;
mod submit_reversal;
mod submit_transfer;
mod timeline;
mod tokens;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream;
use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter, on};
use shared::backoff::Backoff;
use shared::shutdown::Shutdown;
use shed_early::Early;
use tokio::net::TcpListener;

pub use config::Config;
pub use state::{AppState, SharedState};

/// Concurrent argon2id checks: each holds 12 MiB, so this bounds the
/// gateway's memory under a login storm (logins then queue, ~30 ms each).
const LOGIN_CONCURRENCY: usize = 2;
/// Statements streamed at once: each holds a pooled database connection
/// for as long as its client takes to read it, so a few slow downloads
/// must not take the pool from every other request (more get a 429).
const STATEMENTS_CONCURRENT_MAX: usize = 4;
/// Longest a shutdown waits for queued audit records to be written.
const AUDIT_FLUSH_WAIT: Duration = Duration::from_secs(10);
/// First wait before asking JetStream again for the streams: it is usually
/// just starting next to the gateway and answers within a second.
const STREAMS_RETRY_DELAY_MIN: Duration = Duration::from_millis(200);
/// Longest wait between those attempts, so a gateway notices a recovered
/// JetStream within seconds.
const STREAMS_RETRY_DELAY_MAX: Duration = Duration::from_secs(5);
/// How long start-up waits for the revocation list before serving anyway
/// (money-moving requests get `503` until it is in sync).
const REVOCATIONS_WAIT: Duration = Duration::from_secs(3);

/// Connects to PostgreSQL and NATS (retrying until they answer) and builds
/// the shared state.
pub async fn connect(config: &Config) -> anyhow::Result<SharedState> {
    let pool =
        ledger::pool(&config.database_url, config.database_connections).context("DATABASE_URL")?;
    ledger::report_pool_metrics(pool.clone());
    let nats =
        shared::tls::nats_connect("gateway", &config.nats_url, &config.nats_inbox_prefix).await?;
    let js = jetstream::context::ContextBuilder::new()
        .timeout(config.publish_timeout)
        .max_ack_inflight(config.publish_inflight_max)
        .backpressure_on_inflight(true)
        .build(nats.clone());
    // Creating the streams here too lets any service start first.
    let mut backoff = Backoff::new(STREAMS_RETRY_DELAY_MIN, STREAMS_RETRY_DELAY_MAX);
    while let Err(e) = config.topology.ensure_streams(&js).await {
        tracing::warn!(error = %e, "JetStream not ready; retrying");
        backoff.wait().await;
    }
    let (auditor, audit_writer) = audit::Auditor::start(pool.clone(), config.audit_queue_max);
    let revocations =
        shared::revocation::Revocations::start(&config.redis_url, &config.redis_prefix);
    if !revocations.wait_live(REVOCATIONS_WAIT).await {
        tracing::warn!("revocation list not in sync with Redis: money-moving requests get 503");
    }
    let state = Arc::new(AppState {
        pool: pool.clone(),
        nats,
        js,
        topology: config.topology.clone(),
        keys: config.keys.clone(),
        accounts: Default::default(),
        lookups: lookup::Lookups::start(pool.clone()),
        public_ws_url: config.public_ws_url.clone(),
        publish_timeout: config.publish_timeout,
        login_permits: tokio::sync::Semaphore::new(LOGIN_CONCURRENCY),
        redis: shared::tls::redis_client(&config.redis_url).ok(),
        redis_prefix: config.redis_prefix.clone(),
        batch_slots: Default::default(),
        redis_link: Arc::new(redis_link::link(&config.redis_url, config.redis_timeout)),
        rate_limiter: rate_limit::RateLimiter::new(
            config.rate_limits.clone(),
            config.quotas.clone(),
            &config.redis_prefix,
        ),
        login_guard: lockout::LoginGuard::new(config.login_lockout.clone(), &config.redis_prefix),
        trusted_proxy_hops: config.trusted_proxy_hops,
        audit: auditor,
        audit_writer: std::sync::Mutex::new(Some(audit_writer)),
        revocations,
        refresh_ttl: config.refresh_ttl,
        publish_slots: tokio::sync::Semaphore::new(config.publish_inflight_max),
        backlog: backlog::Backlog::new(config.backlog_budget),
        statement_slots: Arc::new(tokio::sync::Semaphore::new(STATEMENTS_CONCURRENT_MAX)),
    });
    // Warm the account cache in the background; requests do not wait for it.
    let warming = state.clone();
    tokio::spawn(async move {
        match warming.accounts.warm(&warming.pool).await {
            Ok(n) => tracing::info!(accounts = n, "account cache warmed"),
            Err(e) => tracing::warn!(error = %e, "account cache not warmed"),
        }
    });
    Ok(state)
}

/// One operation of the API.
struct ApiRoute {
    method: Method,
    path: &'static str,
    handler: MethodRouter<SharedState>,
    /// For routes that queue work: refused before any work while the
    /// backlog is over budget (`shed_early`).
    early: Option<Early>,
}

impl ApiRoute {
    fn shed_early(mut self, early: Early) -> Self {
        self.early = Some(early);
        self
    }
}

/// `handler` for `method` on `path`.
fn route<H, T>(method: Method, filter: MethodFilter, path: &'static str, handler: H) -> ApiRoute
where
    H: Handler<T, SharedState>,
    T: 'static,
{
    ApiRoute {
        method,
        path,
        handler: on(filter, handler),
        early: None,
    }
}

/// `GET path` (a read).
fn get<H, T>(path: &'static str, handler: H) -> ApiRoute
where
    H: Handler<T, SharedState>,
    T: 'static,
{
    route(Method::GET, MethodFilter::GET, path, handler)
}

/// `POST path` (every write of this API is a POST).
fn post<H, T>(path: &'static str, handler: H) -> ApiRoute
where
    H: Handler<T, SharedState>,
    T: 'static,
{
    route(Method::POST, MethodFilter::POST, path, handler)
}

/// Every operation of the API. The router is built from this table, and the
/// OpenAPI document is tested against it, so neither can drift.
fn api_routes() -> Vec<ApiRoute> {
    use routes::{accounts, auth, batches, holds, ops, reversals, statements, system, transfers};
    use shed_early::Early::{Backlog, BacklogOrBusy};
    let mut upload = post("/v1/batches", batches::submit).shed_early(Backlog);
    // Uploads stream up to 32 MiB; every other body is bounded by the
    // global limit (see `http::layers`).
    upload.handler = upload
        .handler
        .layer(axum::extract::DefaultBodyLimit::max(batch_input::BODY_MAX));
    vec![
        post("/v1/auth/login", auth::login),
        post("/v1/auth/refresh", auth::refresh),
        post("/v1/auth/logout", auth::logout),
        post("/v1/auth/password", auth::change_password),
        get("/v1/me", auth::me),
        get("/v1/config", system::config),
        get("/v1/accounts", accounts::list),
        get("/v1/accounts/{id}", accounts::get),
        get("/v1/accounts/{id}/entries", accounts::entries),
        get("/v1/accounts/{id}/balance", statements::balance),
        get("/v1/accounts/{id}/statement", statements::statement),
        post("/v1/transfers", transfers::create).shed_early(BacklogOrBusy),
        get("/v1/transfers", transfers::list),
        get("/v1/transfers/{id}", transfers::get),
        post("/v1/transfers/{id}/reversals", reversals::create).shed_early(BacklogOrBusy),
        post("/v1/holds", holds::create).shed_early(BacklogOrBusy),
        get("/v1/holds", holds::list),
        get("/v1/holds/{id}", holds::get),
        post("/v1/holds/{id}/capture", holds::capture).shed_early(BacklogOrBusy),
        post("/v1/holds/{id}/void", holds::void).shed_early(BacklogOrBusy),
        upload,
        get("/v1/batches/{id}", batches::get),
        get("/v1/batches/{id}/payments", batches::payments),
        get("/v1/ops/transfers/{id}/timeline", ops::timeline),
        get("/v1/ops/stats", ops::stats),
        get("/v1/ops/transfers", ops::recent),
        get("/v1/ops/audit", ops::audit),
        get("/healthz", system::healthz),
        get("/readyz", system::readyz),
        get("/metrics", system::metrics),
        get("/openapi.json", openapi::openapi_json),
    ]
}

/// (method, path template) of every operation the router serves.
pub fn operations() -> Vec<(Method, &'static str)> {
    api_routes()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect()
}

/// Every route, with the layers of [`http`].
pub fn router(state: SharedState, config: &Config) -> Router {
    let mut api = Router::new();
    let mut sheddable = Vec::new();
    for r in api_routes() {
        if let Some(early) = r.early {
            sheddable.push((r.method.clone(), r.path, early));
        }
        // Routes on one path with different methods merge.
        api = api.route(r.path, r.handler);
    }
    let api = api
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::middleware,
        ))
        // Outside the guard: a refusal under overload costs no token check.
        .layer(axum::middleware::from_fn_with_state(
            shed_early::Routes::new(state.clone(), sheddable),
            shed_early::layer,
        ))
        .with_state(state);
    http::layers(api, config)
}

/// Serves until `shutdown`, then drains in-flight requests.
pub async fn run(config: Config, shutdown: Shutdown) -> anyhow::Result<()> {
    shared::metrics::install();
    let listener = TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("bind {}", config.addr))?;
    serve(listener, config, shutdown).await
}

/// Like [`run`] on an already bound listener (tests bind port 0).
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let state = connect(&config).await?;
    backlog::watch(state.clone(), shutdown.clone());
    let app = router(state.clone(), &config);
    tracing::info!(addr = %listener.local_addr()?, "gateway listening");
    shared::listen::serve(listener, app, config.connections, shutdown).await;
    // Every request has finished: flush the audit records they queued.
    let writer = state
        .audit_writer
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(writer) = writer {
        writer.finish(AUDIT_FLUSH_WAIT).await;
    }
    tracing::info!("gateway stopped");
    Ok(())
}
