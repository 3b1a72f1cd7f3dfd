#!/usr/bin/env bats
# tests/server/extensions.bats - mesad's extensions to Mesa's REST API
# (docs/PROTOCOL.md, "Extensions" and "Modification times"): the flat tree
# listing, raw blobs (ETag, If-None-Match, Range, upload, batch), file entries
# naming an uploaded blob, and per-path nanosecond mtimes.
# One shared server; every test makes its own repo.

bats_require_minimum_version 1.5.0
load ../lib/mesad
load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

setup_file() { mesad_start; }
teardown_file() { mesad_stop; }

EMPTY_TREE=4b825dc642cb6eb9a060e54bf8d69288fbee4904

# raw METHOD PATH OUT [curl args]: request with the admin key (or $AUTH),
# keeping the body byte-exact in OUT and the response headers in OUT.h;
# sets $status_code.
raw() {
    local method=$1 path=$2 out=$3
    shift 3
    rm -f "$out" "$out.h"
    status_code=$(curl -sS -o "$out" -D "$out.h" -w '%{http_code}' -X "$method" \
        -H "Authorization: Bearer ${AUTH-$ADMIN_KEY}" "$MESAD_URL/v1$path" "$@")
}

# header NAME OUT: the value of response header NAME saved by raw.
header() {
    grep -i "^$1:" "$2.h" | head -1 | cut -d: -f2- | tr -d '\r' | sed 's/^ *//; s/ *$//'
}

# rawnum FIELD JSON: the first integer value of FIELD as written in JSON,
# digit for digit (jq 1.6 rounds integers above 2^53, and mtimes are ~2^60).
rawnum() {
    grep -oE "\"$1\"[[:space:]]*:[[:space:]]*-?[0-9]+" <<<"$2" | head -1 | grep -oE -- '-?[0-9]+$'
}

# tree_rawnum JSON PATH FIELD: the integer FIELD of the tree entry for PATH,
# digit for digit (entries are flat objects, so splitting at braces isolates them).
tree_rawnum() {
    local line
    line=$(tr '{}' '\n\n' <<<"$1" | grep -E "\"path\"[[:space:]]*:[[:space:]]*\"$2\"")
    rawnum "$3" "$line"
}

# content_mtime REPO CHANGE PATH: mtime_ns of a file from the content endpoint.
content_mtime() {
    api GET "/$MESA_ORG/$1/content?change_id=$2&path=$3"
    expect 200 || return 1
    rawnum mtime_ns "$body"
}

b64() { printf %s "$1" | base64 -w0; }

# binfile OUT: 16 bytes including NUL, 0xff and newlines (positions 2..5 = 'cd\0e')
binfile() {
    printf 'ab\143d\000e\377\n\001fgh\r\nij' >"$1"
}

# change_commit REPO CHANGE: current_commit_oid of a change
change_commit() {
    api GET "/$MESA_ORG/$1/changes/$2"
    expect 200 || return 1
    jq -r .current_commit_oid <<<"$body"
}

repo_id() {
    api GET "/$MESA_ORG/$1"
    expect 200 || return 1
    jq -r .id <<<"$body"
}

# A change with a file, a binary file, a script, a symlink and nested dirs.
sample_change() {
    local repo=$1 bin
    bin=$(printf 'ab\143d\000e\377\n\001fgh\r\nij' | base64 -w0)
    new_change "$repo" "$ROOT_CHANGE" "[
        $(file_json a.txt 'hello
'),
        $(file_json d/b.txt 'bee'),
        $(file_json d/e/c.sh '#!/bin/sh
echo hi
' 100755),
        $(file_json d/link '../a.txt' 120000),
        {\"path\":\"z.bin\",\"content\":\"$bin\"}
    ]"
}

# ---------------------------------------------------------------- tree

@test "tree lists every path of a change flat and sorted, directories included" {
    make_repo tree-list
    cid=$(sample_change tree-list)
    commit=$(change_commit tree-list "$cid")

    api GET "/$MESA_ORG/tree-list/tree?change_id=$cid"
    expect 200
    assert_equal "$(jq -r .commit_oid <<<"$body")" "$commit"
    assert_equal "$(jq -r .change_id <<<"$body")" "$cid"
    assert_equal "$(jq -c '[.entries[].path]' <<<"$body")" \
        '["a.txt","d","d/b.txt","d/e","d/e/c.sh","d/link","z.bin"]'
    assert_equal "$(jq -c '[.entries[].path] == ([.entries[].path] | sort)' <<<"$body")" true
    assert_equal "$(jq -c '[.entries[] | {(.path): .type}] | add' <<<"$body")" \
        '{"a.txt":"file","d":"dir","d/b.txt":"file","d/e":"dir","d/e/c.sh":"file","d/link":"symlink","z.bin":"file"}'
}

@test "tree entries carry path, type, mode, size, git oid and mtime_ns" {
    make_repo tree-fields
    cid=$(sample_change tree-fields)
    commit=$(change_commit tree-fields "$cid")
    g="$MESAD_DATA/repos/$(repo_id tree-fields).git"

    api GET "/$MESA_ORG/tree-fields/tree?change_id=$cid"
    expect 200
    # every entry has all six fields, mtime_ns a positive integer
    assert_equal "$(jq '[.entries[] | select((["path","type","mode","size","oid","mtime_ns"] - keys | length) == 0 and (.mtime_ns | type) == "number" and .mtime_ns > 0 and (.size | type) == "number")] | length' <<<"$body")" 7

    entry() { jq -c --arg p "$1" '.entries[] | select(.path == $p) | [.type, .mode, .size, .oid]' <<<"$body"; }
    assert_equal "$(entry a.txt)" "[\"file\",\"100644\",6,\"$(printf 'hello\n' | git hash-object --stdin)\"]"
    assert_equal "$(entry d/e/c.sh)" "[\"file\",\"100755\",18,\"$(printf '#!/bin/sh\necho hi\n' | git hash-object --stdin)\"]"
    assert_equal "$(entry d/link)" "[\"symlink\",\"120000\",8,\"$(printf '../a.txt' | git hash-object --stdin)\"]"
    assert_equal "$(entry z.bin)" "[\"file\",\"100644\",16,\"$(printf 'ab\143d\000e\377\n\001fgh\r\nij' | git hash-object --stdin)\"]"
    # a directory's oid is its git tree, its mode a tree mode
    assert_equal "$(jq -r '.entries[] | select(.path == "d") | .oid' <<<"$body")" \
        "$(git --git-dir "$g" rev-parse "$commit:d")"
    assert_equal "$(jq -r '.entries[] | select(.path == "d/e") | .oid' <<<"$body")" \
        "$(git --git-dir "$g" rev-parse "$commit:d/e")"
    assert_equal "$(jq '[.entries[] | select(.type == "dir") | .mode | test("^0?40000$")]' -c <<<"$body")" '[true,true]'
}

@test "a directory's mtime_ns in tree is the newest mtime_ns of its subtree" {
    make_repo tree-dirmtime
    cid=$(new_change tree-dirmtime "$ROOT_CHANGE" '[
        {"path":"d/a","content":"YQ==","mtime_ns":1500000000000000001},
        {"path":"d/e/b","content":"Yg==","mtime_ns":1700000000000000003},
        {"path":"d/c","content":"Yw==","mtime_ns":1600000000000000002},
        {"path":"f/x","content":"eA==","mtime_ns":1400000000000000004}
    ]')
    api GET "/$MESA_ORG/tree-dirmtime/tree?change_id=$cid"
    expect 200
    assert_equal "$(tree_rawnum "$body" d/a mtime_ns)" 1500000000000000001
    assert_equal "$(tree_rawnum "$body" d/c mtime_ns)" 1600000000000000002
    assert_equal "$(tree_rawnum "$body" d/e/b mtime_ns)" 1700000000000000003
    assert_equal "$(tree_rawnum "$body" d/e mtime_ns)" 1700000000000000003
    assert_equal "$(tree_rawnum "$body" d mtime_ns)" 1700000000000000003
    assert_equal "$(tree_rawnum "$body" f mtime_ns)" 1400000000000000004
}

@test "tree with commit= lists that commit, also an older commit of a change after a PATCH" {
    make_repo tree-commit
    cid=$(new_change tree-commit "$ROOT_CHANGE" "[$(file_json old.txt old)]")
    old=$(change_commit tree-commit "$cid")
    jreq PATCH "/$MESA_ORG/tree-commit/changes/$cid" \
        "{\"files\":[$(file_json new.txt new),{\"path\":\"old.txt\",\"action\":\"delete\"}]}"
    expect 200
    new=$(jq -r .current_commit_oid <<<"$body")
    [ "$new" != "$old" ]

    api GET "/$MESA_ORG/tree-commit/tree?commit=$old"
    expect 200
    assert_equal "$(jq -r .commit_oid <<<"$body")" "$old"
    assert_equal "$(jq -r .change_id <<<"$body")" "$cid"
    assert_equal "$(jq -c '[.entries[].path]' <<<"$body")" '["old.txt"]'

    api GET "/$MESA_ORG/tree-commit/tree?commit=$new"
    expect 200
    assert_equal "$(jq -r .commit_oid <<<"$body")" "$new"
    assert_equal "$(jq -c '[.entries[].path]' <<<"$body")" '["new.txt"]'

    api GET "/$MESA_ORG/tree-commit/tree?change_id=$cid"
    expect 200
    assert_equal "$(jq -r .commit_oid <<<"$body")" "$new"
}

@test "tree of an unknown commit or change is 404 NOT_FOUND" {
    make_repo tree-404
    api GET "/$MESA_ORG/tree-404/tree?commit=deadbeefdeadbeefdeadbeefdeadbeefdeadbeef"
    expect 404 NOT_FOUND
    api GET "/$MESA_ORG/tree-404/tree?change_id=kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
    expect 404 NOT_FOUND
}

@test "tree of the root change of a new repo is empty" {
    make_repo tree-root
    api GET "/$MESA_ORG/tree-root/tree?change_id=$ROOT_CHANGE"
    expect 200
    assert_equal "$(jq -c .entries <<<"$body")" '[]'
    assert_equal "$(jq -r .change_id <<<"$body")" "$ROOT_CHANGE"
}

# ---------------------------------------------------------------- GET blobs

@test "GET blobs/{oid} returns the raw bytes with ETag \"<oid>\"" {
    make_repo blob-get
    sample_change blob-get >/dev/null
    binfile "$BATS_TEST_TMPDIR/want"
    oid=$(git hash-object "$BATS_TEST_TMPDIR/want")

    raw GET "/$MESA_ORG/blob-get/blobs/$oid" "$BATS_TEST_TMPDIR/got"
    assert_equal "$status_code" 200
    cmp "$BATS_TEST_TMPDIR/want" "$BATS_TEST_TMPDIR/got"
    assert_equal "$(header ETag "$BATS_TEST_TMPDIR/got")" "\"$oid\""
}

@test "If-None-Match with the blob's ETag answers 304 with an empty body" {
    make_repo blob-304
    sample_change blob-304 >/dev/null
    oid=$(printf 'hello\n' | git hash-object --stdin)

    raw GET "/$MESA_ORG/blob-304/blobs/$oid" "$BATS_TEST_TMPDIR/b" -H "If-None-Match: \"$oid\""
    assert_equal "$status_code" 304
    [ ! -s "$BATS_TEST_TMPDIR/b" ]
    assert_equal "$(header ETag "$BATS_TEST_TMPDIR/b")" "\"$oid\""

    # another ETag does not match: the full body
    raw GET "/$MESA_ORG/blob-304/blobs/$oid" "$BATS_TEST_TMPDIR/b" \
        -H 'If-None-Match: "0000000000000000000000000000000000000000"'
    assert_equal "$status_code" 200
    assert_equal "$(cat "$BATS_TEST_TMPDIR/b")" hello
}

@test "Range bytes=2-5 answers 206 with Content-Range and exactly those four bytes" {
    make_repo blob-range
    sample_change blob-range >/dev/null
    binfile "$BATS_TEST_TMPDIR/all"
    oid=$(git hash-object "$BATS_TEST_TMPDIR/all")

    raw GET "/$MESA_ORG/blob-range/blobs/$oid" "$BATS_TEST_TMPDIR/part" -H 'Range: bytes=2-5'
    assert_equal "$status_code" 206
    assert_equal "$(header Content-Range "$BATS_TEST_TMPDIR/part")" "bytes 2-5/16"
    dd if="$BATS_TEST_TMPDIR/all" of="$BATS_TEST_TMPDIR/want" bs=1 skip=2 count=4 status=none
    assert_equal "$(stat -c %s "$BATS_TEST_TMPDIR/part")" 4
    cmp "$BATS_TEST_TMPDIR/want" "$BATS_TEST_TMPDIR/part"
}

@test "a Range starting beyond the end of the blob answers 416 RANGE_NOT_SATISFIABLE" {
    make_repo blob-416
    sample_change blob-416 >/dev/null
    oid=$(printf 'hello\n' | git hash-object --stdin)
    api GET "/$MESA_ORG/blob-416/blobs/$oid" -H 'Range: bytes=100-200'
    expect 416 RANGE_NOT_SATISFIABLE
}

@test "a blob oid that is not hex is 400 BAD_REQUEST" {
    make_repo blob-400
    api GET "/$MESA_ORG/blob-400/blobs/not-a-hex-oid"
    expect 400 BAD_REQUEST
    api GET "/$MESA_ORG/blob-400/blobs/gggggggggggggggggggggggggggggggggggggggg"
    expect 400 BAD_REQUEST
}

@test "an unknown blob oid is 404 NOT_FOUND" {
    make_repo blob-404
    api GET "/$MESA_ORG/blob-404/blobs/deadbeefdeadbeefdeadbeefdeadbeefdeadbeef"
    expect 404 NOT_FOUND
}

@test "a blob of one repo is not served through another repo" {
    make_repo blob-mine
    make_repo blob-other
    new_change blob-mine "$ROOT_CHANGE" "[$(file_json s.txt 'only in blob-mine')]" >/dev/null
    oid=$(printf 'only in blob-mine' | git hash-object --stdin)
    api GET "/$MESA_ORG/blob-mine/blobs/$oid"
    expect 200
    api GET "/$MESA_ORG/blob-other/blobs/$oid"
    expect 404 NOT_FOUND
}

# ---------------------------------------------------------------- POST blobs

@test "POST blobs stores the raw body and answers 201 with its git blob oid and size" {
    make_repo blob-up
    binfile "$BATS_TEST_TMPDIR/up"
    api POST "/$MESA_ORG/blob-up/blobs" -H 'Content-Type: application/octet-stream' \
        --data-binary "@$BATS_TEST_TMPDIR/up"
    expect 201
    oid=$(git hash-object --stdin <"$BATS_TEST_TMPDIR/up")
    assert_equal "$(jq -r .oid <<<"$body")" "$oid"
    assert_equal "$(jq -r .size <<<"$body")" 16

    raw GET "/$MESA_ORG/blob-up/blobs/$oid" "$BATS_TEST_TMPDIR/back"
    assert_equal "$status_code" 200
    cmp "$BATS_TEST_TMPDIR/up" "$BATS_TEST_TMPDIR/back"

    # an empty body is the empty blob
    api POST "/$MESA_ORG/blob-up/blobs" -H 'Content-Type: application/octet-stream' --data-binary ''
    expect 201
    assert_equal "$(jq -c '[.oid, .size]' <<<"$body")" '["e69de29bb2d1d6434b8b29ae775ad8c2e48c5391",0]'
}

@test "a file entry with blob_oid takes the uploaded blob as its content" {
    make_repo blob-use
    binfile "$BATS_TEST_TMPDIR/up"
    api POST "/$MESA_ORG/blob-use/blobs" -H 'Content-Type: application/octet-stream' \
        --data-binary "@$BATS_TEST_TMPDIR/up"
    expect 201
    oid=$(jq -r .oid <<<"$body")

    cid=$(new_change blob-use "$ROOT_CHANGE" "[{\"path\":\"bin/up.bin\",\"blob_oid\":\"$oid\"}]")
    raw GET "/$MESA_ORG/blob-use/content?change_id=$cid&path=bin/up.bin" "$BATS_TEST_TMPDIR/got" \
        -H 'Accept: application/octet-stream'
    assert_equal "$status_code" 200
    cmp "$BATS_TEST_TMPDIR/up" "$BATS_TEST_TMPDIR/got"

    # and in a PATCH, with a mode
    jreq PATCH "/$MESA_ORG/blob-use/changes/$cid" \
        "{\"files\":[{\"path\":\"run.bin\",\"blob_oid\":\"$oid\",\"mode\":\"100755\"}]}"
    expect 200
    api GET "/$MESA_ORG/blob-use/content?change_id=$cid&path=run.bin"
    expect 200
    assert_equal "$(jq -c '[.type, .sha, .size, .mode]' <<<"$body")" "[\"file\",\"$oid\",16,\"100755\"]"
    jq -r .content <<<"$body" | base64 -d >"$BATS_TEST_TMPDIR/got2"
    cmp "$BATS_TEST_TMPDIR/up" "$BATS_TEST_TMPDIR/got2"
}

@test "a file entry whose blob_oid does not exist is refused with a 4xx error and writes nothing" {
    # PROTOCOL.md says only "content uploaded before with POST .../blobs";
    # a missing blob is bad input (400) or an unknown object (404).
    make_repo blob-missing
    cid=$(new_change blob-missing "$ROOT_CHANGE" "[$(file_json keep.txt keep)]")
    before=$(change_commit blob-missing "$cid")

    jreq PATCH "/$MESA_ORG/blob-missing/changes/$cid" \
        '{"files":[{"path":"x.bin","blob_oid":"deadbeefdeadbeefdeadbeefdeadbeefdeadbeef"}]}'
    case "$status_code" in
    400) expect 400 BAD_REQUEST ;;
    404) expect 404 NOT_FOUND ;;
    *)
        echo "expected 400 or 404, got $status_code: $body" >&2
        false
        ;;
    esac
    assert_equal "$(change_commit blob-missing "$cid")" "$before"

    jreq POST "/$MESA_ORG/blob-missing/changes" \
        "{\"base_change_id\":\"$cid\",\"files\":[{\"path\":\"y.bin\",\"blob_oid\":\"deadbeefdeadbeefdeadbeefdeadbeefdeadbeef\"}]}"
    [[ "$status_code" == 400 || "$status_code" == 404 ]] || {
        echo "expected 400 or 404, got $status_code: $body" >&2
        false
    }
    jq -e '.error.code | type == "string"' <<<"$body"
}

@test "uploading a blob with a read-only token is 403 READ_ONLY" {
    make_repo blob-ro
    AUTH=$(token '.scopes=["read"]') api POST "/$MESA_ORG/blob-ro/blobs" \
        -H 'Content-Type: application/octet-stream' --data-binary 'nope'
    expect 403 READ_ONLY
    AUTH=$(token ".repos=[\"$MESA_ORG/blob-ro\"] | .ro_repos=[\"$MESA_ORG/blob-ro\"]") \
        api POST "/$MESA_ORG/blob-ro/blobs" -H 'Content-Type: application/octet-stream' --data-binary 'nope'
    expect 403 READ_ONLY
    # nothing was stored
    api GET "/$MESA_ORG/blob-ro/blobs/$(printf nope | git hash-object --stdin)"
    expect 404 NOT_FOUND
}

# ---------------------------------------------------------------- blobs/batch

@test "blobs/batch returns the blobs it has base64-encoded and lists the missing oids" {
    make_repo blob-batch
    sample_change blob-batch >/dev/null
    binfile "$BATS_TEST_TMPDIR/bin"
    o1=$(printf 'hello\n' | git hash-object --stdin)
    o2=$(git hash-object "$BATS_TEST_TMPDIR/bin")
    o3=$(printf 'bee' | git hash-object --stdin)
    miss=deadbeefdeadbeefdeadbeefdeadbeefdeadbeef

    jreq POST "/$MESA_ORG/blob-batch/blobs/batch" "{\"oids\":[\"$o1\",\"$miss\",\"$o2\",\"$o3\"]}"
    expect 200
    assert_equal "$(jq -c '[.blobs[].oid] | sort' <<<"$body")" "$(jq -cn --arg a "$o1" --arg b "$o2" --arg c "$o3" '[$a,$b,$c] | sort')"
    assert_equal "$(jq -c .missing <<<"$body")" "[\"$miss\"]"
    assert_equal "$(jq -r --arg o "$o1" '.blobs[] | select(.oid == $o) | .size' <<<"$body")" 6
    assert_equal "$(jq -r --arg o "$o1" '.blobs[] | select(.oid == $o) | .content' <<<"$body" | base64 -d)" hello
    assert_equal "$(jq -r --arg o "$o2" '.blobs[] | select(.oid == $o) | .size' <<<"$body")" 16
    jq -r --arg o "$o2" '.blobs[] | select(.oid == $o) | .content' <<<"$body" | base64 -d >"$BATS_TEST_TMPDIR/got"
    cmp "$BATS_TEST_TMPDIR/bin" "$BATS_TEST_TMPDIR/got"
    assert_equal "$(jq -r --arg o "$o3" '.blobs[] | select(.oid == $o) | .content' <<<"$body" | base64 -d)" bee
}

@test "blobs/batch with more than 1000 oids is 400 BAD_REQUEST, with exactly 1000 it answers" {
    make_repo blob-batch-max
    oids=$(jq -cn '[range(1001) | ("deadbeef" + ("00000000000000000000000000000000" + tostring)[-32:])]')
    jreq POST "/$MESA_ORG/blob-batch-max/blobs/batch" "{\"oids\":$oids}"
    expect 400 BAD_REQUEST

    oids=$(jq -c '.[:1000]' <<<"$oids")
    jreq POST "/$MESA_ORG/blob-batch-max/blobs/batch" "{\"oids\":$oids}"
    expect 200
    assert_equal "$(jq '[(.blobs | length), (.missing | length)]' -c <<<"$body")" '[0,1000]'
}

# ---------------------------------------------------------------- mtime_ns

@test "a path written without mtime_ns gets the server clock in nanoseconds at commit" {
    make_repo mtime-clock
    before=$(date +%s%N)
    cid=$(new_change mtime-clock "$ROOT_CHANGE" "[$(file_json now.txt now)]")
    after=$(date +%s%N)
    m=$(content_mtime mtime-clock "$cid" now.txt)
    [[ "$m" =~ ^[0-9]+$ ]]
    echo "before=$before mtime_ns=$m after=$after"
    ((before <= m && m <= after))

    # the same for a PATCH, and the tree listing agrees
    before=$(date +%s%N)
    jreq PATCH "/$MESA_ORG/mtime-clock/changes/$cid" "{\"files\":[$(file_json later.txt later)]}"
    expect 200
    after=$(date +%s%N)
    m2=$(content_mtime mtime-clock "$cid" later.txt)
    echo "before=$before mtime_ns=$m2 after=$after"
    ((before <= m2 && m2 <= after))
    api GET "/$MESA_ORG/mtime-clock/tree?change_id=$cid"
    expect 200
    assert_equal "$(tree_rawnum "$body" later.txt mtime_ns)" "$m2"
}

@test "a path written with mtime_ns keeps exactly that value" {
    make_repo mtime-given
    cid=$(new_change mtime-given "$ROOT_CHANGE" \
        '[{"path":"t.txt","content":"dA==","mtime_ns":1234567890123456789},
          {"path":"e","action":"mkdir","mtime_ns":1111111111111111111}]')
    assert_equal "$(content_mtime mtime-given "$cid" t.txt)" 1234567890123456789
    api GET "/$MESA_ORG/mtime-given/tree?change_id=$cid"
    expect 200
    assert_equal "$(tree_rawnum "$body" t.txt mtime_ns)" 1234567890123456789
    assert_equal "$(tree_rawnum "$body" e mtime_ns)" 1111111111111111111
    assert_equal "$(jq -r '.entries[] | select(.path == "e") | [.type, .oid] | join(" ")' <<<"$body")" "dir $EMPTY_TREE"

    # rewriting the same path with another mtime_ns and the same content
    jreq PATCH "/$MESA_ORG/mtime-given/changes/$cid" \
        '{"files":[{"path":"t.txt","content":"dA==","mtime_ns":987654321987654321}]}'
    expect 200
    assert_equal "$(content_mtime mtime-given "$cid" t.txt)" 987654321987654321
}

@test "paths a PATCH does not touch keep their mtime_ns" {
    make_repo mtime-keep
    cid=$(new_change mtime-keep "$ROOT_CHANGE" '[
        {"path":"a","content":"YQ==","mtime_ns":1300000000000000007},
        {"path":"sub/b","content":"Yg==","mtime_ns":1300000000000000009},
        {"path":"c","content":"Yw=="}]')
    c_before=$(content_mtime mtime-keep "$cid" c)
    sleep 0.01
    jreq PATCH "/$MESA_ORG/mtime-keep/changes/$cid" \
        "{\"message\":\"touch only new\",\"files\":[$(file_json sub/new.txt new)]}"
    expect 200
    assert_equal "$(content_mtime mtime-keep "$cid" a)" 1300000000000000007
    assert_equal "$(content_mtime mtime-keep "$cid" sub/b)" 1300000000000000009
    assert_equal "$(content_mtime mtime-keep "$cid" c)" "$c_before"
    new=$(content_mtime mtime-keep "$cid" sub/new.txt)
    ((new > c_before))
}
