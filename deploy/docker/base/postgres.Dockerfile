# Stand-in for postgres:17-alpine, made from Debian's PostgreSQL 15 (the
# version in bookworm) where no registry is reachable. Same contract as the
# official image for what compose uses: POSTGRES_USER, POSTGRES_DB,
# POSTGRES_PASSWORD(_FILE), POSTGRES_INITDB_ARGS, PGDATA under
# /var/lib/postgresql/data owned by UID 70 (postgres in the alpine image),
# the socket in /var/run/postgresql, `postgres -c ...` as command.
ARG DEBIAN_BASE=bank/debian-base:bookworm
FROM ${DEBIAN_BASE}
# /var/run/postgresql is 3777 as in the official image: docker gives a tmpfs
# mounted there the image directory's mode (compose's mode= is for podman).
# No cluster from the package's postinst: the entrypoint runs initdb on the
# empty volume, as the official image does.
# The versions are whatever the machine's Debian mirror serves (a dated
# snapshot here); pins would break at the next point release.
# hadolint ignore=DL3008
RUN groupadd -r -g 70 postgres \
 && useradd -r -u 70 -g 70 -d /var/lib/postgresql -s /bin/sh postgres \
 && mkdir -p /etc/postgresql-common/createcluster.d \
 && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/no-main.conf \
 && apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends postgresql-15 \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
 && chown -R 70:70 /var/lib/postgresql /var/run/postgresql \
 && chmod 0700 /var/lib/postgresql/data \
 && chmod 3777 /var/run/postgresql
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data \
    LANG=C.UTF-8
USER 70:70
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["postgres"]
