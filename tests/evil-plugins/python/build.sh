#!/usr/bin/env bash
# Builds the hostile Python plugins (one folder each here) with the Python
# SDK's build script, into OUT_DIR/NAME.wasm:
#
#   tests/evil-plugins/python/build.sh OUT_DIR [NAME...]
#
# host/tests/integration/python_plugins.rs builds them on its own (one at a
# time, cached by a hash of their sources); this is for trying them by hand:
#   wc-host plugin count OUT_DIR/py-raise.wasm --text "boom"
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$here/../../../plugins/python/build.sh
[ $# -ge 1 ] || { echo "usage: $0 OUT_DIR [NAME...]" >&2; exit 2; }
out=$1
shift
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for d in "$here"/*/; do names+=("$(basename "$d")"); done
fi
mkdir -p "$out"
for n in "${names[@]}"; do
  [ -f "$here/$n/app.py" ] || { echo "$0: $here/$n/app.py: no such plugin" >&2; exit 2; }
  "$build" "$here/$n" "$out/$n.wasm"
done
