# `make run` and `make test` work on a fresh machine: they create .venv and install first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.PHONY: run test test-fast screenshots bench bench-quick lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,umap]'
	touch $@

run: $(VENV)/.installed
	$(VENV)/bin/streamlit run app.py --server.headless true --server.port $(PORT) --browser.gatherUsageStats false --server.fileWatcherType none

test: $(VENV)/.installed
	$(PY) -m pytest

test-fast: $(VENV)/.installed
	$(PY) -m pytest -m "not browser"

screenshots: $(VENV)/.installed
	RAG_SCREENSHOTS_DIR=docs/screenshots $(PY) -m pytest -m browser -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check rag app.py tests bench

bench-quick: $(VENV)/.installed
	$(PY) bench/ingest.py --quick
	$(PY) bench/query.py --quick

bench: $(VENV)/.installed
	$(PY) bench/ingest.py
	$(PY) bench/query.py

clean:
	rm -rf $(VENV) .rag .pytest_cache
