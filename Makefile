# The two commands of the README: `make serve` and `make test`. Both create .venv and install into it first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install serve test lint bench

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU wheel; a GPU deployment installs a CUDA build of this version first (README).
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q -e ./client
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(VENV)/bin/interp serve

test: $(STAMP)
	$(VENV)/bin/ruff check service workers tests bench client
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/python -m bench
