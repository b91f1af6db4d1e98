# Everything a fresh machine needs: `make run` (main job) and `make test` (whole suite).
# Both create .venv/ on first use. torch is installed first, pinned, so pip never
# resolves a newer (CUDA) build. System packages the jobs read data from (Debian's
# fortunes; espeak-ng and sox for speech) are installed with apt when missing.
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
APT_PACKAGES := fortunes espeak-ng sox
export OMP_NUM_THREADS ?= 2

.PHONY: run test lint bench system

$(STAMP): pyproject.toml
	$(MAKE) system
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -e ".[all,dev]"
	$(PY) -m lstmkit.kernels build  # compile the fused kernels once, here, not inside the first job
	touch $(STAMP)

# Debian packages, only those missing (needs root or sudo; apt-get update only when needed)
system:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -q $$missing >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q $$missing >/dev/null; }; \
	fi

run: $(STAMP)
	$(VENV)/bin/lstmkit forecast --out runs/forecast

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples

bench: $(STAMP)
	$(PY) -m benchmarks.rnn
