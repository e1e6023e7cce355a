# stamps_python: `make demo` runs the chain on a synthetic ISCE2 stack, `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO   := runs/demo

.PHONY: all venv demo test bench clean

all: test

$(STAMP): pyproject.toml requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	rm -rf $(DEMO)
	$(VENV)/bin/stamps_synthetic $(DEMO)/stack --profile easy --rows 300 --cols 600 --seed 7
	$(VENV)/bin/prep_isce $(DEMO)/stack/merged --output $(DEMO)/run --bootstrap-metadata \
		--range-patches 2 --azimuth-patches 1 --write-step1
	@echo
	@echo "Demo stack:    $(DEMO)/stack (truth in $(DEMO)/stack/truth.h5)"
	@echo "Run directory: $(DEMO)/run (parms.json, metadata.json, patch.list, PATCH_*/ps1.h5 ...)"
	@echo "Log:           $(DEMO)/run/stamps.log"

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/prep_bench.py

clean:
	rm -rf $(VENV) runs/demo bench/out .pytest_cache
