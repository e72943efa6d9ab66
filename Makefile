# The two commands a newcomer needs: `make dev` and `make test`.
# Everything else is here for day-to-day work.

SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/bank-target
export CARGO_TERM_COLOR ?= always
BIN := $(CARGO_TARGET_DIR)/debug
RELEASE := $(CARGO_TARGET_DIR)/release

.PHONY: help dev test services bins build web lint fmt test-rust test-web e2e fuzz fuzz-short chaos chaos-short bench bench-quick clean \
	deploy-check setup deploy-dev deploy-prod status logs monitor security-scan backup restore

help:
	@echo "make dev     - start PostgreSQL/Redis/NATS if needed, build, migrate, seed, run everything"
	@echo "make test    - every test (lint, Rust unit+integration, web unit, browser e2e, short fuzz, short chaos)"
	@echo "make bench   - throughput benchmarks (release build)"
	@echo "make chaos   - the full bank checker with faults (minutes)"
	@echo "make fuzz    - schemathesis against /openapi.json, 500 cases per operation"

services:
	@scripts/services.sh

bins:
	cargo build --workspace --bins

web:
	@scripts/web.sh build

dev: services bins web
	@BIN=$(BIN) scripts/stack.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

test-rust: services
	cargo build --workspace --bins
	cargo test --workspace

test-web:
	@scripts/web.sh test

e2e: services bins web
	@BIN=$(BIN) scripts/e2e.sh

# schemathesis (from PyPI, into .dev/fuzz-venv) against the gateway's own
# /openapi.json on a private stack: no 5xx, every response as documented.
fuzz-short: services bins
	@BIN=$(BIN) FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-25} scripts/fuzz.sh

fuzz: services bins
	@BIN=$(BIN) FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-500} scripts/fuzz.sh

chaos-short: services bins
	@if [ -x $(BIN)/chaos ]; then $(BIN)/chaos --short; else echo "chaos checker not built"; exit 1; fi

chaos: services
	cargo build --release --workspace --bins
	$(RELEASE)/chaos

bench: services
	cargo build --release --workspace --bins
	@BIN=$(RELEASE) scripts/bench.sh

# The bench harness end to end in seconds (debug build): proves it works,
# its figures mean nothing.
bench-quick: services bins
	@BIN=$(BIN) scripts/bench.sh --quick

deploy-check:
	deploy/scripts/lint-deploy.sh
	deploy/scripts/test-backup-restore.sh

test: services lint test-rust test-web e2e fuzz-short chaos-short bench-quick deploy-check
	@echo "make test: all green"

clean:
	rm -rf .dev frontend/dist

# --- Containers (deploy/README.md) ------------------------------------------
# docker compose, or nerdctl compose where only nerdctl exists.
COMPOSE ?= $(shell if command -v docker >/dev/null 2>&1; then echo docker compose; elif command -v nerdctl >/dev/null 2>&1; then echo nerdctl compose; else echo docker compose; fi)
build:
	$(COMPOSE) -f deploy/compose.yaml build
setup:
	deploy/scripts/gen-secrets.sh
deploy-dev:
	$(COMPOSE) -f deploy/compose.yaml up -d --build
deploy-prod:
	$(COMPOSE) -f deploy/compose.yaml -f deploy/compose.prod.yaml up -d --no-build
status:
	$(COMPOSE) -f deploy/compose.yaml ps
logs:
	$(COMPOSE) -f deploy/compose.yaml logs -f --tail=200
monitor:
	$(COMPOSE) -f deploy/compose.yaml -f deploy/compose.monitor.yaml up -d
security-scan:
	deploy/scripts/security-scan.sh
backup:
	deploy/scripts/backup.sh
restore:
	deploy/scripts/restore.sh $(FILE)
