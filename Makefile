# stamps_python: `make demo` runs the chain on a synthetic ISCE2 stack, `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO   := runs/demo
DEMOSB := runs/demo-sb
DEMOCR := runs/demo-cr

.PHONY: all venv demo demo-sb demo-cr test bench clean

all: test

$(STAMP): pyproject.toml requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	rm -rf $(DEMO)
	$(VENV)/bin/stamps_synthetic $(DEMO)/stack --profile easy --rows 300 --cols 600 --seed 7 --quiet
	$(VENV)/bin/prep_isce $(DEMO)/stack/merged $(DEMO)/run --bootstrap-metadata \
		--range-patches 2 --azimuth-patches 1 --write-step1
	$(VENV)/bin/stamps_parms $(DEMO)/run set unwrap_grid_size 50
	$(VENV)/bin/stamps_main --start 1 --end 8 $(DEMO)/run
	$(VENV)/bin/export_results $(DEMO)/run --output-dir $(DEMO)/export \
		--format gpkg --correction v-do --correction v-dso --plot
	@echo
	@echo "Demo finished."
	@echo "  synthetic stack:  $(DEMO)/stack   (truth: $(DEMO)/stack/truth.h5)"
	@echo "  run directory:    $(DEMO)/run     (parms.json, stamps.log, ps2.h5, phuw2.h5, ...)"
	@echo "  GeoPackages:      $$(ls $(DEMO)/export/*.gpkg | tr '\n' ' ')"
	@echo "  plots (PNG):      $(DEMO)/export/*.png ($$(ls $(DEMO)/export/*.png | wc -l) files)"

demo-cr: $(STAMP)
	rm -rf $(DEMOCR)
	$(VENV)/bin/stamps_synthetic $(DEMOCR)/stack --profile easy --rows 300 --cols 600 \
		--dates 30 --seed 7 --corner-reflectors 8 --quiet
	$(VENV)/bin/cr_insar $(DEMOCR)/stack/merged --cr-list $(DEMOCR)/stack/corner_reflectors.csv \
		--output $(DEMOCR)/cr --v-range -80 80
	@echo
	@echo "Corner-reflector demo finished."
	@echo "  synthetic stack:  $(DEMOCR)/stack   (truth: $(DEMOCR)/stack/truth.h5, group cr)"
	@echo "  results:          $(DEMOCR)/cr/cr_insar.csv, $(DEMOCR)/cr/cr_insar.gpkg"
	@echo "  plots (PNG):      $(DEMOCR)/cr/*.png ($$(ls $(DEMOCR)/cr/*.png | wc -l) files)"

demo-sb: $(STAMP)
	rm -rf $(DEMOSB)
	$(VENV)/bin/stamps_synthetic $(DEMOSB)/stack --profile easy --rows 300 --cols 600 --seed 7 --quiet
	$(VENV)/bin/define_sb_pairs $(DEMOSB)/stack/merged $(DEMOSB)/run \
		--max-temporal 60 --max-perpendicular 200
	$(VENV)/bin/prep_isce $(DEMOSB)/stack/merged $(DEMOSB)/run --bootstrap-metadata \
		--small-baseline --range-patches 2 --azimuth-patches 1
	$(VENV)/bin/build_sb_phase $(DEMOSB)/run
	$(VENV)/bin/stamps_parms $(DEMOSB)/run set unwrap_grid_size 50
	$(VENV)/bin/stamps_main --start 1 --end 8 $(DEMOSB)/run
	$(VENV)/bin/export_results $(DEMOSB)/run --output-dir $(DEMOSB)/export \
		--format gpkg --correction v-do --correction V-do --correction V-dso --plot
	@echo
	@echo "Small Baseline demo finished."
	@echo "  synthetic stack:  $(DEMOSB)/stack   (truth: $(DEMOSB)/stack/truth.h5)"
	@echo "  pair network:     $(DEMOSB)/run/small_baselines.list, $(DEMOSB)/run/small_baselines.png"
	@echo "  run directory:    $(DEMOSB)/run     (parms.json, stamps.log, phuw_sb2.h5, phuw2.h5, ...)"
	@echo "  GeoPackages:      $$(ls $(DEMOSB)/export/*.gpkg | tr '\n' ' ')"
	@echo "  plots (PNG):      $(DEMOSB)/export/*.png ($$(ls $(DEMOSB)/export/*.png | wc -l) files)"

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/prep_bench.py

clean:
	rm -rf $(VENV) runs/demo runs/demo-sb bench/out .pytest_cache
