# tests/lib/mesa.bash - helpers for the suites of the `mesa` command-line
# client: run it against the private mesad of tests/lib/mesad.bash.
#
#   load ../lib/mesa            # also loads mesad.bash
#   setup_file()    { mesad_start; mesa_env; }
#   teardown_file() { mesad_stop; }
#
# mesa_env exports MESA_URL (the server's loopback URL, or its Unix socket
# with `mesa_env unix`), MESA_API_KEY (the admin key) and MESA_ORG=acme, and
# unsets MESA_ACCESS_TOKEN/MESA_PREFIX. Then:
#   mesa ARGS...                  the client with that environment
#   mesa_with VAR=V... -- ARGS... the client with variables changed
#                                 (VAR= sets empty; -u VAR unsets)
#   mesa_bg OUT ERR ARGS...       the client in the background (stdout to OUT,
#                                 stderr to ERR); its pid in $MESA_BG_PID and
#                                 appended to $BATS_TEST_TMPDIR/pids
#   mesa_kill_bg                  kill what mesa_bg started (for teardown)
#   wait_for_line FILE LINE [S]   poll (every 0.1 s, at most S s, default 10)
#                                 until FILE has exactly LINE as a line
#   repo_tree REPO [REV]          sorted "path type mode" lines of the
#                                 repo's tree (GET .../tree)
#   bookmark_change REPO NAME     the change id a bookmark points at

_mesa_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/mesad.bash
source "$_mesa_lib_dir/mesad.bash"

: "${MESA:=${MESA_TOP_BUILDDIR:-$(cd "$_mesa_lib_dir/../.." && pwd)}/tools/mesa}"
export MESA
# the launcher, for tests/tools/mesarun.bats (tests/lib/mount.bash sets the same default)
: "${MESARUN:=${MESA_TOP_BUILDDIR:-$(cd "$_mesa_lib_dir/../.." && pwd)}/tools/mesarun}"
export MESARUN

# mesa_env [unix]
mesa_env() {
    if [ "${1:-}" = unix ]; then
        export MESA_URL="unix:$MESAD_SOCK"
    else
        export MESA_URL="$MESAD_URL"
    fi
    export MESA_API_KEY="$ADMIN_KEY" MESA_ORG=acme
    unset MESA_ACCESS_TOKEN MESA_PREFIX
}

mesa() {
    "$MESA" "$@"
}

# mesa_with [VAR=VALUE | -u VAR]... -- ARGS...
mesa_with() {
    local envargs=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        if [ "$1" = -u ]; then
            envargs+=(-u "$2")
            shift 2
        else
            envargs+=("$1")
            shift
        fi
    done
    [ "${1:-}" = -- ] && shift
    env "${envargs[@]}" "$MESA" "$@"
}

# mesa_bg OUT ERR ARGS...
mesa_bg() {
    local out=$1 err=$2
    shift 2
    "$MESA" "$@" >"$out" 2>"$err" 3>&- </dev/null &
    MESA_BG_PID=$!
    echo "$MESA_BG_PID" >>"$BATS_TEST_TMPDIR/pids"
}

mesa_kill_bg() {
    local pid
    [ -f "$BATS_TEST_TMPDIR/pids" ] || return 0
    while read -r pid; do
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done <"$BATS_TEST_TMPDIR/pids"
    rm -f "$BATS_TEST_TMPDIR/pids"
}

# wait_for_line FILE LINE [SECONDS]
wait_for_line() {
    local file=$1 line=$2 secs=${3:-10} i
    for ((i = 0; i < secs * 10; i++)); do
        grep -qxF -- "$line" "$file" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "no line '$line' in $file after ${secs}s; it has:" >&2
    cat "$file" >&2 2>/dev/null || true
    return 1
}

# repo_tree REPO [CHANGE_OR_BOOKMARK]
repo_tree() {
    api GET "/$MESA_ORG/$1/tree${2:+?change_id=$2}"
    expect 200 || return 1
    jq -r '.entries[] | "\(.path) \(.type) \(.mode)"' <<<"$body" | LC_ALL=C sort
}

# bookmark_change REPO NAME
bookmark_change() {
    api GET "/$MESA_ORG/$1/bookmarks/$2"
    expect 200 || return 1
    jq -r .change_id <<<"$body"
}
