# The OpenTelemetry Collector with a health probe Docker can run.
#   docker build -f deploy/docker/otel-collector.Dockerfile -t bank/otel-collector .
#
# Why: the upstream contrib image is a static binary on an empty base (no
# shell, no wget) and otelcol has no probe subcommand, so compose could not
# give it a HEALTHCHECK and services depending on it started blind. The
# collector's own health_check extension answers on :13133
# (deploy/otel/collector.yaml); this adds the project's 40-line std-only
# probe, linked statically because the base has no libc.

ARG RUST_IMAGE=rust:1-bookworm
ARG COLLECTOR_IMAGE=otel/opentelemetry-collector-contrib:0.130.0

FROM ${RUST_IMAGE} AS probe
WORKDIR /probe
COPY deploy/docker/httpprobe.rs ./
RUN rustc --edition 2021 -C opt-level=s -C strip=symbols -C target-feature=+crt-static \
      -o /probe/httpprobe httpprobe.rs

FROM ${COLLECTOR_IMAGE}
COPY --from=probe /probe/httpprobe /httpprobe
USER 65532:65532
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/httpprobe", "127.0.0.1:13133", "/"]
