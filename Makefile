# bitwright: `make demo` builds the reference pipeline, `make test` runs the tests.
# Both set everything up from a fresh clone: .venv/ with the packages of requirements.lock
# (exact versions; pyproject.toml declares ranges), bubblewrap (the stage sandbox), disorderfs
# and Chromium, and podman with runc and mmdebstrap (the container builder and its build image)
# from Debian's packages when the machine allows it.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DVC_NO_ANALYTICS := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint setup sandbox tools podman clean bench lock fuzz

setup: $(STAMP) sandbox tools podman

$(STAMP): pyproject.toml requirements.lock
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (hint: install Python 3.11)"; exit 3; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev,torch]'
	touch $(STAMP)

# Rewrite requirements.lock from what .venv holds (its header comment is kept).
lock: setup
	{ grep '^#' requirements.lock; $(BIN)/python -m pip freeze --exclude-editable | sed 's/+cpu$$//'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

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

# Tools used where present: disorderfs (the nightly's file-order variation) and Chromium
# (the HTML report's headless-browser test). Without them the variation is named as not
# applied and the test is skipped, each with the reason.
TOOLS := disorderfs chromium
tools:
	@missing=""; for tool in $(TOOLS); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing$$missing (nightly variations, report tests)"; \
		(apt-get install -y -qq $$missing >/dev/null 2>&1 || \
		 (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq $$missing >/dev/null 2>&1)) || \
		echo "warning: could not install$$missing"; \
	else echo "warning:$$missing not installed (hint: apt-get install$$missing)"; fi

# The container builder: podman with runc runs every stage in the build image by digest;
# mmdebstrap makes that image (`bitwright image build`); skopeo and umoci inspect OCI archives;
# uidmap gives user namespaces. Without them the sandbox builder still builds. podman 4.3
# needs runc on hybrid cgroups and ulimits within these machines' limits: containers.conf.
PODMAN_PACKAGES := podman runc mmdebstrap skopeo umoci uidmap
APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends
podman:
	@if command -v podman >/dev/null && command -v runc >/dev/null && command -v mmdebstrap >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing $(PODMAN_PACKAGES) (container builder)"; \
		($(APT_INSTALL) $(PODMAN_PACKAGES) >/dev/null 2>&1 || \
		 (apt-get update -qq >/dev/null 2>&1 && $(APT_INSTALL) $(PODMAN_PACKAGES) >/dev/null 2>&1)) || \
		echo "warning: could not install podman; \`--builder container\` is unavailable here"; \
	else echo "warning: podman is not installed; \`--builder container\` is unavailable (hint: apt-get install $(PODMAN_PACKAGES))"; fi
	@if [ "$$(id -u)" = 0 ] && [ -d /etc/containers ] && [ ! -e /etc/containers/containers.conf ]; then \
		cp containers/containers.conf /etc/containers/containers.conf; fi

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
	@echo "== the committed training trajectory, pushed for auditors (DVC remote 'trajectory'):"
	$(BIN)/dvc push -q checkpoints
	@echo
	@echo "links:      .bitwright/attestations/links/"
	@echo "layout:     .bitwright/attestations/root.layout"
	@echo "provenance: .bitwright/attestations/provenance.intoto.json"
	@echo "release:    dist/release/ and dist/release.tar.gz"
	@echo "rebuild it: $(BIN)/bitwright rebuild dist/release --key .bitwright/keys/owner.pub --out dist/rebuild"
	@echo "audit it:   $(BIN)/bitwright rebuild dist/release --spot-check 21 --key .bitwright/keys/owner.pub --out dist/audit"

test: setup
	$(BIN)/pytest -q -p no:cacheprovider -n 2 --dist loadfile

lint: setup
	$(BIN)/ruff check src tests bench pipelines
	$(BIN)/ruff format --check src tests bench pipelines
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/actionlint -shellcheck=$(BIN)/shellcheck .github/workflows/*.yml
	$(BIN)/zizmor --offline --no-progress --persona=pedantic .github/workflows

bench: setup
	$(BIN)/python bench/digest.py

# What verify parses, fuzzed ten times longer than in `make test` (100,000 cases).
fuzz: setup
	BITWRIGHT_FUZZ_EXAMPLES=100000 $(BIN)/pytest -q -p no:cacheprovider tests/unit/verify/test_verify_fuzz.py

clean:
	rm -rf $(VENV) .bitwright .mypy_cache .ruff_cache .pytest_cache
