#!/usr/bin/env bash
# Builds (once, then reuses) a Debian 13 "trixie" chroot with nginx 1.26 and njs 0.8, so the gate's
# njs >= 0.8 path (js_shared_dict_zone, js_periodic) can be tested on this Debian 12 host without
# installing trixie packages on the host (glibc differs). Used by `make test-njs08`.
#
#   scripts/trixie-root.sh           build the root if it is missing or incomplete, print its path
#   scripts/trixie-root.sh --path    print the path only (exit 1 if the root is not complete)
#
# The root lives in $GATEWAY_TRIXIE_ROOT (default /var/cache/gateway-trixie). A finished root carries
# the marker file .gateway-trixie-ready (the package versions); a root whose debootstrap did not
# finish is rebuilt from scratch, one that lacks a package of the list below gets it installed.
# Needs root and debootstrap (scripts/install-deps.sh --test installs it). Measured: about 100 s
# and 230 MB on a 2-core machine from nothing; a cached root returns at once.
set -euo pipefail

ROOT=${GATEWAY_TRIXIE_ROOT:-/var/cache/gateway-trixie}
MARKER=$ROOT/.gateway-trixie-ready
# ca-certificates: nginx loads the CA bundle at config time (snippets/tableau-api.conf), as on the host.
PACKAGES=(nginx libnginx-mod-http-js libnginx-mod-http-headers-more-filter njs ca-certificates)
BOOTSTRAPPED=$ROOT/.gateway-trixie-debootstrap-done

log() { printf 'trixie-root: %s\n' "$*" >&2; }
die() {
    log "$*"
    exit 1
}

case ${1:-} in
    --path)
        [ -e "$MARKER" ] || die "no finished root at $ROOT (run scripts/trixie-root.sh)"
        echo "$ROOT"
        exit 0
        ;;
    '') ;;
    -h | --help)
        sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown argument '$1'" ;;
esac

# Every package of the list installed (the marker names them all): nothing to do.
ready() {
    [ -e "$MARKER" ] || return 1
    local pkg
    for pkg in "${PACKAGES[@]}"; do
        grep -q "^$pkg " "$MARKER" || return 1
    done
}
if ready; then
    echo "$ROOT"
    exit 0
fi

[ "$(id -u)" -eq 0 ] || die "building $ROOT needs root (sudo $0)"
command -v debootstrap >/dev/null 2>&1 || die "debootstrap is missing (scripts/install-deps.sh --test, or apt-get install debootstrap)"

mounted=()
unmount_all() {
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        umount "${mounted[$i]}" 2>/dev/null || umount -l "${mounted[$i]}" 2>/dev/null || true
    done
    mounted=()
}
trap unmount_all EXIT

started=$(date +%s)
rm -f "$MARKER"
# A half-built root (interrupted debootstrap) is not worth repairing.
if [ -e "$ROOT" ] && [ ! -e "$BOOTSTRAPPED" ]; then
    log "removing the unfinished root at $ROOT"
    # Never follow a stale mount into the host's /proc or /dev.
    for m in "$ROOT/proc" "$ROOT/dev"; do
        if mountpoint -q "$m" 2>/dev/null; then umount -l "$m"; fi
    done
    rm -rf --one-file-system "$ROOT"
fi
mkdir -p "$(dirname "$ROOT")"

if [ ! -e "$BOOTSTRAPPED" ]; then
    log "debootstrap --variant=minbase trixie $ROOT"
    debootstrap --variant=minbase trixie "$ROOT" http://deb.debian.org/debian >"$ROOT.debootstrap.log" 2>&1 ||
        die "debootstrap failed (see $ROOT.debootstrap.log)"
    rm -f "$ROOT.debootstrap.log"
    touch "$BOOTSTRAPPED"
fi

mount -t proc proc "$ROOT/proc" && mounted+=("$ROOT/proc")
mount --bind /dev "$ROOT/dev" && mounted+=("$ROOT/dev")
# Stop the packages from starting their services inside the chroot (nginx would bind port 80).
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 0755 "$ROOT/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"

log "apt-get install ${PACKAGES[*]} (in the chroot)"
chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends ${PACKAGES[*]} && apt-get clean" \
    >"$ROOT/tmp/apt.log" 2>&1 || die "apt-get in the chroot failed (see $ROOT/tmp/apt.log)"
unmount_all

versions=$(chroot "$ROOT" dpkg-query -W -f='${Package} ${Version}\n' "${PACKAGES[@]}")
printf '%s\n' "$versions" >"$MARKER"
log "ready in $(($(date +%s) - started)) s, $(du -sh --one-file-system "$ROOT" | cut -f1): $(echo "$versions" | tr '\n' ';')"
echo "$ROOT"
