# The two commands of the README: `make demo` and `make test` (both set up a fresh machine first).
.PHONY: setup demo test test-all bench

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/selfsup demo

test: setup
	.venv/bin/python -m pytest -q

test-all: setup
	.venv/bin/python -m pytest -q -m "slow or not slow"
