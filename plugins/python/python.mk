# Python plugins: the SDK in plugins/python/sdk, built with componentize-py
# (see plugins/python/README.md). Meant to be included from the top Makefile,
# which defines BIN; standalone:
#   make -f plugins/python/python.mk test-python-plugins BIN=path/to/wc-host
BIN ?= target/release/wc-host

PY_BUILD := plugins/python/build.sh
PY_VENV := $(or $(WC_HOST_CACHE),$(HOME)/.cache/wc-host)/venv-componentize
# What every Python component is made of besides its plugin's own sources.
PY_SDK_SRC := $(PY_BUILD) wit/plugin.wit plugins/python/sdk/counter.py $(wildcard plugins/python/sdk/wc_plugin/*.py)
# The template (what `wc-host plugin new --lang python DIR` copies), and
# where it is instantiated as the shipped split-space-py: its placeholder
# replaced like `plugin new` does, outside the source tree.
PY_TEMPLATE := plugins/python/template
PY_GEN := $(or $(CARGO_TARGET_DIR),$(HOME)/.cache/wc-host/target)/python-plugins
# NAME:DIR; plugins/NAME.wasm is built from DIR (app.py, rule.py, test_*.py
# run by build.sh first), checked against DIR/cases.json.
PY_PLUGINS := split-space-py:$(PY_GEN)/split-space-py stopwords:plugins/stopwords
py_name = $(word 1,$(subst :, ,$(1)))
py_dir = $(word 2,$(subst :, ,$(1)))

.PHONY: plugins-python test-python-plugins python-evil-plugins

## plugins-python: build the Python plugins into plugins/NAME.wasm.
plugins-python: $(foreach p,$(PY_PLUGINS),plugins/$(call py_name,$(p)).wasm)

# The template with __PLUGIN_NAME__ = split-space-py, rewritten atomically.
$(PY_GEN)/split-space-py/app.py: $(wildcard $(PY_TEMPLATE)/*)
	@rm -rf $(PY_GEN)/split-space-py.tmp && mkdir -p $(PY_GEN)/split-space-py.tmp
	cp $(PY_TEMPLATE)/* $(PY_GEN)/split-space-py.tmp/
	sed -i 's/__PLUGIN_NAME__/split-space-py/g' $(PY_GEN)/split-space-py.tmp/*
	@rm -rf $(PY_GEN)/split-space-py && mv $(PY_GEN)/split-space-py.tmp $(PY_GEN)/split-space-py

plugins/split-space-py.wasm: $(PY_GEN)/split-space-py/app.py $(PY_SDK_SRC)
	$(PY_BUILD) $(PY_GEN)/split-space-py $@

plugins/stopwords.wasm: $(wildcard plugins/stopwords/*.py) $(PY_SDK_SRC)
	$(PY_BUILD) plugins/stopwords $@

## test-python-plugins: SDK and rule unit tests (pytest), then each Python plugin against its golden cases.
test-python-plugins: plugins-python
	@$(PY_BUILD) --toolchain
	PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=plugins/python/sdk $(PY_VENV)/bin/python -m pytest -q -p no:cacheprovider plugins/python/sdk
	@set -e; for p in $(PY_PLUGINS); do \
	  echo "$(BIN) plugin test plugins/$${p%%:*}.wasm --cases $${p#*:}/cases.json"; \
	  $(BIN) plugin test plugins/$${p%%:*}.wasm --cases $${p#*:}/cases.json; \
	done

## python-evil-plugins: the hostile Python plugins of tests/evil-plugins/python (the Rust tests build them on their own).
python-evil-plugins:
	tests/evil-plugins/python/build.sh $(PY_GEN)/evil
