# SCRM: `make run` starts the product with a demo brand; `make test` runs the whole suite.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_MEMBERS ?= 3000

.PHONY: run test install install-test bench worker beat messages migrate lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

migrate: install
	$(BIN)/python manage.py migrate --noinput

run: migrate
	$(BIN)/python manage.py bootstrap_demo --members $(DEMO_MEMBERS)
	$(BIN)/python manage.py runserver --noreload $(HOST):$(PORT)

test: install-test
	bash scripts/ensure-chromium.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python manage.py bench $(BENCH_ARGS)

worker: install
	$(BIN)/celery -A scrm worker -Q ingest,scoring,outreach -l info

beat: install
	$(BIN)/celery -A scrm beat -l info

messages: install
	$(BIN)/python manage.py makemessages -l zh_Hans --ignore=.venv --ignore=var
	$(BIN)/python manage.py compilemessages --ignore=.venv

clean:
	rm -rf $(VENV) var
