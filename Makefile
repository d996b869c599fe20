# The README's first two commands: `make demo` and `make test`.
# Needs only python3 (>= 3.11) and make; everything else goes into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench samples clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/pcapclass sample_pcaps/mixed_site.pcapng --site sample_pcaps/mixed_site.site.toml -o pcapclass-out/demo --fail-on critical; \
	  rc=$$?; [ $$rc -le 1 ] || exit $$rc

test: $(STAMP) lint
	$(BIN)/python -m pytest -q --durations=15

lint: $(STAMP)
	$(BIN)/ruff check analyzer tests benchmarks sample_pcaps notebooks
	$(BIN)/mypy analyzer

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_pipeline.py
	$(BIN)/python benchmarks/bench_stages.py

samples: $(STAMP)
	$(BIN)/python sample_pcaps/generate.py sample_pcaps

clean:
	rm -rf $(VENV) pcapclass-out build *.egg-info
