//! Cross-cutting HTTP layers: security headers, CORS, body and time limits,
//! per-route metrics, the web page, and problem+json for unknown API paths.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use shared::problem::Problem;
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::config::Config;

/// The page may talk to itself and to the notifier's WebSocket only.
fn content_security_policy(ws_url: &str) -> String {
    let ws_origin = ws_url.split('/').take(3).collect::<Vec<_>>().join("/");
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self' {ws_origin}; frame-ancestors 'none'; base-uri 'none'; \
         form-action 'self'; object-src 'none'"
    )
}

fn static_header(name: &'static str, value: &str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(
        HeaderName::from_static(name),
        HeaderValue::from_str(value).unwrap_or(HeaderValue::from_static("")),
    )
}

pub fn layers(api: Router, config: &Config) -> Router {
    let mut app = api.fallback(not_found);
    if let Some(dir) = config
        .web_dir
        .as_ref()
        .filter(|d| d.join("index.html").is_file())
    {
        // The single-page app: unknown non-API paths get index.html.
        let pages = ServeDir::new(dir).fallback(ServeFile::new(dir.join("index.html")));
        app = app.fallback_service(tower::ServiceExt::map_request(pages, |r: Request| r));
        app = app.route("/v1/{*rest}", axum::routing::any(not_found));
    }
    let cors = if config.cors_origins.is_empty() {
        CorsLayer::new()
    } else {
        let origins: Vec<HeaderValue> = config
            .cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("idempotency-key"),
            ])
            .expose_headers([
                header::LOCATION,
                header::RETRY_AFTER,
                HeaderName::from_static("idempotent-replayed"),
                HeaderName::from_static("x-request-id"),
                header::CONTENT_DISPOSITION,
                HeaderName::from_static(shared::statement::HEADER_OPENING),
                HeaderName::from_static(shared::statement::HEADER_CLOSING),
                HeaderName::from_static(shared::statement::HEADER_DEBITS),
                HeaderName::from_static(shared::statement::HEADER_CREDITS),
            ])
    };
    // One `Router::layer` call with the whole stack, outermost first: each
    // `layer` call boxes every route's service once more, and a request
    // clones every box on its way in (≈ 100 allocations per request with
    // one call per layer, measured with heaptrack).
    let stack = ServiceBuilder::new()
        // Never log bearer tokens or cookies.
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(record_status)
                // No second ERROR line per 5xx: `ApiError` logs its own
                // failures (and not the shed answers an overload brings by
                // the thousand), `time_limit` its timeouts.
                .on_failure(()),
        )
        .layer(static_header("referrer-policy", "no-referrer"))
        .layer(static_header("x-frame-options", "DENY"))
        .layer(static_header("x-content-type-options", "nosniff"))
        .layer(static_header(
            "strict-transport-security",
            "max-age=63072000; includeSubDomains",
        ))
        .layer(static_header(
            "content-security-policy",
            &content_security_policy(&config.public_ws_url),
        ))
        .layer(cors)
        .layer(middleware::from_fn_with_state(
            config.request_timeout,
            time_limit,
        ))
        // Bodies read by extractors are bounded here; the batch route raises
        // its own bound and counts streamed bytes itself.
        .layer(axum::extract::DefaultBodyLimit::max(
            config.body_limit_bytes,
        ))
        .layer(middleware::from_fn(record_metrics));
    app.layer(stack)
}

/// A batch upload streams up to 100,000 lines and waits for every publish
/// ack: minutes, not the seconds any other request gets.
pub const BATCH_UPLOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Every request gets `limit` (`REQUEST_TIMEOUT_MS`), except batch uploads
/// (`BATCH_UPLOAD_TIMEOUT`); past it the client gets a 503 problem and may
/// resend with the same Idempotency-Key.
async fn time_limit(
    axum::extract::State(limit): axum::extract::State<std::time::Duration>,
    request: Request,
    next: Next,
) -> Response {
    let limit = if request.method() == Method::POST && request.uri().path() == "/v1/batches" {
        BATCH_UPLOAD_TIMEOUT.max(limit)
    } else {
        limit
    };
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(limit_ms = limit.as_millis() as u64, "request timed out");
            timed_out(limit)
        }
    }
}

fn timed_out(limit: std::time::Duration) -> Response {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "timeout",
        "Request timed out",
        format!(
            "no answer within {} ms; retry with the same Idempotency-Key",
            limit.as_millis()
        ),
    )
    .retry_after(1)
    .into_response()
}

async fn not_found() -> Response {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "Not found",
        "no such endpoint; see README for the API",
    )
    .into_response()
}

/// Request count and latency by route template (never by raw path: ids
/// would explode the label space).
async fn record_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().as_str().to_owned();
    let mut response = next.run(request).await;
    let code = response.status().as_u16();
    metrics::counter!("http_server_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => code.to_string()).increment(1);
    // By status class too: a shed answer (503) must be fast whatever the
    // 202s of the same route cost, and only its own series shows that.
    let class = match code / 100 {
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    };
    metrics::histogram!("http_server_request_duration_seconds", "route" => route, "method" => method, "status_class" => class)
        .record(started.elapsed().as_secs_f64());
    if response.headers().get(header::CACHE_CONTROL).is_none()
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|ct| ct.as_bytes().ends_with(b"json"))
    {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The server span of a request (OTel HTTP semantic conventions), continuing
/// the caller's trace when it sent a `traceparent`. The route template, not
/// the raw path, names it; the query string (never secret here, but still)
/// and headers are not recorded.
fn request_span(request: &Request) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let method = request.method().as_str();
    let span = tracing::info_span!(
        "request",
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = %route,
        url.path = %request.uri().path(),
        http.response.status_code = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    let traceparent = request
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok());
    shared::telemetry::continue_from(&span, traceparent);
    // For JSON log lines: every event inside carries the trace id.
    if let Some(id) = shared::telemetry::trace_id(&span) {
        span.record("trace_id", id.as_str());
    }
    span
}

fn record_status(response: &Response, _latency: std::time::Duration, span: &tracing::Span) {
    span.record("http.response.status_code", response.status().as_u16());
}
