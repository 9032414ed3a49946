# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-$(shell cat pyproject.toml setup.py native/*.c | sha256sum | cut -c1-12)
NODE_OK := node_modules/.installed
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1

.PHONY: setup demo test lint synth deploy bench clean

setup: $(STAMP) $(NODE_OK)

$(STAMP): pyproject.toml setup.py $(wildcard native/*.c)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

$(NODE_OK): package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

demo: setup  ## set up, then run the full scenario on the local cloud
	$(VENV)/bin/hallmark demo --out hallmark-out

test: setup  ## set up, then lint, type-check and run every test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -n 2

# example identity provider: synth refuses to run without one (deploy with your own, README "Deploying")
OIDC_EXAMPLE := -c oidcIssuer=https://cognito-idp.us-east-1.amazonaws.com/us-east-1_EXAMPLE -c oidcAudience=hallmark-example-client

synth: setup
	npx cdk synth --quiet $(OIDC_EXAMPLE)

deploy: setup
	npx cdk deploy --all

bench: setup
	$(PY) benchmarks/audit_replay.py
	$(PY) benchmarks/scoring.py --quick

clean:
	rm -rf cdk.out hallmark-out .pytest_cache .mypy_cache
