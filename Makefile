# Two commands set everything up: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed
EMBEDDED := $(PY) -m devtools.embedded_db

.PHONY: demo test lint install install-dev java browser bench-tools js-deps clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# The demo's warehouse-backed experiment reads a DuckDB file: the runtime has its driver.
$(RUNTIME_STAMP): pyproject.toml | $(PY)
	$(PIP) install -q -e '.[duckdb]'
	touch $@

# gbstats 0.8.0 pins numpy<2 and pandas<2; it is only a reference for the statistics tests,
# so it is installed without its pins next to the project's own numpy.
$(DEV_STAMP): pyproject.toml | $(PY)
	$(PIP) install -q -e '.[dev]'
	$(PIP) install -q --no-deps gbstats==0.8.0
	touch $(RUNTIME_STAMP) $@

install: $(RUNTIME_STAMP)
install-dev: $(DEV_STAMP) java

# The Spark connector (pyspark, in the dev extra) runs Spark in a Java runtime: install Debian's
# (OpenJDK 17, which pyspark 4 supports) when `java` is missing.
java:
	@command -v java >/dev/null 2>&1 || { \
	  echo "installing Debian's Java runtime for the Spark connector"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless >/dev/null; }

# Browser tests drive Debian's Chromium; install it when it is missing.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The JavaScript SDKs that the tests drive in Node.js (tests/js, pinned by its lockfile).
JS_STAMP := tests/js/node_modules/.installed
$(JS_STAMP): tests/js/package.json tests/js/package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
	  echo "installing Debian nodejs and npm for the JavaScript SDK tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
	cd tests/js && npm ci --no-audit --no-fund --loglevel=error
	touch $@
js-deps: $(JS_STAMP)

# The serving benchmark drives the server with wrk; install it when it is missing.
bench-tools: $(DEV_STAMP)
	@command -v wrk >/dev/null 2>&1 || { \
	  echo "installing Debian wrk for bench/serve.py"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

# The demo starts and stops the embedded database itself: after Ctrl-C the server and the
# worker stop first, then the database.
demo: $(RUNTIME_STAMP)
	$(PY) -m devtools.demo

test: $(DEV_STAMP) java browser $(JS_STAMP)
	$(EMBEDDED) --data .test-db/pgdata -- $(PY) -m pytest $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) .test-db .static tests/js/node_modules
