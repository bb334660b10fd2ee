# Shoal's entry points. `make run` and `make test` are all a fresh machine needs.

VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: setup system venv images run compose compose-down test test-fast lint bench clean

setup: system venv images

system:
	./scripts/install-system.sh

$(BIN)/shoal: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,compose]'
	touch $@

venv: $(BIN)/shoal

images: system
	./scripts/build-images.sh

# A local cluster (NATS, control plane, one node on the local Podman) with the sample app.
run: setup
	$(BIN)/shoal up -f examples/hello.yaml

# A cluster of separate hosts in containers (compose/): three nats-servers, the control plane
# twice over, three nodes with a Podman each, and the sample app. compose/README.md says more.
compose: setup
	./compose/up.sh

compose-down:
	$(BIN)/podman-compose -f compose/compose.yaml down --volumes

# The whole test suite, against real Podman and a real nats-server.
test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest

# The tests that need neither Podman nor NATS.
test-fast: venv
	$(BIN)/pytest -m "not podman and not nats"

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: setup
	$(BIN)/python bench/apply_to_running.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
