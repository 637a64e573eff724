# actionloop: build, test, benchmark and package the proxy. `make help` lists the targets.

CARGO ?= cargo
PORT ?= 8080

.PHONY: help build release run test lint bench clean

help: ## list the targets
	@grep -hE '^[a-z][a-zA-Z_-]*:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

build: ## debug build
	$(CARGO) build

release: ## optimised, stripped binary at target/release/actionloop
	$(CARGO) build --release

run: release ## start the proxy on $(PORT) with the embedded Python runtime
	./target/release/actionloop --port $(PORT)

test: ## the whole test suite against real python3, node and php
	$(CARGO) test

bench: ## release build, then the benchmark against the pipe floor (bench/bench.py; BENCH_ARGS=--quick)
	$(CARGO) build --release
	python3 bench/bench.py $(BENCH_ARGS)

lint: ## clippy and rustfmt, as CI checks them
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) fmt --check

clean: ## remove build output
	$(CARGO) clean
