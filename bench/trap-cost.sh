#!/usr/bin/env bash
# bench/trap-cost.sh - what `mesarun --trap-raw` costs per system call
# (tools/mesarun_trap.c): a statically linked program's stat and
# open+close of a mount file, each a round trip to mesarun's seccomp
# supervisor, against the same calls by a dynamic program served by the
# shim and native calls on a local file. Also the toll on a trapped
# program's calls outside the mount (answered "continue").
#
# Starts a private mesad on a Unix socket (temp data dir) and a repo
# "bench" with one file, builds tests/shim/static-probe.c statically and
# dynamically, then R rounds of each variant (in a rotating order), each a
# loop of N calls timed inside the probe (mesarun's start is not counted):
#
#   native      dynamic probe, local file, no mesarun
#   shim        dynamic probe under mesarun, mount file
#   trap        static probe under mesarun --trap-raw, mount file
#   trap-out    static probe under mesarun --trap-raw, local file
#
#   bench/trap-cost.sh [-n ROUNDS] [-k CALLS]
#
# Prints the median ns per call and the ratio to native. Exit status: 0; 1
# when a run failed; 2 on usage or setup errors.
# shellcheck disable=SC2317 # cleanup runs from a trap
set -euo pipefail

ROUNDS=7 CALLS=20000

usage() {
    cat <<'EOF'
usage: bench/trap-cost.sh [-n ROUNDS] [-k CALLS]
  -n ROUNDS  rounds of every variant; the table shows medians (default 7; 1..99)
  -k CALLS   calls per timed loop (default 20000; 100..10000000)
EOF
    bench_usage_env
    echo "Needs: gcc (with a static libc), jq, awk."
}

PROG=trap-cost
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$TOP/bench/lib.sh"

on_opt() {
    case $1 in
    n) ROUNDS=$2 ;;
    k) CALLS=$2 ;;
    esac
}
bench_getopts n:k: "$@"
int_in "$ROUNDS" 1 99 -n
int_in "$CALLS" 100 10000000 -k
bench_need gcc jq awk
bench_find_build "$TOP"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/trap-cost.XXXXXX")
cleanup() {
    bench_stop_mesad
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
export LC_ALL=C

gcc -O2 -static -o "$WORK/sprobe" "$TOP/tests/shim/static-probe.c" || die "gcc -static failed"
gcc -O2 -o "$WORK/dprobe" "$TOP/tests/shim/static-probe.c" || die "gcc failed"
mkdir "$WORK/src"
printf 'one file of the bench\n' >"$WORK/src/f.txt"
cp "$WORK/src/f.txt" "$WORK/local.txt"
bench_start_mesad "$WORK" "$WORK/mesad.log"
"${MENV[@]}" "$MESA" repo import bench "$WORK/src" >/dev/null || die "mesa repo import failed"

VARIANTS=(native shim trap trap-out)
run() { # VARIANT OP -> ns per call
    local mr=("${MENV[@]}" "$MESARUN" --cache-dir "$WORK/cache" --repo bench)
    case $1 in
    native) "$WORK/dprobe" "$2:$WORK/local.txt:$CALLS" ;;
    shim) "${mr[@]}" -- "$WORK/dprobe" "$2:f.txt:$CALLS" ;;
    trap) "${mr[@]}" --trap-raw -- "$WORK/sprobe" "$2:f.txt:$CALLS" ;;
    trap-out) "${mr[@]}" --trap-raw -- "$WORK/sprobe" "$2:$WORK/local.txt:$CALLS" ;;
    esac 2>>"$WORK/runs.log" | sed -n 's/^ns=//p'
}

declare -A NS
for op in loopstat loopopen; do
    for ((r = 0; r < ROUNDS; r++)); do
        for ((i = 0; i < ${#VARIANTS[@]}; i++)); do
            v=${VARIANTS[$(((i + r) % ${#VARIANTS[@]}))]}
            ns=$(run "$v" "$op") || true
            [ -n "$ns" ] || fail "$v $op: no result (see $WORK/runs.log)"
            NS[$v,$op]+="${ns:-} "
        done
    done
done

echo "$(bench_machine) $ROUNDS rounds of $CALLS calls, medians"
echo
echo "| variant | stat ns/call | x native | open+close ns/call | x native |"
echo "|---|---:|---:|---:|---:|"
for v in "${VARIANTS[@]}"; do
    line="| $v"
    for op in loopstat loopopen; do
        m=$(tr ' ' '\n' <<<"${NS[$v,$op]}" | grep . | median)
        n=$(tr ' ' '\n' <<<"${NS[native,$op]}" | grep . | median)
        ratio=$(awk -v a="${m:-0}" -v b="${n:-0}" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "-" }')
        line+=" | ${m%.000} | $ratio"
    done
    echo "$line |"
done
if [ "$FAILED" -ne 0 ]; then
    printf '%s\n' "${FAILURES[@]}"
    exit 1
fi
