# The `bankadmin` image from a host-built release binary (make images): the
# registry-free path. deploy/scripts/images.sh stages the binary as ./bankadmin in
# a context of its own. Same runtime contract as ../bankadmin.Dockerfile (the
# from-source build for machines that reach a registry).
ARG RUNTIME_BASE=bank/runtime-base:bookworm
FROM ${RUNTIME_BASE}
COPY bankadmin /usr/local/bin/bankadmin
# 65532 = "nonroot" in the runtime base (as in distroless). Nothing is
# written to the root filesystem: run with --read-only (compose: read_only).
USER 65532:65532
ENV LOG_FORMAT=json \
    RUST_LOG=info
# A CLI that exits: there is no server to probe.
HEALTHCHECK NONE
ENTRYPOINT ["/usr/local/bin/bankadmin"]
CMD ["migrate"]
