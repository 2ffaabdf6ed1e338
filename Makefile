# Two commands do all the setup on a fresh machine with only Python 3:
#   make lab    -> .venv, install, JupyterLab on notebooks/
#   make test   -> .venv, install, lint, unit tests, nbval over every notebook, browser test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NBVAL  := --nbval --nbval-current-env --nbval-sanitize-with nbval-sanitize.cfg
LINTED := nlviz tests benchmarks notebooks site

.PHONY: lab test lint unit notebooks notebooks-portable browser execute clean gpu-check

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

# The same nbval pass under other numerics: torch's generic kernels and one thread change the
# last bits of every float the way another CPU (AVX-512 Intel, AVX2 AMD, Apple) does, so a
# notebook that prints a round-off fails here as it would on a student's machine (.ci/run).
notebooks-portable: $(STAMP)
	ATEN_CPU_CAPABILITY=default OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
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

# On a machine with a CUDA GPU: every notebook on cuda, the full training in bf16, the whole
# ablation timed, a GPU checkpoint loaded on the CPU; one table (README, "GPU notes").
gpu-check: $(STAMP)
	$(BIN)/python benchmarks/gpu_check.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# The course as a website (site/, README "The course as a website"): Sphinx + myst-nb +
# sphinx-book-theme from site/requirements.txt (same .venv, own stamp) and MathJax from npm
# (site/package-lock.json), built from the committed notebooks without running them.
SITE_STAMP := $(VENV)/.site-installed
NPM_STAMP  := site/node_modules/.installed

.PHONY: site site-test site-measure serve-site site-clean

$(SITE_STAMP): $(STAMP) site/requirements.txt
	$(BIN)/python -m pip install -r site/requirements.txt
	touch $(SITE_STAMP)

# Without npm this only warns; then the site cannot be built and tests/test_math.py fails
# (it skips only without node).
$(NPM_STAMP): site/package.json site/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  echo "cd site && npm ci"; cd site && npm ci --no-audit --no-fund && touch node_modules/.installed; \
	else echo "npm not found: cannot install MathJax (make site and tests/test_math.py need it)"; fi

site: $(SITE_STAMP) $(NPM_STAMP)
	$(BIN)/python site/build.py

# tests/test_site.py builds the site into a temporary folder and checks it in headless Chromium
# (.ci/run runs this after `make test`, where the test skips: the site's packages are not there).
site-test: $(SITE_STAMP) $(NPM_STAMP)
	NLVIZ_SITE_TEST=1 $(BIN)/python -m pytest -q tests/test_site.py

# Per page of the built site, in headless Chromium at 1280 px: bytes of scripts+styles, fonts,
# images and in all, figures, the height at which a figure's 10-pt text shows, load time.
site-measure: site
	$(BIN)/python site/measure.py

# Serve the built site on http://127.0.0.1:8000 (any static file server will do).
serve-site: site
	$(BIN)/python -m http.server --bind 127.0.0.1 --directory site/_build/html 8000

# The math test (tests/test_math.py, run by `make unit`) checks TeX with the site's MathJax.
unit: $(NPM_STAMP)
clean: site-clean
site-clean:
	rm -rf site/_build site/node_modules
