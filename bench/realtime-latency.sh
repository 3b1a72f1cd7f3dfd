#!/usr/bin/env bash
# bench/realtime-latency.sh - how long until a second mount sees a closed
# write of the first (DESIGN §3: "other mounts see a closed write within a
# second"; §9: the latency is measured here, not asserted in the tests).
#
# Starts a private mesad on a Unix socket (temp data dir), imports a one-file
# repo "rt", then runs two mesarun sessions on it at the same time, each with
# its own cache directory (two machines, as far as the mount can tell):
#
#   reader   mesarun --repo rt -- bash reader.sh: polls the mount (a `test -e`
#            every 2 ms, no fork) for rt-1.txt, rt-2.txt, ...; when one
#            appears it reads it and records the time
#   writer   mesarun --repo rt -- bash writer.sh: for each trial, waits
#            0.3-0.5 s, takes a timestamp, writes it into rt-N.txt and closes
#            the file, then waits until the reader has seen it (or given up)
#
# latency = time the reader saw the file - timestamp written in it (same
# clock: one machine). A trial that takes more than 10 s is a timeout. The
# coordination files (ready, acks) live outside the mount. After both
# sessions, every rt-N.txt must be on the server with its timestamp.
#
#   bench/realtime-latency.sh [-k TRIALS] [-o DIR]
#   MESA_BUILD=/tmp/build-bench bench/realtime-latency.sh -k 30
#
# Prints a markdown table: median, p90, min, max latency in ms, timeouts.
# Exit status: 0 when every trial was seen and every write is on the server;
# 1 otherwise (the table is still printed); 2 on usage or setup errors.
# shellcheck disable=SC2317 # cleanup runs from a trap
set -euo pipefail

TRIALS=${TRIALS:-20} OUT=""

usage() {
    cat <<'EOF'
usage: bench/realtime-latency.sh [-k TRIALS] [-o DIR]
  -k TRIALS  writes to observe (default 20, or $TRIALS; 1..500); each trial
             takes 0.3-0.5 s plus its latency, at most 10 s
  -o DIR     results directory (default $TMPDIR/realtime-latency-<date>/)
environment: MESA_BUILD = the build directory (default: the first of ./build,
  ., ./_build under the repository top that has tools/mesarun); MESAD, MESA,
  MESARUN, MESA_SHIM override single files. Nothing is built.
Needs: bash >= 5 (EPOCHREALTIME), jq, mkfifo.
EOF
}

PROG=realtime-latency
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$TOP/bench/lib.sh"

on_opt() {
    case $1 in
    k) TRIALS=$2 ;;
    o) OUT=$2 ;;
    esac
}
bench_getopts k:o: "$@"
int_in "$TRIALS" 1 500 -k
[ -n "${EPOCHREALTIME:-}" ] || die "needs bash >= 5 (EPOCHREALTIME)"
bench_need jq mkfifo timeout
bench_find_build "$TOP"

STAMP=$(date -u +%Y%m%d-%H%M%S)
OUT=${OUT:-${TMPDIR:-/tmp}/realtime-latency-$STAMP}
mkdir -p "$OUT" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/realtime-latency-work.XXXXXX")
LOG=$OUT/mesad.log
: >"$LOG"
START=$SECONDS
RPID=""
export LC_ALL=C # EPOCHREALTIME with a '.'

cleanup() {
    [ -n "$RPID" ] && stop_pid "$RPID"
    [ -n "$PID" ] && stop_pid "$PID"
    RPID="" PID=""
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- setup

bench_start_mesad "$WORK" "$LOG"

mkdir -p "$WORK/seed"
echo "realtime latency benchmark: rt-N.txt hold the writer's timestamps (us)" >"$WORK/seed/README"
"${MENV[@]}" "$MESA" repo import rt "$WORK/seed" >"$OUT/import.txt" 2>&1 ||
    die "mesa repo import failed: $(cat "$OUT/import.txt")"
mkfifo "$WORK/tick.r" "$WORK/tick.w"

# Both scripts run inside a mount (cwd: the repo root) and talk to each other
# only through files in $W, outside the mount. `read -t` on a FIFO nobody
# writes is a sleep without a fork.
cat >"$WORK/reader.sh" <<'EOF'
set -u
export LC_ALL=C
W=$1 K=$2
exec 9<>"$W/tick.r"
for ((i = 1; i <= K; i++)); do
    [ -e "rt-$i.txt" ] && { echo "reader: rt-$i.txt exists before the trial" >&2; exit 1; }
done
: >"$W/reader.ready"
for ((i = 1; i <= K; i++)); do
    f=rt-$i.txt start=${EPOCHREALTIME/./} wt="" seen="" ts=""
    while :; do
        if [ -e "$f" ]; then
            seen=${EPOCHREALTIME/./}
            read -r ts <"$f" || true
            break
        fi
        now=${EPOCHREALTIME/./}
        if [ -z "$wt" ] && [ -s "$W/wrote.$i" ]; then read -r wt <"$W/wrote.$i" || wt=""; fi
        # 10 s after the write, or 30 s without a write: give up on this trial
        if [ -n "$wt" ] && ((now - wt > 10000000)); then break; fi
        if [ -z "$wt" ] && ((now - start > 30000000)); then break; fi
        read -r -t 0.002 -u 9 _ || true
    done
    if [ -n "$seen" ]; then
        echo "$i seen ${ts:-empty} $seen" >>"$W/results"
    else
        echo "$i timeout ${wt:--} -" >>"$W/results"
    fi
    : >"$W/ack.$i"
done
EOF
cat >"$WORK/writer.sh" <<'EOF'
set -u
export LC_ALL=C
W=$1 K=$2
exec 9<>"$W/tick.w"
for ((i = 1; i <= K; i++)); do
    read -r -t "0.$((3 + i % 3))" -u 9 _ || true
    t=${EPOCHREALTIME/./}
    printf '%s\n' "$t" >"rt-$i.txt" || { echo "writer: cannot write rt-$i.txt" >&2; exit 1; }
    printf '%s\n' "$t" >"$W/wrote.$i.tmp" && mv -f "$W/wrote.$i.tmp" "$W/wrote.$i"
    for ((j = 0; j < 1500; j++)); do # the reader's answer, at most 15 s
        [ -e "$W/ack.$i" ] && break
        read -r -t 0.01 -u 9 _ || true
    done
done
EOF

# ---------------------------------------------------------------- run

LIMIT=$((TRIALS * 12 + 60))
echo "mesad on unix:$SOCK; $TRIALS trials; results in $OUT" >&2
timeout -k 10 "$LIMIT" "${MENV[@]}" "$MESARUN" --cache-dir "$WORK/cache-reader" --repo rt -- \
    bash "$WORK/reader.sh" "$WORK" "$TRIALS" >"$OUT/reader.log" 2>&1 &
RPID=$!
for _ in $(seq 1 600); do
    [ -e "$WORK/reader.ready" ] && break
    kill -0 "$RPID" 2>/dev/null || break
    sleep 0.05
done
if ! [ -e "$WORK/reader.ready" ]; then
    die "the reader's mesarun did not start (log: $OUT/reader.log: $(tail -n 3 "$OUT/reader.log" | tr '\n' '|'))"
fi
wrc=0
timeout -k 10 "$LIMIT" "${MENV[@]}" "$MESARUN" --cache-dir "$WORK/cache-writer" --repo rt -- \
    bash "$WORK/writer.sh" "$WORK" "$TRIALS" >"$OUT/writer.log" 2>&1 || wrc=$?
[ "$wrc" -eq 0 ] || fail "the writer's mesarun exited $wrc (log: $OUT/writer.log)"
rrc=0
wait "$RPID" || rrc=$?
RPID=""
[ "$rrc" -eq 0 ] || fail "the reader's mesarun exited $rrc (log: $OUT/reader.log)"
touch "$WORK/results"
cp "$WORK/results" "$OUT/results.txt"

# Every write is on the server, with the timestamp that was written.
missing=0
for i in $(seq 1 "$TRIALS"); do
    [ -s "$WORK/wrote.$i" ] || continue
    want=$(cat "$WORK/wrote.$i")
    got=$("${MENV[@]}" "$MESA" cat "rt:rt-$i.txt" 2>/dev/null || true)
    [ "$got" = "$want" ] || missing=$((missing + 1))
done
[ "$missing" -eq 0 ] || fail "$missing of the writer's files are not on the server with their content"

# ---------------------------------------------------------------- report

# latencies in ms of the trials seen with the right content
LAT=$(awk '$2 == "seen" && $3 ~ /^[0-9]+$/ {printf "%.3f\n", ($4 - $3) / 1000}' "$WORK/results" | sort -g)
SEEN=$(grep -c . <<<"$LAT" || true)
TIMEOUTS=$(awk '$2 == "timeout"' "$WORK/results" | wc -l)
BAD=$(awk '$2 == "seen" && $3 !~ /^[0-9]+$/' "$WORK/results" | wc -l)
[ "$TIMEOUTS" -eq 0 ] || fail "$TIMEOUTS trials not seen within 10 s"
[ "$BAD" -eq 0 ] || fail "$BAD trials seen with an empty or wrong content"
[ "$((SEEN + TIMEOUTS + BAD))" -eq "$TRIALS" ] ||
    fail "only $((SEEN + TIMEOUTS + BAD)) of $TRIALS trials ran (see the logs)"

pct() { # P -> nearest-rank percentile of LAT
    [ "$SEEN" -gt 0 ] || {
        printf -- -
        return
    }
    awk -v p="$1" '{v[NR] = $1} END {r = int((p * NR + 99) / 100); if (r < 1) r = 1; print v[r]}' <<<"$LAT"
}
MED=$(pct 50)
VERSION=$("$MESARUN" --version 2>/dev/null | head -1) || VERSION="mesarun (unknown version)"
CPU=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
ELAPSED=$((SECONDS - START))
{
    echo "**$VERSION** on $(nproc) CPU ($CPU), $(uname -sr); $(date -u '+%F %H:%M UTC');" \
        "$TRIALS trials, reader polling every 2 ms; total run time ${ELAPSED} s"
    echo
    echo "| what | median ms | p90 ms | min ms | max ms | seen | timeouts (10 s) |"
    echo "|---|--:|--:|--:|--:|--:|--:|"
    echo "| a closed write in one mount seen by \`test -e\` in another | $MED | $(pct 90) |" \
        "$(pct 0) | $(pct 100) | $SEEN/$TRIALS | $TIMEOUTS |"
    echo
    if [ "$SEEN" -gt 0 ]; then
        verdict=$(awk -v m="$MED" 'BEGIN {print (m < 1000) ? "met" : "NOT met"}')
        echo "Target: under 1 s (DESIGN §3, \"within a second\"): median $MED ms, $verdict."
    fi
    if [ "${#FAILURES[@]}" -gt 0 ]; then
        echo
        echo "**Failures:**"
        echo
        printf -- '- %s\n' "${FAILURES[@]}"
    fi
    echo
    echo "Per-trial results (trial, seen|timeout, written us, seen us), logs, mesad.log: $OUT"
} | tee "$OUT/summary.md"

exit "$FAILED"
