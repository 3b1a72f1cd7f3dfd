#!/usr/bin/env bats
# tests/server/fuzz.bats - seeded fuzzing of mesad (tests/server/fuzz/fuzz.py):
# 2000 requests mixing valid calls to every endpoint, mutated JSON bodies,
# odd paths, queries, headers, methods, names, tokens and malformed HTTP.
# docs/PROTOCOL.md: bad input is always 4xx, 500 never for bad input, the
# server never crashes. This file's server runs with --max-body 1048576 so
# the fuzzer's huge bodies also meet the 413 path.
# Reproduce a failure by hand:
#   python3 tests/server/fuzz/fuzz.py --url URL --key KEY --seed 1 -n 2000 -v
# (a server built with --enable-sanitizers reports memory errors in its log).

bats_require_minimum_version 1.5.0
load ../lib/mesad

FUZZ_SEED=${FUZZ_SEED:-1}
FUZZ_N=${FUZZ_N:-2000}

setup_file() {
    command -v python3 >/dev/null 2>&1 || return 0
    mesad_start --max-body 1048576
}
teardown_file() { mesad_stop; }

setup() {
    command -v python3 >/dev/null 2>&1 || skip "python3 is not installed (fuzz.py needs it)"
}

@test "fuzz: $FUZZ_N seeded requests get no 5xx, accept no invalid input and crash nothing" {
    run timeout 300 python3 "$BATS_TEST_DIRNAME/fuzz/fuzz.py" --url "$MESAD_URL" \
        --key "$ADMIN_KEY" --org "$MESA_ORG" --seed "$FUZZ_SEED" -n "$FUZZ_N" \
        --pid "$MESAD_PID" --log "$MESAD_TMP/mesad.log" --save "$BATS_FILE_TMPDIR/repro"
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"requests $FUZZ_N, statuses {"*", findings 0"* ]]
}

@test "fuzz: the server is alive afterwards and whoami works" {
    kill -0 "$MESAD_PID"
    [ "$(curl -sS -o /dev/null -w '%{http_code}' "$MESAD_URL/healthz")" = 200 ]
    api GET /whoami
    expect 200
    jq -e --arg org "$MESA_ORG" '.org.slug == $org and (.scopes | index("admin"))' \
        <<<"$body" >/dev/null
}

@test "fuzz: the server log holds no sanitizer report" {
    if grep -nE 'AddressSanitizer|LeakSanitizer|runtime error' "$MESAD_TMP/mesad.log"; then
        sed -n '1,80p' "$MESAD_TMP/mesad.log"
        return 1
    fi
}

@test "fuzz: SIGTERM then stops the server within 10 s, with no leak report" {
    local i s
    kill -TERM "$MESAD_PID"
    for i in $(seq 1 200); do
        s=$(ps -o stat= -p "$MESAD_PID" 2>/dev/null) || break
        [[ $s == Z* ]] && break
        sleep 0.05
    done
    s=$(ps -o stat= -p "$MESAD_PID" 2>/dev/null) || s=gone
    [[ $s == gone || $s == Z* ]] || { echo "mesad still running 10 s after SIGTERM" >&2; return 1; }
    if grep -nE 'LeakSanitizer|AddressSanitizer|runtime error' "$MESAD_TMP/mesad.log"; then
        sed -n '1,80p' "$MESAD_TMP/mesad.log"
        return 1
    fi
}
