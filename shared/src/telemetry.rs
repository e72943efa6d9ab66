//! Logs and traces, shared by every binary.
//!
//! * Logs: `RUST_LOG` sets the level (default `info`); `LOG_FORMAT=json`
//!   gives JSON lines, with the current span's fields (`trace_id` among them
//!   once a span has one). Tokens and passwords are never span or event
//!   fields; URLs are redacted before they are logged.
//! * Traces: exported over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//!   `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, honouring the standard
//!   `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`
//!   and `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL`: `http/protobuf` (default,
//!   collector port 4318), `http/json`, or `grpc` (tonic, port 4317). Any
//!   other value stops the service at start: a typo must not send traces to
//!   a port that speaks another protocol, where they would vanish unseen.
//!   Without an endpoint no OpenTelemetry layer is installed: spans cost what
//!   plain `tracing` costs and no `traceparent` is sent. Every exported span
//!   also names its service in a `service.name` attribute, for backends that
//!   drop resource attributes.
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

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("{var}={value:?} is not an OTLP protocol (expected grpc, http/protobuf or http/json)")]
    UnknownProtocol { var: &'static str, value: String },
}

/// The OTLP transport spans are exported with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP over gRPC (tonic); collectors listen on 4317.
    Grpc,
    /// OTLP over HTTP with protobuf bodies; collectors listen on 4318.
    HttpProtobuf,
    /// OTLP over HTTP with JSON bodies (port 4318 too).
    HttpJson,
}

/// The signal-specific variable wins over the generic one, as the
/// OpenTelemetry specification says.
const PROTOCOL_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
];

/// The protocol named by the environment (read through `lookup`, which
/// returns a variable's non-empty value); `http/protobuf` when none is set.
pub fn protocol_from(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<OtlpProtocol, TelemetryError> {
    let Some((var, value)) = PROTOCOL_VARS
        .iter()
        .find_map(|var| lookup(var).map(|v| (*var, v)))
    else {
        return Ok(OtlpProtocol::HttpProtobuf);
    };
    match value.trim() {
        "grpc" => Ok(OtlpProtocol::Grpc),
        "http/protobuf" => Ok(OtlpProtocol::HttpProtobuf),
        "http/json" => Ok(OtlpProtocol::HttpJson),
        _ => Err(TelemetryError::UnknownProtocol { var, value }),
    }
}

fn otlp_enabled() -> bool {
    crate::config::var("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
        || crate::config::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
}

fn span_exporter(
    protocol: OtlpProtocol,
) -> Result<opentelemetry_otlp::SpanExporter, opentelemetry_otlp::ExporterBuildError> {
    use opentelemetry_otlp::{Protocol, WithExportConfig};
    let builder = opentelemetry_otlp::SpanExporter::builder();
    match protocol {
        OtlpProtocol::Grpc => builder.with_tonic().with_protocol(Protocol::Grpc).build(),
        OtlpProtocol::HttpProtobuf => builder
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .build(),
        OtlpProtocol::HttpJson => builder
            .with_http()
            .with_protocol(Protocol::HttpJson)
            .build(),
    }
}

fn tracer_provider(service: &'static str) -> Result<Option<SdkTracerProvider>, TelemetryError> {
    if !otlp_enabled() {
        return Ok(None);
    }
    let protocol = protocol_from(crate::config::var)?;
    let exporter = match span_exporter(protocol) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("{service}: OTLP exporter disabled: {e}");
            return Ok(None);
        }
    };
    let mut resource = opentelemetry_sdk::Resource::builder();
    if crate::config::var("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service);
    }
    Ok(Some(
        SdkTracerProvider::builder()
            .with_span_processor(ServiceOnEverySpan::default())
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build(),
    ))
}

/// Copies the resource's `service.name` onto every span as an attribute.
/// Jaeger reads the service from the resource, but some OTLP backends keep
/// span attributes only (Arize Phoenix, the stand-in trace backend of
/// `deploy/traces/`): without this their view of a trace cannot say which
/// service a span came from.
#[derive(Debug, Default)]
struct ServiceOnEverySpan {
    service: Option<opentelemetry::Value>,
}

impl opentelemetry_sdk::trace::SpanProcessor for ServiceOnEverySpan {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, _cx: &opentelemetry::Context) {
        use opentelemetry::trace::Span as _;
        if let Some(service) = &self.service {
            span.set_attribute(opentelemetry::KeyValue::new(SERVICE_NAME, service.clone()));
        }
    }

    fn on_end(&self, _span: opentelemetry_sdk::trace::SpanData) {}

    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(
        &self,
        _timeout: std::time::Duration,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.service = resource.get(&opentelemetry::Key::from_static_str(SERVICE_NAME));
    }
}

/// The semantic-convention key of the service's name.
const SERVICE_NAME: &str = "service.name";

/// Installs logging and, when an OTLP endpoint is set, trace export. Call
/// it inside a Tokio runtime: the gRPC exporter's channel needs one.
pub fn init(service: &'static str) -> Result<Telemetry, TelemetryError> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = crate::config::var("LOG_FORMAT").is_some_and(|f| f == "json");
    let provider = tracer_provider(service)?;
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
        Ok(Telemetry { provider })
    } else {
        Ok(Telemetry { provider: None })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn http_protobuf_is_the_default() {
        assert_eq!(protocol_from(env(&[])).unwrap(), OtlpProtocol::HttpProtobuf);
    }

    #[test]
    fn every_standard_value_selects_its_transport() {
        for (value, want) in [
            ("grpc", OtlpProtocol::Grpc),
            ("http/protobuf", OtlpProtocol::HttpProtobuf),
            ("http/json", OtlpProtocol::HttpJson),
        ] {
            let got = protocol_from(env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", value)])).unwrap();
            assert_eq!(got, want, "{value}");
        }
    }

    #[test]
    fn the_traces_variable_wins_over_the_generic_one() {
        let got = protocol_from(env(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
        ]))
        .unwrap();
        assert_eq!(got, OtlpProtocol::Grpc);
    }

    #[test]
    fn an_unknown_value_is_an_error_naming_the_variable() {
        for value in ["gRPC", "http", "http/proto", "tcp"] {
            let err = protocol_from(env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", value)])).unwrap_err();
            let text = err.to_string();
            assert!(text.contains("OTEL_EXPORTER_OTLP_PROTOCOL"), "{text}");
            assert!(text.contains(value), "{text}");
        }
        let err = protocol_from(env(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grcp"),
        ]))
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        );
    }

    #[derive(Debug, Clone, Default)]
    struct Collect(std::sync::Arc<std::sync::Mutex<Vec<opentelemetry_sdk::trace::SpanData>>>);

    impl opentelemetry_sdk::trace::SpanExporter for Collect {
        async fn export(
            &self,
            batch: Vec<opentelemetry_sdk::trace::SpanData>,
        ) -> opentelemetry_sdk::error::OTelSdkResult {
            self.0.lock().unwrap().extend(batch);
            Ok(())
        }
    }

    #[test]
    fn every_span_carries_the_service_name() {
        use opentelemetry::trace::{Tracer as _, TracerProvider as _};
        let collect = Collect::default();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(ServiceOnEverySpan::default())
            .with_simple_exporter(collect.clone())
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name("processor")
                    .build(),
            )
            .build();
        provider.tracer("t").in_span("work", |_| {});
        let spans = collect.0.lock().unwrap().clone();
        assert_eq!(spans.len(), 1);
        let service = spans[0]
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == SERVICE_NAME)
            .map(|kv| kv.value.to_string());
        assert_eq!(service.as_deref(), Some("processor"));
    }

    /// The tonic exporter builds (inside a runtime, as the services run it).
    #[tokio::test]
    async fn every_protocol_builds_an_exporter() {
        for p in [
            OtlpProtocol::Grpc,
            OtlpProtocol::HttpProtobuf,
            OtlpProtocol::HttpJson,
        ] {
            assert!(span_exporter(p).is_ok(), "{p:?}");
        }
    }
}
