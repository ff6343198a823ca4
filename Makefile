# make demo   set up .venv, ingest and index the grocery and clothing data (or IMAGES=/some/folder), show each
#             feature once (the detector DETECTOR, when present, is saved in the home's settings for detect and
#             shop the look), then serve the web UI and API on http://localhost:$(PORT)/ (Ctrl-C stops it;
#             SERVE=0 skips it)
# make test   set up .venv, check the code (make lint) and run the tests, with branch coverage (fails below the floor
#             in pyproject.toml)
# make lint   ruff and the import-linter layer contracts (both configured in pyproject.toml)
# make bench  run the benchmarks (slow; prints JSON, writes benchmarks/results/)
# make mutate mutation testing of the core modules (hours; MODULE=NAME for some; writes benchmarks/results/mutation.*)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= ../shared/data
DEMO_HOME ?= viscover-home
IMAGES ?=
PORT ?= 8000
HOST ?= 127.0.0.1
SERVE ?= 1
DETECTOR ?= ../shared/models/centernet-coco.onnx

.PHONY: install demo lint test bench mutate clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# the local CPU build of PyTorch first: a bare `torch` requirement would pull a multi-GB CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/python scripts/demo.py --home $(DEMO_HOME) --data $(DATA) $(if $(IMAGES),--images $(IMAGES)) \
		$(if $(wildcard $(DETECTOR)),--detector $(abspath $(DETECTOR)))
ifeq ($(SERVE),1)
	$(BIN)/viscover serve --home $(DEMO_HOME) --host $(HOST) --port $(PORT)
endif

lint: install
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest -q --cov --cov-report=term

bench: install
	mkdir -p benchmarks/results
	$(BIN)/python benchmarks/embed_throughput.py --json benchmarks/results/embed_throughput.json
	$(BIN)/python benchmarks/retrieval_quality.py --json benchmarks/results/retrieval_quality.json
	$(BIN)/python benchmarks/search_speed.py --json benchmarks/results/search_speed.json
	$(BIN)/python benchmarks/train_quality.py --json benchmarks/results/train_quality.json
	$(BIN)/python benchmarks/pixie_speed.py --json benchmarks/results/pixie_speed.json
	$(BIN)/python benchmarks/related_quality.py --json benchmarks/results/related_quality.json
	$(BIN)/python benchmarks/dedup_calibration.py --json benchmarks/results/dedup_calibration.json

# not part of `make test`: mutmut runs each core module's own tests against every mutant (see benchmarks/mutate.py)
# mutants tested at once: one per core
MUTATE_WORKERS ?= 2
mutate: install
	mkdir -p benchmarks/results
	$(BIN)/python benchmarks/mutate.py $(foreach m,$(MODULE),--module $(m)) --workers $(MUTATE_WORKERS) \
		--json benchmarks/results/mutation.json

clean:
	rm -rf $(VENV) $(DEMO_HOME) .cache .pytest_cache .mutmut mutants
