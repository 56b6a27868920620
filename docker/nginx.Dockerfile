# The gateway's nginx: Debian 12's nginx with the njs and headers-more modules, plus the njs gate
# bundle built from njs/src, and the repo's nginx/ at /etc/gateway/nginx as the default config that
# goes with this bundle. docker-compose.yml mounts ./nginx read-only over it; Kubernetes replaces
# only the site file (deploy/kubernetes/nginx.yaml). docker/nginx-entrypoint.sh renders it into
# the runtime prefix.
#
#   docker build -f docker/nginx.Dockerfile -t identity-gateway-nginx .
#
# NODE_IMAGE (build stage) and DEBIAN_IMAGE (runtime): official images by default; tests pass local stand-ins.
ARG NODE_IMAGE=node:24-bookworm-slim
ARG DEBIAN_IMAGE=debian:bookworm-slim

# --- build: esbuild bundle, proven to load in the same njs version (0.7.9) as the module below ---
FROM ${NODE_IMAGE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends njs \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
# npm 11's `npm ci` rejects this lock file (a known npm regression); npm 10's ci installs it exactly.
RUN npx -y npm@10 ci --no-audit --no-fund \
 && rm -rf /root/.npm
COPY tsconfig.json ./
COPY njs/ njs/
COPY scripts/build-njs.mjs scripts/
RUN node scripts/build-njs.mjs

# --- runtime ---
FROM ${DEBIAN_IMAGE}
# gettext-base: envsubst for the templates. njs: the CLI, to check the gate config before nginx -t
# (njs 0.7.9 refuses an unparsable js_preload_object file without saying why).
# libnginx-mod-http-modsecurity + modsecurity-crs: the WAF (WAF_MODE, docs/waf.md).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      nginx libnginx-mod-http-js libnginx-mod-http-headers-more-filter gettext-base ca-certificates njs \
      libnginx-mod-http-modsecurity modsecurity-crs \
 && rm -rf /var/lib/apt/lists/* \
 && rm -f /etc/nginx/sites-enabled/default \
 && mkdir -p /etc/gateway/nginx /var/lib/gateway/nginx /run/gate /opt/gateway/njs
COPY --from=build /src/njs/dist/gate.js /src/njs/dist/tableau.js /src/njs/dist/renew.js /src/njs/dist/revocations.js /src/njs/dist/gate-njs08.js /opt/gateway/njs/
COPY nginx/ /etc/gateway/nginx/
COPY docker/nginx-entrypoint.sh /usr/local/bin/gateway-nginx
RUN chmod 0755 /usr/local/bin/gateway-nginx

# The master runs as root (it reads the 0600 gate config written by the auth service and opens the
# container's stdout/stderr for the logs); nginx starts its workers as the unprivileged "nobody".
EXPOSE 8080
# SIGQUIT lets nginx finish in-flight requests before it exits.
STOPSIGNAL SIGQUIT
ENTRYPOINT ["/usr/local/bin/gateway-nginx"]
CMD ["run"]
