# The two commands of the README, each doing its own set-up:
#   make demo   train an agent on the default toy task (offline, CPU or GPU)
#   make test   run the test suite
#   make docs   build the docs site into site/ (mkdocs --strict; MathJax vendored from npm, served offline)
#   make notebooks   the tutorials (tutorials/*.py, percent cells) as Jupyter notebooks in build/notebooks/
# Set-up: a virtualenv in .venv; torch==2.13.0 first (where a local CPU wheel is configured,
# pip takes it; elsewhere PyPI's default Linux build, which includes CUDA), then this package.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test docs notebooks clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

demo: setup
	$(BIN)/sampo-ref train

test: setup
	$(BIN)/pytest -q --durations=5

docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

notebooks: setup
	$(BIN)/jupytext --to "../build/notebooks//ipynb" tutorials/[0-9][0-9]_*.py

clean:
	rm -rf $(VENV) runs
