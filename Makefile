# leadflow — developer and CI entry points. See README.md.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
.PHONY: help venv demo test lint typecheck kafka-jars bench-quick clean

help:
	@echo "make venv        create $(VENV) and install leadflow with its dev extras"
	@echo "make demo        run the demo on the embedded default (SQLite, no Kafka)"
	@echo "make test        lint, type-check and the full test suite (real Kafka and PostgreSQL)"
	@echo "make lint        ruff check + ruff format --check + the layer contract (lint-imports)"
	@echo "make typecheck   mypy (strict)"
	@echo "make kafka-jars  fetch the Kafka broker jars into deploy/kafka/libs"
	@echo "make bench-quick the quick benchmarks; JSON in .run/bench-quick.json"
	@echo "make clean       stop local servers, remove caches, jars and .run/"

venv: $(STAMP)

# Re-install only when pyproject.toml is newer than the stamp.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

demo: venv
	$(BIN)/leadflow demo

test: venv lint typecheck
	$(BIN)/python -m pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: venv
	$(BIN)/mypy

bench-quick: venv
	@mkdir -p .run
	$(BIN)/python -m benchmarks --quick --out .run/bench-quick.json
	@cat .run/bench-quick.json

kafka-jars: venv
	$(BIN)/python -m deploy.kafka.broker jars

clean:
	-@test -x $(BIN)/python && $(BIN)/python -m deploy.kafka.broker destroy
	-@test -x $(BIN)/python && $(BIN)/python -m deploy.postgres.server destroy
	rm -rf .run deploy/kafka/libs .mypy_cache .ruff_cache .pytest_cache .hypothesis build dist *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
