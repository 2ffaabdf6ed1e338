# Two commands do all the setup on a fresh machine with only Python 3:
#   make lab    -> .venv, install, JupyterLab on notebooks/
#   make test   -> .venv, install, lint, unit tests, nbval over every notebook, browser test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NBVAL  := --nbval --nbval-current-env --nbval-sanitize-with nbval-sanitize.cfg
LINTED := nlviz tests benchmarks notebooks

.PHONY: lab test lint unit notebooks browser execute clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python requirements.txt pyproject.toml
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -r requirements.txt
	$(BIN)/python -m pip install --no-deps -e .
	touch $(STAMP)

# Jupyter refuses to run as root unless told (containers, cloud VMs); users are not root.
lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/ $$([ "$$(id -u)" = 0 ] && echo --allow-root)

test: lint unit notebooks browser

lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

unit: $(STAMP)
	$(BIN)/python -m pytest -q -m "not browser" tests

notebooks: $(STAMP)
	$(BIN)/python -m pytest -q $(NBVAL) notebooks

# pytest exits 5 when it collects nothing; that is not a failure here.
browser: $(STAMP)
	$(BIN)/python -m pytest -q -m browser tests; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "no browser tests collected"; else exit $$rc; fi

# Re-execute one notebook top to bottom in a fresh kernel, outputs saved in place:
#   make execute NB=notebooks/01_nonlocal_means.ipynb
execute: $(STAMP)
	$(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	  --ExecutePreprocessor.timeout=600 --ExecutePreprocessor.kernel_name=python3 $(NB)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
