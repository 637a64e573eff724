# actionloop: build, test, benchmark and package the proxy. `make help` lists the targets.

CARGO ?= cargo
PORT ?= 8080

.PHONY: help build release run test lint bench clean fuzz

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

bench: ## release build and examples/hop.rs, then the benchmark against the physical floor (bench/; BENCH_ARGS=--quick)
	$(CARGO) build --release --bins --examples
	python3 bench/bench.py $(BENCH_ARGS)

lint: ## clippy and rustfmt, as CI checks them
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) fmt --check

clean: ## remove build output
	$(CARGO) clean

# ---- runtime images (Dockerfile.python, Dockerfile.nodejs, Dockerfile.php) ----
# Docker when its engine answers, else podman (with local stand-ins for the official base
# images where they cannot be pulled). scripts/images.sh documents the settings.
IMAGES_SH ?= scripts/images.sh

.PHONY: images image-python image-nodejs image-php smoke smoke-python smoke-nodejs smoke-php smoke-dropin

images: ## build the three runtime images actionloop-{python,nodejs,php}
	$(IMAGES_SH) build all

image-python: ## build the Python runtime image (Dockerfile.python)
	$(IMAGES_SH) build python

image-nodejs: ## build the Node.js runtime image (Dockerfile.nodejs)
	$(IMAGES_SH) build nodejs

image-php: ## build the PHP runtime image (Dockerfile.php)
	$(IMAGES_SH) build php

smoke: ## build the three images, curl /init and /run of a hello action in each, check the logs
	$(IMAGES_SH) smoke all

smoke-python: ## build and smoke-test the Python image
	$(IMAGES_SH) smoke python

smoke-nodejs: ## build and smoke-test the Node.js image
	$(IMAGES_SH) smoke nodejs

smoke-php: ## build and smoke-test the PHP image
	$(IMAGES_SH) smoke php

smoke-dropin: ## the OpenServerless python image with actionloop as /bin/proxy (deploy/dropin/), smoke-tested
	$(IMAGES_SH) dropin

# `make fuzz`: cargo-fuzz (`cargo install cargo-fuzz`) on the stable toolchain. Seeds come from
# fuzz/corpus/<target> (checked in), what the fuzzer learns goes to fuzz/target/corpus/<target>,
# crashes to fuzz/artifacts/<target>. Findings already reported can be tolerated so a long run
# looks for new ones: ACTIONLOOP_FUZZ_KNOWN=utf8,formfeed,init-array (fuzz/fuzz_targets/known.rs).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= init_request package answer

fuzz: ## run each fuzz target for a bounded time
	@status=0; for t in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/target/corpus/$$t; \
		echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
		RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $$t fuzz/target/corpus/$$t fuzz/corpus/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 || status=1; \
	done; exit $$status
