# bank/runtime-base: the registry-free stand-in for distroless/cc-debian12 —
# glibc, libgcc, CA certificates and a non-root user 65532, nothing else (no
# shell, no package manager). Built by deploy/scripts/base-images.sh from the
# local bank/debian-base (debootstrap of Debian bookworm).
ARG DEBIAN_BASE=bank/debian-base:bookworm
FROM ${DEBIAN_BASE} AS pkgs
# The versions are whatever the machine's Debian mirror serves (a dated
# snapshot here); pins would break at the next point release.
WORKDIR /debs
# hadolint ignore=DL3008
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends ca-certificates \
 && mkdir -p /rootfs \
 && apt-get download -qq libc6 libgcc-s1 \
 && for deb in /debs/*.deb; do dpkg-deb -x "$deb" /rootfs; done \
 && rm -rf /rootfs/usr/share/doc /rootfs/usr/share/lintian /rootfs/usr/share/man \
 && mkdir -p /rootfs/etc/ssl/certs /rootfs/tmp /rootfs/home/nonroot \
 && chmod 1777 /rootfs/tmp && chown 65532:65532 /rootfs/home/nonroot \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
 && printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > /rootfs/etc/passwd \
 && printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' > /rootfs/etc/group \
 && printf 'hosts: files dns\n' > /rootfs/etc/nsswitch.conf

FROM scratch
COPY --from=pkgs /rootfs /
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
