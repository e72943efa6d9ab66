# The `notifier` image from a host-built release binary (make images): the
# registry-free path. deploy/scripts/images.sh stages the binary as ./notifier in
# a context of its own. Same runtime contract as ../notifier.Dockerfile (the
# from-source build for machines that reach a registry).
ARG RUNTIME_BASE=bank/runtime-base:bookworm
FROM ${RUNTIME_BASE}
COPY notifier /usr/local/bin/notifier
# 65532 = "nonroot" in the runtime base (as in distroless). Nothing is
# written to the root filesystem: run with --read-only (compose: read_only).
USER 65532:65532
ENV APP_ENV=production \
    LOG_FORMAT=json \
    RUST_LOG=info \
    NOTIFIER_ADDR=0.0.0.0:8081
EXPOSE 8081
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/notifier", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/notifier"]
