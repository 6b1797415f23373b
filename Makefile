# The README's commands. `make demo` runs the main job on the embedded stack; `make test` runs the checks and tests.
.PHONY: setup demo test lint stack-down

setup:
	./scripts/setup

demo: setup
	.venv/bin/rs-ondemand demo

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy rs_ondemand

test: lint
	.venv/bin/pytest

stack-down:
	.venv/bin/rs-ondemand stack down
