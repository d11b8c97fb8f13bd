# The README's commands. Everything installs into .venv from PyPI; nothing else is needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench lint clean translations

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/metacrm init --template object_defs/sample --template flows/sample
	$(BIN)/metacrm demo
	$(BIN)/metacrm run

# Two workers (the machine's cores); a module's tests stay on one worker, so its browser
# and demo-company fixtures are built once.
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadscope

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check metacrm tests bench
	$(BIN)/mypy metacrm/metadata metacrm/engine

clean:
	rm -rf $(VENV) instance test-artifacts .pytest_cache

# After changing UI strings: refresh the catalogue, translate the new entries in
# metacrm/ui/translations/zh/LC_MESSAGES/messages.po, then compile.
translations: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k _ -k gettext -k lazy_gettext -k Message -k InvalidValue --no-location -o metacrm/ui/translations/messages.pot .
	$(BIN)/pybabel update -i metacrm/ui/translations/messages.pot -d metacrm/ui/translations -D messages --no-fuzzy-matching
	$(BIN)/pybabel compile -d metacrm/ui/translations -D messages
