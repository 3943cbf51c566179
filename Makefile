# netdiag.reachability — entry points. Every target does its own setup.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup demo test unit integration scenarios sanity docs docs-check lint lab-up lab-down bench build

# random lab scenarios with known truth (docs/accuracy.md): make scenarios SEED=7 COUNT=24 [ROUTER=managed] [KERNEL=1]
SEED ?= 1
COUNT ?= 24
ROUTER ?= random
KERNEL ?=

setup:
	@bash scripts/setup.sh

demo: setup
	@$(PY) tests/lab/demo.py $(DEMO_ARGS)

test: setup
	@bash scripts/test.sh

unit: setup
	@$(PY) -m pytest tests/unit -q

integration: setup
	@$(PY) -m pytest tests/integration -q

scenarios: setup
	@$(PY) tests/lab/scenarios.py $(foreach s,$(SEED),--seed $(s)) --count $(COUNT) --router $(ROUTER) \
		$(if $(KERNEL),--kernel) --json artifacts/scenarios/figures.json

sanity: setup
	@bash scripts/sanity.sh

docs: setup
	@$(PY) scripts/gendocs.py

docs-check: setup
	@$(PY) scripts/gendocs.py --check

# ansible-lint leaves a cache in .ansible/ (a copy of the collection): removed unless it was there before
lint: setup
	@$(VENV)/bin/yamllint -s playbooks roles tests/lab/topologies changelogs
	@[ -e .ansible ] && cache=1 || cache=0; \
	$(VENV)/bin/ansible-lint --profile production --nocolor; rc=$$?; \
	[ $$cache = 1 ] || rm -rf .ansible; exit $$rc

lab-up: setup
	@$(PY) tests/lab/labctl up

lab-down:
	@tests/lab/labctl down

bench: setup
	@bash bench/run.sh

build: setup
	@$(VENV)/bin/ansible-galaxy collection build --force --output-path /tmp
