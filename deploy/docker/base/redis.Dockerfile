# Stand-in for redis:7-alpine, made from Debian's Redis 7.0: redis-server and
# redis-cli, user redis = 999:1000 as in the alpine image, /data its volume.
ARG DEBIAN_BASE=bank/debian-base:bookworm
FROM ${DEBIAN_BASE}
# The versions are whatever the machine's Debian mirror serves (a dated
# snapshot here); pins would break at the next point release.
# hadolint ignore=DL3008
RUN groupadd -r -g 1000 redis \
 && useradd -r -u 999 -g 1000 -d /data -s /usr/sbin/nologin redis \
 && apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends redis-server redis-tools \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data && chown 999:1000 /data
WORKDIR /data
USER 999:1000
EXPOSE 6379
CMD ["redis-server"]
