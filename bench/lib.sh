# bench/lib.sh - helpers shared by the bench/ scripts (shim-build, peers,
# audit-cost, realtime-latency, trap-cost). Sourced, never run. The caller sets PROG
# (its name in messages) and `set -euo pipefail`, then sources this file;
# nothing here runs on source.
#
# Globals: fail() appends to FAILURES and sets FAILED; bench_find_build sets
# MESA_BUILD, MESAD, MESA, MESARUN and MESA_SHIM (exported);
# bench_start_mesad sets PID, KEY, SOCK and MENV (the `env ...` prefix that
# gives mesa/mesarun the server and its credentials); bench_time sets SECS.
# shellcheck shell=bash
# shellcheck disable=SC2034 # globals set here are read by the caller

FAILED=0
FAILURES=()
PID=""

die() { # MESSAGE: a usage or setup error, exit 2
    echo "$PROG: $*" >&2
    exit 2
}

fail() { # MESSAGE: a failed run; listed under the table, exit status 1
    FAILED=1
    FAILURES+=("$*")
    echo "!! $*" >&2
}

int_in() { # VALUE MIN MAX NAME
    if ! [[ $1 =~ ^[0-9]+$ ]] || [ "$1" -lt "$2" ] || [ "$1" -gt "$3" ]; then
        die "$4 must be an integer in $2..$3 (got '$1')"
    fi
}

bench_need() { # TOOL...
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || die "needs '$tool'"
    done
}

bench_usage_env() { # the environment paragraph of every -h
    cat <<'EOF'
environment: MESA_BUILD = the build directory (default: the first of ./build,
  ., ./_build under the repository top that has tools/mesarun); MESAD, MESA,
  MESARUN, MESA_SHIM override single files. Nothing is built: use an
  optimised build, not the sanitizer build of tests/run-all.
EOF
}

bench_find_build() { # TOP: the binaries to benchmark (see bench_usage_env)
    local b
    if [ -z "${MESA_BUILD:-}" ]; then
        for b in "$1/build" "$1" "$1/_build"; do
            if [ -x "$b/tools/mesarun" ]; then
                MESA_BUILD=$b
                break
            fi
        done
        [ -n "${MESA_BUILD:-}" ] || die "no build found (tried ./build, ., ./_build); set MESA_BUILD=dir"
    fi
    MESAD=${MESAD:-$MESA_BUILD/server/mesad}
    MESA=${MESA:-$MESA_BUILD/tools/mesa}
    MESARUN=${MESARUN:-$MESA_BUILD/tools/mesarun}
    MESA_SHIM=${MESA_SHIM:-$MESA_BUILD/shim/.libs/libmesafs_preload.so}
    for b in "$MESAD" "$MESA" "$MESARUN"; do
        if ! [ -x "$b" ] || ! [ -f "$b" ]; then die "$b is not an executable file"; fi
    done
    [ -f "$MESA_SHIM" ] || die "no preload library at $MESA_SHIM (set MESA_SHIM=path)"
    export MESA_SHIM # mesarun honours it (an uninstalled build)
}

stop_pid() { # PID: SIGTERM, wait up to 5 s, SIGKILL; returns 0
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# bench_start_mesad DIR LOG [SERVE-OPTION...]: `mesad init` (org acme) in
# DIR/data and `mesad serve` on the Unix socket DIR/mesad.sock, waiting up to
# 10 s for its ready file. Clears the caller's MESA_* variables: only the
# commands run through "${MENV[@]}" get the server and the key.
bench_start_mesad() {
    local dir=$1 log=$2 init
    shift 2
    init=$("$MESAD" init --data "$dir/data" --org acme --json) || die "mesad init failed"
    KEY=$(jq -r .api_key <<<"$init")
    SOCK=$dir/mesad.sock
    "$MESAD" serve --data "$dir/data" --listen "unix:$SOCK" --ready-file "$dir/ready" "$@" >>"$log" 2>&1 &
    PID=$!
    for _ in $(seq 1 200); do
        [ -s "$dir/ready" ] && break
        kill -0 "$PID" 2>/dev/null || die "mesad exited before it was ready (log: $log)"
        sleep 0.05
    done
    [ -s "$dir/ready" ] || die "mesad not ready after 10 s (log: $log)"
    unset MESA_URL MESA_API_KEY MESA_ACCESS_TOKEN MESA_ORG MESA_PREFIX MESA_MOUNT
    MENV=(env MESA_URL="unix:$SOCK" MESA_API_KEY="$KEY" MESA_ORG=acme)
}

bench_stop_mesad() {
    if [ -n "$PID" ]; then
        stop_pid "$PID"
        PID=""
    fi
}

# bench_time LOG CMD...: run CMD (stdout and stderr to LOG), wall clock in
# SECS (3 decimals); returns CMD's exit status. Needs LC_ALL=C (EPOCHREALTIME
# with a '.').
bench_time() {
    local log=$1 t0 t1 rc=0
    shift
    t0=$EPOCHREALTIME
    "$@" >"$log" 2>&1 || rc=$?
    t1=$EPOCHREALTIME
    SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
    return "$rc"
}

median() { # numbers on stdin -> median (empty when none)
    sort -g | awk '{v[NR] = $1} END {
        if (NR == 0) exit
        if (NR % 2) printf "%.3f\n", v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

bench_machine() { # "**mesarun VERSION** on N CPU (model), kernel; date"
    local cpu version
    cpu=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
    version=$("$MESARUN" --version 2>/dev/null | head -1) || version="mesarun (unknown version)"
    echo "**$version** on $(nproc) CPU ($cpu), $(uname -sr); $(date -u '+%F %H:%M UTC');"
}

# bench_getopts SPEC ARGS...: the options (getopts SPEC, without h), each
# passed to the caller's on_opt LETTER VALUE; -h prints usage and exits 0;
# an unknown option, a missing value or an operand prints usage on stderr
# and exits 2.
bench_getopts() {
    local spec=$1 opt OPTARG OPTIND=1
    shift
    while getopts "${spec}h" opt; do
        case $opt in
        h)
            usage
            exit 0
            ;;
        \?)
            usage >&2
            exit 2
            ;;
        *) on_opt "$opt" "${OPTARG-}" ;;
        esac
    done
    shift $((OPTIND - 1))
    [ $# -eq 0 ] || {
        usage >&2
        exit 2
    }
}
