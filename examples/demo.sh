#!/bin/sh
# The main job on the embedded default: `mesa` starts (or reuses) a private
# mesad on a Unix socket (data in $XDG_DATA_HOME/mesa, key in
# $XDG_CONFIG_HOME/mesa, org "local"), imports examples/app as repo "app"
# (a new change on bookmark main), and shows it through the API.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
MESA=${MESA:-}
for m in "$top/build/tools/mesa" "$top/tools/mesa" "$top/_build/tools/mesa"; do
    [ -z "$MESA" ] && [ -x "$m" ] && MESA=$m
done
[ -n "$MESA" ] || { echo "demo: build first (see README.md)" >&2; exit 1; }
unset MESA_URL MESA_API_KEY MESA_ACCESS_TOKEN

"$MESA" repo import app "$top/examples/app"
echo "== files at main"
"$MESA" ls -l app:
echo "== history of main"
"$MESA" log app
echo "== main.c"
"$MESA" cat app:main.c
