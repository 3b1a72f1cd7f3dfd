#!/usr/bin/env bats
# tests/server/metadata.bats - per-path file metadata (docs/PROTOCOL.md
# "File metadata"): GET/PATCH .../metadata (set merges, remove, clear,
# rename_from), the synthetic read-only org and repo keys, "metadata" on
# content responses, ?metadata[key]=value listing filters, validation
# (400) and scopes (403). Each test gets a fresh repo $R with a small tree.

load ../lib/mesad

setup_file() { mesad_start; }
teardown_file() { mesad_stop; }

setup() {
    R="md$BATS_TEST_NUMBER"
    make_repo "$R"
    C=$(new_change "$R" "$ROOT_CHANGE" "[$(file_json a.txt a), $(file_json b.txt b),
        $(file_json d/x.txt x), $(file_json d/e/y.txt y)]")
}

meta_get() { api GET "/acme/$R/metadata?path=$1"; }
meta_patch() { jreq PATCH "/acme/$R/metadata?path=$1" "$2"; }

@test "set stores string values and GET answers them with the synthetic org and repo keys" {
    meta_patch a.txt '{"set":{"owner":"team-a","tier":"1"}}'
    expect 200
    jcheck --arg r "$R" '.path == "a.txt" and .metadata == {"owner":"team-a","tier":"1","org":"acme","repo":$r}'
    meta_get a.txt
    expect 200
    jcheck --arg r "$R" '.metadata == {"owner":"team-a","tier":"1","org":"acme","repo":$r}
        and .read_only_keys == ["org","repo"]'
}

@test "a path without metadata answers only org and repo" {
    meta_get b.txt
    expect 200
    jcheck --arg r "$R" '.metadata == {"org":"acme","repo":$r}'
}

@test "set merges with what is stored, remove deletes keys, null deletes a key, clear removes all" {
    meta_patch a.txt '{"set":{"k1":"v1","k2":"v2","k3":"v3"}}'
    expect 200
    meta_patch a.txt '{"set":{"k2":"new","k4":"v4"}}'
    expect 200
    jcheck '.metadata | del(.org, .repo) == {"k1":"v1","k2":"new","k3":"v3","k4":"v4"}'
    meta_patch a.txt '{"remove":["k1","missing"],"set":{"k3":null}}'
    expect 200
    jcheck '.metadata | del(.org, .repo) == {"k2":"new","k4":"v4"}'
    meta_patch a.txt '{"clear":true}'
    expect 200
    jcheck '.metadata | del(.org, .repo) == {}'
    meta_patch a.txt '{"clear":true}'
    expect 200
}

@test "an empty string is a value (as an empty extended attribute), and values keep UTF-8" {
    meta_patch a.txt '{"set":{"empty":"","name":"Zoë ✓"}}'
    expect 200
    meta_get a.txt
    jcheck '.metadata.empty == "" and .metadata.name == "Zoë ✓"'
}

@test "metadata is per path, not per change: another change of the repo sees it" {
    meta_patch d/x.txt '{"set":{"owner":"x"}}'
    expect 200
    C2=$(new_change "$R" "$C" "[$(file_json other.txt o)]")
    api GET "/acme/$R/content?change_id=$C2&path=d/x.txt"
    expect 200
    jcheck '.metadata == {"owner":"x"}'
}

@test "content responses carry metadata on files, directories and their entries" {
    meta_patch a.txt '{"set":{"owner":"team-a"}}'
    meta_patch d '{"set":{"kind":"dir"}}'
    meta_patch d/e/y.txt '{"set":{"deep":"yes"}}'
    api GET "/acme/$R/content?change_id=$C&path=a.txt"
    expect 200
    jcheck '.metadata == {"owner":"team-a"}'
    api GET "/acme/$R/content?change_id=$C"
    expect 200
    jcheck '(.entries[] | select(.path == "a.txt") | .metadata) == {"owner":"team-a"}
        and (.entries[] | select(.path == "b.txt") | .metadata) == {}
        and (.entries[] | select(.path == "d") | .metadata) == {"kind":"dir"}'
    api GET "/acme/$R/content?change_id=$C&path=d&depth=2"
    expect 200
    jcheck '.metadata == {"kind":"dir"}
        and (.entries[] | select(.path == "d/e/y.txt") | .metadata) == {"deep":"yes"}'
}

@test "?metadata[key]=value filters listing entries; repeated filters must all match" {
    meta_patch a.txt '{"set":{"owner":"team-a","tier":"1"}}'
    meta_patch b.txt '{"set":{"owner":"team-b","tier":"1"}}'
    meta_patch d '{"set":{"owner":"team-a"}}'
    api GET "/acme/$R/content?change_id=$C&metadata%5Bowner%5D=team-a"
    expect 200
    jcheck '[.entries[].path] == ["a.txt","d"] and .child_count == 2'
    api GET "/acme/$R/content?change_id=$C&metadata%5Bowner%5D=team-a&metadata%5Btier%5D=1"
    expect 200
    jcheck '[.entries[].path] == ["a.txt"]'
    api GET "/acme/$R/content?change_id=$C&metadata%5Btier%5D=1"
    jcheck '[.entries[].path] == ["a.txt","b.txt"]'
    api GET "/acme/$R/content?change_id=$C&metadata%5Bowner%5D=nobody"
    expect 200
    jcheck '.entries == [] and .child_count == 0'
}

@test "a malformed listing filter is 400" {
    api GET "/acme/$R/content?change_id=$C&metadata%5B%5D=x"
    expect_error 400 BAD_REQUEST
    jcheck '.error.message | test("metadata\\[KEY\\]")'
    api GET "/acme/$R/content?change_id=$C&metadata%5B%FF%5D=x"
    expect_error 400 BAD_REQUEST
    jcheck '.error.message | test("UTF-8")'
    api GET "/acme/$R/content?change_id=$C&metadata%5Bk%5D=%FF%FE"
    expect_error 400 BAD_REQUEST
    api GET "/acme/$R/metadata?path=%FF"
    expect_error 400 BAD_REQUEST
    api GET /whoami
    expect 200
}

@test "org and repo cannot be set or removed: 403 READ_ONLY_KEY, nothing written" {
    meta_patch a.txt '{"set":{"ok":"1","org":"evil"}}'
    expect_error 403 READ_ONLY_KEY
    jcheck '.error.message | test("read-only")'
    meta_patch a.txt '{"remove":["repo"]}'
    expect_error 403 READ_ONLY_KEY
    meta_get a.txt
    jcheck '.metadata.org == "acme" and (.metadata | has("ok") | not)'
}

@test "bad input is 400 with a clear message and writes nothing" {
    meta_patch a.txt '{"set":{"":"v"}}'
    expect_error 400 BAD_REQUEST
    jcheck '.error.message | test("empty")'
    meta_patch a.txt '{"set":{"k":1}}'
    expect_error 400 BAD_REQUEST
    jcheck '.error.message | test("strings")'
    meta_patch a.txt '{"set":["k"]}'
    expect_error 400 BAD_REQUEST
    meta_patch a.txt '{"remove":"k"}'
    expect_error 400 BAD_REQUEST
    meta_patch a.txt '{"clear":"yes"}'
    expect_error 400 BAD_REQUEST
    meta_patch a.txt '{"sett":{"k":"v"}}'
    expect_error 400 BAD_REQUEST
    jcheck '.error.message | test("sett")'
    meta_patch a.txt '{"set":{"k\u0001":"v"}}'
    expect_error 400 BAD_REQUEST
    jcheck '.error.message | test("control")'
    meta_patch a.txt 'not json'
    expect_error 400 BAD_REQUEST
    meta_patch ../etc '{"set":{"k":"v"}}'
    expect_error 400 BAD_REQUEST
    long=$(head -c 251 /dev/zero | tr '\0' k)
    meta_patch a.txt "{\"set\":{\"$long\":\"v\"}}"
    expect_error 400 BAD_REQUEST
    jcheck '.error.message | test("250")'
    big=$(head -c 65537 /dev/zero | tr '\0' v)
    meta_patch a.txt "{\"set\":{\"k\":\"$big\"}}"
    expect_error 400 BAD_REQUEST
    jcheck '.error.message | test("65536")'
    meta_get a.txt
    jcheck '.metadata | del(.org, .repo) == {}'
    # the server is still there
    api GET /whoami
    expect 200
}

@test "a value of exactly 65536 bytes and a key of 250 bytes are accepted" {
    long=$(head -c 250 /dev/zero | tr '\0' k)
    big=$(head -c 65536 /dev/zero | tr '\0' v)
    meta_patch a.txt "{\"set\":{\"$long\":\"$big\"}}"
    expect 200
    jcheck --arg k "$long" '.metadata[$k] | length == 65536'
}

@test "at most 128 keys per path" {
    keys=$(jq -cn '[range(0;128)] | map({key:"k\(.)", value:"v"}) | from_entries')
    meta_patch a.txt "{\"set\":$keys}"
    expect 200
    meta_patch a.txt '{"set":{"one-more":"v"}}'
    expect_error 400 BAD_REQUEST
    jcheck '.error.message | test("128")'
    meta_get a.txt
    jcheck '.metadata | has("one-more") | not'
}

@test "reading needs read, setting needs write: 403 with a read-only token or ro_repos" {
    meta_patch a.txt '{"set":{"owner":"team-a"}}'
    AUTH=$(token '.scopes=["read"]') meta_get a.txt
    expect 200
    jcheck '.metadata.owner == "team-a"'
    AUTH=$(token '.scopes=["read"]') meta_patch a.txt '{"set":{"owner":"x"}}'
    expect_error 403
    AUTH=$(token ".repos=[\"acme/$R\"] | .ro_repos=[\"acme/$R\"]") meta_patch a.txt '{"clear":true}'
    expect_error 403 READ_ONLY
    AUTH=$(token '.repos=["acme/other"]') meta_get a.txt
    expect_error 403 FORBIDDEN
    meta_get a.txt
    jcheck '.metadata.owner == "team-a"'
}

@test "rename_from moves a path's metadata, and a directory's whole subtree, replacing the target's" {
    meta_patch a.txt '{"set":{"owner":"team-a"}}'
    meta_patch b.txt '{"set":{"old":"gone"}}'
    meta_patch b.txt '{"rename_from":"a.txt"}'
    expect 200
    jcheck '.metadata | del(.org, .repo) == {"owner":"team-a"}'
    meta_get a.txt
    jcheck '.metadata | del(.org, .repo) == {}'
    meta_patch d '{"set":{"kind":"dir"}}'
    meta_patch d/e/y.txt '{"set":{"deep":"yes"}}'
    meta_patch dd '{"rename_from":"d"}'
    expect 200
    jcheck '.metadata | del(.org, .repo) == {"kind":"dir"}'
    meta_get dd/e/y.txt
    jcheck '.metadata.deep == "yes"'
    meta_get d/e/y.txt
    jcheck '.metadata | has("deep") | not'
}

@test "rename_from combines with set in one request, and refuses a move below itself" {
    meta_patch a.txt '{"set":{"owner":"team-a"}}'
    meta_patch c.txt '{"rename_from":"a.txt","set":{"moved":"1"}}'
    expect 200
    jcheck '.metadata | del(.org, .repo) == {"owner":"team-a","moved":"1"}'
    meta_patch d/sub '{"rename_from":"d"}'
    expect_error 400 BAD_REQUEST
    meta_patch d/e/y.txt '{"set":{"deep":"yes"}}'
    meta_patch d '{"rename_from":"d/e/y.txt"}'
    expect_error 400 BAD_REQUEST
    meta_get d/e/y.txt
    jcheck '.metadata.deep == "yes"'
    meta_patch c.txt '{"rename_from":"../x"}'
    expect_error 400 BAD_REQUEST
    meta_patch c.txt '{"rename_from":5}'
    expect_error 400 BAD_REQUEST
    meta_patch "" '{"rename_from":"c.txt"}'
    expect_error 400 BAD_REQUEST
    meta_get c.txt
    jcheck '.metadata.owner == "team-a"'
}

@test "deleting the repository removes its metadata" {
    meta_patch a.txt '{"set":{"owner":"team-a"}}'
    api DELETE "/acme/$R"
    expect 200
    make_repo "$R"
    meta_get a.txt
    expect 200
    jcheck '.metadata | del(.org, .repo) == {}'
}

# stop_here: stop this test's own server (the data directory stays).
stop_here() {
    kill -TERM "$MESAD_PID" 2>/dev/null || return 0
    local i
    for i in $(seq 1 100); do
        kill -0 "$MESAD_PID" 2>/dev/null || return 0
        sleep 0.05
    done
    kill -KILL "$MESAD_PID" 2>/dev/null || true
}

teardown() { [ -z "${OWN_SERVER:-}" ] || { stop_here; rm -rf "$MESAD_TMP"; }; }

@test "an existing data directory without the metadata table gets it at start" {
    # a server of this test's own, on a data directory of the old schema
    OWN_SERVER=1 mesad_start
    OWN_SERVER=1
    make_repo old
    stop_here
    sqlite3 "$MESAD_DATA/mesa.db" 'DROP TABLE metadata'
    run sqlite3 "$MESAD_DATA/mesa.db" "SELECT name FROM sqlite_master WHERE name='metadata'"
    [ -z "$output" ]
    mesad_serve
    api GET "/acme/old/metadata?path=a.txt"
    expect 200
    jcheck '.metadata == {"org":"acme","repo":"old"}'
    jreq PATCH "/acme/old/metadata?path=a.txt" '{"set":{"owner":"again"}}'
    expect 200
    jcheck '.metadata.owner == "again"'
}
