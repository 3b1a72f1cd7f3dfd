#!/usr/bin/env bash
# bench/server-load.sh - load benchmark of mesad with wrk (see bench/README.md).
#
# Starts a private mesad on loopback (temp data dir), seeds one repo with a
# change of 50 small files at bookmark main, then runs each workload with wrk
# for a fixed duration, N times (round-robin), and prints a markdown table of
# the MEDIAN req/s, p50 and p99 latency, with each workload's ratio to GET
# /healthz (the HTTP floor of this server on this machine). Builds nothing.
#
#   bench/server-load.sh [-d SECONDS] [-c CONNECTIONS] [-t THREADS] [-n RUNS] [-o DIR] [-w LIST]
#   MESAD=/path/to/mesad bench/server-load.sh
#
# Exit status: 0 when every run was clean; 1 when the server misbehaved
# (crash, hang, unexpected status, socket errors, lost writes, unclean stop) -
# the table is still printed and the failures are listed under it; 2 on usage
# or setup errors.
# shellcheck disable=SC2016,SC2317 # backquotes are markdown; cleanup runs from a trap
set -euo pipefail

DUR=10 CONNS=8 THREADS=2 REPS=3 OUT="" ONLY=""
ALL_WORKLOADS=(healthz whoami content-raw content-json content-raw-jwt blob-304 patch)

usage() {
    cat <<'EOF'
usage: bench/server-load.sh [-d SECONDS] [-c CONNECTIONS] [-t THREADS] [-n RUNS] [-o DIR] [-w LIST]
  -d SECONDS      duration of each wrk run (default 10; 1..120)
  -c CONNECTIONS  wrk connections, kept open (default 8; 1..256)
  -t THREADS      wrk threads (default 2; 1..CONNECTIONS)
  -n RUNS         runs of each workload; the table shows medians (default 3; 1..20)
  -o DIR          results directory (default $TMPDIR/mesad-bench-<date>/)
  -w LIST         comma-separated workloads to run (default: all); healthz always
                  runs, as the reference. Workloads: healthz whoami content-raw
                  content-json content-raw-jwt blob-304 patch
environment: MESAD=path of the mesad binary (default: the first executable of
  ./server/mesad, ./_build/server/mesad under the repository top). Nothing is built.
Needs: wrk, curl, jq, openssl, basenc; git (optional, to count commits on disk).
EOF
}

die() {
    echo "server-load: $*" >&2
    exit 2
}

while getopts d:c:t:n:o:w:h opt; do
    case $opt in
    d) DUR=$OPTARG ;;
    c) CONNS=$OPTARG ;;
    t) THREADS=$OPTARG ;;
    n) REPS=$OPTARG ;;
    o) OUT=$OPTARG ;;
    w) ONLY=$OPTARG ;;
    h)
        usage
        exit 0
        ;;
    *)
        usage >&2
        exit 2
        ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || {
    usage >&2
    exit 2
}

int_in() { # VALUE MIN MAX NAME
    if ! [[ $1 =~ ^[0-9]+$ ]] || [ "$1" -lt "$2" ] || [ "$1" -gt "$3" ]; then
        die "$4 must be an integer in $2..$3 (got '$1')"
    fi
}
int_in "$DUR" 1 120 "-d"
int_in "$CONNS" 1 256 "-c"
int_in "$REPS" 1 20 "-n"
int_in "$THREADS" 1 "$CONNS" "-t"
WORKLOADS=(healthz)
if [ -z "$ONLY" ]; then
    WORKLOADS=("${ALL_WORKLOADS[@]}")
else
    IFS=, read -ra picked <<<"$ONLY"
    for w in "${picked[@]}"; do
        [[ " ${ALL_WORKLOADS[*]} " == *" $w "* ]] || die "-w: unknown workload '$w'"
        [[ " ${WORKLOADS[*]} " == *" $w "* ]] || WORKLOADS+=("$w")
    done
fi

for tool in wrk curl jq openssl basenc timeout; do
    command -v "$tool" >/dev/null || die "needs '$tool' (Debian: apt-get install wrk curl jq openssl coreutils)"
done

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$TOP/bench
if [ -z "${MESAD:-}" ]; then
    for m in "$TOP/server/mesad" "$TOP/_build/server/mesad"; do
        if [ -x "$m" ] && [ -f "$m" ]; then
            MESAD=$m
            break
        fi
    done
    [ -n "${MESAD:-}" ] || die "no mesad found (tried ./server/mesad, ./_build/server/mesad); build it or set MESAD=path"
fi
[ -x "$MESAD" ] || die "MESAD=$MESAD is not executable"

STAMP=$(date -u +%Y%m%d-%H%M%S)
OUT=${OUT:-${TMPDIR:-/tmp}/mesad-bench-$STAMP}
mkdir -p "$OUT" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mesad-bench-data.XXXXXX")
DATA=$WORK/data
LOG=$OUT/mesad.log
RESULTS=$OUT/results.tsv
: >"$LOG"
START=$SECONDS

PID="" URL="" FAILED=0
FAILURES=() # human-readable lines, printed under the table

fail() {
    FAILED=1
    FAILURES+=("$*")
    echo "!! $*" >&2
}

# ---------------------------------------------------------------- the server

start_server() {
    rm -f "$WORK/ready"
    echo "--- serve started $(date -u +%FT%TZ)" >>"$LOG"
    "$MESAD" serve --data "$DATA" --listen 127.0.0.1:0 --ready-file "$WORK/ready" >>"$LOG" 2>&1 &
    PID=$!
    local i
    for i in $(seq 1 200); do
        [ -s "$WORK/ready" ] && break
        kill -0 "$PID" 2>/dev/null || {
            tail -n 20 "$LOG" >&2
            die "mesad exited before it was ready (log: $LOG)"
        }
        sleep 0.05
    done
    [ -s "$WORK/ready" ] || die "mesad not ready after 10 s (log: $LOG)"
    local port
    port=$(grep -o '127\.0\.0\.1:[0-9]*' "$WORK/ready" | head -1 | cut -d: -f2)
    [ -n "$port" ] || die "no TCP address in the ready file: $(cat "$WORK/ready")"
    URL=http://127.0.0.1:$port
}

# stop_server [expect-clean]: SIGTERM, wait up to 10 s, then SIGKILL.
stop_server() {
    [ -n "$PID" ] || return 0
    local pid=$PID rc=0 i
    PID=""
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 1 200); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
            [ "${1:-}" = clean ] && fail "mesad did not exit within 10 s of SIGTERM (killed with SIGKILL)"
        fi
    fi
    wait "$pid" 2>/dev/null || rc=$?
    if [ "${1:-}" = clean ] && [ "$rc" -ne 0 ]; then
        fail "mesad exited with status $rc after SIGTERM (expected 0)"
    fi
    return 0
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_server || true
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Is the server alive and answering? Otherwise record why, restart it on the
# same data directory (so the remaining workloads still run) and return 1.
check_server() { # CONTEXT
    local why="" rc=0
    if ! kill -0 "$PID" 2>/dev/null; then
        wait "$PID" 2>/dev/null || rc=$?
        if [ "$rc" -gt 128 ]; then
            why="mesad died (signal $((rc - 128)), exit status $rc)"
        else
            why="mesad exited (status $rc)"
        fi
        PID=""
    elif [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL/healthz" || true)" != 200 ]; then
        why="mesad alive but GET /healthz did not answer 200 within 5 s (hang)"
        stop_server
    fi
    [ -z "$why" ] && return 0
    fail "$1: $why; log tail: $(tail -n 3 "$LOG" | tr '\n' '|')"
    start_server
    echo "   (restarted mesad on $URL to run the remaining workloads)" >&2
    return 1
}

# api METHOD PATH [curl args...] -> CODE, BODY (credential: $AUTH)
api() {
    local method=$1 path=$2
    shift 2
    CODE=$(curl -sS --max-time 30 -o "$WORK/body" -w '%{http_code}' -X "$method" \
        -H "Authorization: Bearer $AUTH" "$URL$path" "$@") || CODE=000
    BODY=$(cat "$WORK/body" 2>/dev/null || true)
}

need() { # CODE WHAT
    [ "$CODE" = "$1" ] || die "$2: expected HTTP $1, got $CODE: $BODY"
}

b64url() { basenc --base64url -w0 | tr -d '='; }

# ---------------------------------------------------------------- setup

ORG=acme REPO=bench
VERSION=$("$MESAD" --version 2>/dev/null | head -1) || VERSION="mesad (unknown version)"
INIT=$("$MESAD" init --data "$DATA" --org "$ORG" --json) || die "mesad init failed"
KEY=$(jq -r .api_key <<<"$INIT")
KEY_ID=$(jq -r .key_id <<<"$INIT")
AUTH=$KEY
start_server
echo "mesad: $MESAD ($VERSION) on $URL; results in $OUT" >&2

api POST "/v1/$ORG/repos" -H 'Content-Type: application/json' --data-binary "{\"name\":\"$REPO\"}"
need 201 "create repo"

files=$(for i in $(seq 0 49); do
    printf '{"path":"src/f%d.c","content":"%s"}\n' "$i" \
        "$(printf '/* file %d */\nint f%d(void) { return %d; }\n' "$i" "$i" "$i" | base64 -w0)"
done | jq -sc .)
api POST "/v1/$ORG/$REPO/changes" -H 'Content-Type: application/json' \
    --data-binary "$(jq -cn --argjson f "$files" '{base_change_id:"main",message:"bench seed: 50 files",files:$f}')"
need 201 "create the seed change"
SEED=$(jq -r .id <<<"$BODY")
api PATCH "/v1/$ORG/$REPO/bookmarks/main" -H 'Content-Type: application/json' \
    --data-binary "{\"change_id\":\"$SEED\"}"
need 200 "move bookmark main"

READ_PATH="/v1/$ORG/$REPO/content?change_id=main&path=src/f7.c"
api GET "$READ_PATH" -H 'Accept: application/octet-stream'
need 200 "read src/f7.c"
api GET "$READ_PATH"
need 200 "read src/f7.c as JSON"
OID=$(jq -r .sha <<<"$BODY")
[[ $OID =~ ^[0-9a-f]{40}$ ]] || die "no blob id for src/f7.c: $BODY"

# An access token signed from the key as a client would (tests/lib/mesad.bash `token`).
S=$(printf %s "$KEY" | openssl dgst -sha256 -binary | b64url)
now=$(date +%s)
jwt_h=$(printf '{"alg":"HS256","typ":"mesa-at+jwt","kid":"%s.v1"}' "$KEY_ID" | b64url)
jwt_p=$(jq -cn --arg kid "$KEY_ID" --argjson now "$now" \
    '{scopes:["read","write","admin"],iss:$kid,aud:"mesa-api",iat:$now,exp:($now+3600),jti:"bench"}' | b64url)
jwt_s=$(printf %s "$jwt_h.$jwt_p" | openssl dgst -sha256 -mac HMAC -macopt "key:$S" -binary | b64url)
JWT=$jwt_h.$jwt_p.$jwt_s
AUTH=$JWT api GET /v1/whoami
need 200 "whoami with the signed token"
AUTH=$KEY

# ---------------------------------------------------------------- workloads

declare -A DESC=(
    [healthz]='`GET /healthz` - no auth, no storage: the HTTP floor'
    [whoami]='`GET /v1/whoami` - cheapest authenticated request (API key)'
    [content-raw]='`GET .../content?change_id=main&path=src/f7.c`, `Accept: application/octet-stream` (API key)'
    [content-json]='same, JSON answer (base64 content, no Accept header)'
    [content-raw-jwt]='content-raw with a signed HS256 access token instead of the key'
    [blob-304]="\`GET .../blobs/{oid}\` with \`If-None-Match\` -> 304 (mount revalidation)"
    [patch]='`PATCH .../changes/{id}` writing one new small file per request (fsync, new commit)'
)

# Bash arrays of wrk/curl arguments for workload $1 -> WRK_ARGS, PRE_ARGS, EXPECT
workload_args() {
    local w=$1 auth=(-H "Authorization: Bearer $KEY")
    EXPECT=2xx PRE_CODE=200
    case $w in
    healthz) WRK_ARGS=("$URL/healthz") auth=() ;;
    whoami) WRK_ARGS=("$URL/v1/whoami") ;;
    content-raw) WRK_ARGS=(-H 'Accept: application/octet-stream' "$URL$READ_PATH") ;;
    content-json) WRK_ARGS=("$URL$READ_PATH") ;;
    content-raw-jwt)
        auth=(-H "Authorization: Bearer $JWT")
        WRK_ARGS=(-H 'Accept: application/octet-stream' "$URL$READ_PATH")
        ;;
    blob-304)
        WRK_ARGS=(-H "If-None-Match: \"$OID\"" "$URL/v1/$ORG/$REPO/blobs/$OID")
        EXPECT=304 PRE_CODE=304
        ;;
    patch) WRK_ARGS=("$URL/v1/$ORG/$REPO/changes/$WCHANGE") ;;
    esac
    WRK_ARGS=("${auth[@]}" "${WRK_ARGS[@]}")
}

# The change the write workload rewrites: a fresh one per run (base: main), so
# every run starts from the same 50-file tree and reads of main are unaffected.
new_write_change() {
    api POST "/v1/$ORG/$REPO/changes" -H 'Content-Type: application/json' \
        --data-binary '{"base_change_id":"main","message":"bench writes"}'
    [ "$CODE" = 201 ] || return 1
    WCHANGE=$(jq -r .id <<<"$BODY")
}

tree_files() { # CHANGE -> number of files in its tree (or empty)
    api GET "/v1/$ORG/$REPO/tree?change_id=$1"
    if [ "$CODE" = 200 ]; then
        jq '[.entries[] | select(.type == "file")] | length' <<<"$BODY" || true
    fi
}

keep_refs() { # number of commits recorded on disk (refs/jj/keep/*), if git exists
    command -v git >/dev/null || return 0
    local g
    for g in "$DATA"/repos/*.git; do
        git -C "$g" for-each-ref refs/jj/keep/ 2>/dev/null | wc -l
    done | awk '{s += $1} END {print s + 0}'
}

printf 'workload\trun\trps\tp50_us\tp99_us\tunexpected\tsocket_errors\tstatuses\tnote\n' >"$RESULTS"

run_one() { # WORKLOAD RUN
    local w=$1 rep=$2 raw=$OUT/$1.$2.txt note="" pre
    local script=$BENCH/status.lua extra=()
    if [ "$w" = patch ]; then
        new_write_change || {
            fail "$w run $rep: could not create the write change: HTTP $CODE $BODY"
            check_server "$w run $rep" || true
            return 0
        }
        workload_args "$w"
        script=$BENCH/patch.lua extra=("expect=$EXPECT" "tag=r$rep")
        FILES0=$(tree_files "$WCHANGE") KEEP0=$(keep_refs)
    else
        workload_args "$w"
        extra=("expect=$EXPECT")
        # Pre-flight: one request with curl; a wrong answer skips the workload.
        rm -f "$WORK/pre"
        pre=$(curl -s -o "$WORK/pre" -w '%{http_code}' --max-time 10 "${WRK_ARGS[@]}" || true)
        if [ "$pre" != "$PRE_CODE" ]; then
            local shown
            shown=$(printf '%q ' "${WRK_ARGS[@]}")
            fail "$w run $rep: pre-flight answered HTTP ${pre:-000} (expected $PRE_CODE)" \
                "$(head -c 300 "$WORK/pre" 2>/dev/null | tr '\n' ' ')- reproduce on the seeded server:" \
                "curl -i ${shown//$KEY/\$KEY}"
            check_server "$w run $rep (pre-flight)" || true
            printf '%s\t%s\t\t\t\t\t\t\tpre-flight HTTP %s\n' "$w" "$rep" "${pre:-000}" >>"$RESULTS"
            return 0
        fi
    fi
    echo "== $w run $rep/$REPS: wrk -t$THREADS -c$CONNS -d${DUR}s" >&2
    {
        echo "# $w run $rep: wrk -t$THREADS -c$CONNS -d${DUR}s --timeout 5s --latency -s $script ${WRK_ARGS[*]//$KEY/<key>} -- ${extra[*]}"
        timeout -k 5 $((DUR + 30)) wrk -t"$THREADS" -c"$CONNS" -d"${DUR}s" --timeout 5s --latency \
            -s "$script" "${WRK_ARGS[@]}" -- "${extra[@]}" 2>&1 || echo "# wrk exit status $?"
    } >"$raw"
    local line
    line=$(grep '^MESAD_BENCH ' "$raw" | tail -1 || true)
    if [ -z "$line" ]; then
        fail "$w run $rep: no result from wrk (hang or wrk failure; see $raw)"
        check_server "$w run $rep" || true
        printf '%s\t%s\t\t\t\t\t\t\tno result\n' "$w" "$rep" >>"$RESULTS"
        return 0
    fi
    local -A f=()
    local kv
    for kv in ${line#MESAD_BENCH }; do f[${kv%%=*}]=${kv#*=}; done
    local sockerr=$((f[err_connect] + f[err_read] + f[err_write] + f[err_timeout]))
    if [ "${f[unexpected]}" -ne 0 ] || [ "$sockerr" -ne 0 ]; then
        local sample
        sample=$(grep -m1 '^MESAD_BENCH_SAMPLE ' "$raw" | cut -d' ' -f2- || true)
        fail "$w run $rep: ${f[unexpected]} responses not $EXPECT (statuses ${f[statuses]}), socket errors" \
            "connect/read/write/timeout ${f[err_connect]}/${f[err_read]}/${f[err_write]}/${f[err_timeout]}" \
            "${sample:+- first: $sample }(raw: $raw)"
    fi
    if [ "$w" = patch ]; then
        sleep 0.5 # requests in flight when wrk stopped still complete on the server
        local acked files1 keep1 added
        acked=$(tr ',' '\n' <<<"${f[statuses]}" | awk -F: '$1 >= 200 && $1 < 300 {s += $2} END {print s + 0}')
        files1=$(tree_files "$WCHANGE") keep1=$(keep_refs)
        added=$((${files1:-0} - ${FILES0:-0}))
        note="$(printf '%.0f' "${f[rps]}") req/s, $acked acked, $added files added"
        # Every attempt writes a commit (and a refs/jj/keep ref) before the
        # per-repo lock; one that lost the race is rebuilt, so commits on disk
        # / acked = attempts per acknowledged write. The keep refs accumulate.
        if [ -n "$keep1" ]; then
            note+=", $((keep1 - KEEP0)) commits on disk"
            note+=" ($(awk -v a=$((keep1 - KEEP0)) -v b="$acked" 'BEGIN {if (b) printf "%.1f", a / b; else printf "-"}') per acked write)"
            note+=", keep refs before the run: $KEEP0"
        fi
        # wrk stops with up to $CONNS requests in flight; those may still commit.
        if [ -z "$files1" ] || [ "$added" -lt "$acked" ] || [ "$added" -gt $((acked + CONNS)) ]; then
            fail "$w run $rep: acknowledged writes and files in the tree disagree ($note; tree HTTP $CODE)"
        fi
        if [ -n "$keep1" ] && [ $((keep1 - KEEP0)) -lt "$acked" ]; then
            fail "$w run $rep: fewer commits on disk than acknowledged PATCHes ($note)"
        fi
        echo "   $note" >&2
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "$rep" "${f[rps]}" "${f[p50_us]}" "${f[p99_us]}" \
        "${f[unexpected]}" "$sockerr" "${f[statuses]}" "$note" >>"$RESULTS"
    check_server "$w run $rep" || true
}

# Round-robin (all workloads, then again) so slow drifts of a shared machine
# spread over every workload instead of biasing one.
for rep in $(seq 1 "$REPS"); do
    for w in "${WORKLOADS[@]}"; do
        run_one "$w" "$rep"
    done
done

stop_server clean

# ---------------------------------------------------------------- report

median() { # numbers on stdin -> median (empty when none)
    sort -g | awk '{v[NR] = $1} END {
        if (NR == 0) exit
        if (NR % 2) printf "%.6g\n", v[(NR + 1) / 2]; else printf "%.6g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
col() { # WORKLOAD FIELD# -> that column of the workload's successful runs
    awk -F'\t' -v w="$1" -v c="$2" 'NR > 1 && $1 == w && $3 != "" {print $c}' "$RESULTS"
}
ms() { [ -n "$1" ] && awk -v u="$1" 'BEGIN {printf "%.3f", u / 1000}' || printf -- '-'; }

CPU=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
HEALTHZ_RPS=$(col healthz 3 | median)
ELAPSED=$((SECONDS - START))
{
    echo "**$VERSION** on $(nproc) CPU ($CPU), $(uname -sr); $(date -u '+%F %H:%M UTC');" \
        "wrk -t$THREADS -c$CONNS -d${DUR}s on loopback, median of $REPS runs; total run time ${ELAPSED} s"
    echo
    echo "| workload | what | req/s (median) | req/s min-max | p50 ms | p99 ms | x /healthz | unexpected status / socket errors |"
    echo "|---|---|--:|--:|--:|--:|--:|--:|"
    for w in "${WORKLOADS[@]}"; do
        rps=$(col "$w" 3 | median)
        lo=$(col "$w" 3 | sort -g | head -1) hi=$(col "$w" 3 | sort -g | tail -1)
        p50=$(col "$w" 4 | median) p99=$(col "$w" 5 | median)
        runs=$(col "$w" 3 | wc -l)
        bad=$(col "$w" 6 | awk '{s += $1} END {print s + 0}')
        sock=$(col "$w" 7 | awk '{s += $1} END {print s + 0}')
        if [ -z "$rps" ]; then
            echo "| $w | ${DESC[$w]} | FAILED (0/$REPS runs) | - | - | - | - | see failures |"
            continue
        fi
        ratio=$(awk -v a="$rps" -v b="${HEALTHZ_RPS:-0}" 'BEGIN {if (b > 0) printf "%.2f", a / b; else printf "-"}')
        partial=""
        [ "$runs" -lt "$REPS" ] && partial=" (only $runs/$REPS runs)"
        printf '| %s | %s | %.0f%s | %.0f-%.0f | %s | %s | %s | %s / %s |\n' "$w" "${DESC[$w]}" \
            "$rps" "$partial" "$lo" "$hi" "$(ms "$p50")" "$(ms "$p99")" "$ratio" "$bad" "$sock"
    done
    notes=$(awk -F'\t' 'NR > 1 && $1 == "patch" && $9 != "" {printf "run %s: %s; ", $2, $9}' "$RESULTS")
    [ -n "$notes" ] && echo && echo "Writes (patch, same repo, in order): ${notes%; }."
    if [ "${#FAILURES[@]}" -gt 0 ]; then
        echo
        echo "**Server misbehaviour / failed runs:**"
        echo
        printf -- '- %s\n' "${FAILURES[@]}"
    fi
    echo
    echo "Raw wrk outputs, results.tsv and mesad.log: $OUT"
} | tee "$OUT/summary.md"

exit "$FAILED"
