#!/usr/bin/env bash
# bench/shim-build.sh - the main job's cost: `make -j2` of the generated C
# project (tests/shim/gen-project.py) natively and in a mount, side by side in
# one run (DESIGN §9).
#
# Starts a private mesad on a Unix socket (temp data dir), generates the
# project, runs its generator step natively (so gen/table.c is a source like
# the others and every variant does the same work: all compilations, the
# archive, the link), imports it as repo "bench", then times each variant N
# times, round-robin, and prints a markdown table of the MEDIAN wall time of
# each, with its ratio to the native build:
#
#   native        make -j2 in a temp dir (make clean before each round, untimed)
#   preload       the same with LD_PRELOAD=the shim and no mount: what the shim
#                 costs programs that never touch /mesa (target: ratio <= 1.01)
#   mount-warm    mesarun --repo bench -- make -j2 with a reused cache directory:
#                 blobs and tree listings cached, outputs removed by an untimed
#                 `mesarun ... make clean` before each round
#   mount-cold    the same with a fresh, empty cache directory every round
#                 (every blob fetched, no outputs in the local store)
#   native-noop   make -j2 again right after the native build (nothing to do)
#   mount-noop    mesarun ... make -j2 right after mount-warm (nothing to do:
#                 the outputs are in the local store)
#   sandbox-warm  with -s: mount-warm under `mesarun --sandbox` (seccomp,
#                 Landlock, the shim's fills through mesarun's proxy)
#   sandbox-cold  with -s: mount-cold under `mesarun --sandbox`
# The no-op rows' ratios are to native-noop. Timings include mesarun's own
# start and drain. Every timed build is checked (exit status, the number of
# compilations, the program's output); a wrong one is a failure, not a sample.
#
#   bench/shim-build.sh [-n ROUNDS] [-m MODULES] [-j JOBS] [-s] [-o DIR]
#   MESA_BUILD=/tmp/build-bench bench/shim-build.sh -n 7
#
# Exit status: 0 when every run was clean; 1 when a run failed (the table is
# still printed, failures listed under it); 2 on usage or setup errors.
# shellcheck disable=SC2317 # cleanup runs from a trap
set -euo pipefail

ROUNDS=${ROUNDS:-5} MODULES=120 JOBS=2 OUT="" SANDBOX=0
VARIANTS=(native preload mount-warm mount-cold native-noop mount-noop)

PROG=shim-build
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$TOP/bench/lib.sh"

usage() {
    cat <<'EOF'
usage: bench/shim-build.sh [-n ROUNDS] [-m MODULES] [-j JOBS] [-s] [-o DIR]
  -n ROUNDS   timed runs of each variant; the table shows medians
              (default 5, or $ROUNDS; 1..50)
  -m MODULES  modules of the generated project (default 120; 1..999)
  -j JOBS     make -j JOBS (default 2; 1..64)
  -s          also build under mesarun --sandbox (warm and cold cache)
  -o DIR      results directory (default $TMPDIR/shim-build-<date>/)
EOF
    bench_usage_env
    echo "Needs: python3, make, gcc, ar, jq."
}

on_opt() {
    case $1 in
    n) ROUNDS=$2 ;;
    m) MODULES=$2 ;;
    j) JOBS=$2 ;;
    o) OUT=$2 ;;
    s) SANDBOX=1 ;;
    esac
}
bench_getopts n:m:j:o:s "$@"

int_in "$ROUNDS" 1 50 "-n"
int_in "$MODULES" 1 999 "-m"
int_in "$JOBS" 1 64 "-j"
[ "$SANDBOX" -eq 0 ] || VARIANTS+=(sandbox-warm sandbox-cold)

bench_need python3 make gcc ar jq timeout
bench_find_build "$TOP"
GEN=$TOP/tests/shim/gen-project.py
[ -f "$GEN" ] || die "no $GEN"

STAMP=$(date -u +%Y%m%d-%H%M%S)
OUT=${OUT:-${TMPDIR:-/tmp}/shim-build-$STAMP}
mkdir -p "$OUT" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/shim-build-work.XXXXXX")
RESULTS=$OUT/results.tsv
LOG=$OUT/mesad.log
: >"$LOG"
START=$SECONDS
export LC_ALL=C # EPOCHREALTIME with a '.', sort order

cleanup() {
    bench_stop_mesad
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- setup

# Only mesa and mesarun get the credentials (MENV): the native variants run
# with the caller's environment minus any MESA_* variable.
bench_start_mesad "$WORK" "$LOG"

python3 "$GEN" "$WORK/src" --modules "$MODULES" --seed 1 || die "gen-project.py failed"
make -C "$WORK/src" gen/table.c >/dev/null || die "generating gen/table.c failed"
cp -a "$WORK/src" "$WORK/native"
"${MENV[@]}" "$MESA" repo import bench "$WORK/src" >"$OUT/import.txt" 2>&1 ||
    die "mesa repo import failed: $(cat "$OUT/import.txt")"
EXPECTED=$(cat "$WORK/src/expected.txt")
NOBJ=$((MODULES + 2))
echo "mesad on unix:$SOCK; project: $MODULES modules ($(find "$WORK/src" -type f | wc -l) files);" \
    "make -j$JOBS; $ROUNDS rounds; results in $OUT" >&2

declare -A DESC=(
    [native]="\`make -j$JOBS\`, native, clean build"
    [preload]="the same with \`LD_PRELOAD\` of the shim, no mount touched"
    [mount-warm]="\`mesarun --repo bench -- make -j$JOBS\`, warm cache (blobs cached, outputs cleaned)"
    [mount-cold]="the same with a fresh empty cache directory"
    [native-noop]="\`make -j$JOBS\` again, native: nothing to do"
    [mount-noop]="\`mesarun ... make -j$JOBS\` again, warm: nothing to do"
    [sandbox-warm]="\`mesarun --sandbox ...\`, warm cache"
    [sandbox-cold]="\`mesarun --sandbox ...\`, fresh empty cache"
)
declare -A BASE=([native]=native [preload]=native [mount-warm]=native [mount-cold]=native
    [native-noop]=native-noop [mount-noop]=native-noop [sandbox-warm]=native
    [sandbox-cold]=native)

mr() { # CACHE ARGS... : mesarun on repo bench with that cache dir, time-limited
    local cache=$1
    shift
    timeout -k 10 600 "${MENV[@]}" "$MESARUN" "${SB[@]}" --cache-dir "$cache" --repo bench -- "$@"
}
SB=()
mrs() { # the same under --sandbox
    local SB=(--sandbox)
    mr "$@"
}

# Prime the warm cache: one untimed build fetches every blob and tree.
mr "$WORK/cache-warm" make -j"$JOBS" >"$OUT/prime-warm.log" 2>&1 ||
    die "priming build in the mount failed (log: $OUT/prime-warm.log)"

printf 'variant\tround\tseconds\tnote\n' >"$RESULTS"

# timed VARIANT ROUND LOGFILE CMD... -> appends to RESULTS; SECS for the caller
timed() {
    local v=$1 r=$2 log=$3 rc=0
    shift 3
    bench_time "$log" "$@" || rc=$?
    if [ "$rc" -ne 0 ]; then
        fail "$v round $r: exit status $rc (log: $log)"
        printf '%s\t%s\t\texit %s\n' "$v" "$r" "$rc" >>"$RESULTS"
        return 1
    fi
    return 0
}

record() { # VARIANT ROUND LOG WANT_COMPILES OUTPUT_OF_THE_PROGRAM
    local v=$1 r=$2 log=$3 want=$4 got
    got=$(grep -cE -- ' -c -o [^ ]+\.o' "$log" || true)
    if [ "$got" -ne "$want" ]; then
        fail "$v round $r: $got compilations, expected $want (log: $log)"
        printf '%s\t%s\t\t%s compilations\n' "$v" "$r" "$got" >>"$RESULTS"
        return 0
    fi
    if [ "$5" != "$EXPECTED" ]; then
        fail "$v round $r: bin/genproj printed '$5', expected '$EXPECTED'"
        printf '%s\t%s\t\twrong output\n' "$v" "$r" >>"$RESULTS"
        return 0
    fi
    printf '%s\t%s\t%s\t\n' "$v" "$r" "$SECS" >>"$RESULTS"
    echo "   $v round $r: ${SECS} s" >&2
}

run_variant() { # VARIANT ROUND
    local v=$1 r=$2 log=$OUT/$1.$2.log cache run
    case $v in
    native | preload)
        make -C "$WORK/native" clean >/dev/null 2>&1 || true
        if [ "$v" = native ]; then
            timed "$v" "$r" "$log" make -C "$WORK/native" -j"$JOBS" || return 0
        else
            timed "$v" "$r" "$log" env LD_PRELOAD="$MESA_SHIM" make -C "$WORK/native" -j"$JOBS" ||
                return 0
        fi
        record "$v" "$r" "$log" "$NOBJ" "$("$WORK/native/bin/genproj" 2>&1 || true)"
        ;;
    native-noop)
        timed "$v" "$r" "$log" make -C "$WORK/native" -j"$JOBS" || return 0
        record "$v" "$r" "$log" 0 "$("$WORK/native/bin/genproj" 2>&1 || true)"
        ;;
    mount-warm | sandbox-warm)
        run=mr
        [ "$v" = mount-warm ] || run=mrs
        "$run" "$WORK/cache-warm" make clean >"$OUT/$v.$r.clean.log" 2>&1 ||
            fail "$v round $r: make clean failed (log: $OUT/$v.$r.clean.log)"
        timed "$v" "$r" "$log" "$run" "$WORK/cache-warm" make -j"$JOBS" || return 0
        record "$v" "$r" "$log" "$NOBJ" "$("$run" "$WORK/cache-warm" ./bin/genproj 2>&1 || true)"
        ;;
    mount-noop)
        timed "$v" "$r" "$log" mr "$WORK/cache-warm" make -j"$JOBS" || return 0
        record "$v" "$r" "$log" 0 "$(mr "$WORK/cache-warm" ./bin/genproj 2>&1 || true)"
        ;;
    mount-cold | sandbox-cold)
        run=mr
        [ "$v" = mount-cold ] || run=mrs
        cache=$WORK/cache-$v.$r
        rm -rf "$WORK/cache-$v".*
        mkdir -p "$cache"
        timed "$v" "$r" "$log" "$run" "$cache" make -j"$JOBS" || return 0
        record "$v" "$r" "$log" "$NOBJ" "$("$run" "$cache" ./bin/genproj 2>&1 || true)"
        ;;
    esac
}

# Round-robin, so a slow phase of a shared machine spreads over every variant.
# The order inside a round keeps each no-op right after its full build.
for r in $(seq 1 "$ROUNDS"); do
    echo "== round $r/$ROUNDS" >&2
    for v in native native-noop preload mount-warm mount-noop mount-cold; do
        run_variant "$v" "$r"
    done
    if [ "$SANDBOX" -eq 1 ]; then
        run_variant sandbox-warm "$r"
        run_variant sandbox-cold "$r"
    fi
done

# ---------------------------------------------------------------- report

col() { # VARIANT -> the seconds of its good runs
    awk -F'\t' -v v="$1" 'NR > 1 && $1 == v && $3 != "" {print $3}' "$RESULTS"
}

declare -A MED=()
for v in "${VARIANTS[@]}"; do MED[$v]=$(col "$v" | median); done
ELAPSED=$((SECONDS - START))
{
    echo "$(bench_machine)" \
        "generated project: $MODULES modules, make -j$JOBS; median of $ROUNDS rounds, round-robin;" \
        "total run time ${ELAPSED} s"
    echo
    echo "| variant | what | seconds (median) | min-max | x native |"
    echo "|---|---|--:|--:|--:|"
    for v in "${VARIANTS[@]}"; do
        m=${MED[$v]}
        if [ -z "$m" ]; then
            echo "| $v | ${DESC[$v]} | FAILED (0/$ROUNDS runs) | - | - |"
            continue
        fi
        lo=$(col "$v" | sort -g | head -1) hi=$(col "$v" | sort -g | tail -1)
        runs=$(col "$v" | wc -l)
        b=${MED[${BASE[$v]}]}
        ratio=$(awk -v a="$m" -v b="${b:-0}" 'BEGIN {if (b > 0) printf "%.3f", a / b; else printf "-"}')
        partial=""
        [ "$runs" -lt "$ROUNDS" ] && partial=" (only $runs/$ROUNDS runs)"
        echo "| $v | ${DESC[$v]} | ${m}${partial} | $lo-$hi | $ratio |"
    done
    echo
    echo "Ratios: build rows to \`native\`, no-op rows to \`native-noop\`."
    if [ -n "${MED[preload]}" ] && [ -n "${MED[native]}" ]; then
        p=$(awk -v a="${MED[preload]}" -v b="${MED[native]}" 'BEGIN {printf "%.3f", a / b}')
        verdict=$(awk -v p="$p" 'BEGIN {print (p <= 1.01) ? "met" : "NOT met"}')
        # the same ratio round by round (native and preload run back to back),
        # which cancels most of a shared machine's drift
        paired=$(awk -F'\t' 'NR > 1 && $3 != "" && ($1 == "native" || $1 == "preload") {t[$1, $2] = $3}
            END {for (k in t) {split(k, a, SUBSEP); if (a[1] == "preload" && t["native", a[2]] > 0)
                print t[k] / t["native", a[2]]}}' "$RESULTS" | median)
        echo "Shim overhead on programs that never touch the mount: preload/native = $p" \
            "(median of per-round ratios: ${paired:--}; target <= 1.01: $verdict)."
    fi
    for w in warm cold; do
        if [ -z "${MED[sandbox-$w]:-}" ] || [ -z "${MED[mount-$w]}" ]; then
            continue
        fi
        echo "Sandbox overhead, $w cache: sandbox-$w/mount-$w =" \
            "$(awk -v a="${MED[sandbox-$w]}" -v b="${MED[mount-$w]}" 'BEGIN {printf "%.3f", a / b}')."
    done
    if [ "${#FAILURES[@]}" -gt 0 ]; then
        echo
        echo "**Failed runs:**"
        echo
        printf -- '- %s\n' "${FAILURES[@]}"
    fi
    echo
    echo "Build logs, results.tsv and mesad.log: $OUT"
} | tee "$OUT/summary.md"

exit "$FAILED"
