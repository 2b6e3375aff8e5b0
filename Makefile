# Two commands matter: `make demo` and `make test`. Everything else is optional.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)

.PHONY: install demo test lint format bench-ingest bench-review bench-release bench-extract bench-draft bench-dedupe clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[platform,ml,dev]'
	rm -f $(VENV)/.installed-* && touch $@

var/demo-secret-key:
	@mkdir -p var && $(PYTHON) -c "import secrets; print(secrets.token_urlsafe(48))" > $@

demo: install var/demo-secret-key
	SECRET_KEY=$$(cat var/demo-secret-key) $(PY) manage.py run_demo

test: install
	$(PY) -m pytest -q -p no:cacheprovider

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/lint-imports

format: install
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

bench-ingest: install
	$(PY) tests/benchmarks/bench_ingest.py

bench-review: install
	$(PY) tests/benchmarks/bench_review.py

bench-draft: install
	$(PY) tests/benchmarks/bench_draft.py

bench-dedupe: install
	$(PY) tests/benchmarks/bench_dedupe.py $(if $(REAL),--real $(REAL))

bench-extract: install
	$(PY) tests/benchmarks/bench_extract.py

bench-release: install
	$(PY) tests/benchmarks/bench_release.py

clean:
	rm -rf var
