#!/usr/bin/env bats
# tests/server/content.bats - GET /v1/{org}/{repo}/content: files, symlinks,
# directories (depth), raw bytes, which revision is read
# (docs/PROTOCOL.md "Content"). Each test gets a fresh repo $R (setup).

load ../lib/mesad

setup_file() { mesad_start; }
teardown_file() { mesad_stop; }

setup() {
    R="ct$BATS_TEST_NUMBER"
    make_repo "$R"
    REPO_ID=$(jq -r .id <<<"$body")
    GITDIR="$MESAD_DATA/repos/$REPO_ID.git"
}

content() { api GET "/acme/$R/content?$1"; }

commit_of() {
    api GET "/acme/$R/changes/$1"
    expect 200 || return 1
    jq -r .current_commit_oid <<<"$body"
}

# A binary file with NULs and high bytes, as base64
BIN_B64=AAECAwD/gIEAAAB0ZXh0AApcIicAAA==

# tree_fixture: a change with a.txt, bin.dat, run.sh (755), link (symlink),
# d/x.txt, d/e/y.txt; sets C
tree_fixture() {
    C=$(new_change "$R" "$ROOT_CHANGE" "[$(file_json a.txt $'hello\n'),
        {\"path\":\"bin.dat\",\"content\":\"$BIN_B64\"},
        $(file_json run.sh $'#!/bin/sh\n' 100755), $(file_json link a.txt 120000),
        $(file_json d/x.txt x), $(file_json d/e/y.txt y)]")
}

@test "a file answers type, name, path, sha (the git blob id), size, base64 content, mode and mtime_ns" {
    tree_fixture
    content "change_id=$C&path=d/x.txt"
    expect 200
    jcheck --arg sha "$(printf x | git hash-object --stdin)" '
        .type == "file" and .name == "x.txt" and .path == "d/x.txt" and .sha == $sha
        and .size == 1 and .encoding == "base64" and .content == "eA==" and .mode == "100644"
        and (.mtime_ns | type == "number")'
    content "change_id=$C&path=a.txt"
    expect 200
    jcheck --arg sha "$(printf 'hello\n' | git hash-object --stdin)" \
        '.sha == $sha and .size == 6 and .name == "a.txt" and .path == "a.txt"'
    [ "$(jq -r .content <<<"$body" | base64 -d | od -An -c | tr -s ' ')" = "$(printf 'hello\n' | od -An -c | tr -s ' ')" ]
    content "change_id=$C&path=run.sh"
    expect 200
    jcheck '.type == "file" and .mode == "100755"'
}

@test "a binary file's JSON content decodes to its exact bytes" {
    tree_fixture
    base64 -d <<<"$BIN_B64" >"$BATS_TEST_TMPDIR/bin"
    content "change_id=$C&path=bin.dat"
    expect 200
    jcheck --arg sha "$(git hash-object "$BATS_TEST_TMPDIR/bin")" --argjson size "$(stat -c %s "$BATS_TEST_TMPDIR/bin")" \
        '.sha == $sha and .size == $size and .encoding == "base64"'
    jq -r .content <<<"$body" | base64 -d >"$BATS_TEST_TMPDIR/got"
    cmp "$BATS_TEST_TMPDIR/bin" "$BATS_TEST_TMPDIR/got"
}

@test "Accept: application/octet-stream returns the raw bytes of a binary file with NULs" {
    tree_fixture
    base64 -d <<<"$BIN_B64" >"$BATS_TEST_TMPDIR/bin"
    api GET "/acme/$R/content?change_id=$C&path=bin.dat" -H 'Accept: application/octet-stream'
    expect 200
    cmp "$BATS_TEST_TMPDIR/bin" "$MESAD_TMP/body"
}

@test "a symlink answers type symlink, mode 120000 and its target as content" {
    tree_fixture
    content "change_id=$C&path=link"
    expect 200
    jcheck --arg sha "$(printf a.txt | git hash-object --stdin)" '
        .type == "symlink" and .mode == "120000" and .name == "link" and .sha == $sha
        and .size == 5 and .content == "YS50eHQ="'
    api GET "/acme/$R/content?change_id=$C&path=link" -H 'Accept: application/octet-stream'
    expect 200
    [ "$(cat "$MESAD_TMP/body")" = a.txt ]
}

@test "a directory lists its entries with child_count, types and the git tree id" {
    tree_fixture
    content "change_id=$C&path=d"
    expect 200
    jcheck --arg sha "$(git --git-dir="$GITDIR" rev-parse "$(commit_of "$C"):d")" \
        --arg xsha "$(printf x | git hash-object --stdin)" '
        .type == "dir" and .name == "d" and .path == "d" and .sha == $sha and .child_count == 2
        and (.entries | length) == 2
        and (.entries[] | select(.name == "x.txt") | .type == "file" and .path == "d/x.txt" and .sha == $xsha and .size == 1 and .mode == "100644")
        and (.entries[] | select(.name == "e") | .type == "dir" and .path == "d/e" and (.sha | test("^[0-9a-f]{40}$")))'
    content "change_id=$C"
    expect 200
    jcheck '.type == "dir" and .child_count == 5
        and ([.entries[] | {(.name): .type}] | add) == {"a.txt":"file","bin.dat":"file","run.sh":"file","link":"symlink","d":"dir"}
        and (.entries[] | select(.name == "link") | .mode == "120000")
        and (.entries[] | select(.name == "run.sh") | .mode == "100755")'
}

@test "depth=2 includes nested entries, depth=1 does not" {
    tree_fixture
    content "change_id=$C&depth=1"
    expect 200
    jcheck '[.. | objects | select(has("path")) | .path] | (index("d/x.txt") == null and index("d") != null)'
    content "change_id=$C&depth=2"
    expect 200
    jcheck '[.. | objects | select(has("path")) | .path] | (index("d/x.txt") != null and index("d/e") != null and index("d/e/y.txt") == null)'
    content "change_id=$C&depth=3"
    expect 200
    jcheck '[.. | objects | select(has("path")) | .path] | index("d/e/y.txt") != null'
}

@test "depth below 1 or not a number gets 400" {
    tree_fixture
    content "change_id=$C&depth=0"
    expect_error 400 BAD_REQUEST
    content "change_id=$C&depth=x"
    expect_error 400 BAD_REQUEST
}

@test "raw bytes of a directory get 406 NOT_ACCEPTABLE" {
    tree_fixture
    api GET "/acme/$R/content?change_id=$C&path=d" -H 'Accept: application/octet-stream'
    expect_error 406 NOT_ACCEPTABLE
}

@test "a missing path, or a path through a file, gets 404" {
    tree_fixture
    content "change_id=$C&path=nope"
    expect_error 404 NOT_FOUND
    content "change_id=$C&path=d/nope"
    expect_error 404 NOT_FOUND
    content "change_id=$C&path=a.txt/x"
    expect_error 404 NOT_FOUND
    content "change_id=$C&path=link/x"
    expect_error 404 NOT_FOUND
}

@test "an unknown change_id gets 404" {
    content "change_id=kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
    expect_error 404 NOT_FOUND
    content "change_id=no-such-bookmark"
    expect_error 404 NOT_FOUND
}

@test "change_id may be a bookmark name or a change id, and reads the change's current commit" {
    local c1 c2
    c1=$(new_change "$R" "$ROOT_CHANGE" "[$(file_json f v1)]")
    c2=$(new_change "$R" "$ROOT_CHANGE" "[$(file_json f other)]")
    jreq POST "/acme/$R/bookmarks" "{\"name\":\"topic\",\"change_id\":\"$c1\"}"
    expect 201
    content "change_id=topic&path=f"
    expect 200
    jcheck '.content == "djE="'
    content "change_id=$c2&path=f"
    expect 200
    jcheck '.content == "b3RoZXI="'
    # after a rewrite, the change id reads the new commit, and so does the bookmark
    jreq PATCH "/acme/$R/changes/$c1" "{\"files\":[$(file_json f v2)]}"
    expect 200
    content "change_id=$c1&path=f"
    expect 200
    jcheck '.content == "djI="'
    content "change_id=topic&path=f"
    expect 200
    jcheck '.content == "djI="'
}

@test "without change_id the default bookmark is read" {
    local c1 c2
    c1=$(new_change "$R" "$ROOT_CHANGE" "[$(file_json f at-main)]")
    c2=$(new_change "$R" "$ROOT_CHANGE" "[$(file_json f at-other)]")
    jreq PATCH "/acme/$R/bookmarks/main" "{\"change_id\":\"$c1\"}"
    expect 200
    jreq POST "/acme/$R/bookmarks" "{\"name\":\"other\",\"change_id\":\"$c2\"}"
    expect 201
    content "path=f"
    expect 200
    [ "$(jq -r .content <<<"$body" | base64 -d)" = at-main ]
    jreq PATCH "/acme/$R" '{"default_bookmark":"other"}'
    expect 200
    content "path=f"
    expect 200
    [ "$(jq -r .content <<<"$body" | base64 -d)" = at-other ]
}

@test "a repo whose default bookmark is trunk is read at trunk" {
    local c
    jreq POST /acme/repos "{\"name\":\"$R-trunk\",\"default_bookmark\":\"trunk\"}"
    expect 201
    c=$(new_change "$R-trunk" "$ROOT_CHANGE" "[$(file_json f t)]")
    jreq PATCH "/acme/$R-trunk/bookmarks/trunk" "{\"change_id\":\"$c\"}"
    expect 200
    api GET "/acme/$R-trunk/content?path=f"
    expect 200
    jcheck '.content == "dA=="'
}

@test "the root dir of an empty repo has no entries" {
    content ""
    expect 200
    jcheck '.type == "dir" and .entries == [] and .child_count == 0'
    content "change_id=$ROOT_CHANGE"
    expect 200
    jcheck '.type == "dir" and .entries == []'
    content "path=x"
    expect_error 404 NOT_FOUND
}
