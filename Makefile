# The verbs a person types. Everything installs into project-local virtual environments:
# .venv for maaskit (Python >= 3.11), .venv-sam for the SAM CLI (it pins its own boto3).
PYTHON     ?= python3
SAM_PYTHON ?= python3.12
VENV       ?= .venv
SAM_VENV   ?= .venv-sam
BIN        := $(VENV)/bin
SAM        := SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam

.PHONY: setup demo local test lint format bench build deploy clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

## The first quick-start command: the whole service on this machine, trained and serving.
demo: setup
	$(BIN)/maaskit demo

## The local stack alone, in the foreground (Ctrl-C stops it).
local: setup
	$(BIN)/maaskit local up

## The second quick-start command: unit, integration and end-to-end tests.
test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: setup
	@for script in bench/[!_]*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

$(SAM_VENV)/.installed:
	$(SAM_PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet aws-sam-cli
	touch $@

## Validate and build every function and layer for Lambda (python3.12, no container).
build: $(SAM_VENV)/.installed
	$(SAM) validate --lint
	$(SAM) build

deploy: build
	$(SAM) deploy --guided

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
