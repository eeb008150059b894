# Every target creates .venv on first use; nothing needs installing by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= etc/transcoder-admin.yaml

.PHONY: install run test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml twisted/plugins/transcoder_admin_plugin.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,lint]'
	# editable installs do not place twistd plugins: copy ours beside Twisted's own
	cp twisted/plugins/transcoder_admin_plugin.py \
	  "$$($(BIN)/python -c 'import os, twisted.plugins as p; print(os.path.dirname(p.__file__))')/"
	touch $(STAMP)

run: install
	$(BIN)/transcoder-admin run --config $(CONFIG)

test: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check transcoder_admin tests benchmarks twisted
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

bench: install
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info var
