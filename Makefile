# The verbs a person types. Everything installs into project-local virtual environments:
# .venv for maaskit (Python >= 3.11), .venv-sam for the SAM CLI (it pins its own boto3),
# .venv-checkov for checkov (its dependencies conflict with ours).
PYTHON     ?= python3
SAM_PYTHON ?= python3.12
VENV       ?= .venv
SAM_VENV   ?= .venv-sam
CHECKOV_VENV ?= .venv-checkov
CHECKOV_VERSION ?= 3.3.30
BIN        := $(VENV)/bin
SAM        := SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam

.PHONY: setup demo local test test-fast lint checkov format bench load build deploy clean

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

## The second quick-start command: unit, integration and end-to-end tests, every one of them,
## on $(TEST_WORKERS) pytest-xdist workers. --dist loadfile keeps each test file on one worker,
## in order: an end-to-end module shares one local stack, and moto's state is per process.
## pytest's own exit codes pass through: 5 (no tests collected) fails like any other.
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest --numprocesses $(TEST_WORKERS) --dist loadfile

test: setup
	$(PYTEST)

## The fast subset while you work: unit and integration tests without the slow mark (no
## local stacks, no real pretrained model, no fine-tuning). `make test` still runs them all.
test-fast: setup
	$(PYTEST) -m "not slow" tests/unit tests/integration

lint: setup checkov
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml
	$(BIN)/bandit --quiet --recursive src functions

$(CHECKOV_VENV)/.installed:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet "checkov==$(CHECKOV_VERSION)"
	touch $@

## The template's security checks: fails on any check that is neither passed nor skipped in
## the template with its reason (Metadata: checkov: skip). Offline: no policy download.
checkov: $(CHECKOV_VENV)/.installed
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation --file template.yaml

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: setup
	@for script in bench/[!_]*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

## The load benchmark alone: 16 clients for 30 s over loopback against a local stack it starts.
load: setup
	$(BIN)/python bench/load.py

$(SAM_VENV)/.installed:
	$(SAM_PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet aws-sam-cli
	touch $@

## Validate and build every function and layer for Lambda (python3.12, no container), for
## ARCHITECTURE (x86_64 or arm64): the template's Architecture parameter, and the machine
## layers/Makefile installs the layers' wheels for.
ARCHITECTURE ?= x86_64

build: $(SAM_VENV)/.installed
	$(SAM) validate --lint
	LAYER_ARCHITECTURE=$(ARCHITECTURE) $(SAM) build --parameter-overrides Architecture=$(ARCHITECTURE)

deploy: build
	$(SAM) deploy --guided

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
