#!/usr/bin/env bash
# One step after editing ./nginx (site, snippets) or ./nginx/policy.yaml in the docker-compose
# deployment (`make compose-reload`):
#   1. the auth service compiles policy.yaml into /run/gate/policy.json (an invalid policy, or an
#      app named by `set $gate_app NAME;` in ./nginx that the policy lacks, is refused here with
#      every problem listed, and the compiled file is left as it was);
#   2. nginx re-renders ./nginx, tests it and reloads (a broken config is refused with nginx's
#      message and the old one keeps serving).
# Extra arguments go to docker-compose (e.g. -f docker-compose.yml -f examples/compose/...).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
docker-compose "$@" exec -T auth npm run --silent policy -- compile --out /run/gate/policy.json --nginx /etc/gateway/nginx
docker-compose "$@" exec -T nginx gateway-nginx reload
