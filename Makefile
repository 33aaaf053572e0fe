# Two commands on a fresh clone: `make run` starts the bot, `make test` runs the tests.
# Each sets up its own virtual environment first (and only again when pyproject.toml changes).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Without an NVIDIA GPU, install the CPU build of torch first, from PyTorch's CPU index: from the default
# index the same version is the CUDA build, with about 20 nvidia packages (several GB). Where that index
# can't be reached, the default index, and one line says which was used. --retries 0 and a short
# timeout: pip's defaults (5 retries, 15 s each) would hold the set-up for minutes on a silent network.
TORCH_CPU ?= torch==2.13.0
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_CPU_TIMEOUT ?= 10
# pip compiles every module of every package it installs (torch, ray, opencv, transformers…) on one core:
# about 60 s of a fresh test set-up on 2 cores. So it installs with --no-compile; the tests' venv leaves
# compiling to Python (a module the first time it is imported, only those the suite uses), and the bot's
# set-up compiles everything, zbot included, on all cores (compileall -j 0), so that no start of the bot
# compiles, even as a user that may not write into .venv or the checkout. (compileall's errors are
# third-party files for other Python versions, which pip skips too; a missing .pyc only costs time.)
PIP_INSTALL := $(BIN)/python -m pip install -q --no-compile
SITE_PACKAGES = $$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
# pytest-xdist workers, one per core ("auto"); a file runs on one worker (its module fixtures: one Ray).
# The suite starts ~60 Python processes: bytecode is cached for them even where the environment says not
# to (PYTHONDONTWRITEBYTECODE), in __pycache__ folders git ignores.
TEST_WORKERS ?= auto
HAS_GPU := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo yes)

.PHONY: run test bench env clean

run: $(VENV)/.installed
	$(BIN)/zbot run

test: $(VENV)/.installed-test
	$(BIN)/ruff check zbot tests bench
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

bench: $(VENV)/.installed
	$(BIN)/python bench/core_throughput.py

env: $(VENV)/.installed

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
ifneq ($(HAS_GPU),yes)
	@if $(PIP_INSTALL) --timeout $(TORCH_CPU_TIMEOUT) --retries 0 \
	        --index-url $(TORCH_CPU_INDEX) $(TORCH_CPU) >/dev/null 2>&1; then \
	    echo "torch: $(TORCH_CPU), the CPU build, from $(TORCH_CPU_INDEX)"; \
	else \
	    echo "torch: not installable from $(TORCH_CPU_INDEX) (unreachable?); $(TORCH_CPU) from the default index, maybe the CUDA build"; \
	    $(PIP_INSTALL) $(TORCH_CPU); \
	fi
endif
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.created
	$(PIP_INSTALL) -e .
	$(BIN)/python -m compileall -qq -j 0 $(SITE_PACKAGES) zbot || true
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.created
	$(PIP_INSTALL) -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV)
