# Two entry points matter: `make run` and `make test`. Both create the venv and install on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint chat fuzz install clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m bot serve

chat: $(STAMP)
	$(PY) -m bot chat

test: $(STAMP)
	$(PY) -m pytest

# ruff on everything; mypy strict on dialogs/ and content/, plain on bot/ (pyproject.toml). CI runs it.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# A longer property-based run than CI's (150 examples): FUZZ_EXAMPLES=20000 make fuzz
fuzz: $(STAMP)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-5000} $(PY) -m pytest -q -s tests/e2e/test_fuzz.py -k fuzzed_activities

# The bot, on the data dir and on PostgreSQL (a throwaway PostgreSQL 15 on loopback, stopped at the end), against
# a bare aiohttp server and Microsoft's stock EchoBot, plus store, history, understanding, start-up and memory
# figures side by side, with PASS/FAIL targets (about 4 minutes on a quiet 2-core machine, a million audit
# events included; sized by BENCH_*, see bench/__main__.py). Phony on its own line: a bench/ folder exists, so
# make would call it up to date.
.PHONY: bench
bench: $(STAMP)
	$(PY) -m bench

# Microsoft 365 Agents Playground (a local Teams client, offline) with the bot: installs the pinned npm
# package into node_modules/ if missing (never commit it: licence), refuses a taken port 56150, then
# http://localhost:56150; Ctrl-C stops both. Without Node.js/npm, `make chat` is the fallback.
.PHONY: playground
playground: $(STAMP)
	$(PY) tools/playground.py

clean:
	rm -rf $(VENV) build *.egg-info
