//! One transfer, one trace, across the real gateway, processor and notifier
//! binaries (child processes) exporting OTLP/HTTP to a collector inside this
//! test — including a message the processor receives a second time. Also:
//! `/metrics` is Prometheus text whose counters move, and a service given an
//! OTLP protocol it does not know refuses to start.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use futures::StreamExt;
use serde_json::{Value, json};
use system_tests::procs::{Env, Services, binary, free_addr, get_json, wait_ready};
use system_tests::{ALICE_EUR, BOB_EUR};
use testkit::{TestDb, TestNats, TestRedis};

#[derive(Debug, Clone)]
struct SpanRec {
    service: String,
    trace: String,
    id: String,
    parent: String,
    name: String,
    attributes: HashMap<String, Value>,
}

type Spans = Arc<Mutex<Vec<SpanRec>>>;

fn attr_value(v: &Value) -> Value {
    v.as_object()
        .and_then(|o| o.values().next().cloned())
        .unwrap_or(Value::Null)
}

/// A minimal OTLP/HTTP (JSON) trace receiver.
async fn collector() -> (String, Spans) {
    let spans: Spans = Arc::default();
    let store = spans.clone();
    let app = Router::new().route(
        "/v1/traces",
        post(move |body: axum::body::Bytes| {
            let store = store.clone();
            async move {
                let Ok(v) = serde_json::from_slice::<Value>(&body) else {
                    return axum::http::StatusCode::BAD_REQUEST;
                };
                let mut out = store.lock().unwrap();
                for rs in v["resourceSpans"].as_array().into_iter().flatten() {
                    let service = rs["resource"]["attributes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|a| a["key"] == "service.name")
                        .map(|a| attr_value(&a["value"]).as_str().unwrap_or("").to_owned())
                        .unwrap_or_default();
                    for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                        for s in ss["spans"].as_array().into_iter().flatten() {
                            out.push(SpanRec {
                                service: service.clone(),
                                trace: s["traceId"].as_str().unwrap_or("").to_lowercase(),
                                id: s["spanId"].as_str().unwrap_or("").to_lowercase(),
                                parent: s["parentSpanId"].as_str().unwrap_or("").to_lowercase(),
                                name: s["name"].as_str().unwrap_or("").to_owned(),
                                attributes: s["attributes"]
                                    .as_array()
                                    .into_iter()
                                    .flatten()
                                    .map(|a| {
                                        (
                                            a["key"].as_str().unwrap_or("").to_owned(),
                                            attr_value(&a["value"]),
                                        )
                                    })
                                    .collect(),
                            });
                        }
                    }
                }
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), spans)
}

async fn login(http: &reqwest::Client, api: &str, user: &str) -> String {
    testkit::login(http, api, user, &testkit::dev_password(user))
        .await
        .expect("login")
        .access_token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_transfer_is_one_trace_across_every_service_even_when_redelivered() {
    let db = TestDb::new().await;
    admin::seed_demo(&db.pool).await.unwrap();
    let nats = TestNats::new().await;
    let redis = TestRedis::new();
    let (otlp, spans) = collector().await;
    let (gateway, notifier, processor) = (free_addr(), free_addr(), free_addr());
    let env = Env::for_test(&db, &nats, &redis, [gateway, notifier, processor])
        .with("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.clone())
        .with("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
        .with("OTEL_BSP_SCHEDULE_DELAY", "100");
    let http = reqwest::Client::new();
    let api = format!("http://{gateway}");
    let mut services = Services(vec![env.spawn("gateway"), env.spawn("notifier")]);
    wait_ready(&http, gateway).await;
    wait_ready(&http, notifier).await;

    // The consumer exists before the processor starts, with a 1 s ack wait,
    // so a message this test takes and does not ack comes back redelivered.
    let settings = shared::streams::ConsumerSettings {
        ack_wait: Duration::from_secs(1),
        max_deliver: 5,
        max_ack_pending: 1000,
    };
    let stream = nats
        .js
        .get_stream(&nats.topology.transfers_stream)
        .await
        .unwrap();
    let consumer: async_nats::jetstream::consumer::PullConsumer = stream
        .get_or_create_consumer("processor", settings.pull_config("processor"))
        .await
        .unwrap();

    let alice = login(&http, &api, "alice").await;
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{notifier}/v1/ws?access_token={alice}"))
            .await
            .unwrap();
    let posted: Value = http
        .post(format!("{api}/v1/transfers"))
        .bearer_auth(&alice)
        .header("Idempotency-Key", "traced-1")
        .json(&json!({"from_account": ALICE_EUR, "to_account": BOB_EUR, "amount": "5.00", "currency": "EUR"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = posted["id"].as_str().unwrap().to_owned();
    // First delivery: taken and dropped without an ack.
    let mut batch = consumer.fetch().max_messages(1).messages().await.unwrap();
    let first = batch.next().await.unwrap().unwrap();
    assert_eq!(first.info().unwrap().delivered, 1);
    drop(first);

    services.0.push(env.spawn("processor"));
    wait_ready(&http, processor).await;
    let committed = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(Ok(m)) = ws.next().await {
            if let tokio_tungstenite::tungstenite::Message::Text(t) = m {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "transfer.updated" && v["transfer"]["id"] == id.as_str() {
                    return v;
                }
            }
        }
        panic!("socket closed");
    })
    .await
    .expect("the commit is pushed");
    assert_eq!(committed["transfer"]["status"], "committed");

    // The operator's timeline names the trace.
    let ops = login(&http, &api, "ops").await;
    let timeline_url = format!("{api}/v1/ops/transfers/{id}/timeline");
    let timeline: Value = testkit::eventually(
        Duration::from_secs(10),
        "timeline with notified",
        || async {
            let t = get_json(&http, &timeline_url, &ops).await?;
            (t["stages"].as_array()?.len() == 5).then_some(t)
        },
    )
    .await;
    let stages: Vec<&str> = timeline["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        ["accepted", "published", "received", "committed", "notified"]
    );
    let trace = timeline["trace_id"].as_str().expect("trace id").to_owned();
    let stats: Value = http
        .get(format!("{api}/v1/ops/stats"))
        .bearer_auth(&ops)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(stats["transfers"].as_i64().unwrap() >= 1, "{stats}");
    assert_eq!(
        http.get(format!("{api}/v1/ops/stats"))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );

    let expected = [
        ("gateway", "POST /v1/transfers"),
        ("gateway", "bank.transfers.cmd publish"),
        ("processor", "bank.transfers.cmd process"),
        ("processor", "BEGIN apply_batch"),
        ("processor", "bank.transfers.results publish"),
        ("processor", "bank.transfers.results process"),
        ("notifier", "websocket push"),
    ];
    let trace_spans = testkit::eventually(Duration::from_secs(15), "every span exported", || {
        let spans = spans.clone();
        let trace = trace.clone();
        async move {
            let all: Vec<SpanRec> = spans
                .lock()
                .unwrap()
                .iter()
                .filter(|s| s.trace == trace)
                .cloned()
                .collect();
            expected
                .iter()
                .all(|(svc, name)| all.iter().any(|s| s.service == *svc && s.name == *name))
                .then_some(all)
        }
    })
    .await;
    // Parent links: one root (the HTTP request), every other span's parent
    // is in the same trace, and the chain runs gateway → processor → notifier.
    let ids: HashSet<&str> = trace_spans.iter().map(|s| s.id.as_str()).collect();
    let roots: Vec<&SpanRec> = trace_spans.iter().filter(|s| s.parent.is_empty()).collect();
    assert_eq!(roots.len(), 1, "{trace_spans:#?}");
    assert_eq!(roots[0].name, "POST /v1/transfers");
    for s in &trace_spans {
        assert!(
            s.parent.is_empty() || ids.contains(s.parent.as_str()),
            "orphan span {s:?}"
        );
    }
    let by_id: HashMap<&str, &SpanRec> = trace_spans.iter().map(|s| (s.id.as_str(), s)).collect();
    let parent_name = |name: &str| {
        let s = trace_spans.iter().find(|s| s.name == name).unwrap();
        by_id[s.parent.as_str()].name.clone()
    };
    assert_eq!(
        parent_name("bank.transfers.cmd publish"),
        "POST /v1/transfers"
    );
    assert_eq!(
        parent_name("bank.transfers.cmd process"),
        "bank.transfers.cmd publish"
    );
    assert_eq!(
        parent_name("BEGIN apply_batch"),
        "bank.transfers.cmd process"
    );
    assert_eq!(
        parent_name("bank.transfers.results publish"),
        "bank.transfers.cmd process"
    );
    assert_eq!(
        parent_name("bank.transfers.results process"),
        "bank.transfers.results publish"
    );
    assert_eq!(
        parent_name("websocket push"),
        "bank.transfers.results process"
    );
    let process = trace_spans
        .iter()
        .find(|s| s.name == "bank.transfers.cmd process")
        .unwrap();
    let delivered = process.attributes["messaging.nats.delivered"].clone();
    assert!(
        delivered == json!(2) || delivered == json!("2"),
        "redelivered: {delivered}"
    );

    // Metrics: Prometheus text, and the counters moved.
    let text = http
        .get(format!("http://{processor}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let committed_count = text
        .lines()
        .find(|l| {
            l.starts_with("processor_transfers_total{") && l.contains("outcome=\"committed\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .expect("processor_transfers_total committed");
    assert!(committed_count >= 1.0);
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "not Prometheus text: {line}");
    }
    let gateway_metrics = http
        .get(format!("{api}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        gateway_metrics.contains("http_server_requests_total{"),
        "{gateway_metrics}"
    );
    assert!(gateway_metrics.contains("gateway_publish_total{result=\"stored\"}"));
    drop(services);
}

/// A typo in the protocol must not silently send traces over the wrong
/// wire: every service stops at start (exit 2, as for invalid settings)
/// and names the variable and the value.
#[test]
fn an_unknown_otlp_protocol_stops_every_service_at_start() {
    for service in ["gateway", "processor", "notifier"] {
        let out = std::process::Command::new(binary(service))
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpcs")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{service}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("OTEL_EXPORTER_OTLP_PROTOCOL") && stderr.contains("grpcs"),
            "{service}: {stderr}"
        );
    }
}
