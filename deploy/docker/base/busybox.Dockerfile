# Stand-in for busybox:1.37 (compose's one-shot volume-init runs `chown`):
# Debian's busybox-static on an empty image. Built by base-images.sh.
ARG DEBIAN_BASE=bank/debian-base:bookworm
FROM ${DEBIAN_BASE} AS pkgs
# The versions are whatever the machine's Debian mirror serves (a dated
# snapshot here); pins would break at the next point release.
# hadolint ignore=DL3008
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends busybox-static

FROM scratch
COPY --from=pkgs /bin/busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["sh"]
