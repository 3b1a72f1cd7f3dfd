# tests/lib/mount.bash - helpers for the shim suites (tests/shim/*.bats):
# a private mesad, repos made through the API, and commands run under
# `mesarun` (the real launcher and the real preload shim).
#
#   load ../lib/mount           # also loads mesa.bash and mesad.bash
#   setup_file()    { mesad_start; mesa_env unix; }
#   teardown_file() { mesad_stop; }
#
# Variables: MESARUN (the launcher), MESA_SHIM (the preload library, which
# mesarun honours), MOUNT_CACHE (a per-test cache dir: each test starts
# cold unless it says otherwise).
#   mkrepo NAME [DIR]        create repo NAME in org acme; with DIR, import
#                            DIR as its first change on bookmark main
#   mr ARGS... -- CMD...     mesarun with --cache-dir $MOUNT_CACHE
#   in_repo NAME CMD...      mesarun --repo NAME -- sh -c CMD (one string)
#   server_cat REPO PATH     the file's bytes at the repo's default bookmark
#                            (through the API), on stdout; exit 1 if absent
#   server_has REPO PATH     exit 0 iff PATH exists at the default bookmark

_mount_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/mesa.bash
source "$_mount_lib_dir/mesa.bash"

# Under `make check` the outer make's variables would reach the builds the
# suites run in a mount (make[3]: ..., jobserver warnings): drop them.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES GNUMAKEFLAGS

_mount_top=${MESA_TOP_BUILDDIR:-$(cd "$_mount_lib_dir/../.." && pwd)}
: "${MESARUN:=$_mount_top/tools/mesarun}"
: "${MESA_SHIM:=$_mount_top/shim/.libs/libmesafs_preload.so}"
export MESARUN MESA_SHIM

# A sanitizer build's shim runs behind the ASan/UBSan runtimes (mesarun
# preloads them first): SAN_PRELOAD is "asan:ubsan:" then, else empty, for
# suites that preload the shim themselves; programs under it must not run
# leak checks (make, gcc... were not written for them).
SAN_PRELOAD=""
if [ -f "$MESA_SHIM" ] && ldd "$MESA_SHIM" 2>/dev/null | grep -q 'libasan\.so'; then
    SAN_PRELOAD=$(ldd "$MESA_SHIM" | awk '/libasan\.so/ {a=$3} /libubsan\.so/ {u=$3} END {print a ":" u ":"}')
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
fi
export SAN_PRELOAD

mount_cache() {
    MOUNT_CACHE=${MOUNT_CACHE:-$BATS_TEST_TMPDIR/cache}
    mkdir -p "$MOUNT_CACHE"
    export MOUNT_CACHE
}

mkrepo() {
    local name=$1 dir=${2:-}
    if [ -n "$dir" ]; then
        "$MESA" repo import "$name" "$dir" >/dev/null
    else
        "$MESA" repo create "$name" >/dev/null
    fi
}

mr() {
    mount_cache
    "$MESARUN" --cache-dir "$MOUNT_CACHE" "$@"
}

in_repo() {
    local name=$1
    shift
    mr --repo "$name" -- sh -c "$*"
}

server_cat() {
    "$MESA" cat "$1:$2"
}

server_has() {
    "$MESA" cat "$1:$2" >/dev/null 2>&1
}

# ---------------------------------------------------------------- conformance
# Appended for the conformance suites (tests/shim/reads, writes, meta, procs,
# pinning, realtime, expiry, invisible .bats):
#   probe_bin                  path of the errno probe (tests/shim/errno-probe.c):
#                              $PROBE, else the build's, else compiled once
#                              from the source into $BATS_RUN_TMPDIR
#   server_is REPO PATH BYTES  PATH's content at the default bookmark is exactly
#                              BYTES (use $'...' for newlines); says why not
#   server_entry REPO PATH     "TYPE MODE" of PATH in the default bookmark's tree
#                              ("file 100644", "symlink 120000", "dir 040000");
#                              exit 1 if absent
#   server_oid REPO PATH       its object id
#   server_mtime_ns REPO PATH  its mtime in nanoseconds
#   server_paths REPO          every path of that tree, sorted, one a line
#   server_change_count REPO   how many changes the repo has (the root included)
#   server_commit REPO         the default bookmark's commit oid
#   mr_bg OUT ERR ARGS...      mr in the background, in its own process group,
#                              stdin /dev/null; its pid in $MR_BG_PID
#   mr_kill_bg                 SIGKILL what mr_bg started (for teardown)

probe_bin() {
    if [ -n "${PROBE:-}" ]; then
        echo "$PROBE"
        return 0
    fi
    local p=$_mount_top/tests/shim/errno-probe
    if [ ! -x "$p" ]; then
        p=${BATS_RUN_TMPDIR:-${TMPDIR:-/tmp}}/errno-probe
        if [ ! -x "$p" ]; then
            ${CC:-cc} -O2 -o "$p.$$" "$_mount_lib_dir/../shim/errno-probe.c" &&
                mv -f "$p.$$" "$p" || return 1
        fi
    fi
    echo "$p"
}

# _server_tree_field REPO PATH JQ-EXPR
_server_tree_field() {
    api GET "/$MESA_ORG/$1/tree"
    expect 200 || return 1
    jq -er --arg p "$2" ".entries[] | select(.path == \$p) | $3" <<<"$body"
}

server_entry() {
    _server_tree_field "$1" "$2" '"\(.type) \(.mode)"'
}

server_oid() {
    _server_tree_field "$1" "$2" .oid
}

server_mtime_ns() {
    _server_tree_field "$1" "$2" .mtime_ns
}

server_paths() {
    api GET "/$MESA_ORG/$1/tree"
    expect 200 || return 1
    jq -r '.entries[].path' <<<"$body" | LC_ALL=C sort
}

server_change_count() {
    api GET "/$MESA_ORG/$1/changes?limit=100"
    expect 200 || return 1
    jq '.changes | length' <<<"$body"
}

server_commit() {
    "$MESA" --json change current "$1" | jq -r .commit_oid
}

mr_bg() {
    local out=$1 err=$2
    shift 2
    mount_cache
    setsid "$MESARUN" --cache-dir "$MOUNT_CACHE" "$@" >"$out" 2>"$err" </dev/null 3>&- &
    MR_BG_PID=$!
    echo "$MR_BG_PID" >>"$BATS_TEST_TMPDIR/mr-pids"
}

mr_kill_bg() {
    local pid
    [ -f "$BATS_TEST_TMPDIR/mr-pids" ] || return 0
    while read -r pid; do
        kill -KILL -- "-$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done <"$BATS_TEST_TMPDIR/mr-pids"
    rm -f "$BATS_TEST_TMPDIR/mr-pids"
}

server_is() {
    local got=$BATS_TEST_TMPDIR/server_is.$$
    server_cat "$1" "$2" >"$got" 2>/dev/null || {
        echo "$1:$2 is not on the server" >&2
        return 1
    }
    printf %s "$3" | cmp -s - "$got" || {
        echo "$1:$2 on the server is not what was expected:" >&2
        od -c "$got" | head -20 >&2
        return 1
    }
}

# ------------------------------------------------------------ suite hooks
# The shim suites' default hooks (a suite that needs others defines its own
# after `load ../lib/mount`): one private mesad per file; per test the
# client environment, C locale and UTC, $T (the test's temp dir) and $P
# (the errno probe); background mesaruns are killed after each test.
setup_file() {
    mesad_start
    mesa_env unix
}
teardown_file() { mesad_stop; }

setup() {
    mesa_env unix
    export LC_ALL=C TZ=UTC
    T=$BATS_TEST_TMPDIR
    P=$(probe_bin)
}

teardown() {
    mr_kill_bg
}
