# Two commands: `make run` and `make test`. Both install missing Debian packages first.
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

clean:
	rm -rf .build run
