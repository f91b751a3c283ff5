# C plugins: the SDK in plugins/c/sdk, built with clang for wasm32-wasi and
# componentized by the host (see plugins/c/README.md). Meant to be included
# from the top Makefile, which defines BIN; standalone:
#   make -f plugins/c/c.mk test-c-plugins BIN=path/to/wc-host
BIN ?= target/release/wc-host

C_BUILD := plugins/c/build.sh
C_TOOLS := $(or $(WC_HOST_CACHE),$(HOME)/.cache/wc-host)/tools
# Same major/minor as the workspace's wit-bindgen (Cargo.lock).
WIT_BINDGEN_CLI_VERSION := 0.46.0
WIT_BINDGEN_CLI := $(C_TOOLS)/bin/wit-bindgen

.PHONY: c-bindings test-c-plugins

## c-bindings: regenerate plugins/c/sdk/gen from wit/plugin.wit (wit-bindgen c).
c-bindings:
	@if [ "$$($(WIT_BINDGEN_CLI) --version 2>/dev/null | cut -d' ' -f2)" != "$(WIT_BINDGEN_CLI_VERSION)" ]; then \
	  echo "installing wit-bindgen-cli $(WIT_BINDGEN_CLI_VERSION) into $(C_TOOLS)"; \
	  cargo install --quiet --locked wit-bindgen-cli --version $(WIT_BINDGEN_CLI_VERSION) --root $(C_TOOLS); \
	fi
	$(WIT_BINDGEN_CLI) c wit/plugin.wit --world counting-plugin --out-dir plugins/c/sdk/gen
	@# wit-bindgen-c 0.46 exports the resource destructor under the C name
	@# (`[dtor]task_counter`); wit-component does not see it as the dtor of
	@# `task-counter`, so it never ran and every task leaked its state
	@# (bytecodealliance/wit-bindgen#1341). Use the WIT name.
	sed -E -i ':a; s/(#\[dtor\][a-z0-9-]*)_/\1-/; ta' plugins/c/sdk/gen/counting_plugin.c
	@grep -q '#\[dtor\]task-counter"' plugins/c/sdk/gen/counting_plugin.c || { echo "c-bindings: no [dtor]task-counter export in counting_plugin.c" >&2; exit 1; }
	@ls -l plugins/c/sdk/gen

## test-c-plugins: SDK unit tests; the template made and built like a user
## would (`wc-host plugin new --lang c` + `plugin build`, which installs the
## apt packages when missing, runs test_rule.c natively, then cases.json);
## then the leak check (sdk/tests/lifetime: 26 tasks of 256 KiB each,
## succeeding and failing, in one instance capped at 2 MiB).
test-c-plugins:
	@$(C_BUILD) --toolchain
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	  c_sdk_test="cc -std=c11 -O1 -g -Wall -Wextra -Iplugins/c/sdk plugins/c/sdk/test_sdk.c plugins/c/sdk/wc_plugin.c -o $$tmp/test_sdk"; \
	  $$c_sdk_test -fsanitize=address 2>/dev/null || $$c_sdk_test; \
	  "$$tmp/test_sdk"; \
	  $(BIN) plugin new --lang c "$$tmp/split-space-c"; \
	  $(BIN) plugin build "$$tmp/split-space-c"; \
	  $(BIN) plugin build plugins/c/sdk/tests/lifetime -o "$$tmp/lifetime.wasm" --no-test; \
	  echo "$(BIN) plugin test $$tmp/lifetime.wasm --plugin-memory-mib 2"; \
	  $(BIN) plugin test "$$tmp/lifetime.wasm" --cases plugins/c/sdk/tests/lifetime/cases.json --plugin-memory-mib 2
