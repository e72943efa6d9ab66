# The web page on unprivileged nginx (Chainguard: UID 65532, port 8080, no shell).
# /v1/ is proxied to the gateway and /v1/ws to the notifier (deploy/nginx/nginx.conf).
#   docker build -f deploy/docker/web.Dockerfile -t bank/web .

ARG NODE_IMAGE=node:22-bookworm-slim
ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=cgr.dev/chainguard/nginx:latest

FROM ${NODE_IMAGE} AS build
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN --mount=type=cache,target=/root/.npm,sharing=locked \
    npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

# The nginx image has no shell or curl for HEALTHCHECK: a 40-line std-only
# probe, compiled with rustc (no crates, no network).
FROM ${RUST_IMAGE} AS probe
WORKDIR /probe
COPY deploy/docker/httpprobe.rs ./
RUN rustc --edition 2021 -C opt-level=s -C strip=symbols -o /probe/httpprobe httpprobe.rs

FROM ${RUNTIME_IMAGE}
COPY deploy/nginx/nginx.conf /etc/nginx/nginx.conf
COPY --from=build /src/frontend/dist /usr/share/nginx/html
COPY --from=probe /probe/httpprobe /usr/local/bin/httpprobe
USER 65532:65532
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/httpprobe", "127.0.0.1:8080", "/nginx-health"]
# pid and temp files go to /tmp (nginx.conf), logs to stdout/stderr (-e for the
# log nginx opens before reading its config): read-only root + tmpfs on /tmp.
ENTRYPOINT ["/usr/sbin/nginx", "-e", "/dev/stderr", "-c", "/etc/nginx/nginx.conf", "-g", "daemon off;"]
