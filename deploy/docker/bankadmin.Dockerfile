# The `bankadmin` CLI image: the one-shot migration job (`bankadmin migrate`),
# demo seeding (`bankadmin seed-demo`) and ledger checks (`bankadmin check`).
# Migrations are compiled into the binary (sqlx::migrate!), nothing else ships.
#   docker build -f deploy/docker/bankadmin.Dockerfile -t bank/bankadmin .

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin bankadmin \
 && install -D -m 0555 target/release/bankadmin /out/bankadmin

FROM ${RUNTIME_IMAGE}
COPY --from=build /out/bankadmin /usr/local/bin/bankadmin
USER 65532:65532
ENV LOG_FORMAT=json \
    RUST_LOG=info
# A CLI that exits: there is no server to probe.
HEALTHCHECK NONE
ENTRYPOINT ["/usr/local/bin/bankadmin"]
CMD ["migrate"]
