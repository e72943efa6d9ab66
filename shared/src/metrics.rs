//! Prometheus metrics: one process-wide recorder, rendered at `/metrics`.
//!
//! Services record with the `metrics` macros (`counter!`, `histogram!`,
//! `gauge!`); the exporter only renders text, it runs no server of its own.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Latency buckets in seconds, from 100 µs to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
const SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0];

/// How often recorded histogram samples are folded into their buckets.
const UPKEEP_EVERY: Duration = Duration::from_secs(1);

/// Installs the recorder once per process (tests start several services in
/// one process: they share it).
pub fn install() {
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_size".into()), SIZE_BUCKETS))
            .ok()
            .and_then(|b| b.install_recorder().ok())?;
        // The exporter keeps every histogram sample until the next render or
        // upkeep: without a scrape that is unbounded memory (~1 MiB every
        // few seconds at full load). Fold them in on a timer instead.
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "metrics upkeep thread not started");
        }
        Some(handle)
    });
}

/// The content type of [`render`]'s text (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The Prometheus text exposition of every metric recorded so far.
pub fn render() -> String {
    match HANDLE.get() {
        Some(Some(handle)) => handle.render(),
        _ => String::new(),
    }
}

#[cfg(feature = "http")]
pub async fn handler() -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)], render())
}
