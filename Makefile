# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_PIN := torch==2.13.0
# Test processes (pytest-xdist): one per core by default; `make test WORKERS=1` runs serially.
WORKERS ?= auto

.PHONY: venv demo test test-all lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The pinned CPU build of torch first, so the project's range never pulls a CUDA build.
	$(PY) -m pip install -q $(TORCH_PIN)
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

demo: venv
	SDL_VIDEODRIVER=dummy $(VENV)/bin/icarena run quickstart --overwrite

test: venv
	SDL_VIDEODRIVER=dummy $(PY) -m pytest -m "not slow" -n $(WORKERS)

test-all: venv
	SDL_VIDEODRIVER=dummy $(PY) -m pytest -n $(WORKERS)

# Every benchmark script, one after the other (peers such as OpenSpiel: pip install -e '.[bench]').
bench: venv
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

lint: venv
	$(VENV)/bin/ruff check icarena tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
