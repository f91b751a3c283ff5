# Python plugins: the SDK in plugins/python/sdk, built with componentize-py
# (see plugins/python/README.md). Meant to be included from the top Makefile,
# which defines BIN; standalone:
#   make -f plugins/python/python.mk test-python-plugins BIN=path/to/wc-host
BIN ?= target/release/wc-host

PY_BUILD := plugins/python/build.sh
PY_VENV := $(or $(WC_HOST_CACHE),$(HOME)/.cache/wc-host)/venv-componentize
# What every Python component is made of besides its plugin's own sources.
PY_SDK_SRC := $(PY_BUILD) wit/plugin.wit plugins/python/sdk/counter.py $(wildcard plugins/python/sdk/wc_plugin/*.py)
# NAME:DIR; plugins/NAME.wasm is built from DIR (app.py, rule.py), checked
# against DIR/cases.json.
PY_PLUGINS := split-space-py:plugins/python/split-space-py stopwords:plugins/stopwords
py_name = $(word 1,$(subst :, ,$(1)))
py_dir = $(word 2,$(subst :, ,$(1)))
py_src = $(filter-out %/test_rule.py,$(wildcard $(1)/*.py))

.PHONY: plugins-python test-python-plugins

## plugins-python: build the Python plugins into plugins/NAME.wasm.
plugins-python: $(foreach p,$(PY_PLUGINS),plugins/$(call py_name,$(p)).wasm)

define py_plugin_rule
plugins/$(call py_name,$(1)).wasm: $(call py_src,$(call py_dir,$(1))) $(PY_SDK_SRC)
	$(PY_BUILD) $(call py_dir,$(1)) $$@
endef
$(foreach p,$(PY_PLUGINS),$(eval $(call py_plugin_rule,$(p))))

## test-python-plugins: SDK and rule unit tests (pytest), then each Python plugin against its golden cases.
test-python-plugins: plugins-python
	@$(PY_BUILD) --toolchain
	PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=plugins/python/sdk $(PY_VENV)/bin/python -m pytest -q -p no:cacheprovider \
	  plugins/python/sdk $(foreach p,$(PY_PLUGINS),$(wildcard $(call py_dir,$(p))/test_*.py))
	@set -e; for p in $(PY_PLUGINS); do \
	  echo "$(BIN) plugin test plugins/$${p%%:*}.wasm --cases $${p#*:}/cases.json"; \
	  $(BIN) plugin test plugins/$${p%%:*}.wasm --cases $${p#*:}/cases.json; \
	done
