# `make run`, `make test` and `make bench` (the media load benchmark, not part of test). All install missing
# Debian packages first.
SWIFT ?= swift
CONFIG ?= trunkline.yaml

.PHONY: deps build run test bench clean

deps:
	./scripts/install-deps.sh

build: deps
	$(SWIFT) build --product trunkline

run: build
	$(SWIFT) run trunkline serve --config $(CONFIG)

# The end-to-end tests start the built binary, so build it first; then every test target.
test: build
	$(SWIFT) test --no-parallel

# Release build in its own scratch path (the debug build stays incremental); BENCH_ARGS e.g. --quick, --g711 100,500.
bench: deps
	$(SWIFT) build -c release --scratch-path .build-release --product trunkline
	$(SWIFT) build -c release --scratch-path .build-release --product trunkline-bench
	python3 bench/media_bench.py $(BENCH_ARGS)

clean:
	rm -rf .build .build-release run
