#!/usr/bin/env bats
# tests/server/badinput.bats - hostile and malformed requests: every one is a
# 4xx with a JSON error body, changes nothing, and the server keeps running
# (docs/PROTOCOL.md "Errors", file path rules, --max-body, --rate-limit).
# This file's server runs with --max-body 1048576 (1 MiB).

load ../lib/mesad

setup_file() {
    mesad_start --max-body 1048576
    make_repo bi
    C=$(new_change bi "$ROOT_CHANGE" "[$(file_json a.txt orig)]")
    C_OID=$(curl -sS -H "Authorization: Bearer $ADMIN_KEY" "$MESAD_URL/v1/acme/bi/changes/$C" | jq -r .current_commit_oid)
    export C C_OID
}
teardown_file() { mesad_stop; }

# a rate-limited server started by a test is stopped even if the test failed
teardown() {
    if [ -n "${RL_PID:-}" ]; then
        MESAD_PID=$RL_PID MESAD_TMP=$RL_TMP mesad_stop
    fi
}

# post_raw BODY / patch_raw BODY: send BODY as is
post_raw() { jreq POST /acme/bi/changes "$1"; }
patch_raw() { jreq PATCH "/acme/bi/changes/$C" "$1"; }

# bad_bodies LABEL BODY...: each BODY sent to POST and to PATCH gets 400 BAD_REQUEST
bad_bodies() {
    local label=$1 b
    shift
    for b in "$@"; do
        post_raw "$b"
        expect_error 400 BAD_REQUEST || { echo "$label: POST body: $b" >&2; return 1; }
        patch_raw "$b"
        expect_error 400 BAD_REQUEST || { echo "$label: PATCH body: $b" >&2; return 1; }
    done
}

# bad_entries LABEL ENTRY...: each files[] ENTRY, in a POST and in a PATCH, gets 400
bad_entries() {
    local label=$1 e
    shift
    for e in "$@"; do
        post_raw "{\"base_change_id\":\"$C\",\"files\":[$e]}"
        expect_error 400 BAD_REQUEST || { echo "$label: POST entry: ${e:0:200}" >&2; return 1; }
        patch_raw "{\"files\":[$e]}"
        expect_error 400 BAD_REQUEST || { echo "$label: PATCH entry: ${e:0:200}" >&2; return 1; }
    done
}

# entry PATH: an upsert entry for PATH (PATH already JSON-escaped)
entry() { printf '{"path":"%s","content":"QQ=="}' "$1"; }

# unchanged: the change C still has its first commit, and nothing was added
unchanged() {
    local oid
    api GET "/acme/bi/changes/$C"
    expect 200 || return 1
    oid=$(jq -r .current_commit_oid <<<"$body")
    [ "$oid" = "$C_OID" ] || { echo "change $C was rewritten: $oid != $C_OID" >&2; return 1; }
    api GET "/acme/bi/changes?limit=100"
    expect 200 || return 1
    [ "$(jq '.changes | length' <<<"$body")" -le 2 ] || {
        echo "a change was created: $body" >&2
        return 1
    }
}

# alive: the server process exists and answers healthz and whoami
alive() {
    kill -0 "$MESAD_PID" || { echo "mesad (pid $MESAD_PID) is gone" >&2; return 1; }
    [ "$(curl -sS -o /dev/null -w '%{http_code}' "$MESAD_URL/healthz")" = 200 ] || return 1
    api GET /whoami
    expect 200
}

rep() { printf "%${2}s" "" | tr ' ' "$1"; }

@test "malformed JSON gets 400" {
    bad_bodies malformed '{' '{"base_change_id":' 'not json' '{"a":1,}' '' "{'a':1}" \
        "{\"base_change_id\":\"$C\"} trailing" '{"base_change_id":"x"' '{"files":[}' \
        "$(printf '{"base_change_id":"\xff\xfe"}')"
    unchanged
    alive
}

@test "a very deeply nested JSON body gets 400 and does not crash the server" {
    local f=$BATS_TEST_TMPDIR/deep.json
    { printf '{"base_change_id":"%s","message":' "$C"; rep '[' 200000; rep ']' 200000; printf '}'; } >"$f"
    api POST /acme/bi/changes -H 'Content-Type: application/json' --data-binary "@$f"
    expect_error 400 BAD_REQUEST
    { printf '{"message":'; rep '{"a":' 200000; printf 1; rep '}' 200000; printf '}'; } >"$f"
    api PATCH "/acme/bi/changes/$C" -H 'Content-Type: application/json' --data-binary "@$f"
    expect_error 400 BAD_REQUEST
    unchanged
    alive
}

@test "JSON that is not an object gets 400" {
    bad_bodies not-object '[]' '"a string"' '42' 'null' 'true' '[{"base_change_id":"x"}]'
    unchanged
    alive
}

@test "wrong types get 400" {
    bad_bodies wrong-types \
        "{\"base_change_id\":\"$C\",\"files\":{}}" \
        "{\"base_change_id\":\"$C\",\"files\":\"a.txt\"}" \
        "{\"base_change_id\":\"$C\",\"files\":[5]}" \
        "{\"base_change_id\":\"$C\",\"files\":[\"a.txt\"]}" \
        "{\"base_change_id\":\"$C\",\"message\":5}" \
        "{\"base_change_id\":\"$C\",\"author\":\"me\"}" \
        "{\"base_change_id\":\"$C\",\"author\":{\"name\":1,\"email\":\"e@x\"}}"
    bad_entries wrong-entry-types \
        '{"path":5,"content":"QQ=="}' \
        '{"path":["a"],"content":"QQ=="}' \
        '{"path":"a","content":5}' \
        '{"path":"a","content":"QQ==","mode":100644}' \
        '{"path":"a","content":"QQ==","mtime_ns":"now"}' \
        '{"path":"a","content":"QQ==","mtime_ns":1.5}'
    post_raw '{"base_change_id":5}'
    expect_error 400 BAD_REQUEST
    patch_raw '{"base_commit_oid":5}'
    expect_error 400 BAD_REQUEST
    unchanged
    alive
}

@test "missing required members and unknown enum values get 400" {
    post_raw '{"files":[]}'
    expect_error 400 BAD_REQUEST
    bad_entries missing-or-enum \
        '{"content":"QQ=="}' \
        '{"path":"a"}' \
        '{"path":"a","content":"QQ==","mode":"100600"}' \
        '{"path":"a","content":"QQ==","mode":"040000"}' \
        '{"path":"a","action":"frobnicate"}' \
        '{"path":"a","content":"QQ==","encoding":"utf-8"}'
    unchanged
    alive
}

@test "an unknown top-level field gets 400 naming the field" {
    post_raw "{\"base_change_id\":\"$C\",\"bogus_field\":1}"
    expect_error 400 BAD_REQUEST
    jq -e '.error.message | contains("bogus_field")' <<<"$body" >/dev/null
    patch_raw '{"message":"m","bogus_field":true}'
    expect_error 400 BAD_REQUEST
    jq -e '.error.message | contains("bogus_field")' <<<"$body" >/dev/null
    # a typo of a real field is rejected too, not silently ignored
    patch_raw "{\"mesage\":\"typo\",\"files\":[$(entry typo.txt)]}"
    expect_error 400 BAD_REQUEST
    jq -e '.error.message | contains("mesage")' <<<"$body" >/dev/null
    unchanged
    alive
}

@test "an unknown file-entry field gets 400 naming the field" {
    post_raw "{\"base_change_id\":\"$C\",\"files\":[{\"path\":\"a\",\"content\":\"QQ==\",\"colour\":\"red\"}]}"
    expect_error 400 BAD_REQUEST
    jq -e '.error.message | contains("colour")' <<<"$body" >/dev/null
    patch_raw '{"files":[{"path":"a","action":"delete","colour":"red"}]}'
    expect_error 400 BAD_REQUEST
    jq -e '.error.message | contains("colour")' <<<"$body" >/dev/null
    unchanged
    alive
}

@test "bad base64 content gets 400" {
    local c
    for c in '@@@' 'QQ' 'QQ=' 'Q===' 'QQ==QQ==' '=QQ=' 'QUJD!' 'QU JD'; do
        bad_entries "base64 '$c'" "{\"path\":\"b64\",\"content\":\"$c\"}"
    done
    unchanged
    alive
}

@test "path traversal and forbidden paths get 400" {
    bad_entries paths \
        "$(entry ../x)" "$(entry a/../b)" "$(entry /abs)" "$(entry a//b)" "$(entry a/./b)" \
        "$(entry '')" "$(entry .)" "$(entry ..)" "$(entry a/)" "$(entry ./a)" \
        "$(entry .git)" "$(entry .git/config)" "$(entry x/.GIT/y)" "$(entry .Git/HEAD)" \
        "$(entry 'a\u0000b')" "$(entry '\u0000')" \
        '{"path":"../x","action":"delete"}' '{"path":".git","action":"delete"}' \
        '{"path":"a/../../b","action":"mkdir"}'
    unchanged
    alive
}

@test "over-long paths get 400: a 300-byte segment, a 5000-byte path" {
    local seg300 long
    seg300=$(rep s 300)
    long=$(rep p 99)
    long="$long$(for i in $(seq 1 49); do printf '/%s' "$(rep p 99)"; done)/tail"
    [ "${#long}" -gt 4096 ]
    bad_entries long-paths "$(entry "$seg300")" "$(entry "d/$seg300/f")" "$(entry "$long")" \
        "$(entry "$(rep s 256)")"
    unchanged
    alive
}

@test "a 255-byte segment and a path of exactly 4096 bytes are accepted" {
    local seg255 p i
    make_repo bi-long
    seg255=$(rep s 255)
    p=""
    for i in $(seq 1 16); do p="$p$(rep q 254)/"; done    # 16 * 255 = 4080 bytes
    p="$p$(rep r $((4096 - ${#p})))"
    [ "${#p}" -eq 4096 ]
    jreq POST /acme/bi-long/changes "{\"base_change_id\":\"main\",\"files\":[$(entry "$seg255"),$(entry "$p")]}"
    expect 201
    local n
    n=$(jq -r .id <<<"$body")
    api GET "/acme/bi-long/content?change_id=$n&path=$seg255"
    expect 200
    api GET "/acme/bi-long/content?change_id=$n&path=$p"
    expect 200
    alive
}

@test "paths in the content query obey the same rules" {
    local p
    for p in ../x a/../b .git .git/config x/.GIT/y a%00b /abs a//b; do
        api GET "/acme/bi/content?change_id=$C&path=$p"
        expect_error 400 BAD_REQUEST || { echo "path=$p" >&2; false; }
    done
    alive
}

@test "a body bigger than --max-body gets 413 PAYLOAD_TOO_LARGE, with or without Content-Length" {
    local f=$BATS_TEST_TMPDIR/big.json
    { printf '{"base_change_id":"%s","files":[{"path":"big","content":"' "$C"
      head -c $((1536 * 1024)) /dev/zero | base64 -w0
      printf '"}]}'; } >"$f"
    [ "$(stat -c %s "$f")" -gt $((2 * 1024 * 1024)) ]
    api POST /acme/bi/changes -H 'Content-Type: application/json' -H 'Expect:' --data-binary "@$f"
    expect_error 413 PAYLOAD_TOO_LARGE
    api POST /acme/bi/changes -H 'Content-Type: application/json' -H 'Expect:' \
        -H 'Transfer-Encoding: chunked' --data-binary "@$f"
    expect_error 413 PAYLOAD_TOO_LARGE
    { printf '{"files":[{"path":"big","content":"'
      head -c $((1536 * 1024)) /dev/zero | base64 -w0
      printf '"}]}'; } >"$f"
    api PATCH "/acme/bi/changes/$C" -H 'Content-Type: application/json' -H 'Expect:' --data-binary "@$f"
    expect_error 413 PAYLOAD_TOO_LARGE
    unchanged
    alive
}

@test "a body under --max-body is accepted" {
    local f=$BATS_TEST_TMPDIR/ok.json
    make_repo bi-medium
    { printf '{"base_change_id":"main","files":[{"path":"medium","content":"'
      head -c $((600 * 1024)) /dev/zero | base64 -w0
      printf '"}]}'; } >"$f"
    [ "$(stat -c %s "$f")" -lt $((1024 * 1024)) ]
    api POST /acme/bi-medium/changes -H 'Content-Type: application/json' -H 'Expect:' --data-binary "@$f"
    expect 201
    alive
}

@test "with --rate-limit 5, 30 quick requests get some 429 RATE_LIMITED with Retry-After" {
    local i code n200=0 n429=0 ra=""
    mesad_start --rate-limit 5
    RL_PID=$MESAD_PID
    RL_TMP=$MESAD_TMP
    for i in $(seq 1 30); do
        code=$(curl -sS -o "$BATS_TEST_TMPDIR/b$i" -D "$BATS_TEST_TMPDIR/h$i" -w '%{http_code}' \
            -H "Authorization: Bearer $ADMIN_KEY" "$MESAD_URL/v1/whoami")
        case $code in
        200) n200=$((n200 + 1)) ;;
        429)
            n429=$((n429 + 1))
            jq -e '.error.code == "RATE_LIMITED" and (.error.message | type == "string")' \
                "$BATS_TEST_TMPDIR/b$i" >/dev/null || {
                echo "429 without a RATE_LIMITED body: $(cat "$BATS_TEST_TMPDIR/b$i")" >&2
                false
            }
            ra=$(tr -d '\r' <"$BATS_TEST_TMPDIR/h$i" | sed -n 's/^[Rr]etry-[Aa]fter:[[:space:]]*//p')
            [[ "$ra" =~ ^[0-9]+$ ]] || { echo "429 without a Retry-After seconds header" >&2; cat "$BATS_TEST_TMPDIR/h$i" >&2; false; }
            ;;
        *) echo "request $i: unexpected HTTP $code" >&2; false ;;
        esac
    done
    [ "$n200" -ge 1 ] || { echo "no request succeeded" >&2; false; }
    [ "$n429" -ge 1 ] || { echo "no request was rate limited ($n200 ok)" >&2; false; }
    # after waiting as told, requests succeed again
    if [ "$ra" -le 10 ]; then
        sleep $((ra + 1))
        api GET /whoami
        expect 200
    fi
    kill -0 "$RL_PID"
}

@test "an unknown route gets 404 and a wrong method 405, with JSON error bodies" {
    api GET /acme/bi/nonsense
    expect_error 404 NOT_FOUND
    api GET /acme/bi/changes/$C/extra/segments
    expect_error 404 NOT_FOUND
    run curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ADMIN_KEY" "$MESAD_URL/nowhere"
    [ "$output" = 404 ]
    api PUT /acme/repos
    expect_error 405 METHOD_NOT_ALLOWED
    api DELETE /whoami
    expect_error 405 METHOD_NOT_ALLOWED
    api PUT /acme/bi/changes
    expect_error 405 METHOD_NOT_ALLOWED
    api POST "/acme/bi/content"
    expect_error 405 METHOD_NOT_ALLOWED
    alive
}

@test "after all of the above the server still runs and answers healthz and whoami" {
    kill -0 "$MESAD_PID"
    run curl -sS "$MESAD_URL/healthz"
    [ "$status" -eq 0 ]
    [ "$(jq -c . <<<"$output")" = '{"ok":true}' ]
    api GET /whoami
    expect 200
    [ "$(jq -r .org.slug <<<"$body")" = acme ]
    unchanged
}

# ---------------------------------------------------------------- found by tests/server/fuzz

@test "bytes that are not UTF-8 in a URL get a JSON 404/400 with a valid UTF-8 message, not a 500" {
    local u
    for u in "/%FF" "/acme/bi/changes/%FF" "/acme/bi/blobs/%c3%28" \
        "/acme/bi/bookmarks/%ed%a0%80" "/acme/bi/content?change_id=%c3%28" \
        "/acme/bi/content?path=%FF"; do
        api GET "$u"
        [[ "$status_code" == 4* ]] || { echo "$u: HTTP $status_code" >&2; false; }
        jq -e '.error.message | type == "string"' <<<"$body" >/dev/null ||
            { echo "$u: $body" >&2; false; }
    done
    alive
}

@test "NTFS spellings of .git (git~1, .git., '.git ', .git::\$DATA) are refused with 400" {
    local p
    for p in "git~1/x" "GIT~1" ".git." ".git " "a/.git./b" ".git::\$DATA"; do
        jreq POST /acme/bi/changes "{\"base_change_id\":\"main\",\"files\":[$(entry "$p")]}"
        expect_error 400 BAD_REQUEST || { echo "path '$p'" >&2; false; }
    done
    alive
}

@test "a bookmark that collides with another as file and directory gets 409 CONFLICT" {
    make_repo bi-bm
    jreq POST /acme/bi-bm/bookmarks "{\"name\":\"main/x\",\"change_id\":\"$ROOT_CHANGE\"}"
    expect_error 409 CONFLICT
    jreq POST /acme/bi-bm/bookmarks "{\"name\":\"feat/a\",\"change_id\":\"$ROOT_CHANGE\"}"
    expect 201
    jreq POST /acme/bi-bm/bookmarks "{\"name\":\"feat\",\"change_id\":\"$ROOT_CHANGE\"}"
    expect_error 409 CONFLICT
    api GET /acme/bi-bm/bookmarks/feat
    expect_error 404 NOT_FOUND
}

@test "merge resolutions are checked like file paths, even for a no-op merge" {
    make_repo bi-merge
    jreq POST /acme/bi-merge/bookmarks "{\"name\":\"feat\",\"change_id\":\"$ROOT_CHANGE\"}"
    expect 201
    local long
    long=$(printf 's%.0s' $(seq 1 300))
    for res in "{\"path\":\".git/hooks/pre-commit\",\"content\":\"QQ==\"}" \
        "{\"path\":\"$long\",\"take\":\"target\"}" \
        "{\"path\":\"ok\",\"content\":\"Q===\"}" \
        "{\"path\":\"ok\",\"take\":\"neither\"}" \
        "{\"path\":\"ok\",\"content\":\"QQ==\",\"take\":\"source\"}"; do
        jreq POST /acme/bi-merge/bookmarks/merge \
            "{\"target\":\"feat\",\"source\":\"main\",\"resolutions\":[$res]}"
        expect_error 400 BAD_REQUEST || { echo "resolution $res" >&2; false; }
    done
}

@test "author dates that git cannot store or that end early are 400" {
    local d
    for d in "2026-01-01T00:00:00+1:2" "2026-01-01T00:00:00+01" "0001-01-01T00:00:00Z" \
        "9999-01-01T00:00:00Z"; do
        jreq POST /acme/bi/changes \
            "{\"base_change_id\":\"main\",\"author\":{\"name\":\"a\",\"email\":\"a@b\",\"date\":\"$d\"}}"
        expect_error 400 BAD_REQUEST || { echo "date $d" >&2; false; }
    done
    jreq POST /acme/bi/changes \
        '{"base_change_id":"main","author":{"name":"a","email":"a@b","date":"2026-01-01T10:00:00+02:00"}}'
    expect 201
    [ "$(jq -r .author.date <<<"$body")" = "2026-01-01T08:00:00.000Z" ]
}
