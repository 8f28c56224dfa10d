# The two commands for a fresh machine: `make demo` and `make test`.
# Both create .venv and install mmcurate into it first (idempotent; reinstalls when pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip check
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/mmcurate demo -o demo-out --samples 200
	$(BIN)/mmcurate validate demo-out

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_vs_img2dataset.py

clean:
	rm -rf $(VENV) demo-out build *.egg-info
