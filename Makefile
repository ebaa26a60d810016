# Two entry points matter: `make run` and `make test`. Both create the venv and install on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test chat fuzz install clean

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

# A longer property-based run than CI's (150 examples): FUZZ_EXAMPLES=20000 make fuzz
fuzz: $(STAMP)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-5000} $(PY) -m pytest -q -s tests/e2e/test_fuzz.py -k fuzzed_activities

clean:
	rm -rf $(VENV) build *.egg-info
