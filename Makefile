# Two commands: `make run` serves the app, `make test` runs the whole suite.
PY := .venv/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-browser screenshots venv lint format clean messages

.venv/ready: requirements.txt requirements-dev.txt
	python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

venv: .venv/ready

run: venv
	bash scripts/i18n.sh compile
	DJANGO_DEBUG=$${DJANGO_DEBUG-1} $(PY) manage.py migrate --noinput
	DJANGO_DEBUG=$${DJANGO_DEBUG-1} $(PY) manage.py seed_demo --embed-origin http://localhost:$(PORT)
	DJANGO_DEBUG=$${DJANGO_DEBUG-1} $(PY) manage.py runserver $(HOST):$(PORT)

test: venv
	bash scripts/test.sh $(ARGS)

test-browser: venv
	bash scripts/test-browser.sh $(ARGS)

# Retake the README's pictures (docs/screenshots/) in the browser suite.
screenshots: venv
	SCREENSHOT_DIR=docs/screenshots bash scripts/test-browser.sh -k screenshots

# Gather new strings into locale/ (then translate them), and check none is missing.
messages: venv
	bash scripts/i18n.sh update

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: venv
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

clean:
	rm -rf .venv db.sqlite3* test-db.sqlite3* staticfiles
