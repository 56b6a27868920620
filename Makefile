# Identity gateway. `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
JEST := node --experimental-vm-modules node_modules/jest/bin/jest.js

.PHONY: help deps deps-test build typecheck assertion-key up reload compose-reload test test-unit test-njs test-integration test-njs08 test-e2e validate-compose test-compose bench clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

deps: ## Install what is missing: npm packages; nginx, njs and headers-more (as root)
	@bash scripts/install-deps.sh

deps-test: ## Install test/bench extras too: Chromium, PostgreSQL (if none runs), wrk, valgrind, Docker (docker.io, runc) and docker-compose, libfaketime, gettext-base, debootstrap, the Lua bench peer (libnginx-mod-http-lua)
	@bash scripts/install-deps.sh --test

build: ## Build the njs gate bundle (njs/dist/gate.js) and its njs CLI test runner
	@node scripts/build-njs.mjs

typecheck: ## Type-check the auth service, tests and the njs sources
	@npx tsc -p tsconfig.json --noEmit
	@npx tsc -p njs/tsconfig.json --noEmit

assertion-key: ## New signing key for the identity assertion: ASSERTION_KEY_OUT (data/assertion-key.pem), ASSERTION_KEY_ALG es256|ed25519 (es256); never overwrites
	@node scripts/assertion-key.mjs "$(or $(ASSERTION_KEY_OUT),data/assertion-key.pem)" "$(or $(ASSERTION_KEY_ALG),es256)"

up: deps build ## Start nginx:8080 (PROXY_PORT) + auth service + demo app + store in the foreground (Ctrl-C stops)
	@npx tsx scripts/up.ts

compose-reload: ## docker-compose deployment: recompile nginx/policy.yaml and reload nginx in one step (either refusal keeps the old config serving)
	@bash scripts/compose-reload.sh

reload: ## Re-render nginx/ and reload the running `make up` nginx (PROXY_PORT=8081 make reload picks that instance); waits for the new workers
	@npx tsx scripts/reload.ts

test: deps-test build typecheck test-unit test-njs test-integration test-njs08 test-e2e validate-compose test-compose ## Run every test: unit, njs CLI, integration, njs 0.8, browser, compose (validated, then run for real)
	@echo "make test: all suites passed"

test-unit: ## Unit tests (jest): njs core, auth service, storage
	@$(JEST) --selectProjects unit

test-njs: build ## The shipped njs bundle under the njs CLI
	@njs njs/dist/gate-tests.js

test-integration: ## Real nginx + auth service + PostgreSQL + echo upstream
	@$(JEST) --selectProjects integration --runInBand

test-njs08: build ## nginx 1.26 + njs 0.8.9 from a cached Debian 13 chroot (scripts/trixie-root.sh, as root): revocation within seconds, njs CLI suite
	@GATEWAY_TRIXIE_ROOT="$$(bash scripts/trixie-root.sh)" $(JEST) --selectProjects njs08 --runInBand

test-e2e: ## Browser journeys in Debian's Chromium (playwright-core)
	@$(JEST) --selectProjects e2e --runInBand

test-compose: build ## docker-compose.yml for real (as root): dockerd + local stand-in base images (scripts/compose-test-env.sh), up, first user, login, reload, restarts, privileges
	@$(JEST) --selectProjects compose --runInBand

validate-compose: ## Validate docker-compose.yml with docker-compose config
	@bash scripts/validate-compose.sh

bench: deps-test build ## Benchmark: plain proxy vs gate (no policy, 10 and 1,000 rules) vs its peers (auth_request, + proxy_cache, Lua, njs 0.8.9; ratios), CPU instructions per request vs BENCH_BASELINE, silent renewals per second vs fresh tokens, the WAF's cost (gate with vs without ModSecurity + CRS), then signed-in throughput during a 50-sign-in storm vs without (target >= 90 %)
	@bash scripts/trixie-root.sh >/dev/null || echo "bench: no Debian 13 root (scripts/trixie-root.sh needs root): the njs 0.8.9 scenarios are skipped"
	@npx tsx bench/run.ts
	@npx tsx bench/instructions.ts
	@npx tsx bench/renewal.ts
	@npx tsx bench/waf.ts
	@npx tsx bench/login-storm.ts

clean: ## Remove build output (keeps data/)
	@rm -rf njs/dist
