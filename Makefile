# TraceBridge: two commands do all set-up on a fresh machine.
#   make demo   creates .venv if missing, installs, runs the main job end to end
#   make test   installs and runs the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
export LITELLM_LOCAL_MODEL_COST_MAP := True
export OMP_NUM_THREADS ?= 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo test browser bench clean

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	-$(PIP) install -q uv

# Reinstall only when the dependency list changes. The constraints file pins torch to the
# local CPU wheel so no CUDA build is downloaded. uv installs the same set as pip (the same
# constraints; pip's find-links, where that wheel lies; the system's certificates), compiled to
# bytecode as pip does (where PYTHONDONTWRITEBYTECODE is set, a venv without .pyc files has every
# process compile torch and Ray again: the suite took 23 minutes instead of 14), in ~65 s instead
# of ~150 s on 2 cores; where uv is missing or fails, pip does it.
FIND_LINKS = $(sort $(PIP_FIND_LINKS) $(shell python3 -m pip config get global.find-links 2>/dev/null))
UV_ARGS = --python $(PY) --native-tls --compile-bytecode -q -c constraints.txt $(foreach d,$(FIND_LINKS),--find-links $(d))
$(VENV)/.installed: pyproject.toml constraints.txt | $(VENV)/bin/python
	if [ -x $(VENV)/bin/uv ] && $(VENV)/bin/uv pip install $(UV_ARGS) -e '.[all]'; then :; \
	else $(PIP) install -q -c constraints.txt -e '.[all]'; fi
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) scripts/demo.py

# Two xdist workers, one test file each at a time (module fixtures stay in one process); the slow
# files go first (tests/conftest.py; --no-loadscope-reorder: xdist would otherwise send the files with
# the most tests first, whatever their length); the files using the session's Ray head go to one worker together.
# TEST_WORKERS=0 runs everything in one process. The 30 slowest
# tests are listed at the end (where CI time goes).
TEST_WORKERS ?= 2
test: install browser
	$(PY) -m pytest -q -p no:cacheprovider --durations=30 $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder) tests

# The report test opens report.html in headless Chromium (Debian's package): installed here when missing and
# apt-get can (root), so `make test` needs nothing else on a fresh machine; otherwise that test says what to do.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "make: chromium is not installed and could not be (the report's browser test will fail)" >&2

bench: install
	$(PY) scripts/bench_capture.py
	$(PY) scripts/bench_sim.py

clean:
	rm -rf demo_out .pytest_cache
