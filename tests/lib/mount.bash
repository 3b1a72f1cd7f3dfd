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

_mount_top=${MESA_TOP_BUILDDIR:-$(cd "$_mount_lib_dir/../.." && pwd)}
: "${MESARUN:=$_mount_top/tools/mesarun}"
: "${MESA_SHIM:=$_mount_top/shim/.libs/libmesafs_preload.so}"
export MESARUN MESA_SHIM

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
