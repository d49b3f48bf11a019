# Two entry points for a fresh machine: `make demo` and `make test` (see README).
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
STORE ?= zcpipe-store

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# The CPU build of torch where a wheel of it lies on the machine (the project's machines: /opt/wheels);
	# elsewhere this finds none and the next line installs the registry's default build.
	$(BIN)/python -m pip install -q --no-deps 'torch==2.13.0+cpu' 2>/dev/null || true
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

.PHONY: install demo test bench
install: $(BIN)/.installed

demo: $(BIN)/.installed
	$(BIN)/zcpipe ingest --space nb201 --limit 20 --workers 2 --data synthetic --store $(STORE)
	$(BIN)/zcpipe sql --store $(STORE) \
	  "SELECT arch, status, synflow, snip FROM archs ORDER BY synflow DESC LIMIT 10"

test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/pytest -q

bench: $(BIN)/.installed
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/pipeline.py
