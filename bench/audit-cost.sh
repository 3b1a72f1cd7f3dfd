#!/usr/bin/env bash
# bench/audit-cost.sh - what the mount's LD_AUDIT module (shim/audit.c,
# DESIGN §6) costs each program started in a mount, whether or not it
# loads a library from the mount. A build pays it on every exec (make's
# shells, the gcc driver, cc1, as, ld), so this measures it where the
# build benchmark (bench/shim-build.sh) cannot see it through its noise.
#
# Starts a private mesad on a Unix socket (temp data dir) and an empty repo
# "bench", then times a loop of K runs of each workload, R rounds, the
# variants of a round in a rotating order (so a slow phase of a shared
# machine spreads over all of them):
#
#   native     the loop in bash, natively
#   mount      the loop in `mesarun --repo bench -- bash -c ...` with
#              MESA_AUDIT= (the mount without the module)
#   mount+lda  the same with the module (mesarun's default)
#
# Workloads: `true` (/bin/true: one exec), `cc` (gcc -c of a small file
# into a directory outside the mount: the driver, cc1 and as, three
# execs), and `make` (one `make -j2` of the generated C project of
# tests/shim/gen-project.py, 120 modules, in the mount's repo "build" with
# a warm cache, after an untimed `make clean`; natively in a copy). Only the
# loop or the build is timed (bash's `time`, inside the mount), not
# mesarun's start and drain. The table gives, per run of the workload, the
# median CPU time (user+sys of its processes, which a busy machine disturbs
# less than the wall time) and wall time, and the module's cost: mount+lda
# minus mount.
#
#   bench/audit-cost.sh [-n ROUNDS] [-k RUNS]
#
# Exit status: 0; 1 when a run failed; 2 on usage or setup errors.
# shellcheck disable=SC2317 # cleanup runs from a trap
set -euo pipefail

ROUNDS=9 RUNS=300

usage() {
    cat <<'EOF'
usage: bench/audit-cost.sh [-n ROUNDS] [-k RUNS]
  -n ROUNDS  rounds of every variant; the table shows medians (default 9; 1..99)
  -k RUNS    runs of the workload per timed loop (default 300; 10..100000)
environment: MESA_BUILD = the build directory (default: the first of ./build,
  ., ./_build under the repository top that has tools/mesarun); MESAD, MESA,
  MESARUN, MESA_SHIM override single files (mesarun finds the audit module
  next to the shim). Nothing is built: use an optimised build.
Needs: gcc, make, ar, python3, jq, awk.
EOF
}

PROG=audit-cost
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$TOP/bench/lib.sh"

on_opt() {
    case $1 in
    n) ROUNDS=$2 ;;
    k) RUNS=$2 ;;
    esac
}
bench_getopts n:k: "$@"
int_in "$ROUNDS" 1 99 -n
int_in "$RUNS" 10 100000 -k
bench_need gcc make ar python3 jq awk
bench_find_build "$TOP"
unset MESA_AUDIT

WORK=$(mktemp -d "${TMPDIR:-/tmp}/audit-cost.XXXXXX")
cleanup() {
    bench_stop_mesad
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
export LC_ALL=C

bench_start_mesad "$WORK" "$WORK/mesad.log"
"${MENV[@]}" "$MESA" repo create bench >/dev/null || die "mesa repo create failed"
printf 'int f(int x) { return x * 3 + 1; }\n' >"$WORK/x.c"
python3 "$TOP/tests/shim/gen-project.py" "$WORK/src" --modules 120 --seed 1 >/dev/null ||
    die "gen-project.py failed"
make -C "$WORK/src" gen/table.c >/dev/null || die "generating gen/table.c failed"
cp -a "$WORK/src" "$WORK/native"
"${MENV[@]}" "$MESA" repo import build "$WORK/src" >/dev/null || die "mesa repo import failed"

# the loop of one workload: prints "wall user sys" in seconds
declare -A LOOP=(
    [true]="for ((i = 0; i < $RUNS; i++)); do /bin/true; done"
    [cc]="for ((i = 0; i < $RUNS; i++)); do gcc -c '$WORK/x.c' -o '$WORK/x.o' || exit 1; done"
    [make]="make -j2 >/dev/null 2>&1 || exit 1"
)
declare -A PER=([true]=$RUNS [cc]=$RUNS [make]=1)
timed_loop() { # WORKLOAD -> bash code printing "wall user sys"
    local pre=""
    [ "$1" = make ] && pre="make clean >/dev/null 2>&1;"
    printf '%s TIMEFORMAT="%%3R %%3U %%3S"; { time { %s; } ; } 2>&1' "$pre" "${LOOP[$1]}"
}

run() { # VARIANT WORKLOAD -> "wall user sys"
    local code repo=bench cache=("--memory-cache")
    code=$(timed_loop "$2")
    if [ "$2" = make ]; then
        repo=build cache=(--cache-dir "$WORK/cache-$1")
    fi
    case $1 in
    native) (cd "$WORK/native" && bash -c "$code") ;;
    mount) MESA_AUDIT='' "${MENV[@]}" "$MESARUN" "${cache[@]}" --repo "$repo" -- bash -c "$code" ;;
    mount+lda) "${MENV[@]}" "$MESARUN" "${cache[@]}" --repo "$repo" -- bash -c "$code" ;;
    esac
}

# warm caches for the make workload: one untimed build each
for v in mount mount+lda; do
    run "$v" make >/dev/null || die "priming build in the mount failed ($v)"
done

VARIANTS=(native mount mount+lda)
RESULTS=$WORK/results.tsv
: >"$RESULTS"
FAILED=0
echo "audit-cost: $ROUNDS rounds of $RUNS runs per workload and variant" >&2
for r in $(seq 1 "$ROUNDS"); do
    for w in true cc make; do
        for k in 0 1 2; do
            v=${VARIANTS[$(((r + k) % 3))]}
            if out=$(run "$v" "$w") && [[ $out =~ ^[0-9.]+\ [0-9.]+\ [0-9.]+$ ]]; then
                printf '%s\t%s\t%s\n' "$w" "$v" "${out// /$'\t'}" >>"$RESULTS"
            else
                echo "!! $w $v round $r failed: $out" >&2
                FAILED=1
            fi
        done
    done
    echo "   round $r/$ROUNDS done" >&2
done

med() { # WORKLOAD VARIANT FIELD(3 wall, 4 cpu) -> median milliseconds per run
    awk -F'\t' -v w="$1" -v v="$2" -v f="$3" -v k="${PER[$1]}" '$1 == w && $2 == v {
        x = (f == 3) ? $3 : $4 + $5; print x * 1e3 / k }' "$RESULTS" |
        sort -g | awk '{a[NR] = $1} END { if (NR == 0) { print "-"; exit }
            printf "%.3f\n", NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

CPU=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
echo "$(nproc) CPU ($CPU), $(uname -sr), $(ldd --version | head -1); $(date -u '+%F %H:%M UTC');" \
    "median of $ROUNDS rounds of $RUNS runs, variants interleaved"
echo
echo "| workload | execs | metric (ms per run) | native | mount | mount+lda | module's cost |"
echo "|---|--:|---|--:|--:|--:|--:|"
declare -A EXECS=([true]=1 [cc]=3 [make]="a build")
for w in true cc make; do
    n=${EXECS[$w]}
    for f in 4 3; do
        m=$(med "$w" mount "$f") l=$(med "$w" mount+lda "$f")
        d=$(awk -v a="$l" -v b="$m" 'BEGIN {x = a - b; y = (b > 0) ? x * 100 / b : 0; printf "%+.3f (%+.1f%%)", x, y}')
        printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$w" "$n" "$([ "$f" = 4 ] && echo cpu || echo wall)" \
            "$(med "$w" native "$f")" "$m" "$l" "$d"
    done
done
exit "$FAILED"
