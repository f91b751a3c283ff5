# JavaScript plugins: the SDK in plugins/js/sdk, built with componentize-qjs
# (QuickJS; see plugins/js/README.md). Meant to be included from the top
# Makefile, which defines BIN; standalone:
#   make -f plugins/js/js.mk test-js-plugins BIN=path/to/wc-host
BIN ?= target/release/wc-host

JS_BUILD := plugins/js/build.sh
# What every JS component is made of besides its plugin's own sources.
JS_SDK_SRC := $(JS_BUILD) wit/plugin.wit plugins/js/package-lock.json $(wildcard plugins/js/sdk/*.js)
# Shipped JS plugins: plugins/NAME/ (rule.js, cases.json, rule.test.js) -> plugins/NAME.wasm.
JS_PLUGINS := bigrams
js_src = $(filter-out %.test.js,$(wildcard plugins/$(1)/*.js plugins/$(1)/*.mjs))
JS_TESTS = $(wildcard plugins/js/test/*.test.js plugins/js/template/*.test.js $(foreach p,$(JS_PLUGINS),plugins/$(p)/*.test.js))

.PHONY: plugins-js test-js-plugins

## plugins-js: build the JS plugins into plugins/NAME.wasm.
plugins-js: $(foreach p,$(JS_PLUGINS),plugins/$(p).wasm)

define js_plugin_rule
plugins/$(1).wasm: $(call js_src,$(1)) $(JS_SDK_SRC)
	$(JS_BUILD) plugins/$(1) $$@
endef
$(foreach p,$(JS_PLUGINS),$(eval $(call js_plugin_rule,$(p))))

## test-js-plugins: SDK, template and plugin unit tests (node --test); the template as `plugin new` writes it, built from scratch; every JS plugin against its golden cases.
test-js-plugins: plugins-js
	node --test $(JS_TESTS)
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	  echo "template: copied to $$tmp/tpl-js (SDK into .wc-sdk/), unit-tested, built, checked"; \
	  cp -rL plugins/js/template "$$tmp/tpl-js"; \
	  grep -rlZ __PLUGIN_NAME__ "$$tmp/tpl-js" | xargs -0 -r sed -i 's/__PLUGIN_NAME__/tpl-js/g'; \
	  (cd "$$tmp/tpl-js" && node --test rule.test.js >/dev/null) || { echo "template: node --test failed in $$tmp/tpl-js"; exit 1; }; \
	  $(JS_BUILD) "$$tmp/tpl-js" "$$tmp/tpl-js.wasm"; \
	  $(BIN) plugin test "$$tmp/tpl-js.wasm" --cases "$$tmp/tpl-js/cases.json"
	@set -e; for p in $(JS_PLUGINS); do \
	  echo "$(BIN) plugin test plugins/$$p.wasm --cases plugins/$$p/cases.json"; \
	  $(BIN) plugin test plugins/$$p.wasm --cases plugins/$$p/cases.json; \
	done
