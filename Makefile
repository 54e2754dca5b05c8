# The two commands a user needs: `make demo` and `make test`. Both set up the machine first
# (idempotent, needs root): see scripts/setup.sh.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint unit integration bench vm-test clean

setup:
	@scripts/setup.sh

demo: setup
	$(BIN)/kemu run scenarios/quickstart.yaml --out results/quickstart

test: setup lint
	$(BIN)/pytest -q

unit: setup
	$(BIN)/pytest -q tests/unit

integration: setup
	$(BIN)/pytest -q -m integration

lint: setup
	$(BIN)/ruff check kemu plugins topologies tests
	$(BIN)/mypy kemu plugins topologies

# Not part of `make test`: a benchmark, with figures as ratios measured in the same run.
bench: setup
	$(BIN)/kemu bench --out bench

# The full-kernel lane: netem, the OVS kernel datapath and IPVS, in a stock-kernel VM.
vm-test: setup
	scripts/vm-test.sh

clean: setup
	$(BIN)/kemu clean
