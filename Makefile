# Two entry points: `make demo` and `make test`. Both build the environment first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR := build/demo
S2 := data/sen1floods11_spain
SEED ?= 0

.PHONY: demo test layout lint typecheck pytest bench bench-accuracy clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	mkdir -p $(DEMO_DIR)
	$(BIN)/bandfusion train $(S2)/Spain_7370579_S2Hand.tif --labels $(S2)/Spain_7370579_LabelHand.tif \
		--unlabelled -1 --legend $(S2)/legend.json --seed $(SEED) -o $(DEMO_DIR)/water-model
	$(BIN)/bandfusion predict $(S2)/Spain_7370579_S2Hand.tif -m $(DEMO_DIR)/water-model \
		-o $(DEMO_DIR)/water-map.tif --preview $(DEMO_DIR)/water-map.png
	$(BIN)/bandfusion evaluate -m $(DEMO_DIR)/water-model $(S2)/Spain_7370579_S2Hand.tif \
		--labels $(S2)/Spain_7370579_LabelHand.tif --unlabelled -1 --split validation \
		--json $(DEMO_DIR)/validation.json
	@echo "model:     $(DEMO_DIR)/water-model"
	@echo "map:       $(DEMO_DIR)/water-map.tif"
	@echo "quicklook: $(DEMO_DIR)/water-map.png"
	@echo "metrics:   $(DEMO_DIR)/validation.json"

# `bandfusion` is installed from two folders (pipeline/ and models/) through setuptools'
# package-dir mapping, which neither mypy nor import-linter can follow: both read the package
# through a tree of file links laid out as `bandfusion` is installed.
LAYOUT := build/layout

layout: $(STAMP)
	rm -rf $(LAYOUT) && mkdir -p $(LAYOUT)/bandfusion/models
	cp -rs $(CURDIR)/pipeline/. $(LAYOUT)/bandfusion/
	cp -rs $(CURDIR)/models/. $(LAYOUT)/bandfusion/models/
	find $(LAYOUT) -name __pycache__ -prune -exec rm -rf {} +

lint: layout
	$(BIN)/ruff check pipeline models tests bench
	$(BIN)/ruff format --check pipeline models tests bench
	PYTHONPATH=$(LAYOUT) $(BIN)/lint-imports --no-cache

typecheck: layout
	MYPYPATH=$(LAYOUT) $(BIN)/mypy -p bandfusion

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python -m bench

# The accuracy suite: fusion net against scikit-learn baselines on real labelled sets, written
# to docs/accuracy.md (see its header for the run time).
bench-accuracy: $(STAMP)
	$(BIN)/python -m bench.accuracy

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
