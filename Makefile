# Receipt Manager: the two commands of the README, and the pieces they are made of.
#   make demo   set up this machine and run the demo (broker, server, ingest, a scanner, dashboard)
#   make test   set up this machine and run lint, types and the whole default test suite
.PHONY: demo test check bootstrap services pytest bench

VENV := .venv
BIN := $(VENV)/bin
PACKAGES := models edge_agent server provisioning firmware infra

bootstrap:
	infra/scripts/bootstrap.sh

services:
	infra/scripts/ensure-services.sh

demo: bootstrap
	$(BIN)/receipts demo

check: bootstrap
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(wildcard $(PACKAGES))

pytest: bootstrap services
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: check pytest

# On demand: measurements that print figures (see tests/benchmarks).
bench: bootstrap services
	$(BIN)/python -m pytest -m benchmark -s $(PYTEST_ARGS)
