# Two commands matter: `make demo` (the toolkit end to end) and `make test` (the suite).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: install test lint bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

test: $(VENV)/.installed
	$(PY) -m pytest -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check ntire_t2iqa tests benchmarks

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_score.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
