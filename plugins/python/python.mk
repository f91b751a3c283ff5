# Python plugins: the SDK in plugins/python/sdk, built with componentize-py
# (see plugins/python/README.md). Included from the top Makefile, which
# builds every plugin (`make plugins`: `wc-host plugin build`, whose
# build.sh runs each project's pytest first) and checks their cases.json
# (`make test-plugins`); here: the SDK's own tests and the hostile plugins.

PY_BUILD := plugins/python/build.sh
PY_VENV := $(or $(WC_HOST_CACHE),$(HOME)/.cache/wc-host)/venv-componentize

.PHONY: test-python-plugins python-evil-plugins

## test-python-plugins: the Python SDK's unit tests (pytest), natively.
test-python-plugins:
	@$(PY_BUILD) --toolchain
	PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=plugins/python/sdk $(PY_VENV)/bin/python -m pytest -q -p no:cacheprovider plugins/python/sdk

## python-evil-plugins: the hostile Python plugins of tests/evil-plugins/python (the Rust tests build them on their own).
python-evil-plugins:
	tests/evil-plugins/python/build.sh $(CARGO_TARGET_DIR)/python-evil
