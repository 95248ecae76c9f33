# The two commands of the README: `make run` and `make test`.
.PHONY: setup run test lint bench

setup:
	@bash scripts/setup.sh

run: setup
	.venv/bin/musicgen gui

test: setup
	QT_QPA_PLATFORM=offscreen .venv/bin/python -m pytest -q -p no:cacheprovider tests

lint:
	.venv/bin/ruff check musicgen_app tests benchmarks

bench:
	.venv/bin/python benchmarks/bench_midi_io.py
