//! Logs and traces, shared by every binary.
//!
//! * Logs: `RUST_LOG` sets the level (default `info`); `LOG_FORMAT=json`
//!   gives JSON lines, with the current span's fields (`trace_id` among them
//!   once a span has one). Tokens and passwords are never span or event
//!   fields; URLs are redacted before they are logged.
//! * Traces: exported over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//!   `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, honouring the standard
//!   `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`
//!   and `OTEL_EXPORTER_OTLP_PROTOCOL` (`http/protobuf` default, `http/json`).
//!   Without an endpoint no OpenTelemetry layer is installed: spans cost what
//!   plain `tracing` costs and no `traceparent` is sent.
//!
//! W3C `traceparent` crosses every hop: HTTP → NATS headers → processor →
//! result batches → Redis events → notifier (see [`traceparent`] and
//! [`continue_from`]).

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::prelude::*;

/// Flushes and stops trace export when dropped (or on [`Telemetry::shutdown`]).
#[must_use = "dropping it stops trace export"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    pub fn shutdown(mut self) {
        self.flush();
    }

    fn flush(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.force_flush();
            let _ = p.shutdown();
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.flush();
    }
}

fn otlp_enabled() -> bool {
    crate::config::var("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
        || crate::config::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
}

fn tracer_provider(service: &'static str) -> Option<SdkTracerProvider> {
    use opentelemetry_otlp::{Protocol, WithExportConfig};
    if !otlp_enabled() {
        return None;
    }
    let protocol = match crate::config::var("OTEL_EXPORTER_OTLP_PROTOCOL").as_deref() {
        Some("http/json") => Protocol::HttpJson,
        _ => Protocol::HttpBinary,
    };
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .build()
    {
        Ok(e) => e,
        Err(e) => {
            eprintln!("{service}: OTLP exporter disabled: {e}");
            return None;
        }
    };
    let mut resource = opentelemetry_sdk::Resource::builder();
    if crate::config::var("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service);
    }
    Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build(),
    )
}

pub fn init(service: &'static str) -> Telemetry {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = crate::config::var("LOG_FORMAT").is_some_and(|f| f == "json");
    let provider = tracer_provider(service);
    // `RUST_LOG` filters logs only: spans are traced at info level whatever
    // the log level, so a quiet production log still yields full traces.
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer(service))
            .with_error_records_to_exceptions(true)
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
    });
    let registry = tracing_subscriber::registry().with(otel);
    let result = if json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_filter(filter),
            )
            .try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .compact()
                    .with_filter(filter),
            )
            .try_init()
    };
    // Tests initialise more than once; the first subscriber wins.
    if result.is_ok() {
        tracing::info!(service, otlp = provider.is_some(), "telemetry initialised");
        if let Some(p) = &provider {
            opentelemetry::global::set_tracer_provider(p.clone());
        }
        Telemetry { provider }
    } else {
        Telemetry { provider: None }
    }
}

/// The W3C `traceparent` of `span`, if it is being traced.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove("traceparent")
}

/// The trace id (32 hex digits) of `span`, if it is being traced.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

/// Makes `span` a child of the remote span named by `traceparent`.
pub fn continue_from(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(tp) = traceparent else { return };
    let carrier = HashMap::from([("traceparent".to_owned(), tp.to_owned())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}
