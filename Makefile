# Two commands do everything on a fresh clone: `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ASSETS := vigil/web/static/vendor/.copied

.PHONY: run test lint format assets install clean

run: $(STAMP) $(ASSETS)
	$(VENV)/bin/vigil run

test: $(STAMP) $(ASSETS) lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

install: $(STAMP)

assets: $(ASSETS)

$(STAMP): pyproject.toml
	@scripts/check-prereqs.sh
	@test -x $(PY) || { echo "creating virtualenv $(VENV)"; $$(scripts/find-python.sh) -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --progress-bar off -e '.[dev]'
	@touch $@

$(ASSETS): package.json package-lock.json scripts/copy-assets.sh
	@command -v npm >/dev/null || { echo "npm is missing: install Node.js 18+ with npm (e.g. apt-get install nodejs npm)"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	scripts/copy-assets.sh
	@touch $@

clean:
	rm -rf $(VENV) node_modules vigil/web/static/vendor
