//! The measurement window's outside view: CPU seconds per component and
//! the services' own metrics, read before and after the window.

use std::collections::BTreeMap;

use crate::procfs;
use crate::prom::{self, Scrape, StageStats};
use crate::services::Service;

/// CPU seconds per component, now.
pub fn cpu_now(services: &[Service]) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for s in services {
        m.insert(s.name.to_owned(), procfs::cpu_seconds(s.pid).unwrap_or(0.0));
    }
    m.insert("postgres".into(), procfs::cpu_by_comm("postgres"));
    m.insert("nats-server".into(), procfs::cpu_by_comm("nats-server"));
    m.insert("redis-server".into(), procfs::cpu_by_comm("redis-server"));
    m.insert("bench (load generator)".into(), procfs::self_cpu_seconds());
    m
}

pub async fn scrape_all(
    http: &reqwest::Client,
    services: &[Service],
) -> BTreeMap<&'static str, Scrape> {
    let mut out = BTreeMap::new();
    for s in services {
        let text = match http.get(format!("http://{}/metrics", s.addr)).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        out.insert(s.name, prom::parse(&text));
    }
    out
}

/// The stage with the gateway's own latency of its 5xx answers (the
/// overload target shows it beside the client's).
pub const SHED_STAGE: &str = "gateway: POST /v1/transfers answered 5xx (ms)";

/// Per-stage figures from the services' own histograms over the window.
pub fn stages(
    before: &BTreeMap<&str, Scrape>,
    after: &BTreeMap<&str, Scrape>,
) -> BTreeMap<String, StageStats> {
    let mut out = BTreeMap::new();
    let wanted: [(&str, &str, &str, &[&str], f64); 9] = [
        (
            "gateway: POST /v1/transfers handler (ms)",
            "gateway",
            "http_server_request_duration_seconds",
            &["/v1/transfers\"", "POST"],
            1000.0,
        ),
        (
            SHED_STAGE,
            "gateway",
            "http_server_request_duration_seconds",
            &["/v1/transfers\"", "POST", "status_class=\"5xx\""],
            1000.0,
        ),
        (
            "gateway: JetStream publish ack (ms)",
            "gateway",
            "gateway_publish_ack_seconds",
            &[],
            1000.0,
        ),
        (
            "processor: batch size (transfers)",
            "processor",
            "processor_batch_size",
            &[],
            1.0,
        ),
        (
            "processor: transfers per transaction",
            "processor",
            "processor_apply_batch_size",
            &[],
            1.0,
        ),
        (
            "processor: apply_batch (ms)",
            "processor",
            "processor_apply_seconds",
            &[],
            1000.0,
        ),
        (
            "processor: results handed over after commit (ms)",
            "processor",
            "processor_results_seconds",
            &[],
            1000.0,
        ),
        (
            "processor: whole batch incl. results+acks (ms)",
            "processor",
            "processor_batch_seconds",
            &[],
            1000.0,
        ),
        (
            "notifier: (no latency histogram)",
            "notifier",
            "notifier_none",
            &[],
            1.0,
        ),
    ];
    for (label, svc, name, with, scale) in wanted {
        if let (Some(b), Some(a)) = (before.get(svc), after.get(svc))
            && let Some(d) = prom::delta(b, a, name, with)
        {
            out.insert(label.to_owned(), d.stats(scale));
        }
    }
    out
}
