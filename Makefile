# actionloop: build, test, benchmark and package the proxy. `make help` lists the targets.

CARGO ?= cargo
PORT ?= 8080

.PHONY: help build release run test lint bench clean fuzz

help: ## list the targets
	@grep -hE '^[a-z][a-zA-Z0-9_-]*:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

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
# images where they cannot be pulled: scripts/standins.sh). scripts/images.sh documents the
# settings; the tests are tests/e2e (Python 3, standard library only). SKIP_BUILD=1 tests the
# images already built; E2E_ARGS='--only hello,oom' picks cases.
IMAGES_SH ?= scripts/images.sh
PYTHON ?= python3

.PHONY: images image-python image-nodejs image-php smoke smoke-python smoke-nodejs smoke-php smoke-dropin
.PHONY: e2e e2e-python e2e-nodejs e2e-php e2e-manifest

images: ## build the three runtime images actionloop-{python,nodejs,php}
	$(IMAGES_SH) build all

image-python: ## build the Python runtime image (Dockerfile.python)
	$(IMAGES_SH) build python

image-nodejs: ## build the Node.js runtime image (Dockerfile.nodejs)
	$(IMAGES_SH) build nodejs

image-php: ## build the PHP runtime image (Dockerfile.php)
	$(IMAGES_SH) build php

smoke: ## build the three images, then the quick end-to-end case (a hello action, as the invoker runs it)
	$(IMAGES_SH) smoke all

smoke-python: ## build and smoke-test the Python image
	$(IMAGES_SH) smoke python

smoke-nodejs: ## build and smoke-test the Node.js image
	$(IMAGES_SH) smoke nodejs

smoke-php: ## build and smoke-test the PHP image
	$(IMAGES_SH) smoke php

smoke-dropin: ## the OpenServerless python image with actionloop as /bin/proxy (deploy/dropin/), smoke-tested
	$(IMAGES_SH) dropin

e2e: ## build the three images, then the whole end-to-end suite (tests/e2e) and the runtimes.json check
	$(IMAGES_SH) e2e all

e2e-python: ## build the Python image and run the end-to-end suite on it
	$(IMAGES_SH) e2e python

e2e-nodejs: ## build the Node.js image and run the end-to-end suite on it
	$(IMAGES_SH) e2e nodejs

e2e-php: ## build the PHP image and run the end-to-end suite on it
	$(IMAGES_SH) e2e php

e2e-manifest: ## check deploy/runtimes.json (ExecManifest shape, images the Makefile builds); no engine needed
	$(PYTHON) tests/e2e/run.py manifest

# `make fuzz`: cargo-fuzz (`cargo install cargo-fuzz`) on the stable toolchain. Seeds come from
# fuzz/corpus/<target> (checked in), what the fuzzer learns goes to fuzz/target/corpus/<target>,
# crashes to fuzz/artifacts/<target>. Every target checks the whole contract: no finding is
# tolerated.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= init_request package answer

fuzz: ## run each fuzz target for a bounded time
	@status=0; for t in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/target/corpus/$$t; \
		echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
		RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $$t fuzz/target/corpus/$$t fuzz/corpus/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 || status=1; \
	done; exit $$status
