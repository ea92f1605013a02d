# Two entry points for a fresh machine: `make serve` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LLAMA_CPP_VERSION := 0.3.36
PIP := $(BIN)/python -m pip
PIP_INSTALL := $(PIP) install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: serve test test-fast check bench lock clean i18n

serve: $(VENV)/.installed
	@$(BIN)/shuken serve

test: check
	@$(BIN)/python -m pytest

# The code checks on src/: the layer contract and no import cycles (import-linter), lint (ruff), types (mypy).
check: $(VENV)/.installed-test
	@$(BIN)/lint-imports --no-cache
	@$(BIN)/ruff check src
	@$(BIN)/mypy

test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m "not slow"

# Every benchmark in full mode, roughly 30 minutes on 2 cores (mostly embeddings.py and retrieval.py). Each runs
# even if an earlier one failed; the target fails if any did. tests/test_bench_quick.py runs their --quick.
BENCH_SCRIPTS := $(sort $(filter-out bench/_%,$(wildcard bench/*.py)))
bench: $(VENV)/.installed-test $(VENV)/.llama-server
	@failed=""; for script in $(BENCH_SCRIPTS); do \
		echo "== $$script"; $(BIN)/python $$script || failed="$$failed $$script"; \
	done; \
	if [ -n "$$failed" ]; then echo "failed:$$failed"; exit 1; fi

$(VENV)/.system-deps: scripts/system-deps.sh
	scripts/system-deps.sh
	@mkdir -p $(VENV) && touch $@

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check --upgrade pip

# llama-cpp-python ships only as source; build it once per CPU feature set (see the script for why).
$(VENV)/.llama-wheel: scripts/build-llama-wheel.sh scripts/ggml-cpu-flags.sh | $(BIN)/python $(VENV)/.system-deps
	scripts/build-llama-wheel.sh $(LLAMA_CPP_VERSION) $(BIN)/python > $@.tmp && mv $@.tmp $@

# llama.cpp's own C++ server, the gateway bench's throughput baseline: no wheel ships it, so build it from the
# same sdist (one time, ~10 minutes on 2 cores; cached by version and CPU flags). The file holds its path.
$(VENV)/.llama-server: scripts/build-llama-server.sh scripts/ggml-cpu-flags.sh | $(BIN)/python $(VENV)/.system-deps-test
	scripts/build-llama-server.sh $(LLAMA_CPP_VERSION) $(BIN)/python > $@.tmp && mv $@.tmp $@

$(VENV)/.installed: pyproject.toml constraints.txt $(VENV)/.llama-wheel
	$(PIP_INSTALL) "$$(cat $(VENV)/.llama-wheel)" -e .
	@touch $@

$(VENV)/.system-deps-test: scripts/system-deps.sh | $(VENV)/.system-deps
	scripts/system-deps.sh test
	@touch $@

# The tests run every bench script's --quick mode, and bench/gateway.py --quick includes llama-server when built.
$(VENV)/.installed-test: $(VENV)/.installed $(VENV)/.system-deps-test $(VENV)/.llama-server
	$(PIP_INSTALL) -e '.[test]'
	@touch $@

# Re-pin every dependency to what is installed now (run after changing pyproject.toml).
lock: $(VENV)/.installed-test
	echo '# Exact pins for every dependency (regenerate with `make lock`). torch stays at the local CPU build.' > constraints.txt.new
	$(PIP) freeze --exclude-editable | grep -v '^llama.cpp.python @' | sort >> constraints.txt.new
	echo "llama-cpp-python==$(LLAMA_CPP_VERSION)" >> constraints.txt.new
	echo "torch==2.13.0" >> constraints.txt.new
	mv constraints.txt.new constraints.txt

# Extract the web UI's strings from the templates and merge them into the Japanese catalogue (then translate
# the new empty entries; tests/test_web_text.py fails while any is missing).
i18n: $(VENV)/.installed
	@mkdir -p build
	$(BIN)/pybabel extract -F babel.cfg -k tr --no-location --sort-output --project shuken -o build/messages.pot .
	$(BIN)/pybabel update -i build/messages.pot -d src/shuken/web/locale -l ja --no-fuzzy-matching --no-wrap --ignore-obsolete

clean:
	rm -rf $(VENV) .pytest_cache
