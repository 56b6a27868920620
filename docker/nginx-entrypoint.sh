#!/bin/sh
# Entrypoint of the gateway's nginx container.
#
#   (no argument)  render the config into the runtime prefix, wait for the gate config, test, run nginx
#   reload         re-render (after editing ./nginx, or after the auth service rewrote the gate config),
#                  test, and reload the running nginx:  docker-compose exec nginx gateway-nginx reload
#
# Runtime layout (the prefix is rebuilt on every start, so ./nginx stays the only source of truth):
#   $PREFIX/conf/                        copy of $SOURCE (./nginx, mounted read-only); every
#                                        *.template rendered (sites/x.conf.template -> sites/x.conf)
#                                        and the template removed
#   $PREFIX/conf/njs/gate.js             gate bundle baked into the image (and tableau.js, renew.js,
#                                        revocations.js beside it)
#   $PREFIX/conf/snippets/njs08.d/       $SOURCE/njs08/ when NJS_REVOCATIONS=on (njs >= 0.8 only), else
#                                        empty: the revoked-sessions dict and its poller
#   $PREFIX/conf/snippets/waf.d/         $SOURCE/waf/ when WAF_MODE is On or DetectionOnly (the WAF's
#                                        module, rules and per-location switch), else absent
#   $PREFIX/conf/snippets/https.d/       the files of $SOURCE/https/ that apply: tls-*, hsts-* with
#                                        TLS_CERT_FILE/TLS_KEY_FILE (HTTPS), balancer-* with TRUSTED_PROXIES
#   $PREFIX/conf/snippets/status.d/      $SOURCE/status/ when NGINX_STATUS_PORT is set: stub_status on
#                                        127.0.0.1 only, never published
#   $PREFIX/conf/runtime/gate-config.json  symlink to $GATE_CONFIG_FILE (shared volume, written by auth)
#   $PREFIX/conf/runtime/pages/          copy of the pages/ folder next to it (nginx's own branded pages,
#                                        written by auth; copied so that the workers can read them)
#   $PREFIX/logs/access.log, error.log   symlinks to the container's stdout / stderr
#   $PREFIX/logs/waf.log                 symlink to stderr: the WAF's matches (docs/waf.md "Logs")
#   $PREFIX/logs/nginx.pid, $PREFIX/temp/
set -eu
# Files nginx creates (logs an operator points at a volume instead of stdout, the pid file, temp
# files) are not for other accounts: access logs hold user names and addresses.
umask 027

SOURCE=${GATEWAY_NGINX_SOURCE:-/etc/gateway/nginx}
PREFIX=${GATEWAY_NGINX_PREFIX:-/var/lib/gateway/nginx}
BUNDLE=${GATEWAY_NJS_BUNDLE:-/opt/gateway/njs/gate.js}
GATE_CONFIG_FILE=${GATE_CONFIG_FILE:-/run/gate/gate-config.json}
WAIT_SECONDS=${GATE_CONFIG_WAIT_SECONDS:-60}
POLICY_RUNTIME_FILE=$(dirname "$GATE_CONFIG_FILE")/policy.json
PAGES_DIR=$(dirname "$GATE_CONFIG_FILE")/pages

# Only these are substituted, so nginx's own $variables in the templates stay untouched.
TEMPLATE_VARS='${PROXY_LISTEN} ${APP_UPSTREAM} ${APP_UPSTREAM_SCHEME} ${AUTH_UPSTREAM} ${TABLEAU_API_TIMEOUT_SECONDS} ${TABLEAU_API_MAX_BODY_MB} ${TABLEAU_API_PATH} ${TABLEAU_CA_FILE}'
# Debian's system trust store: the default of UPSTREAM_CA_FILE and TABLEAU_CA_FILE.
SYSTEM_CA_FILE=/etc/ssl/certs/ca-certificates.crt

log() {
    msg=$(printf '%s' "$2" | sed 's/\\/\\\\/g; s/"/\\"/g')
    printf '{"level":"%s","msg":"%s","component":"nginx-entrypoint"}\n' "$1" "$msg" >&2
}

die() {
    log error "$1"
    exit 1
}

# The values end up inside nginx directives: refuse anything that could end one or open a block.
require_directive_value() {
    name=$1
    eval "value=\${$name:-}"
    [ -n "$value" ] || die "$name is required (e.g. PROXY_LISTEN=8080, APP_UPSTREAM=demo-app:5000, AUTH_UPSTREAM=auth:3001)"
    case $value in
        *[\;\{\}\$\"\'\\\#]* | *"
"*)
            die "$name must be a plain nginx value (no ; { } \$ quotes # or newlines)" ;;
    esac
}

# require_whole_number NAME DEFAULT MIN MAX: an unset or empty NAME gets DEFAULT; anything but a
# whole number in [MIN, MAX] is refused (so nothing in it can end an nginx directive). The same
# defaults and bounds as scripts/lib/nginx-runtime.ts (NGINX_SETTINGS). Problems are collected in
# $settings_problems, so all of them are reported at once.
settings_problems=
require_whole_number() {
    eval "value=\${$1:-}"
    [ -n "$value" ] || value=$2
    eval "$1=\$value"
    export "$1"
    case $value in
        '' | *[!0-9]* | ??????*) ;;
        *) [ "$value" -ge "$3" ] && [ "$value" -le "$4" ] && return 0 ;;
    esac
    settings_problems="$settings_problems$1: must be a whole number from $3 to $4 (received \"$value\"); "
}

# require_tableau_api_path: TABLEAU_API_PATH unset or empty gets /api/; otherwise off, or a prefix
# that starts and ends with / with only letters, digits and . _ ~ - between, not under the gateway's
# own paths. The same rule as tableauApiPathFromEnv in scripts/lib/nginx-runtime.ts.
require_tableau_api_path() {
    [ -n "${TABLEAU_API_PATH:-}" ] || TABLEAU_API_PATH=/api/
    export TABLEAU_API_PATH
    [ "$TABLEAU_API_PATH" = off ] && return 0
    ok=1
    case $TABLEAU_API_PATH in
        /_gate/* | /login/* | /logout/* | /auth/* | /.well-known/* | */./* | */../* | //*) ok= ;;
        /*/) printf '%s' "$TABLEAU_API_PATH" | grep -Eq '^/([A-Za-z0-9._~-]+/)+$' || ok= ;;
        *) ok= ;;
    esac
    [ -n "$ok" ] || settings_problems="${settings_problems}TABLEAU_API_PATH: must be off, or a path prefix that starts and ends with / and holds only letters, digits and . _ ~ -, e.g. /tableau-api/, and not under /_gate/, /login/, /logout/, /auth/, /.well-known/ (received \"$TABLEAU_API_PATH\"); "
}

# render_tableau_api DEST: $SOURCE/tableau-api/ (the pass-through's public location) into
# DEST/snippets/tableau-api.d/, rendered with the other templates; left out with TABLEAU_API_PATH=off.
render_tableau_api() {
    [ -d "$1/tableau-api" ] || return 0
    if [ "$TABLEAU_API_PATH" = off ]; then
        rm -rf "$1/tableau-api"
    else
        mv "$1/tableau-api" "$1/snippets/tableau-api.d"
    fi
}

# render_conf DEST: build a complete conf/ directory at DEST.
render_conf() {
    dest=$1
    [ -f "$SOURCE/nginx.conf" ] || die "$SOURCE/nginx.conf not found: mount ./nginx at $SOURCE"
    [ -f "$BUNDLE" ] || die "gate bundle $BUNDLE missing from the image"
    rm -rf "$dest"
    mkdir -p "$dest"
    cp -R "$SOURCE/." "$dest/"
    render_https "$dest"
    render_upstream_tls "$dest"
    render_status "$dest"
    render_waf "$dest"
    render_tableau_api "$dest"
    find "$dest" -type f -name '*.template' | while IFS= read -r template; do
        envsubst "$TEMPLATE_VARS" <"$template" >"${template%.template}"
        rm -f "$template"
    done
    # Only njs >= 0.8 accepts these (js_shared_dict_zone, js_periodic); see scripts/lib/nginx-runtime.ts.
    if [ "$NJS_REVOCATIONS" = on ]; then
        mv "$dest/njs08" "$dest/snippets/njs08.d"
    else
        rm -rf "$dest/njs08"
    fi
    mkdir -p "$dest/njs" "$dest/runtime"
    # With NJS_REVOCATIONS=on the gate is its revocation-aware build (gate-njs08.js, same sources).
    if [ "$NJS_REVOCATIONS" = on ]; then
        cp "$(dirname "$BUNDLE")/gate-njs08.js" "$dest/njs/gate.js"
    else
        cp "$BUNDLE" "$dest/njs/gate.js"
    fi
    # The Tableau /api/, renewal and revocation-poller modules, built next to the gate bundle.
    cp "$(dirname "$BUNDLE")/tableau.js" "$(dirname "$BUNDLE")/renew.js" "$(dirname "$BUNDLE")/revocations.js" "$dest/njs/"
    # Workers (user nobody) read files from here, whatever the modes on the host.
    chmod -R a+rX "$dest"
    ln -sfn "$GATE_CONFIG_FILE" "$dest/runtime/gate-config.json"
    # The compiled access policy, written by the auth service next to the gate config.
    ln -sfn "$POLICY_RUNTIME_FILE" "$dest/runtime/policy.json"
}

# render_snippets DIR VARS NAME: the *.template files in DIR rendered with only VARS substituted,
# then DIR moved to snippets/NAME beside it (DIR is <conf>/https or <conf>/status).
render_snippets() {
    for template in "$1"/*.template; do
        [ -e "$template" ] || continue
        envsubst "$2" <"$template" >"${template%.template}"
        rm -f "$template"
    done
    mv "$1" "$(dirname "$1")/snippets/$3"
}

# render_https DEST: $SOURCE/https/ into DEST/snippets/https.d/, only the files that apply, with
# the values worked out below (as httpsTemplateValues in scripts/lib/nginx-runtime.ts does).
render_https() {
    https=$1/https
    [ -d "$https" ] || return 0
    [ -n "$TLS_CERT_FILE" ] || rm -f "$https"/tls-* "$https"/hsts-*
    [ "$HSTS_MAX_AGE" != 0 ] || rm -f "$https"/hsts-*
    [ -n "$TRUSTED_PROXIES" ] || rm -f "$https"/balancer-*
    render_snippets "$https" "$HTTPS_TEMPLATE_VARS" https.d
}

# render_upstream_tls DEST: $SOURCE/upstream-tls/ into DEST/snippets/upstream-tls.d/ for an https
# APP_UPSTREAM (certificate verified, SNI), else nothing; as stageUpstreamTlsSnippets in scripts/lib/nginx-runtime.ts.
render_upstream_tls() {
    upstream_tls=$1/upstream-tls
    [ -d "$upstream_tls" ] || return 0
    if [ "$APP_UPSTREAM_SCHEME" != https ]; then
        rm -rf "$upstream_tls"
        return 0
    fi
    render_snippets "$upstream_tls" '${APP_UPSTREAM_TLS_NAME} ${UPSTREAM_CA_FILE}' upstream-tls.d
}

# render_status DEST: $SOURCE/status/ into DEST/snippets/status.d/ with NGINX_STATUS_PORT set (the
# internal stub_status listener on 127.0.0.1), else nothing; as stageStatusSnippets in scripts/lib/nginx-runtime.ts.
render_status() {
    status=$1/status
    [ -d "$status" ] || return 0
    if [ -z "$NGINX_STATUS_PORT" ]; then
        rm -rf "$status"
        return 0
    fi
    render_snippets "$status" '${NGINX_STATUS_PORT}' status.d
}

# render_waf DEST: $SOURCE/waf/ into DEST/snippets/waf.d/ when the WAF is on, with WAF_MODE,
# WAF_PARANOIA_LEVEL and the session cookie's pattern filled in (as stageWafSnippets in scripts/lib/nginx-runtime.ts does); removed
# with WAF_MODE=Off, so nothing of ModSecurity is loaded.
render_waf() {
    waf=$1/waf
    [ -d "$waf" ] || return 0
    if [ "$WAF_MODE" = Off ]; then
        rm -rf "$waf"
        return 0
    fi
    render_snippets "$waf" '${WAF_MODE} ${WAF_PARANOIA_LEVEL} ${WAF_SESSION_COOKIE_PATTERN}' waf.d
}

# njs 0.7.9 fails `nginx -t` on an unparsable js_preload_object file without saying why, so the
# file is checked with the njs CLI (same engine) first. A half-written file gets retried until the deadline.
gate_config_error() {
    if output=$(njs -q -c "$PARSE_GATE_CONFIG" "$1" 2>&1); then
        return 0
    fi
    printf '%s\n' "$output" | grep -m 1 'Error' || echo 'not readable by the njs CLI'
}
PARSE_GATE_CONFIG="var c = JSON.parse(require('fs').readFileSync(process.argv[process.argv.length - 1]));
if (typeof c !== 'object' || c === null || Array.isArray(c)) { throw new TypeError('not a JSON object'); }"

# wait_for_json FILE WHAT: waits until FILE (written by the auth service) holds a JSON object.
wait_for_json() {
    waited=0
    while :; do
        if [ -s "$1" ]; then
            problem=$(gate_config_error "$1")
            [ -n "$problem" ] || return 0
        else
            problem='missing or empty (the auth service writes it at start-up)'
        fi
        [ "$waited" -lt "$WAIT_SECONDS" ] || die "$2 $1 unusable after ${WAIT_SECONDS}s: $problem"
        [ "$waited" -gt 0 ] || log info "waiting for $2 $1"
        sleep 1
        waited=$((waited + 1))
    done
}

wait_for_gate_config() {
    wait_for_json "$GATE_CONFIG_FILE" "gate config"
    wait_for_json "$POLICY_RUNTIME_FILE" "compiled access policy"
}

# copy_pages CONF_DIR: nginx's own pages (400, 403, 429, 50x with BRAND_NAME and the theme), which
# the auth service writes before the gate config. Copied, not linked: the shared volume is the auth
# user's (0700), and nginx's workers (user nobody) serve these files.
copy_pages() {
    [ -f "$PAGES_DIR/50x-auth.html" ] ||
        die "nginx's pages are missing from $PAGES_DIR: the auth service writes them with the gate config (is the auth image older than ./nginx?)"
    rm -rf "$1/runtime/pages"
    cp -R "$PAGES_DIR" "$1/runtime/pages"
    chmod -R a+rX "$1/runtime/pages"
}

# test_conf CONF_DIR_NAME: nginx -t against $PREFIX/CONF_DIR_NAME/nginx.conf.
test_conf() {
    nginx -q -t -p "$PREFIX/" -c "$1/nginx.conf" -e stderr -g 'daemon off;' ||
        die "nginx -t rejected the configuration in $SOURCE (see the error above)"
}

require_directive_value PROXY_LISTEN
require_directive_value APP_UPSTREAM
require_directive_value AUTH_UPSTREAM
# APP_UPSTREAM: host:port (plain http, the older form), http://host[:port] or https://host[:port]; the
# same rules and defaults as parseUpstream in scripts/lib/nginx-runtime.ts. Rendered as the upstream's
# `server` (host:port, APP_UPSTREAM) and the scheme of proxy_pass (APP_UPSTREAM_SCHEME).
APP_UPSTREAM_URL=$APP_UPSTREAM
APP_UPSTREAM_SCHEME=http
APP_UPSTREAM_TLS_NAME=
case $APP_UPSTREAM in
    unix:/*) ;;
    *)
        case $APP_UPSTREAM in
            https://*) APP_UPSTREAM_SCHEME=https; rest=${APP_UPSTREAM#https://}; port=443 ;;
            http://*) rest=${APP_UPSTREAM#http://}; port=80 ;;
            *) rest=$APP_UPSTREAM; port=80 ;;
        esac
        rest=${rest%/}
        bad=
        case $rest in
            \[*\]:*) host=${rest%%]*}]; port=${rest#"$host":} ;;
            \[*\]) host=$rest ;;
            *:*:*) bad=1; host= ;;
            *:*) host=${rest%:*}; port=${rest#*:} ;;
            *) host=$rest ;;
        esac
        case $host in '' | *[!A-Za-z0-9.:\[\]-]* | -* | .*) bad=1 ;; esac
        case $port in
            '' | *[!0-9]* | ??????*) bad=1 ;;
            *) { [ "$port" -ge 1 ] && [ "$port" -le 65535 ]; } || bad=1 ;;
        esac
        if [ -n "$bad" ]; then
            settings_problems="${settings_problems}APP_UPSTREAM: must be host:port, http://host[:port] or https://host[:port] (no path), e.g. https://app.internal:8443 (received \"$APP_UPSTREAM_URL\"); "
        else
            APP_UPSTREAM="$host:$port"
            APP_UPSTREAM_TLS_NAME=$(printf '%s' "$host" | tr -d '[]')
        fi
        ;;
esac
# ca_file_problem NAME PATH: a CA file nginx can name in one directive, readable, holding a PEM
# certificate (caFileProblem in scripts/lib/nginx-runtime.ts), else a problem in $settings_problems.
ca_file_problem() {
    case $2 in
        *[\;\{\}\$\"\'\\\#\ ]* | *"
"*) settings_problems="${settings_problems}$1: must be a file path without spaces, quotes or ; { } \$ # \\ (received \"$2\"); " ;;
        *)
            if [ ! -r "$2" ] || [ -d "$2" ]; then
                settings_problems="${settings_problems}$1: cannot read the file (received \"$2\"); "
            elif ! grep -q -e '-----BEGIN CERTIFICATE-----' "$2"; then
                settings_problems="${settings_problems}$1: must be a PEM file of CA certificates (-----BEGIN CERTIFICATE-----) (received \"$2\"); "
            fi
            ;;
    esac
}
# UPSTREAM_CA_FILE: the CAs an https APP_UPSTREAM's certificate must chain to (default the system store).
UPSTREAM_CA_FILE=${UPSTREAM_CA_FILE:-}
if [ "$APP_UPSTREAM_SCHEME" = https ]; then
    UPSTREAM_CA_FILE=${UPSTREAM_CA_FILE:-$SYSTEM_CA_FILE}
    ca_file_problem UPSTREAM_CA_FILE "$UPSTREAM_CA_FILE"
elif [ -n "$UPSTREAM_CA_FILE" ]; then
    settings_problems="${settings_problems}UPSTREAM_CA_FILE: only applies with an https:// APP_UPSTREAM (received \"$UPSTREAM_CA_FILE\"); "
fi
# TABLEAU_CA_FILE: the CAs Tableau's certificate must chain to on the /api/ pass-through (the auth
# service's sign-in calls read the same variable). Default the system store.
TABLEAU_CA_FILE=${TABLEAU_CA_FILE:-$SYSTEM_CA_FILE}
ca_file_problem TABLEAU_CA_FILE "$TABLEAU_CA_FILE"
export APP_UPSTREAM APP_UPSTREAM_SCHEME APP_UPSTREAM_TLS_NAME UPSTREAM_CA_FILE TABLEAU_CA_FILE
require_whole_number TABLEAU_API_TIMEOUT_SECONDS 300 1 3600
require_whole_number TABLEAU_API_MAX_BODY_MB 64 1 4096
require_tableau_api_path
# NJS_REVOCATIONS=on: a revoked session is refused within about a second (njs >= 0.8, e.g. a Debian 13
# image; with a host name in AUTH_UPSTREAM the poller also needs a `resolver`). Debian 12's njs 0.7.9
# refuses the config with it on.
NJS_REVOCATIONS=${NJS_REVOCATIONS:-off}
case $NJS_REVOCATIONS in
    on | off) ;;
    *) settings_problems="${settings_problems}NJS_REVOCATIONS: must be on (njs >= 0.8 only) or off (received \"$NJS_REVOCATIONS\"); " ;;
esac
# The WAF (docs/waf.md): On by default in the container; the same rules as wafSettingsFromEnv in
# scripts/lib/nginx-runtime.ts.
WAF_MODE=${WAF_MODE:-On}
case $WAF_MODE in
    On | DetectionOnly | Off) ;;
    *) settings_problems="${settings_problems}WAF_MODE: must be On, DetectionOnly or Off (received \"$WAF_MODE\"); " ;;
esac
WAF_PARANOIA_LEVEL=${WAF_PARANOIA_LEVEL:-1}
case $WAF_PARANOIA_LEVEL in
    1 | 2 | 3 | 4) ;;
    *) settings_problems="${settings_problems}WAF_PARANOIA_LEVEL: must be 1, 2, 3 or 4 (received \"$WAF_PARANOIA_LEVEL\"); " ;;
esac
# The session cookie the WAF leaves to the gate: as wafSessionCookiePattern in scripts/lib/nginx-runtime.ts.
case ${SESSION_COOKIE_NAME:-} in
    '' | *[!A-Za-z0-9_.-]*) WAF_SESSION_COOKIE_PATTERN='^(?:__Host-)?(?:__Secure-)?gw_session$' ;;
    *) WAF_SESSION_COOKIE_PATTERN="^$(printf '%s' "$SESSION_COOKIE_NAME" | sed 's/[.]/[.]/g')\$" ;;
esac
export WAF_MODE WAF_PARANOIA_LEVEL WAF_SESSION_COOKIE_PATTERN
# HTTPS (README "HTTPS"): TLS_CERT_FILE and TLS_KEY_FILE as the container sees them (./certs is
# mounted at /etc/gateway/certs), both or neither. The same rules and defaults as
# httpsSettingsFromEnv in scripts/lib/nginx-runtime.ts.
TLS_CERT_FILE=${TLS_CERT_FILE:-}
TLS_KEY_FILE=${TLS_KEY_FILE:-}
if [ -n "$TLS_CERT_FILE" ] && [ -z "$TLS_KEY_FILE" ]; then
    settings_problems="${settings_problems}TLS_KEY_FILE: set TLS_CERT_FILE and TLS_KEY_FILE together (received nothing for TLS_KEY_FILE); "
elif [ -z "$TLS_CERT_FILE" ] && [ -n "$TLS_KEY_FILE" ]; then
    settings_problems="${settings_problems}TLS_CERT_FILE: set TLS_CERT_FILE and TLS_KEY_FILE together (received nothing for TLS_CERT_FILE); "
fi
for name in TLS_CERT_FILE TLS_KEY_FILE; do
    eval "value=\$$name"
    case $value in
        *[\;\{\}\$\"\'\\\#\ ]* | *"
"*) settings_problems="${settings_problems}$name: must be a file path without spaces, quotes or ; { } \$ # \\ (received \"$value\"); " ;;
    esac
done
require_whole_number HTTPS_PORT 8443 1 65535
HSTS_MAX_AGE=${HSTS_MAX_AGE:-31536000}
case $HSTS_MAX_AGE in
    '' | *[!0-9]* | ?????????*) settings_problems="${settings_problems}HSTS_MAX_AGE: must be a whole number from 0 to 63072000 (received \"$HSTS_MAX_AGE\"); " ;;
    *) [ "$HSTS_MAX_AGE" -le 63072000 ] || settings_problems="${settings_problems}HSTS_MAX_AGE: must be a whole number from 0 to 63072000 (received \"$HSTS_MAX_AGE\"); " ;;
esac
HSTS_INCLUDE_SUBDOMAINS=${HSTS_INCLUDE_SUBDOMAINS:-off}
case $HSTS_INCLUDE_SUBDOMAINS in
    on | off) ;;
    *) settings_problems="${settings_problems}HSTS_INCLUDE_SUBDOMAINS: must be on or off (received \"$HSTS_INCLUDE_SUBDOMAINS\"); " ;;
esac
# TRUSTED_PROXIES: the balancers, by address (README "Behind a load balancer").
TRUSTED_PROXIES=$(printf '%s' "${TRUSTED_PROXIES:-}" | tr -d ' ')
TRUSTED_PROXIES_REAL_IP=
TRUSTED_PROXIES_GEO=
for entry in $(printf '%s' "$TRUSTED_PROXIES" | tr ',' ' '); do
    # Only address characters, so nothing can end a directive; nginx -t judges the address itself.
    case $entry in
        *[!0-9A-Fa-f:./]* | */*/* | /* | */) bad=1 ;;
        *) bad= ;;
    esac
    if [ -n "$bad" ]; then
        settings_problems="${settings_problems}TRUSTED_PROXIES: must be comma-separated IP addresses or CIDR ranges, e.g. 10.0.0.0/8,192.0.2.7 (received \"$TRUSTED_PROXIES\"); "
        break
    fi
    TRUSTED_PROXIES_REAL_IP="${TRUSTED_PROXIES_REAL_IP}set_real_ip_from $entry;
"
    TRUSTED_PROXIES_GEO="${TRUSTED_PROXIES_GEO}    $entry 1;
"
done
# One line per entry, without a last newline (as scripts/lib/nginx-runtime.ts renders them).
TRUSTED_PROXIES_REAL_IP=${TRUSTED_PROXIES_REAL_IP%?}
TRUSTED_PROXIES_GEO=${TRUSTED_PROXIES_GEO%?}
# HTTPS listens on PROXY_LISTEN's address (none: all) at HTTPS_PORT.
case $PROXY_LISTEN in
    *:*) HTTPS_LISTEN="${PROXY_LISTEN%:*}:$HTTPS_PORT" ;;
    *) HTTPS_LISTEN=$HTTPS_PORT ;;
esac
if [ "$HTTPS_PORT" = 443 ]; then HTTPS_REDIRECT_PORT=; else HTTPS_REDIRECT_PORT=":$HTTPS_PORT"; fi
HSTS_HEADER="max-age=$HSTS_MAX_AGE"
[ "$HSTS_INCLUDE_SUBDOMAINS" = off ] || HSTS_HEADER="$HSTS_HEADER; includeSubDomains"
# NGINX_STATUS_PORT: the internal stub_status listener on 127.0.0.1 (docs/monitoring.md); unset: none.
NGINX_STATUS_PORT=${NGINX_STATUS_PORT:-}
case $NGINX_STATUS_PORT in
    '') ;;
    *[!0-9]* | ??????*) settings_problems="${settings_problems}NGINX_STATUS_PORT: must be a TCP port 1-65535, or unset for no status listener (received \"$NGINX_STATUS_PORT\"); " ;;
    *) { [ "$NGINX_STATUS_PORT" -ge 1 ] && [ "$NGINX_STATUS_PORT" -le 65535 ]; } ||
        settings_problems="${settings_problems}NGINX_STATUS_PORT: must be a TCP port 1-65535, or unset for no status listener (received \"$NGINX_STATUS_PORT\"); " ;;
esac
export NGINX_STATUS_PORT
export TLS_CERT_FILE TLS_KEY_FILE HTTPS_LISTEN HTTPS_REDIRECT_PORT HSTS_HEADER TRUSTED_PROXIES_REAL_IP TRUSTED_PROXIES_GEO
HTTPS_TEMPLATE_VARS='${TLS_CERT_FILE} ${TLS_KEY_FILE} ${HTTPS_LISTEN} ${HTTPS_REDIRECT_PORT} ${HSTS_HEADER} ${TRUSTED_PROXIES_REAL_IP} ${TRUSTED_PROXIES_GEO}'
[ -z "$settings_problems" ] || die "$settings_problems"

case ${1:-run} in
    run)
        mkdir -p "$PREFIX/logs" "$PREFIX/temp"
        ln -sf /dev/stdout "$PREFIX/logs/access.log"
        ln -sf /dev/stderr "$PREFIX/logs/error.log"
        ln -sf /dev/stderr "$PREFIX/logs/waf.log"
        render_conf "$PREFIX/conf"
        wait_for_gate_config
        copy_pages "$PREFIX/conf"
        test_conf conf
        log info "starting nginx (listen $PROXY_LISTEN, app $APP_UPSTREAM_URL, auth $AUTH_UPSTREAM)"
        exec nginx -p "$PREFIX/" -c conf/nginx.conf -e stderr -g 'daemon off;'
        ;;
    reload)
        # Render and test next to the live config; swap only when nginx accepts it.
        render_conf "$PREFIX/conf.next"
        wait_for_gate_config
        copy_pages "$PREFIX/conf.next"
        test_conf conf.next
        rm -rf "$PREFIX/conf.previous"
        mv "$PREFIX/conf" "$PREFIX/conf.previous"
        mv "$PREFIX/conf.next" "$PREFIX/conf"
        nginx -p "$PREFIX/" -c conf/nginx.conf -e stderr -s reload
        log info "nginx reloaded"
        ;;
    *)
        die "unknown command '$1' (expected: run, reload)"
        ;;
esac
