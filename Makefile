# Entry points for developers and CI. On a fresh Debian 12 machine (root, python3 and git only)
# `make demo` and `make test` set everything up themselves; see `make help`.
#
# Every stage runs through scripts/stage.sh, which prints its elapsed time and records it in
# build/stages.tsv; `make test` ends with the stage-time table and a pytest-style summary of all
# JUnit reports in build/junit/ as its very last line.

SHELL := /bin/bash
.DEFAULT_GOAL := help

ROOT  := $(CURDIR)
VENV  := $(ROOT)/.venv
BUILD := $(ROOT)/build
JUNIT := $(BUILD)/junit
STAGE := $(ROOT)/scripts/stage.sh

# Tools from the controller virtualenv come first (molecule calls ansible-* by name).
export PATH := $(VENV)/bin:$(PATH)
export VIRTUAL_ENV := $(VENV)
export ANSIBLE_CONFIG := $(ROOT)/ansible.cfg
# COMMENTS_IMAGE_DEBIAN12 / COMMENTS_IMAGE_DEBIAN13 (environment): base images of your own for
# the test hosts; when set, scripts/build-images.sh builds none for that release.
export COMMENTS_WHEELHOUSE := $(BUILD)/wheelhouse

# Every check of `make test`, in order. test-molecule runs its scenarios in tracks side by side, and the browser,
# bad-input and benchmark smoke suites on the all-in-one hosts (scripts/molecule-and-browser.sh); the long benchmark
# (`make bench`) is not part of it.
TEST_STAGES := lint test-app test-playbooks test-molecule

# Python code that ruff checks (only the folders that exist).
RUFF_PATHS := $(wildcard app tests scripts bench molecule)

.PHONY: help bootstrap images wheelhouse wheelhouse-check role-docs lint test-app test-playbooks test-molecule test \
	bench bench-smoke demo demo-down clean distclean

help: ## Show this help
	@echo "Targets (run as root on Debian 12; each sets up what it needs):"
	@grep -hE '^[a-z][a-z0-9-]*:.*## ' $(MAKEFILE_LIST) \
		| awk 'BEGIN { FS = ":.*## " } { printf "  %-18s %s\n", $$1, $$2 }'
	@echo "Variables: COMMENTS_IMAGE_DEBIAN12/13 (use your own images)"

bootstrap: ## Install Debian packages, start dockerd, build .venv (quick when done)
	@$(STAGE) bootstrap scripts/bootstrap.sh

images: bootstrap ## Build the systemd Debian 12/13 base images (cached by tag)
	@$(STAGE) images scripts/build-images.sh

wheelhouse: bootstrap ## Download the app's wheels for Python 3.11 and 3.13 (cached)
	@$(STAGE) wheelhouse scripts/build-wheelhouse.sh

wheelhouse-check: images wheelhouse ## Prove each wheelhouse installs offline in its image
	@$(STAGE) wheelhouse-check scripts/build-wheelhouse.sh --check

role-docs: bootstrap ## Write each role README's variables from its argument specs (lint checks them)
	@$(VENV)/bin/python3 scripts/role-docs.py

lint: bootstrap ## ansible-lint, yamllint, role READMEs, shellcheck, ruff (JUnit: build/junit/lint.xml)
	@$(STAGE) lint scripts/lint.sh $(RUFF_PATHS)

test-app: bootstrap ## App tests with coverage of app/ (JUnit: build/junit/app.xml)
	@mkdir -p $(JUNIT)
	@COVERAGE_FILE=$(BUILD)/.coverage $(STAGE) test-app $(VENV)/bin/pytest tests/app \
		--junitxml=$(JUNIT)/app.xml -o junit_suite_name=app \
		--cov=app --cov-report=term --cov-report=xml:$(BUILD)/coverage-app.xml

# The playbooks' refusals on the controller alone (no host, no container): what they refuse before changing anything.
test-playbooks: bootstrap ## Playbook checks on the controller alone (JUnit: build/junit/playbooks.xml)
	@mkdir -p $(JUNIT)
	@$(STAGE) test-playbooks $(VENV)/bin/pytest tests/playbooks \
		--junitxml=$(JUNIT)/playbooks.xml -o junit_suite_name=playbooks

test-molecule: images wheelhouse ## Molecule scenarios side by side; browser, bad input, bench smoke on all-in-one
	@$(STAGE) test-molecule scripts/molecule-and-browser.sh

# The benchmark in its own container comments-bench (docs/performance.md). Not part of `make test`, which runs its
# smoke run (a few viewers, failing only on lost or repeated events and errors, never on timing) on a Molecule host.
bench: images wheelhouse ## Benchmark (< 25 min): bench/results/full-*.json and .png, see docs/performance.md
	@BENCH_KEEP=0 $(STAGE) bench bench/bench.sh full

bench-smoke: images wheelhouse ## Small run of the benchmark in its own container (make test runs it on a Molecule host)
	@BENCH_KEEP=0 $(STAGE) bench-smoke bench/bench.sh smoke

# One make run with -k: a stage whose prerequisite failed is skipped, the others still run;
# the summary (last line) and the exit status cover them all.
test: ## Everything CI runs; ends with a pytest-style summary line
	@rm -rf $(JUNIT) $(BUILD)/stages.tsv; mkdir -p $(JUNIT); \
	start=$$(date +%s.%N); rc=0; \
	$(MAKE) --no-print-directory -k bootstrap images wheelhouse $(TEST_STAGES) || rc=1; \
	python3 scripts/junit-summary.py --stages $(BUILD)/stages.tsv --since $$start || rc=1; \
	exit $$rc

demo: images wheelhouse ## Deploy the app into local containers (https://127.0.0.1:8443)
	@$(STAGE) demo scripts/demo.sh up

demo-down: ## Remove the demo containers
	@scripts/demo.sh down

clean: ## Remove build output (keeps .venv, images, demo secrets, dockerd log)
	@find $(BUILD) -mindepth 1 -maxdepth 1 ! -name 'dockerd.*' ! -name secrets -exec rm -rf --one-file-system {} + 2>/dev/null || true
	@find . -path ./.venv -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
	@rm -rf .pytest_cache tests/*/.pytest_cache .ruff_cache

distclean: clean ## Also remove .venv and the base images
	@rm -rf $(VENV)
	@docker rmi comments-debian:12 comments-debian:13 2>/dev/null || true
