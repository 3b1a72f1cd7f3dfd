#!/usr/bin/env bash
# bench/peers.sh - the same workloads natively, through two peers of the
# mount and in the mount, side by side in one run (DESIGN §9: "native vs mesa
# (warm cache, cold cache) vs peers (a FUSE mount such as bindfs,
# parrot_run, proot), reported as ratios measured side by side in one run").
#
# Starts a private mesad on a Unix socket (temp data dir), writes one data
# set and imports it as repo "bench", so one import serves every workload:
#
#   proj/      the generated C project (tests/shim/gen-project.py, -m
#              modules), its generator step run first (gen/table.c is a
#              source, as in bench/shim-build.sh)
#   tree/      -f small files (64..4096 bytes, fixed seed), 50 per directory,
#              tree/dNN/eN/fNNNNN.txt; file i has mtime T0+i seconds
#   ref.stamp  an empty file with mtime T0+FILES/2 (the -newer reference)
#   big.bin    -s MiB of seeded pseudo-random bytes
#
# Variants (each runs `sh -c WORKLOAD` with the data set's root as its
# current directory):
#
#   native      the data set: a plain directory on local disk
#   bindfs      a FUSE passthrough of that same directory (`bindfs DATA MNT`,
#               default options; unmounted with `fusermount -u`)
#   proot       `proot -b DATA:/peers -w /peers sh -c WORKLOAD` (ptrace path
#               rewriting; the workload reaches the data through /peers)
#   mount-warm  `mesarun --repo bench --cache-dir C -- sh -c WORKLOAD` in
#               /mesa/acme/bench, one cache directory for the whole run
#               (primed by one untimed run of every workload)
#   mount-cold  the same with a fresh, empty cache directory for every run
# parrot_run (cctools), the other peer named in DESIGN §9, is not packaged in
# Debian 12 and is not measured.
#
# Workloads (each run checked: exit status and its output; a wrong result is
# a failure, not a sample):
#
#   start       `true`: the variant's fixed cost (for the mount: mesarun's
#               start, tree listing and drain); a reference row
#   make        `make -C proj -j JOBS`: all compilations counted, then
#               bin/genproj run untimed and its output compared; outputs
#               removed by an untimed `make clean` in the variant first
#   find        `find . -type f -size +1k -newer ../ref.stamp | wc -l` in
#               tree/: the count the generator expects
#   read-small  every tree/ file, in sorted order, through cat | sha256sum:
#               the hash the generator expects (sorted: directory order
#               differs between file systems)
#   read-big    `dd if=big.bin of=/dev/null bs=1M`: dd's byte count every
#               run, and once per variant an untimed sha256sum of big.bin
#               against the generator's
#
# Timing is the wall clock of the whole command, so the mount rows include
# mesarun's start and drain, and proot's its own start. Each of N rounds runs
# every workload on every variant (the variants' order rotates from round to
# round), so a slow phase of a shared machine spreads over all of them. The
# table shows the median seconds of each cell and its ratio to native.
#
# mesad runs with --max-body raised to fit big.bin when it is 64 MiB or more:
# at the default (64 MiB) `mesa repo import` is refused (HTTP 413
# PAYLOAD_TOO_LARGE on the blob upload). The output says so.
#
#   bench/peers.sh [-n ROUNDS] [-s MB] [-f FILES] [-m MODULES] [-j JOBS]
#                  [-w WORKLOADS] [-V VARIANTS] [-o DIR]
#   MESA_BUILD=/tmp/build-bench bench/peers.sh -n 3 -s 32 -f 1000   # quick
#
# Exit status: 0 when every run was clean; 1 when a run failed (the table is
# still printed, failures listed under it); 2 on usage or setup errors.
# shellcheck disable=SC2317 # cleanup runs from a trap
set -euo pipefail

ROUNDS=${ROUNDS:-5} BIG_MB=256 NFILES=5000 MODULES=120 JOBS=2 OUT=""
ALL_WORKLOADS=(start make find read-small read-big)
ALL_VARIANTS=(native bindfs proot mount-warm mount-cold)
WL=start,make,find,read-small,read-big VL=bindfs,proot,mount-warm,mount-cold
PROOT_DIR=/peers # where proot shows the data set
RUN_TIMEOUT=600  # seconds, any single run

PROG=peers
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$TOP/bench/lib.sh"

usage() {
    cat <<'EOF'
usage: bench/peers.sh [-n ROUNDS] [-s MB] [-f FILES] [-m MODULES] [-j JOBS]
                      [-w WORKLOADS] [-V VARIANTS] [-o DIR]
  -n ROUNDS     timed runs of each workload on each variant; the table shows
                medians (default 5, or $ROUNDS; 1..50)
  -s MB         size of big.bin in MiB, the read-big workload (default 256;
                1..4096)
  -f FILES      small files under tree/, the find and read-small workloads
                (default 5000; 1..100000)
  -m MODULES    modules of the generated project (default 120; 1..999)
  -j JOBS       make -j JOBS (default 2; 1..64)
  -w WORKLOADS  comma-separated subset of start,make,find,read-small,read-big
                (default all)
  -V VARIANTS   comma-separated subset of bindfs,proot,mount-warm,mount-cold;
                native always runs (default all)
  -o DIR        results directory (default $TMPDIR/peers-<date>/)
EOF
    bench_usage_env
    echo "Needs: python3 (>= 3.9), make, gcc, ar, jq, sha256sum, dd; bindfs and"
    echo "fusermount (fuse3, /dev/fuse) for bindfs; proot for proot."
    echo "parrot_run is not packaged in Debian 12: not measured."
}

on_opt() {
    case $1 in
    n) ROUNDS=$2 ;;
    s) BIG_MB=$2 ;;
    f) NFILES=$2 ;;
    m) MODULES=$2 ;;
    j) JOBS=$2 ;;
    w) WL=$2 ;;
    V) VL=$2 ;;
    o) OUT=$2 ;;
    esac
}
bench_getopts n:s:f:m:j:w:V:o: "$@"

int_in "$ROUNDS" 1 50 "-n"
int_in "$BIG_MB" 1 4096 "-s"
int_in "$NFILES" 1 100000 "-f"
int_in "$MODULES" 1 999 "-m"
int_in "$JOBS" 1 64 "-j"

in_list() { # WORD LIST...
    local w=$1 x
    shift
    for x in "$@"; do [ "$x" = "$w" ] && return 0; done
    return 1
}
# The selections, in the canonical order.
IFS=, read -r -a _wsel <<<"$WL"
IFS=, read -r -a _vsel <<<"$VL"
for w in "${_wsel[@]}"; do in_list "$w" "${ALL_WORKLOADS[@]}" || die "-w: unknown workload '$w'"; done
for v in "${_vsel[@]}"; do in_list "$v" "${ALL_VARIANTS[@]}" || die "-V: unknown variant '$v'"; done
WORKLOADS=() VARIANTS=()
for w in "${ALL_WORKLOADS[@]}"; do in_list "$w" "${_wsel[@]}" && WORKLOADS+=("$w"); done
for v in "${ALL_VARIANTS[@]}"; do
    if [ "$v" = native ] || in_list "$v" "${_vsel[@]}"; then VARIANTS+=("$v"); fi
done
[ "${#WORKLOADS[@]}" -gt 0 ] || die "-w: no workload"

[ -n "${EPOCHREALTIME:-}" ] || die "needs bash >= 5 (EPOCHREALTIME)"
bench_need python3 make gcc ar jq timeout sha256sum dd mountpoint
in_list bindfs "${VARIANTS[@]}" && bench_need bindfs fusermount
in_list proot "${VARIANTS[@]}" && bench_need proot
bench_find_build "$TOP"
GEN=$TOP/tests/shim/gen-project.py
[ -f "$GEN" ] || die "no $GEN"

STAMP=$(date -u +%Y%m%d-%H%M%S)
OUT=${OUT:-${TMPDIR:-/tmp}/peers-$STAMP}
mkdir -p "$OUT" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/peers-work.XXXXXX")
DATA=$WORK/set MNT=$WORK/bindfs
RESULTS=$OUT/results.tsv
LOG=$OUT/mesad.log
: >"$LOG"
START=$SECONDS
MOUNTED=0
export LC_ALL=C # EPOCHREALTIME with a '.', sort order of read-small

unmount_bindfs() {
    [ "$MOUNTED" = 1 ] || return 0
    for _ in $(seq 1 20); do
        fusermount -u "$MNT" 2>/dev/null && break
        sleep 0.25
    done
    if mountpoint -q "$MNT"; then
        fusermount -u -z "$MNT" 2>/dev/null || true
    fi
    mountpoint -q "$MNT" || MOUNTED=0
}
cleanup() {
    unmount_bindfs
    bench_stop_mesad
    if [ "$MOUNTED" = 1 ]; then
        echo "$PROG: $MNT is still mounted; $WORK left in place" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- setup

# At its default --max-body (64 MiB) mesad refuses the upload of a bigger
# big.bin (413): raise it to fit, and say so under the table.
DEFAULT_BODY=$((64 << 20)) BODY_NOTE=""
BIG_BYTES=$((BIG_MB << 20))
if [ "$BIG_BYTES" -ge "$DEFAULT_BODY" ]; then
    MAX_BODY=$((BIG_BYTES + (1 << 20)))
    BODY_NOTE="mesad runs with \`--max-body $MAX_BODY\`: at its default (64 MiB) the upload of big.bin is refused (HTTP 413 PAYLOAD_TOO_LARGE) and the import fails."
    bench_start_mesad "$WORK" "$LOG" --max-body "$MAX_BODY"
else
    bench_start_mesad "$WORK" "$LOG"
fi

python3 "$GEN" "$DATA/proj" --modules "$MODULES" --seed 1 || die "gen-project.py failed"
make -C "$DATA/proj" gen/table.c >/dev/null || die "generating gen/table.c failed"
# tree/, ref.stamp, big.bin; prints what the workloads must find
python3 - "$DATA" "$NFILES" "$BIG_MB" >"$WORK/expected.json" <<'PY' || die "writing the data set failed"
import hashlib, json, os, random, sys

root, nfiles, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
T0, PER = 1600000000, 50
ref_t = T0 + nfiles // 2
rng = random.Random(7)
contents, newer_big = {}, 0
for i in range(nfiles):
    leaf = i // PER
    rel = "d%02d/e%d/f%05d.txt" % (leaf // 10, leaf % 10, i)
    size = rng.randint(64, 4096)
    line = b"file %05d of the peers data set\n" % i
    data = (line * (size // len(line) + 1))[:size]
    path = os.path.join(root, "tree", rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.utime(path, (T0 + i, T0 + i))
    contents["./" + rel] = data
    # find -size +1k: more than one 1024-byte unit, rounded up
    if size > 1024 and T0 + i > ref_t:
        newer_big += 1
ref = os.path.join(root, "ref.stamp")
open(ref, "w").close()
os.utime(ref, (ref_t, ref_t))
small = hashlib.sha256()
for k in sorted(contents):  # bytewise, as sort -z under LC_ALL=C
    small.update(contents[k])
big = hashlib.sha256()
r = random.Random(11)
with open(os.path.join(root, "big.bin"), "wb") as f:
    for _ in range(mb):
        chunk = r.randbytes(1 << 20)
        big.update(chunk)
        f.write(chunk)
print(json.dumps({"find": newer_big, "small": small.hexdigest(), "big": big.hexdigest()}))
PY
EXP_FIND=$(jq -r .find "$WORK/expected.json")
EXP_SMALL=$(jq -r .small "$WORK/expected.json")
EXP_BIG=$(jq -r .big "$WORK/expected.json")
EXP_GENPROJ=$(cat "$DATA/proj/expected.txt")
NOBJ=$((MODULES + 2))
NDATA=$(find "$DATA" -type f | wc -l)
DATA_MIB=$(du -sm "$DATA" | cut -f1)

echo "importing the data set ($NDATA files, $DATA_MIB MiB) ..." >&2
t0=$EPOCHREALTIME
"${MENV[@]}" "$MESA" repo import bench "$DATA" >"$OUT/import.txt" 2>&1 ||
    die "mesa repo import bench $DATA failed after $(awk -v a="$t0" -v b="$EPOCHREALTIME" \
        'BEGIN {printf "%.1f", b - a}') s: $(tr '\r' '\n' <"$OUT/import.txt" | tail -3)"
IMPORT_S=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f", b - a}')
grep -q "^imported $NDATA files " "$OUT/import.txt" ||
    die "the import did not take all $NDATA files: $(tail -1 "$OUT/import.txt")"

if in_list bindfs "${VARIANTS[@]}"; then
    mkdir -p "$MNT"
    bindfs "$DATA" "$MNT" 2>"$OUT/bindfs.log" || die "bindfs $DATA $MNT failed: $(cat "$OUT/bindfs.log")"
    MOUNTED=1
    mountpoint -q "$MNT" || die "bindfs did not mount $MNT"
fi
if in_list proot "${VARIANTS[@]}"; then
    proot -b "$DATA:$PROOT_DIR" -w "$PROOT_DIR" test -f big.bin 2>"$OUT/proot.log" ||
        die "proot cannot run here (ptrace?): $(cat "$OUT/proot.log")"
fi

# in_variant VARIANT CACHE CMD: sh -c CMD in the data set's root as VARIANT
# sees it (CACHE: mesarun's cache directory; mount variants only)
in_variant() {
    local v=$1 cache=$2 cmd=$3
    case $v in
    native) (cd "$DATA" && exec timeout -k 10 "$RUN_TIMEOUT" sh -c "$cmd") ;;
    bindfs) (cd "$MNT" && exec timeout -k 10 "$RUN_TIMEOUT" sh -c "$cmd") ;;
    proot) timeout -k 10 "$RUN_TIMEOUT" proot -b "$DATA:$PROOT_DIR" -w "$PROOT_DIR" sh -c "$cmd" ;;
    mount-warm | mount-cold)
        timeout -k 10 "$RUN_TIMEOUT" "${MENV[@]}" "$MESARUN" --cache-dir "$cache" --repo bench -- sh -c "$cmd"
        ;;
    esac
}

# shellcheck disable=SC2016 # expanded by the workload's shell
declare -A CMD=(
    [start]='true'
    [make]="make -C proj -j$JOBS"
    [find]='cd tree && find . -type f -size +1k -newer ../ref.stamp | wc -l'
    [read-small]="cd tree && find . -type f -name '*.txt' -print0 | sort -z | xargs -0 cat | sha256sum"
    [read-big]='dd if=big.bin of=/dev/null bs=1M'
)
declare -A LABEL=(
    [start]="start: \`true\`"
    [make]="make: \`make -j$JOBS\`, $MODULES modules"
    [find]="find: $NFILES files, \`-size +1k -newer\`"
    [read-small]="read-small: $NFILES files, cat + sha256sum"
    [read-big]="read-big: $BIG_MB MiB, dd bs=1M"
)

# check WORKLOAD VARIANT LOG CACHE -> "" when right, else what is wrong
check() {
    local w=$1 v=$2 log=$3 cache=$4 got
    case $w in
    start) [ ! -s "$log" ] || echo "unexpected output: $(head -c 200 "$log")" ;;
    make)
        got=$(grep -cE -- ' -c -o [^ ]+\.o' "$log" || true)
        if [ "$got" -ne "$NOBJ" ]; then
            echo "$got compilations, expected $NOBJ"
            return
        fi
        got=$(in_variant "$v" "$cache" ./proj/bin/genproj 2>&1 || true)
        [ "$got" = "$EXP_GENPROJ" ] || echo "bin/genproj printed '$got', expected '$EXP_GENPROJ'"
        ;;
    find) [ "$(cat "$log")" = "$EXP_FIND" ] || echo "output '$(head -c 200 "$log")', expected '$EXP_FIND'" ;;
    read-small)
        [ "$(cat "$log")" = "$EXP_SMALL  -" ] || echo "output '$(head -c 200 "$log")', expected '$EXP_SMALL  -'"
        ;;
    read-big)
        if [ "$(sed -n '1p;2p' "$log")" != "$BIG_MB+0 records in"$'\n'"$BIG_MB+0 records out" ] ||
            [ "$(wc -l <"$log")" -ne 3 ] || ! grep -q "^$BIG_BYTES bytes " "$log"; then
            echo "dd did not copy $BIG_BYTES bytes: '$(tr '\n' ' ' <"$log" | head -c 300)'"
        fi
        ;;
    esac
    return 0
}

WARM=$WORK/cache-warm COLD=$WORK/cache-cold
declare -A BIG_OK=()
# run WORKLOAD VARIANT ROUND: one timed run, checked; appends to RESULTS
run() {
    local w=$1 v=$2 r=$3 log=$OUT/$1.$2.$3.log cache="" rc=0 bad got
    case $v in
    mount-warm) cache=$WARM ;;
    mount-cold)
        cache=$COLD
        rm -rf "$COLD"
        mkdir -p "$COLD"
        ;;
    esac
    if [ "$w" = make ] && [ "$v" != mount-cold ]; then
        in_variant "$v" "$cache" 'make -C proj clean' >"$OUT/$w.$v.$r.clean.log" 2>&1 ||
            fail "$w/$v round $r: make clean failed (log: $OUT/$w.$v.$r.clean.log)"
    fi
    bench_time "$log" in_variant "$v" "$cache" "${CMD[$w]}" || rc=$?
    if [ "$rc" -ne 0 ]; then
        fail "$w/$v round $r: exit status $rc after $SECS s (log: $log)"
        printf '%s\t%s\t%s\t\texit %s\n' "$w" "$v" "$r" "$rc" >>"$RESULTS"
        return 0
    fi
    bad=$(check "$w" "$v" "$log" "$cache")
    if [ -z "$bad" ] && [ "$w" = read-big ] && [ -z "${BIG_OK[$v]:-}" ]; then
        # big.bin's content, after the first good run of each variant
        got=$(in_variant "$v" "$cache" 'sha256sum big.bin' 2>&1 || true)
        if [ "$got" = "$EXP_BIG  big.bin" ]; then
            BIG_OK[$v]=1
        else
            bad="sha256sum big.bin printed '$got', expected '$EXP_BIG  big.bin'"
        fi
    fi
    if [ -n "$bad" ]; then
        fail "$w/$v round $r: $bad (log: $log)"
        printf '%s\t%s\t%s\t\twrong result\n' "$w" "$v" "$r" >>"$RESULTS"
        return 0
    fi
    printf '%s\t%s\t%s\t%s\t\n' "$w" "$v" "$r" "$SECS" >>"$RESULTS"
    echo "   $w/$v round $r: $SECS s" >&2
}

printf 'workload\tvariant\tround\tseconds\tnote\n' >"$RESULTS"
echo "mesad on unix:$SOCK; data set: $NDATA files, $DATA_MIB MiB, imported in $IMPORT_S s;" \
    "variants: ${VARIANTS[*]}; workloads: ${WORKLOADS[*]}; $ROUNDS rounds; results in $OUT" >&2

# Prime the warm cache: one untimed run of every workload (blobs, listings,
# the project's outputs in the local store).
if in_list mount-warm "${VARIANTS[@]}"; then
    echo "== priming mount-warm" >&2
    for w in "${WORKLOADS[@]}"; do
        in_variant mount-warm "$WARM" "${CMD[$w]}" >"$OUT/prime.$w.log" 2>&1 ||
            die "priming $w in the mount failed (log: $OUT/prime.$w.log)"
    done
fi

# Round-robin: every workload on every variant in each round; the variants'
# order rotates so that none always runs first (or right after another).
NV=${#VARIANTS[@]}
for r in $(seq 1 "$ROUNDS"); do
    echo "== round $r/$ROUNDS" >&2
    for w in "${WORKLOADS[@]}"; do
        for i in $(seq 0 $((NV - 1))); do
            run "$w" "${VARIANTS[$(((i + r - 1) % NV))]}" "$r"
        done
    done
done

# ---------------------------------------------------------------- report

cell() { # WORKLOAD VARIANT -> the seconds of its good runs
    awk -F'\t' -v w="$1" -v v="$2" 'NR > 1 && $1 == w && $2 == v && $4 != "" {print $4}' "$RESULTS"
}
ratio() { # A B -> A/B as "1.05×" (fewer decimals as it grows), "-" if B is 0
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (b <= 0) { print "-"; exit }
        q = a / b
        printf (q < 10 ? "%.2f×" : q < 100 ? "%.1f×" : "%.0f×"), q }'
}
pkgver() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null || echo "?"; }

ELAPSED=$((SECONDS - START))
PEERS=""
in_list bindfs "${VARIANTS[@]}" && PEERS+="bindfs $(pkgver bindfs) (fuse3 $(pkgver fuse3)), "
in_list proot "${VARIANTS[@]}" && PEERS+="proot $(pkgver proot), "
{
    echo "$(bench_machine)" "${PEERS}median of $ROUNDS rounds, round-robin; total run time ${ELAPSED} s"
    echo
    printf '| workload |'
    printf ' %s |' "${VARIANTS[@]}"
    printf '\n|---|'
    printf -- '--:|%.0s' "${VARIANTS[@]}"
    echo
    for w in "${WORKLOADS[@]}"; do
        base=$(cell "$w" native | median)
        printf '| %s |' "${LABEL[$w]}"
        for v in "${VARIANTS[@]}"; do
            m=$(cell "$w" "$v" | median)
            n=$(cell "$w" "$v" | wc -l)
            if [ -z "$m" ]; then
                printf ' FAILED (0/%s runs) |' "$ROUNDS"
                continue
            fi
            if [ -n "$base" ]; then
                printf ' %s s (%s)' "$m" "$(ratio "$m" "$base")"
            else
                printf ' %s s' "$m"
            fi
            [ "$n" -lt "$ROUNDS" ] && printf ', %s/%s runs' "$n" "$ROUNDS"
            printf ' |'
        done
        echo
    done
    echo
    echo "Cells: median wall-clock seconds of each \`sh -c WORKLOAD\` run (ratio to native)." \
        "The mount columns include mesarun's start, tree listing and drain, proot's its own start;" \
        "the start row is that fixed cost alone. Data set: $NDATA files, $DATA_MIB MiB, imported" \
        "into mesad in $IMPORT_S s. Min-max of every cell: $OUT/spread.md."
    [ -n "$BODY_NOTE" ] && {
        echo
        echo "$BODY_NOTE"
    }
    if [ "${#FAILURES[@]}" -gt 0 ]; then
        echo
        echo "**Failed runs:**"
        echo
        printf -- '- %s\n' "${FAILURES[@]}"
    fi
    echo
    echo "Logs, results.tsv and mesad.log: $OUT"
} | tee "$OUT/summary.md"

{
    echo "min-max seconds of each cell ($ROUNDS rounds)"
    echo
    printf '| workload |'
    printf ' %s |' "${VARIANTS[@]}"
    printf '\n|---|'
    printf -- '--:|%.0s' "${VARIANTS[@]}"
    echo
    for w in "${WORKLOADS[@]}"; do
        printf '| %s |' "$w"
        for v in "${VARIANTS[@]}"; do
            lo=$(cell "$w" "$v" | sort -g | head -1) hi=$(cell "$w" "$v" | sort -g | tail -1)
            printf ' %s |' "${lo:--}-${hi:--}"
        done
        echo
    done
} >"$OUT/spread.md"

exit "$FAILED"
