# Stand-in for nats:2.11-alpine, made from Debian's nats-server (2.9): the
# server as entrypoint (compose passes `-c /etc/nats/nats.conf`), GNU wget
# for the compose health check (busybox-static's wget crashes here).
ARG DEBIAN_BASE=bank/debian-base:bookworm
FROM ${DEBIAN_BASE}
# The versions are whatever the machine's Debian mirror serves (a dated
# snapshot here); pins would break at the next point release.
# hadolint ignore=DL3008
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends nats-server wget \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data && chown 65532:65532 /data
USER 65532:65532
EXPOSE 4222 8222
ENTRYPOINT ["/usr/sbin/nats-server"]
CMD ["-c", "/etc/nats/nats.conf"]
