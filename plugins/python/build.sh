#!/usr/bin/env bash
# Builds a Python counting plugin into a WebAssembly component.
#
#   plugins/python/build.sh PLUGIN_DIR OUT.wasm
#   plugins/python/build.sh --toolchain     # only make sure the venv is ready
#
# PLUGIN_DIR holds `app.py` (the componentize-py entry point) and the rule it
# imports. Its unit tests (`test_*.py`, pytest) run first, natively, with the
# SDK (`$here/sdk`, module `wc_plugin`) on PYTHONPATH; WC_PY_SKIP_TESTS=1
# skips them. The toolchain (componentize-py, pinned, plus pytest) lives in a
# venv under ${WC_HOST_CACHE:-~/.cache/wc-host}, created only when missing,
# so later builds work offline. Everything else is found relative to this
# script (the SDK next to it, the WIT at ../../wit), so it also runs from the
# staging copy `wc-host plugin build` writes.
set -euo pipefail

COMPONENTIZE_PY_VERSION=0.25.1

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=${WC_HOST_CACHE:-$HOME/.cache/wc-host}/venv-componentize

die() {
  echo "build.sh: $*" >&2
  exit 1
}

if [ ! -x "$venv/bin/python" ]; then
  python=${PYTHON:-python3}
  command -v "$python" >/dev/null || die "toolchain: $python not found; install Python 3 (Debian/Ubuntu: apt-get install python3 python3-venv)"
  "$python" -m venv "$venv" \
    || { rm -rf "$venv"; die "toolchain: cannot create the venv $venv with $python (Debian/Ubuntu: apt-get install python3-venv)"; }
fi
# Reinstall only when the pinned version is not the one present.
if [ "$("$venv/bin/componentize-py" --version 2>/dev/null)" != "componentize-py $COMPONENTIZE_PY_VERSION" ] \
  || [ ! -x "$venv/bin/pytest" ]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY_VERSION" "pytest>=8" \
    || die "toolchain: pip install componentize-py==$COMPONENTIZE_PY_VERSION pytest into $venv failed (needs PyPI once)"
fi
if [ "${1:-}" = --toolchain ] && [ $# -eq 1 ]; then
  exit 0
fi

if [ $# -ne 2 ]; then
  echo "usage: $0 PLUGIN_DIR OUT.wasm | $0 --toolchain" >&2
  exit 2
fi
if [ ! -f "$1/app.py" ]; then
  echo "build.sh: $1/app.py: no such file (a Python plugin's entry point; see $here/template/app.py)" >&2
  exit 2
fi
[ -f "$root/wit/plugin.wit" ] || die "$root/wit/plugin.wit: no such file (build.sh must sit at plugins/python/ next to wit/)"
plugin_dir=$(cd "$1" && pwd)
mkdir -p "$(dirname "$2")"
out=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")

# Unit tests, natively: the project's test_*.py with the SDK importable.
# No bytecode or cache files are left in the project.
shopt -s nullglob
tests=("$plugin_dir"/test_*.py)
shopt -u nullglob
if [ ${#tests[@]} -gt 0 ] && [ "${WC_PY_SKIP_TESTS:-}" != 1 ]; then
  (cd "$plugin_dir" && PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$here/sdk${PYTHONPATH:+:$PYTHONPATH}" \
    "$venv/bin/python" -m pytest -q -p no:cacheprovider --rootdir "$plugin_dir" "${tests[@]}") \
    || die "unit tests: pytest ${tests[*]} failed (WC_PY_SKIP_TESTS=1 builds anyway)"
fi

# Build from a staged copy of the sources (tests left out): componentize-py's
# interpreter writes __pycache__ into the directories it imports from.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/app" "$stage/sdk"
find "$plugin_dir" -maxdepth 1 -name '*.py' ! -name 'test_*' -exec cp {} "$stage/app/" \;
(cd "$here/sdk" && find . -name '*.py' ! -name 'test_*' ! -path '*/__pycache__/*' -exec cp --parents {} "$stage/sdk/" \;)
tmp="$stage/out.wasm"
# Run with VIRTUAL_ENV unset: componentize-py adds the current directory and
# an active venv's site-packages to the module path. App dir first, so its
# `rule`/`app` win; the SDK second. RUST_LIB_BACKTRACE=0: a Python
# traceback explains a failing app without Rust frames.
(cd "$stage/app" && env -u VIRTUAL_ENV -u PYTHONPATH RUST_LIB_BACKTRACE=0 "$venv/bin/componentize-py" --quiet \
  -d "$root/wit/plugin.wit" -w counting-plugin \
  componentize app -p "$stage/app" -p "$stage/sdk" -o "$tmp") \
  || die "componentize: componentize-py failed on $plugin_dir/app.py (the traceback above names the file)"
# Same-directory rename: a reader never sees a half-written component.
cp "$tmp" "$out.tmp.$$" || die "output: cannot write $out.tmp.$$"
mv "$out.tmp.$$" "$out"
# `wc-host plugin build` says "built" itself, of the final component.
[ -n "${WC_HOST_BUILDING:-}" ] || echo "built $out ($(du -h "$out" | cut -f1))"
