# Stand-in for prom/prometheus, made from Debian's Prometheus 2.42 (with
# promtool), for machines without a registry: the same entrypoint
# /bin/prometheus (merged /usr provides it; compose passes only flags), the
# same user nobody = 65534:65534 owning /prometheus, the same default flags.
# GNU wget for compose's health check (busybox-static's wget segfaults on
# these machines). Config and rules are mounted, as with the official image.
ARG DEBIAN_BASE=bank/debian-base:bookworm
FROM ${DEBIAN_BASE}
# Versions are bookworm's: the suite is the pin (a stand-in follows its
# security updates).
# hadolint ignore=DL3008
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends prometheus wget \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /prometheus /etc/prometheus \
 && chown 65534:65534 /prometheus
WORKDIR /prometheus
USER 65534:65534
EXPOSE 9090
VOLUME ["/prometheus"]
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
