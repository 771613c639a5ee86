# bitwright: `make demo` builds the reference pipeline, `make test` runs the tests.
# Both set everything up from a fresh clone: .venv/ with the pinned packages, and bubblewrap
# (the stage sandbox) from Debian's packages when the machine allows it.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DVC_NO_ANALYTICS := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint setup sandbox clean bench fuzz

setup: $(STAMP) sandbox

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (hint: install Python 3.11)"; exit 3; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The sandbox of sealed stages. Without it stages still run (with `unshare -n`, or unsealed),
# and every link records honestly what was enforced.
sandbox:
	@if command -v bwrap >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing bubblewrap (stage sandbox)"; \
		(apt-get install -y -qq bubblewrap >/dev/null 2>&1 || \
		 (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq bubblewrap >/dev/null 2>&1)) || \
		echo "warning: could not install bubblewrap; stages will be sealed less strictly"; \
	else echo "warning: bubblewrap (bwrap) is not installed; stages will be sealed less strictly (hint: apt-get install bubblewrap)"; fi

demo: setup
	@test -f .bitwright/keys/owner.key || $(BIN)/bitwright keygen
	$(BIN)/bitwright build
	@echo
	@echo "== the reference in-toto verifier on the build's links and layout:"
	cd .bitwright/attestations && ../../$(BIN)/in-toto-verify --layout root.layout \
		--verification-keys ../keys/owner.pub --link-dir links
	@echo
	@echo "== the release, checked as a stranger would (trusting only the owner key given):"
	$(BIN)/bitwright release --out dist/release --force
	$(BIN)/bitwright verify dist/release --key .bitwright/keys/owner.pub
	@echo
	@echo "links:      .bitwright/attestations/links/"
	@echo "layout:     .bitwright/attestations/root.layout"
	@echo "provenance: .bitwright/attestations/provenance.intoto.json"
	@echo "release:    dist/release/ and dist/release.tar.gz"
	@echo "rebuild it: $(BIN)/bitwright rebuild dist/release --key .bitwright/keys/owner.pub --out dist/rebuild"

test: setup
	$(BIN)/pytest -q -p no:cacheprovider

lint: setup
	$(BIN)/ruff check src tests bench pipelines
	$(BIN)/ruff format --check src tests bench pipelines
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: setup
	$(BIN)/python bench/digest.py

# What verify parses, fuzzed ten times longer than in `make test` (100,000 cases).
fuzz: setup
	BITWRIGHT_FUZZ_EXAMPLES=100000 $(BIN)/pytest -q -p no:cacheprovider tests/unit/verify/test_verify_fuzz.py

clean:
	rm -rf $(VENV) .bitwright .mypy_cache .ruff_cache .pytest_cache
