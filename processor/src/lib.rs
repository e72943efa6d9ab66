//! The processor: applies transfers from JetStream to the PostgreSQL ledger
//! in batches, and relays results to Redis (see `relay`). Health and
//! metrics are served on `PROCESSOR_ADDR`.
//!
//! A transfer's way through: `pull` (the pull loop and batching) →
//! `applier` (the workers' groups merged into a few transactions at a
//! time) → `apply` (decode, one ledger transaction per group) → `results` (result
//! messages, who is notified, put into Redis by `relay::Direct`, or stored
//! on the results stream when Redis does not take them) → `disposition`
//! (the one place messages are acked); `relay` also moves what was stored
//! on the results stream into Redis for the notifiers. Beside them: `atomic` (all-or-nothing
//! batches), `dead_letter` (giving up on a message), `progress` (throttled
//! batch progress), `watchdog` (a consumer that lost its messages),
//! `expiry` (holds past their time become expiry commands).

mod applier;
mod apply;
mod atomic;
pub mod config;
mod ctx;
mod dead_letter;
mod disposition;
mod expiry;
mod progress;
mod pull;
mod relay;
mod results;
mod watchdog;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer::PullConsumer};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use shared::backoff::Backoff;
use shared::shutdown::Shutdown;
use sqlx::PgPool;
use tokio::net::TcpListener;

pub use config::Config;

/// First wait before retrying a start-up step (streams, consumers).
const STARTUP_BACKOFF_START: Duration = Duration::from_millis(200);
/// Longest wait between start-up attempts.
const STARTUP_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How often the consumer lag gauges are refreshed.
const LAG_INTERVAL: Duration = Duration::from_secs(5);

/// Retries `f` with capped backoff until it succeeds or shutdown.
async fn retry<T, E: std::fmt::Display, F, Fut>(
    what: &str,
    shutdown: &Shutdown,
    mut f: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut backoff = Backoff::new(STARTUP_BACKOFF_START, STARTUP_BACKOFF_MAX);
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) => tracing::warn!(error = %e, "{what} failed; retrying"),
        }
        if shutdown.is_triggered() {
            anyhow::bail!("shutdown while waiting for {what}");
        }
        backoff.wait().await;
    }
}

async fn consumer(
    js: &jetstream::Context,
    stream: &str,
    config: jetstream::consumer::pull::Config,
    shutdown: &Shutdown,
) -> anyhow::Result<PullConsumer> {
    let name = config.durable_name.clone().unwrap_or_default();
    retry("create consumer", shutdown, || async {
        let stream = js.get_stream(stream).await?;
        stream
            .get_or_create_consumer::<jetstream::consumer::pull::Config>(&name, config.clone())
            .await
            .map_err(async_nats::Error::from)
    })
    .await
}

pub async fn run(config: Config, shutdown: Shutdown) -> anyhow::Result<()> {
    shared::metrics::install();
    let listener = TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("bind {}", config.addr))?;
    serve(listener, config, shutdown).await
}

struct Health {
    pool: PgPool,
    nats: async_nats::Client,
}

pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    // A connection per worker (atomic batches), per transfer transaction,
    // and two for the expiry poller and health checks.
    let connections = config.workers + config.apply_concurrency + 2;
    let pool = ledger::pool(&config.database_url, connections as u32).context("DATABASE_URL")?;
    ledger::report_pool_metrics(pool.clone());
    let nats =
        shared::tls::nats_connect("processor", &config.nats_url, &config.nats_inbox_prefix).await?;
    let js = jetstream::new(nats.clone());
    let topology = config.topology.clone();
    retry("create streams", &shutdown, || topology.ensure_streams(&js)).await?;
    let transfers = consumer(
        &js,
        &topology.transfers_stream,
        config.consumer.pull_config(&topology.processor_consumer),
        &shutdown,
    )
    .await?;
    let results = consumer(
        &js,
        &topology.results_stream,
        config.consumer.pull_config(&topology.relay_consumer),
        &shutdown,
    )
    .await?;

    let health = Arc::new(Health {
        pool: pool.clone(),
        nats: nats.clone(),
    });
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(shared::metrics::handler))
        .with_state(health);
    let mut stop = shutdown.clone();
    let http = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.wait().await })
            .await
    });

    let ctx = Arc::new(ctx::Ctx {
        pool,
        js,
        direct: config.relay_direct.then(|| {
            relay::Direct::new(
                &config.redis_url,
                config.relay_timeout,
                &config.redis_prefix,
                config.replay_buffer,
            )
        }),
        config: config.clone(),
        progress_due: Default::default(),
        results_turn: Default::default(),
    });
    let mut tasks = tokio::task::JoinSet::new();
    let (applier, applier_task) = applier::Applier::start(
        applier::Limits {
            concurrency: config.apply_concurrency,
            batch_max: config.batch_max,
            queue: config.workers,
            keep_alive: config.consumer.ack_wait / 3,
        },
        apply::applier_fn(ctx.clone(), shutdown.clone()),
        apply::touch_fn(),
        shutdown.clone(),
    );
    for _ in 0..config.workers {
        tasks.spawn(pull::run(
            ctx.clone(),
            applier.clone(),
            transfers.clone(),
            shutdown.clone(),
        ));
    }
    drop(applier);
    // Both work queues can meet nats-server 2.9.10's sequence reset: a
    // stuck results consumer loses notifications as surely as a stuck
    // transfers consumer loses transfers.
    for (stream, consumer) in [
        (&topology.transfers_stream, &topology.processor_consumer),
        (&topology.results_stream, &topology.relay_consumer),
    ] {
        tasks.spawn(watchdog::run(
            ctx.js.clone(),
            stream.clone(),
            config.consumer.pull_config(consumer),
            shutdown.clone(),
        ));
    }
    tasks.spawn(relay::run(
        results,
        config.redis_url.clone(),
        config.redis_prefix.clone(),
        config.replay_buffer,
        shutdown.clone(),
    ));
    tasks.spawn(watch_lag(transfers, shutdown.clone()));
    tasks.spawn(expiry::run(ctx.clone(), shutdown.clone()));
    tracing::info!(
        workers = config.workers,
        apply_concurrency = config.apply_concurrency,
        batch_max = config.batch_max,
        "processor running"
    );
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r {
            tracing::error!(error = %e, "a processor task failed");
        }
    }
    let _ = applier_task.await;
    // Acks are buffered in the client: send them before leaving.
    let _ = nats.flush().await;
    let _ = http.await;
    tracing::info!("processor stopped");
    Ok(())
}

async fn readyz(State(h): State<Arc<Health>>) -> StatusCode {
    let nats = h.nats.connection_state() == async_nats::connection::State::Connected;
    if nats && ledger::ping(&h.pool).await {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// Consumer lag as gauges, for dashboards and autoscaling.
async fn watch_lag(mut consumer: PullConsumer, mut shutdown: Shutdown) {
    loop {
        if let Ok(info) = consumer.info().await {
            metrics::gauge!("processor_consumer_pending").set(info.num_pending as f64);
            metrics::gauge!("processor_consumer_ack_pending").set(info.num_ack_pending as f64);
            metrics::gauge!("processor_consumer_redelivered").set(info.num_redelivered as f64);
        }
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(LAG_INTERVAL) => {},
        }
    }
}
