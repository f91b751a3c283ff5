# JavaScript plugins: the SDK in plugins/js/sdk, built with componentize-qjs
# (QuickJS; see plugins/js/README.md). Included from the top Makefile, which
# builds every plugin (`make plugins`: `wc-host plugin build`) and checks
# their cases.json (`make test-plugins`); here: the unit tests, natively.

JS_TESTS = $(wildcard plugins/js/test/*.test.js plugins/js/template/*.test.js plugins/*/rule.test.js)

.PHONY: test-js-plugins

## test-js-plugins: SDK, template and plugin unit tests (node --test).
test-js-plugins:
	node --test $(JS_TESTS)
