# Stand-in trace backend for machines where no Jaeger (or collector) image
# can be had: Arize Phoenix from PyPI, on Debian's Python 3.11. It takes
# OTLP/gRPC on 4317 (as the collector would, so the services keep
# OTEL_EXPORTER_OTLP_PROTOCOL=grpc) and OTLP/HTTP at :6006/v1/traces, stores
# spans in SQLite under /data, serves its UI and REST API on 6006.
# Why Phoenix: deploy/traces/README.md.
#
# Python packages come from a wheelhouse in the build context (wheels/, made
# on the host by deploy/traces/build-image.sh with `pip download`), not from
# PyPI inside the build: build containers here reach Debian's mirror but
# not PyPI with the host's TLS trust. The venv is made in a first stage so
# the wheels never land in a layer of the image.
# No outside request at run time: telemetry pixels and web fonts are off.
ARG DEBIAN_BASE=bank/debian-base:bookworm
FROM ${DEBIAN_BASE} AS python
# Versions are bookworm's: the suite is the pin (a stand-in follows its
# security updates).
# hadolint ignore=DL3008
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends python3 python3-venv ca-certificates \
 && apt-get clean && rm -rf /var/lib/apt/lists/*

FROM python AS venv
ARG PHOENIX_VERSION=20.26.1
COPY wheels/ /tmp/wheels/
RUN python3 -m venv /opt/phoenix \
 && /opt/phoenix/bin/pip install -q --no-cache-dir --disable-pip-version-check \
      --no-index --find-links /tmp/wheels "arize-phoenix==${PHOENIX_VERSION}" \
 && { /opt/phoenix/bin/python -m compileall -q /opt/phoenix >/dev/null || true; }

FROM python
COPY --from=venv /opt/phoenix /opt/phoenix
RUN groupadd -r -g 65532 phoenix \
 && useradd -r -u 65532 -g 65532 -d /data -s /usr/sbin/nologin phoenix \
 && mkdir -p /data && chown 65532:65532 /data
ENV PHOENIX_HOST=0.0.0.0 \
    PHOENIX_PORT=6006 \
    PHOENIX_GRPC_PORT=4317 \
    PHOENIX_WORKING_DIR=/data \
    PHOENIX_TELEMETRY_ENABLED=false \
    PHOENIX_ALLOW_EXTERNAL_RESOURCES=false \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/data
WORKDIR /data
USER 65532:65532
EXPOSE 4317 6006
VOLUME ["/data"]
# Python's standard library is the probe: the image has no wget or curl.
HEALTHCHECK --interval=10s --timeout=5s --start-period=90s --retries=5 \
  CMD ["/opt/phoenix/bin/python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:6006/healthz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["/opt/phoenix/bin/phoenix"]
CMD ["serve"]
