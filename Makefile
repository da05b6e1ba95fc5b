# Two commands matter: `make demo` (the toolkit end to end) and `make test` (the suite).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: install demo test lint bench mutation clean

# torch is pinned to its CPU build first so that the baselines extra cannot pull a multi-GB CUDA build;
# on a GPU machine install the CUDA torch you want instead (TORCH="torch==2.13.0" by default).
TORCH ?= torch==2.13.0
# the demo's baselines (demo --baselines): BASELINES=none for none; LVLM=1 adds lvlm-stack
BASELINES ?= fga-blip2,rahf
LVLM ?= 0
comma := ,
DEMO_BASELINES := $(BASELINES)$(if $(filter 1,$(LVLM)),$(comma)lvlm-stack)

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH)"
	$(PIP) install --quiet -e '.[dev,baselines]'
	touch $@

install: $(VENV)/.installed

# The small synthetic challenge (demo/), trivial submissions (submissions/), validated and scored: one table.
# LVLM=1 adds the lvlm-stack baseline (about 2.5 more minutes the first time); BASELINES=none runs none.
demo: $(VENV)/.installed
	$(VENV)/bin/ntire-t2iqa demo --baselines $(DEMO_BASELINES)

test: $(VENV)/.installed
	$(PY) -m pytest -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check ntire_t2iqa ntire_t2iqa_baselines tests benchmarks

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_score.py

# Mutation score of the scoring core and the converters (mutmut, each module in a scratch copy with its own
# tests; hours on a small machine, not part of CI): MODULES="metrics regions" for some, JOBS=2 to use 2 cores.
MODULES ?=
JOBS ?= 1
mutation: $(VENV)/.installed
	OMP_NUM_THREADS=1 nice -n 5 $(PY) benchmarks/mutation.py $(MODULES) --jobs $(JOBS) --json mutation.json

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
