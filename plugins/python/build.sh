#!/usr/bin/env bash
# Builds a Python counting plugin into a WebAssembly component.
#
#   plugins/python/build.sh PLUGIN_DIR OUT.wasm
#   plugins/python/build.sh --toolchain     # only make sure the venv is ready
#
# PLUGIN_DIR holds `app.py` (the componentize-py entry point) and the rule it
# imports. The toolchain (componentize-py, pinned, plus pytest for the
# plugins' unit tests) lives in a venv under ${WC_HOST_CACHE:-~/.cache/wc-host},
# created only when missing, so later builds work offline.
set -euo pipefail

COMPONENTIZE_PY_VERSION=0.25.1

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=${WC_HOST_CACHE:-$HOME/.cache/wc-host}/venv-componentize

if [ ! -x "$venv/bin/python" ]; then
  "${PYTHON:-python3}" -m venv "$venv"
fi
# Reinstall only when the pinned version is not the one present.
if [ "$("$venv/bin/componentize-py" --version 2>/dev/null)" != "componentize-py $COMPONENTIZE_PY_VERSION" ] \
  || [ ! -x "$venv/bin/pytest" ]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY_VERSION" "pytest>=8"
fi
if [ "${1:-}" = --toolchain ] && [ $# -eq 1 ]; then
  exit 0
fi

if [ $# -ne 2 ]; then
  echo "usage: $0 PLUGIN_DIR OUT.wasm | $0 --toolchain" >&2
  exit 2
fi
if [ ! -f "$1/app.py" ]; then
  echo "$0: $1 has no app.py" >&2
  exit 2
fi
plugin_dir=$(cd "$1" && pwd)
mkdir -p "$(dirname "$2")"
out=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")

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
(cd "$stage/app" && env -u VIRTUAL_ENV RUST_LIB_BACKTRACE=0 "$venv/bin/componentize-py" --quiet \
  -d "$root/wit" -w counting-plugin \
  componentize app -p "$stage/app" -p "$stage/sdk" -o "$tmp")
# Same-directory rename: a reader never sees a half-written component.
cp "$tmp" "$out.tmp.$$"
mv "$out.tmp.$$" "$out"
echo "built $out ($(du -h "$out" | cut -f1))"
