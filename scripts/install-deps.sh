#!/usr/bin/env bash
# Installs what the gateway needs on Debian 12 (used by `make up`, `make test` and CI). Idempotent, and
# silent when everything is already there.
#
#   scripts/install-deps.sh          npm packages; Debian's nginx, njs module + CLI, headers-more, ModSecurity + OWASP CRS (the WAF)
#   scripts/install-deps.sh --test   also chromium, wrk, valgrind (make bench), docker.io + docker-compose + runc (make test-compose), libfaketime (policy time-window tests), gettext-base (container entrypoint test),
#                                    debootstrap (the Debian 13 root of make test-njs08, scripts/trixie-root.sh), the Lua peer of make bench
#                                    (libnginx-mod-http-lua + -ndk, lua-resty-core, lua-cjson), and a PostgreSQL answering on
#                                    127.0.0.1:5432 where user postgres connects without a password
#
# As root it installs what is missing. Otherwise it prints the exact command to run and exits 1.
set -euo pipefail

usage() {
    sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

with_test=0
for arg in "$@"; do
    case $arg in
        --test) with_test=1 ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            echo "install-deps: unknown argument '$arg'" >&2
            usage >&2
            exit 2
            ;;
    esac
done

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PG_HOST=127.0.0.1
PG_PORT=5432
PG_HBA_MARKER='# identity-gateway tests (scripts/install-deps.sh --test): user postgres on loopback, no password'

log() { printf 'install-deps: %s\n' "$*" >&2; }
die() {
    log "$*"
    exit 1
}
is_root() { [ "$(id -u)" -eq 0 ]; }

pg_answers() {
    timeout 2 bash -c "exec 3<>/dev/tcp/$PG_HOST/$PG_PORT" 2>/dev/null
}

installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# While apt installs, stop packages from starting their services: Debian's nginx would start the
# system nginx on port 80 (and fail the install if port 80 is taken), postgresql its cluster, which
# this script starts itself when needed. An existing policy-rc.d is left alone.
POLICY_RC=/usr/sbin/policy-rc.d
added_policy_rc=0
remove_policy_rc() {
    if [ "$added_policy_rc" -eq 1 ]; then rm -f "$POLICY_RC"; fi
}
trap remove_policy_rc EXIT

install_debian_packages() {
    command -v dpkg-query >/dev/null 2>&1 || die "needs a Debian-based system (dpkg/apt); install by hand: $*"
    local missing=() pkg
    for pkg in "$@"; do
        installed "$pkg" || missing+=("$pkg")
    done
    [ "${#missing[@]}" -gt 0 ] || return 0

    if ! is_root; then
        log "missing Debian packages: ${missing[*]}"
        log "install them, then run this script again:"
        echo "sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
        exit 1
    fi
    log "installing Debian packages: ${missing[*]}"
    if [ ! -e "$POLICY_RC" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$POLICY_RC"
        chmod 0755 "$POLICY_RC"
        added_policy_rc=1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    remove_policy_rc
    added_policy_rc=0
}

check_node() {
    command -v node >/dev/null 2>&1 || die "Node.js 20 or newer is required (Debian 12's nodejs is 18): see https://nodejs.org/en/download"
    local major
    major=$(node -p 'process.versions.node.split(".")[0]')
    [ "$major" -ge 20 ] || die "Node.js 20 or newer is required, found $(node --version): see https://nodejs.org/en/download"
}

# Reinstalls node_modules when it is missing or older than package-lock.json. npm writes
# node_modules/.package-lock.json on every install, so that file dates the install.
install_npm_packages() {
    local stamp=node_modules/.package-lock.json
    if [ -e "$stamp" ] && [ ! package-lock.json -nt "$stamp" ]; then
        return 0
    fi
    log "installing npm packages"
    # Never a plain `npm ci`: npm 11 rejects this lock file (a known npm regression); npm 10's ci
    # installs it exactly. `npm install` also works and leaves the lock file unchanged.
    if ! npx -y npm@10 ci --no-audit --no-fund --loglevel=error; then
        log "npm@10 ci failed; falling back to npm install"
        npm install --no-audit --no-fund --loglevel=error
    fi
}

# Newest installed PostgreSQL server version (the number under /usr/lib/postgresql).
postgres_version() {
    find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null | sort -n | tail -n 1
}

allow_postgres_on_loopback() {
    local hba=$1
    grep -qxF "$PG_HBA_MARKER" "$hba" && return 0
    log "allowing user postgres on $PG_HOST without a password ($hba)"
    # pg_hba.conf is read top-down and the first match wins, so these lines go first.
    local tmp
    tmp=$(mktemp)
    {
        echo "$PG_HBA_MARKER"
        echo "host    all    postgres    127.0.0.1/32    trust"
        echo "host    all    postgres    ::1/128         trust"
        cat "$hba"
    } >"$tmp"
    cat "$tmp" >"$hba"
    rm -f "$tmp"
}

start_postgres() {
    pg_answers && return 0
    local version
    version=$(postgres_version)
    [ -n "$version" ] || die "PostgreSQL is not installed (apt-get install postgresql)"
    if ! is_root; then
        log "no PostgreSQL answers on $PG_HOST:$PG_PORT; start the Debian cluster, then run this script again:"
        echo "sudo pg_ctlcluster --skip-systemctl-redirect $version main start"
        exit 1
    fi
    if [ ! -d "/etc/postgresql/$version/main" ]; then
        log "creating PostgreSQL cluster $version/main"
        pg_createcluster --port "$PG_PORT" "$version" main >/dev/null
    fi
    local port status
    read -r port status < <(pg_lsclusters --no-header | awk -v v="$version" '$1 == v && $2 == "main" { print $3, $4 }')
    [ "$port" = "$PG_PORT" ] || die "PostgreSQL cluster $version/main is configured for port $port, not $PG_PORT"
    [ "$status" != "online" ] || die "PostgreSQL cluster $version/main is running but does not answer on $PG_HOST:$PG_PORT (check listen_addresses)"
    allow_postgres_on_loopback "/etc/postgresql/$version/main/pg_hba.conf"
    log "starting PostgreSQL cluster $version/main"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
    local waited=0
    until pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; do
        [ "$waited" -lt 30 ] || die "PostgreSQL did not become ready on $PG_HOST:$PG_PORT within 30s (see /var/log/postgresql/)"
        sleep 1
        waited=$((waited + 1))
    done
}

# The tests connect as user postgres without a password. A cluster this script started is set up for
# that; one that was already running is someone else's, so it is reported, not reconfigured.
check_postgres_login() {
    command -v psql >/dev/null 2>&1 || return 0
    if env -u PGPASSWORD psql -w -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
        return 0
    fi
    log "PostgreSQL on $PG_HOST:$PG_PORT refuses user postgres without a password, which the tests need."
    log "Add these lines at the top of its pg_hba.conf and reload it (pg_ctlcluster <version> main reload):"
    printf '%s\n%s\n' "host    all    postgres    127.0.0.1/32    trust" "host    all    postgres    ::1/128         trust"
    exit 1
}

# ca-certificates: nginx loads the CA bundle at config time to verify Tableau (snippets/tableau-api.conf).
# libnginx-mod-http-modsecurity, modsecurity-crs: the WAF (WAF_MODE, docs/waf.md).
packages=(nginx libnginx-mod-http-js njs libnginx-mod-http-headers-more-filter ca-certificates libnginx-mod-http-modsecurity modsecurity-crs)
if [ "$with_test" -eq 1 ]; then
    packages+=(chromium wrk valgrind docker.io docker-compose runc libfaketime gettext-base debootstrap)
    # make bench's OpenResty-style peer (bench/peers.ts); never loaded by the gateway's own nginx.
    packages+=(libnginx-mod-http-ndk libnginx-mod-http-lua lua-resty-core lua-cjson)
    pg_answers || packages+=(postgresql)
fi
install_debian_packages "${packages[@]}"
if [ "$with_test" -eq 1 ]; then
    start_postgres
    check_postgres_login
fi
check_node
install_npm_packages
