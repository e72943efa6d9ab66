# The `processor` service image. Build from the repository root:
#   docker build -f deploy/docker/processor.Dockerfile -t bank/processor .
# (DOCKER_BUILDKIT=1 for the cache mounts; the repository's .dockerignore
# keeps target/, node_modules/ and secrets out of the build context).
# Without a registry: deploy/docker/runtime/ and `make images`.

ARG RUST_IMAGE=rust:1-bookworm
# glibc 2.36, the same as the bookworm builder; no shell, no package manager.
# cgr.dev/chainguard/glibc-dynamic:latest works too (newer glibc).
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and target/ between builds; the binary is
# copied out of the cached target/ before the mount goes away.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin processor \
 && install -D -m 0555 target/release/processor /out/processor

FROM ${RUNTIME_IMAGE}
COPY --from=build /out/processor /usr/local/bin/processor
# 65532 = "nonroot" in distroless and Chainguard images. Nothing is written to
# the root filesystem: run with --read-only (compose: read_only: true).
USER 65532:65532
ENV APP_ENV=production \
    LOG_FORMAT=json \
    RUST_LOG=info \
    PROCESSOR_ADDR=0.0.0.0:8082
EXPOSE 8082
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/processor", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/processor"]
