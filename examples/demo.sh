#!/bin/sh
# The main job on the embedded default: start (or reuse) a private mesad on a
# Unix socket with data under $XDG_DATA_HOME/mesa and the generated key in
# $XDG_CONFIG_HOME/mesa (0600), create the repo "app" from examples/app as a
# new change on bookmark main, and show it through the REST API.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
MESAD=${MESAD:-}
for m in "$top/server/mesad" "$top/_build/server/mesad"; do
    [ -z "$MESAD" ] && [ -x "$m" ] && MESAD=$m
done
[ -n "$MESAD" ] || { echo "demo: build mesad first (./configure && make)" >&2; exit 1; }
data=${XDG_DATA_HOME:-$HOME/.local/share}/mesa
conf=${XDG_CONFIG_HOME:-$HOME/.config}/mesa
sock=$data/mesad.sock
cred=$conf/credentials.json

if [ ! -f "$data/mesa.db" ]; then
    mkdir -p "$conf" && chmod 700 "$conf"
    (umask 077 && "$MESAD" init --data "$data" --org local --json >"$cred")
    echo "created the embedded mesad in $data (key in $cred)"
fi
key=$(jq -r .api_key "$cred")
org=$(jq -r .org "$cred")
api() { # METHOD PATH [curl args]
    m=$1 p=$2; shift 2
    curl -sS --unix-socket "$sock" -X "$m" -H "Authorization: Bearer $key" "http://mesad/v1$p" "$@"
}
if ! curl -sf --unix-socket "$sock" http://mesad/healthz >/dev/null 2>&1; then
    nohup "$MESAD" serve --data "$data" --listen "unix:$sock" --ready-file "$data/ready" \
        >>"$data/mesad.log" 2>&1 &
    i=0
    until curl -sf --unix-socket "$sock" http://mesad/healthz >/dev/null 2>&1; do
        i=$((i + 1)); [ $i -lt 100 ] || { echo "demo: mesad did not start, see $data/mesad.log" >&2; exit 1; }
        sleep 0.1
    done
    echo "started mesad on unix:$sock (pid $!)"
fi

api POST "/$org/repos" -H 'Content-Type: application/json' -d '{"name":"app"}' >/dev/null
files=$(cd "$top/examples/app" && for f in $(find . -type f | sort); do
    mode=100644; [ -x "$f" ] && mode=100755
    printf '{"path":"%s","content":"%s","mode":"%s"}\n' "${f#./}" "$(base64 -w0 <"$f")" "$mode"
done | jq -s .)
change=$(jq -n --argjson files "$files" \
    '{base_change_id:"main", message:"Import examples/app", files:$files}' |
    api POST "/$org/app/changes" -H 'Content-Type: application/json' --data-binary @- | jq -r .id)
api PATCH "/$org/app/bookmarks/main" -H 'Content-Type: application/json' \
    -d "{\"change_id\":\"$change\"}" >/dev/null

echo "== repo $org/app"
api GET "/$org/app" | jq '{name, default_bookmark, head_change_id}'
echo "== files at main"
api GET "/$org/app/content?change_id=main&depth=2" | jq -r '.entries[] | "\(.mode // "040000") \(.type)\t\(.size // "-")\t\(.path)"'
echo "== history of main"
api GET "/$org/app/changes?bookmark=main" | jq -r '.changes[] | "\(.id[0:12])  \(.current_commit_oid[0:12])  \((.message // "") | split("\n")[0] // "(root)")"'
echo "== main.c"
api GET "/$org/app/content?change_id=main&path=main.c" -H 'Accept: application/octet-stream'
