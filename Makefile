# The two commands a newcomer needs: `make dev` and `make test`.
# Everything else is here for day-to-day work.

SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/bank-target
export CARGO_TERM_COLOR ?= always
BIN := $(CARGO_TARGET_DIR)/debug
RELEASE := $(CARGO_TARGET_DIR)/release

.PHONY: help dev test services bins build web lint fmt test-rust test-web e2e fuzz fuzz-short chaos chaos-short bench bench-quick bench-raw-pair clean \
	deploy-check setup deploy-dev deploy-prod status logs monitor security-scan backup restore \
	engine engine-stop images down deploy-test

help:
	@echo "make dev     - start PostgreSQL/Redis/NATS if needed, build, migrate, seed, run everything"
	@echo "make test    - every test (lint, Rust unit+integration, web unit, browser e2e, short fuzz, short chaos)"
	@echo "make bench   - throughput benchmarks (release build; ffd1ebe's raw ceiling first)"
	@echo "make bench-raw-pair - the raw ceiling against ffd1ebe's, alternated on this machine"
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

# The raw line's "before" (ffd1ebe) is measured here first, on this machine
# (scripts/raw-before.sh; its build takes ~9 min the first time).
bench: services
	cargo build --release --workspace --bins
	@BIN=$(RELEASE) scripts/bench.sh

# Issue 19's "raw ceiling >= 2 x" as a before/after pair on this machine:
# builds ffd1ebe aside, alternates the two raw ceilings (~20 min the first time).
bench-raw-pair: services
	cargo build --release --workspace --bins
	@BIN=$(RELEASE) scripts/bench-raw-pair.sh

# The bench harness end to end in seconds (debug build): proves it works,
# its figures mean nothing.
bench-quick: services bins
	@BIN=$(BIN) scripts/bench.sh --quick

deploy-check:
	deploy/scripts/lint-deploy.sh
	deploy/scripts/test-backup-restore.sh

test: services lint test-rust test-web e2e fuzz-short chaos-short bench-quick deploy-check security-scan deploy-test
	@echo "make test: all green"

clean:
	rm -rf .dev frontend/dist

# --- Containers (deploy/README.md) ------------------------------------------
# The engine: Docker; deploy/scripts/engine.sh installs Debian's docker.io and
# docker-compose when missing and starts dockerd when none answers. COMPOSE is
# `docker compose` (v2) when present, else Debian's `docker-compose` (v1).
# Both read the same files; the project name is always given with -p.
COMPOSE ?= $(shell deploy/scripts/engine.sh compose 2>/dev/null || echo docker compose)
COMPOSE_PROJECT_NAME ?= bank
# deploy/compose.standin.yaml joins in where the images are Debian stand-ins
# (no registry here): auto = when postgres:17-alpine carries their label.
STANDIN ?= auto
STANDIN_FILE = $(if $(filter 1,$(STANDIN)),-f deploy/compose.standin.yaml,$(if $(filter auto,$(STANDIN)),$(shell docker image inspect -f '{{index .Config.Labels "bank.stand-in"}}' postgres:17-alpine 2>/dev/null | grep -q . && echo -f deploy/compose.standin.yaml)))
DC = $(COMPOSE) -p $(COMPOSE_PROJECT_NAME) -f deploy/compose.yaml $(STANDIN_FILE)
DC_PROD = $(DC) -f deploy/compose.prod.yaml -f deploy/compose.tls.yaml
# `make logs` follows; LOGS_FOLLOW=0 prints and returns.
LOGS_FOLLOW ?= 1
# Where make backup writes (FILE= names the file instead).
BACKUP_DIR ?= backups

engine:
	@deploy/scripts/engine.sh start
engine-stop:
	@deploy/scripts/engine.sh stop
# Base and stand-in images from Debian packages, then the service images from
# host-built release binaries (no registry needed).
images: engine
	@deploy/scripts/images.sh
# The from-source multi-stage builds (official bases: needs a registry).
build: engine
	$(DC) build
setup:
	deploy/scripts/gen-secrets.sh $(SECRETS_DIR)
deploy-dev: images
	$(DC) up -d --no-build
deploy-prod: engine
	@deploy/scripts/check-secrets.sh $(SECRETS_DIR)
	$(DC_PROD) up -d --no-build
status:
	$(DC) ps
logs:
	$(DC) logs $(if $(filter 0,$(LOGS_FOLLOW)),,-f) --tail=200
monitor: engine
	$(DC) -f deploy/compose.monitor.yaml up -d --no-build
down:
	$(DC) down
# Not part of `make test`: npm audit needs the registry, and cargo-deny
# takes minutes to install the first time.
security-scan:
	@cargo deny --version >/dev/null 2>&1 || cargo install --locked cargo-deny
	deploy/scripts/security-scan.sh
# PostgreSQL is not published: pg_dump / pg_restore run inside its container,
# over the socket. restore stops the writers, restores in one transaction,
# grants the services' roles again (the dump has no privileges: migrate --roles),
# checks the ledger invariants (bankadmin check) and starts them again.
backup:
	@PG_DUMP="docker exec -i $$($(DC) ps -q postgres) pg_dump" deploy/scripts/backup.sh \
	  $(if $(FILE),-o $(FILE),-o $(BACKUP_DIR)/bank-$$(date -u +%Y%m%dT%H%M%SZ).dump) \
	  'postgresql:///bank?host=/var/run/postgresql&user=bank'
restore:
	@test -n "$(FILE)" || { echo "usage: make restore FILE=backups/bank-....dump"; exit 2; }
	$(DC) stop gateway processor
	PG_RESTORE="docker exec -i $$($(DC) ps -q postgres) pg_restore" \
	  PSQL="docker exec -i $$($(DC) ps -q postgres) psql" \
	  deploy/scripts/restore.sh --clean $(FILE) 'postgresql:///bank?host=/var/run/postgresql&user=bank'
	$(DC) run --rm migrate
	$(DC) run --rm migrate check
	$(DC) start gateway processor
# The stack for real: images, dev stack healthy, a transfer through nginx,
# hardening from docker inspect, backup/restore, the prod overlay, down -v.
deploy-test:
	@deploy/scripts/deploy-test.sh
