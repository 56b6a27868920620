#!/usr/bin/env bash
# Validates docker-compose.yml and .env.example without a Docker engine, using Debian's docker-compose
# (1.29), which rejects Compose-v2-only keys, so a file that passes here works with both.
#
# Checks:
#   - the file is valid with the required secrets set (from the environment, and via .env.example);
#   - it is refused, naming the variable, when POSTGRES_PASSWORD is missing;
#   - the override files in examples/compose/ are valid on top of it;
#   - every ${VAR} in docker-compose.yml is documented in .env.example and vice versa;
#   - only the nginx service publishes ports.
# A developer's own .env is never read. Exit status: 0 if all checks pass, 1 otherwise.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

COMPOSE_FILE=docker-compose.yml
EXAMPLE=.env.example
# JWT_SECRET is not required by compose: JWT_SECRET_FILE (a Docker secret) may replace it, and the
# auth service refuses to start without either, naming both.
REQUIRED=(POSTGRES_PASSWORD)
# Dummy values, for validation only.
DUMMY=(JWT_SECRET=validate-compose-dummy-jwt POSTGRES_PASSWORD=validate-compose-dummy-pg)

command -v docker-compose >/dev/null 2>&1 || {
    echo "validate-compose: docker-compose not found (Debian: apt-get install docker-compose)" >&2
    exit 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
: >"$work/empty.env"

failures=0
pass() { printf 'ok    %s\n' "$1"; }
fail() {
    printf 'FAIL  %s\n' "$1"
    [ -z "${2:-}" ] || sed 's/^/      /' "$2"
    failures=$((failures + 1))
}

# compose ENV_FILE [VAR=value...] -- runs `docker-compose config -q` with only the given variables set
# (none of the compose variables inherited from the caller), output in $work/out.
compose() {
    local env_file=$1
    shift
    local unset_args=()
    local var
    for var in $(compose_variables); do unset_args+=(-u "$var"); done
    env "${unset_args[@]}" "$@" docker-compose -f "$COMPOSE_FILE" --env-file "$env_file" config -q >"$work/out" 2>&1
}

compose_variables() {
    grep -oE '\$\{[A-Z][A-Z0-9_]*' "$COMPOSE_FILE" | cut -c3- | sort -u
}

example_variables() {
    grep -oE '^[A-Z][A-Z0-9_]*=' "$EXAMPLE" | tr -d '=' | sort -u
}

if compose "$work/empty.env" "${DUMMY[@]}"; then
    pass "valid with the required secrets in the environment"
else
    fail "invalid with the required secrets in the environment" "$work/out"
fi

if compose "$EXAMPLE" "${DUMMY[@]}"; then
    pass "valid with $EXAMPLE as the env file (empty optional values fall back to defaults)"
else
    fail "invalid with $EXAMPLE as the env file" "$work/out"
fi

if compose "$EXAMPLE"; then
    fail "$EXAMPLE with its secrets left empty was accepted"
else
    pass "refused with $EXAMPLE as is (secrets empty)"
fi

for missing in "${REQUIRED[@]}"; do
    others=()
    for pair in "${DUMMY[@]}"; do
        [ "${pair%%=*}" = "$missing" ] || others+=("$pair")
    done
    if compose "$work/empty.env" "${others[@]}"; then
        fail "accepted without $missing"
    elif grep -q "$missing is required" "$work/out"; then
        pass "refused without $missing, naming it"
    else
        fail "refused without $missing, but the message does not name it" "$work/out"
    fi
done

for override in examples/compose/*.yml; do
    if env POSTGRES_PASSWORD=validate-compose-dummy-pg docker-compose -f "$COMPOSE_FILE" -f "$override" --env-file "$work/empty.env" config -q >"$work/out" 2>&1; then
        pass "valid with $override on top"
    else
        fail "invalid with $override on top" "$work/out"
    fi
done

undocumented=$(comm -23 <(compose_variables) <(example_variables))
unused=$(comm -13 <(compose_variables) <(example_variables))
if [ -z "$undocumented" ] && [ -z "$unused" ]; then
    pass "every compose variable is documented in $EXAMPLE, and every one there is used"
else
    [ -z "$undocumented" ] || fail "not in $EXAMPLE: $(echo $undocumented)"
    [ -z "$unused" ] || fail "in $EXAMPLE but unused by $COMPOSE_FILE: $(echo $unused)"
fi

unset_args=()
for var in $(compose_variables); do unset_args+=(-u "$var"); done
if env "${unset_args[@]}" "${DUMMY[@]}" docker-compose -f "$COMPOSE_FILE" --env-file "$work/empty.env" config >"$work/config.yml" 2>"$work/out"; then
    published=$(python3 -c '
import sys, yaml
services = yaml.safe_load(open(sys.argv[1]))["services"]
print(" ".join(sorted(name for name, svc in services.items() if svc.get("ports"))))
' "$work/config.yml")
    if [ "$published" = "nginx" ]; then
        pass "only nginx publishes ports"
    else
        fail "services publishing ports: '$published' (expected only nginx)"
    fi
else
    fail "docker-compose config failed" "$work/out"
fi

if [ "$failures" -gt 0 ]; then
    echo "validate-compose: $failures check(s) failed" >&2
    exit 1
fi
echo "validate-compose: all checks passed"
