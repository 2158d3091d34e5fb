# Everything installs into the project: .venv (service and tests), .tools/sam (SAM CLI, kept apart
# because its pins clash with the test stack). A fresh clone needs python3, make and Node.js/npm (the ASL validator).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .tools/sam
SAM := $(SAM_VENV)/bin/sam
SAM_CLI_VERSION := 1.170.0
# checkov pins clash with the test stack too: its own venv.
CHECKOV_VENV := .tools/checkov
CHECKOV_VERSION := 3.3.30
PORT ?= 3000

export SAM_CLI_TELEMETRY := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# `sam build` needs the runtime's Python (3.13) on PATH; pyenv installs are found too.
# (pyenv's shims dispatch to the active version only, so its versions folder comes first.)
PY313_DIR := $(shell ls -d "$${PYENV_ROOT:-$$HOME/.pyenv}"/versions/3.13*/bin 2>/dev/null | tail -n1)
ifeq ($(PY313_DIR),)
PY313_DIR := $(shell command -v python3.13 >/dev/null 2>&1 && dirname "$$(command -v python3.13)")
endif

.PHONY: install install-run run invoke smoke upgrade-tasks test lint typecheck validate validate-asl scan tests unit integration system lambda client-tests openapi build bench clean

install: $(BIN)/.installed

# `make run` and `make invoke` install only what serving needs (requirements-run.txt); everything else
# (tests, linters, stubs, the layer as an editable package) comes with `make install`, which `make test`
# and the other targets use.
install-run: $(BIN)/.installed-run

$(BIN)/.installed-run: requirements-run.txt layers/clickstream/requirements.txt client/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-run.txt
	touch $@

$(BIN)/.installed: $(BIN)/.installed-run requirements-dev.txt layers/clickstream/pyproject.toml
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# Node tools (asl-validator, dynalite), pinned by tools/package-lock.json.
NODE_TOOLS := tools/node_modules/.installed
$(NODE_TOOLS): tools/package.json tools/package-lock.json
	cd tools && npm ci --no-audit --no-fund --silent
	touch $@

$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli==$(SAM_CLI_VERSION)
	touch $@

$(CHECKOV_VENV)/.installed:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet checkov==$(CHECKOV_VERSION)
	touch $@

run: install-run
	PORT=$(PORT) $(BIN)/python -m local.server

# One function's handler on one event, as `sam local invoke` runs it, without Docker: the template's
# environment, against the AWS of `make run` on the same PORT (or, when none is running, a fresh embedded one).
#   make invoke FUNCTION=CollectionFunction EVENT=events/register_session.json
invoke: install-run
	@test -n "$(FUNCTION)" -a -n "$(EVENT)" || { echo "usage: make invoke FUNCTION=<logical id> EVENT=events/<file>.json"; exit 2; }
	PORT=$(PORT) $(BIN)/python -m local.invoke $(FUNCTION) $(EVENT)

# Opt-in: the client, signed, through every route of a deployed stack (credentials from the usual places).
#   make smoke STACK=clickstream-dev [REGION=eu-west-1] [SMOKE_RELEASE=1: also release its collecting batch]
smoke: install
	@test -n "$(STACK)" || { echo "usage: make smoke STACK=<stack name> [REGION=...] [SMOKE_RELEASE=1]"; exit 2; }
	SMOKE_STACK=$(STACK) SMOKE_REGION=$(REGION) SMOKE_RELEASE=$(SMOKE_RELEASE) $(BIN)/pytest tests/smoke -p no:cacheprovider

# Once, when upgrading a stack created before the sharded tasks index (docs/operations.md).
upgrade-tasks: install
	@test -n "$(STACK)" || { echo "usage: make upgrade-tasks STACK=<stack name> [REGION=...]"; exit 2; }
	$(BIN)/python -m ops.upgrade_tasks --stack $(STACK) $(if $(REGION),--region $(REGION))

test: install $(SAM_VENV)/.installed $(NODE_TOOLS) lint typecheck validate validate-asl scan tests client-tests

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy layers/clickstream functions local tests bench ops
	cd client && ../$(BIN)/mypy

validate: $(SAM_VENV)/.installed
	$(SAM) validate --lint --region us-east-1

# Security scans: bandit over the Python code, checkov over the template (offline). Every check that
# checkov skips is justified in template.yaml, next to the resource (Metadata: checkov: skip).
scan: install $(CHECKOV_VENV)/.installed
	$(BIN)/bandit -r layers functions local ops client/src -q
	$(CHECKOV_VENV)/bin/checkov -f template.yaml --framework cloudformation --compact --quiet --skip-download

# Every state machine definition, checked against the Amazon States Language; a number given by a
# DefinitionSubstitutions placeholder (the erasure machine's TimeoutSeconds) is checked as 1.
validate-asl: $(NODE_TOOLS)
	mkdir -p .run/asl
	$(foreach definition,$(wildcard statemachines/*.asl.json),sed -E 's/: \$$\{[A-Za-z]+\}(,?)$$/: 1\1/' $(definition) > .run/asl/$(notdir $(definition)) &&) true
	tools/node_modules/.bin/asl-validator $(foreach definition,$(wildcard statemachines/*.asl.json),--json-path .run/asl/$(notdir $(definition)))

# The test tiers (tests/conftest.py): unit (no moto, no network; seconds), integration (moto, in-process),
# system (the local server over HTTP, schemathesis, several server processes), lambda (each function
# packaged and run under Python 3.13 and awslambdaric, as deployed). `make tests` runs all four.
# The lambda tier builds the package itself (once per code change, under .aws-sam/lambda-tier).
export PYTHON313 := $(if $(PY313_DIR),$(PY313_DIR)/python3.13)

tests: install $(NODE_TOOLS)
	$(BIN)/pytest

unit: install
	$(BIN)/pytest tests/unit

integration: install
	$(BIN)/pytest tests/integration

system: install $(NODE_TOOLS)
	$(BIN)/pytest tests/system

lambda: install
	@test -n "$(PY313_DIR)" || { echo "python3.13 not found (the lambda tier runs the functions under it)"; exit 1; }
	$(BIN)/pytest tests/lambda

# The client's own tests (client/, its own pyproject): signing, retries, errors, the CLI, on a fake API.
client-tests: install
	$(BIN)/pytest client/tests -p no:cacheprovider

openapi: install
	$(BIN)/python -m local.openapi

build: $(SAM_VENV)/.installed
	@test -n "$(PY313_DIR)" || { echo "python3.13 not found (needed by sam build for the python3.13 runtime)"; exit 1; }
	PATH="$(PY313_DIR):$$PATH" $(SAM) build --parallel

# Figures, not tests (a few minutes; see bench/RESULTS.md): cold start, warm overhead, DynamoDB requests
# per call, paging latency, throughput, artifact sizes (runs `make build`). BENCH_ARGS=--quick for a smoke run.
bench: install $(SAM_VENV)/.installed
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf .aws-sam $(VENV) .tools .mypy_cache .ruff_cache .pytest_cache
