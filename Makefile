# evoart: `make evolve` runs the default evolution, `make test` the whole test suite.
# Both create .venv and install the project first. Torch is pinned to the CPU build
# that lies on this project's CI disk; with a GPU, install your CUDA build of torch into
# .venv first (any torch >= 2.1 satisfies the project) and `make` keeps it.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install evolve test test-fast clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[test,ray]"
	touch $(STAMP)

install: $(STAMP)

evolve: $(STAMP)
	$(BIN)/evoart evolve

test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup --durations=15

test-fast: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup -m "not slow"

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
