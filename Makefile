# Everything a fresh machine needs: `make run` (main job) and `make test` (whole suite).
# Both create .venv/ on first use. torch is installed first, pinned, so pip never
# resolves a newer (CUDA) build. System packages the jobs read data from (Debian's
# fortunes; espeak-ng and sox for speech) are installed with apt when missing.
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
APT_PACKAGES := fortunes espeak-ng sox
export OMP_NUM_THREADS ?= 2

.PHONY: run test test-isa lint bench system

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

# The lower-ISA runs (.ci/run calls this after `make test`): the CPU probe's answers, then the
# kernel, mixed-precision, export, compression and streaming-step tests with every path forced
# down to AVX2 and to the portable loops (its own build, x86 kernels compiled out), and once with
# no C++ compiler (the pure-PyTorch fallback). The forcing switches are in lstmkit/cpu.py.
ISA_TESTS := tests/test_cpu.py tests/kernels tests/export tests/nn/test_autocast_state.py \
	tests/nn/test_cell_streaming.py tests/nn/test_engines.py
AVX2     := LSTMKIT_MAX_ISA=avx2 ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2
PORTABLE := LSTMKIT_MAX_ISA=portable ONEDNN_MAX_CPU_ISA=SSE41 ATEN_CPU_CAPABILITY=default
test-isa: $(STAMP)
	$(PY) -m lstmkit.doctor
	$(PORTABLE) $(PY) -m lstmkit.kernels build --strict  # first: the AVX2 run compares every level
	$(AVX2) $(PY) -m pytest -q -p no:cacheprovider $(ISA_TESTS) \
	  tests/jobs/test_lm.py::test_bfloat16_training_carries_its_state_and_ends_near_float32 \
	  tests/cli/test_classify.py::test_classify_trains_in_bfloat16_on_this_cpu_and_records_it
	$(PORTABLE) $(PY) -m lstmkit.doctor | grep -E '^(level|fused kernels|bfloat16|int8)'
	$(PORTABLE) $(PY) -m pytest -q -p no:cacheprovider $(ISA_TESTS)
	nocxx=$$(mktemp -d); CXX=$$nocxx/no-c++ TORCH_EXTENSIONS_DIR=$$nocxx $(PY) -m pytest -q -p no:cacheprovider \
	  -W ignore::RuntimeWarning tests/test_cpu.py tests/nn tests/export tests/cli/test_lm.py; \
	  status=$$?; rm -rf $$nocxx; exit $$status

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples

bench: $(STAMP)
	$(PY) -m benchmarks.rnn
