# bank/nginx-base: the registry-free stand-in for cgr.dev/chainguard/nginx —
# Debian's nginx at /usr/sbin/nginx, run as 65532, temp and pid files in
# /tmp (deploy/nginx/nginx.conf), logs to stdout/stderr.
ARG DEBIAN_BASE=bank/debian-base:bookworm
FROM ${DEBIAN_BASE}
# The versions are whatever the machine's Debian mirror serves (a dated
# snapshot here); pins would break at the next point release.
# hadolint ignore=DL3008
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends nginx-light \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/www/html \
 && groupadd -g 65532 nonroot && useradd -u 65532 -g 65532 -d /home/nonroot -M -s /usr/sbin/nologin nonroot \
 && ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/sbin/nginx", "-e", "/dev/stderr", "-g", "daemon off;"]
