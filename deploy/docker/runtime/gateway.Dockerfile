# The `gateway` image from a host-built release binary (make images): the
# registry-free path. deploy/scripts/images.sh stages the binary as ./gateway in
# a context of its own. Same runtime contract as ../gateway.Dockerfile (the
# from-source build for machines that reach a registry).
ARG RUNTIME_BASE=bank/runtime-base:bookworm
FROM ${RUNTIME_BASE}
COPY gateway /usr/local/bin/gateway
# 65532 = "nonroot" in the runtime base (as in distroless). Nothing is
# written to the root filesystem: run with --read-only (compose: read_only).
USER 65532:65532
ENV APP_ENV=production \
    LOG_FORMAT=json \
    RUST_LOG=info \
    GATEWAY_ADDR=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/gateway", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/gateway"]
