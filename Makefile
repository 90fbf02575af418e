# The two commands of the README: `make serve` and `make test`. Both create .venv and install into it first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install serve test lint bench browser

$(STAMP): pyproject.toml client/pyproject.toml
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

# The results pages' tests drive Debian's chromium through Playwright (its own browser builds cannot be fetched).
browser:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || { \
	  export DEBIAN_FRONTEND=noninteractive; apt-get update -qq >/dev/null && \
	  apt-get install -y -qq chromium chromium-driver >/dev/null; }

test: $(STAMP) browser
	$(VENV)/bin/ruff check service workers tests bench client scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/python -m bench
