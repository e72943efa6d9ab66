# The web page on the registry-free nginx base (make images): the page built
# on the host (frontend/dist), deploy/nginx/nginx.conf and the std-only probe
# compiled on the host with rustc, staged by deploy/scripts/images.sh as
# ./dist, ./nginx.conf and ./httpprobe. Same runtime contract as
# ../web.Dockerfile (UID 65532, port 8080, read-only root, tmpfs /tmp).
ARG NGINX_BASE=bank/nginx-base:bookworm
FROM ${NGINX_BASE}
COPY nginx.conf /etc/nginx/nginx.conf
COPY dist /usr/share/nginx/html
COPY httpprobe /usr/local/bin/httpprobe
USER 65532:65532
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/httpprobe", "127.0.0.1:8080", "/nginx-health"]
ENTRYPOINT ["/usr/sbin/nginx", "-e", "/dev/stderr", "-c", "/etc/nginx/nginx.conf", "-g", "daemon off;"]
