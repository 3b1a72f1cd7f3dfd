#!/usr/bin/env bats
# tests/server/bookmarks.bats - /v1/{org}/{repo}/bookmarks: list, create, get,
# move, delete, glob, and merge (no_op, merge commit, conflicts, resolutions)
# (docs/PROTOCOL.md "Bookmarks"). Each test gets a fresh repo $R (setup).

load ../lib/mesad

setup_file() { mesad_start; }
teardown_file() { mesad_stop; }

setup() {
    R="bm$BATS_TEST_NUMBER"
    make_repo "$R"
    REPO_ID=$(jq -r .id <<<"$body")
    GITDIR="$MESAD_DATA/repos/$REPO_ID.git"
}

raw() {
    api GET "/acme/$R/content?change_id=$1&path=$2" -H 'Accept: application/octet-stream'
    expect 200 || return 1
    cat "$MESAD_TMP/body"
}

commit_of() {
    api GET "/acme/$R/changes/$1"
    expect 200 || return 1
    jq -r .current_commit_oid <<<"$body"
}

# at NAME: the change id a bookmark points at
at() {
    api GET "/acme/$R/bookmarks/$1"
    expect 200 || return 1
    jq -r .change_id <<<"$body"
}

mkbm() {
    jreq POST "/acme/$R/bookmarks" "{\"name\":\"$1\",\"change_id\":\"$2\"}"
    expect 201
}

move() {
    jreq PATCH "/acme/$R/bookmarks/$1" "{\"change_id\":\"$2\"}"
    expect 200
}

nchanges() {
    api GET "/acme/$R/changes?limit=100"
    expect 200 || return 1
    jq '.changes | length' <<<"$body"
}

# branches TARGET_FILES SOURCE_FILES: C0 (f.txt "base") at main, then CT on C0
# with TARGET_FILES at main and CS on C0 with SOURCE_FILES at bookmark src.
branches() {
    C0=$(new_change "$R" "$ROOT_CHANGE" "[$(file_json base.txt b),$(file_json f.txt $'one\nbase\nthree\n')]")
    CT=$(new_change "$R" "$C0" "$1" target-side)
    CS=$(new_change "$R" "$C0" "$2" source-side)
    move main "$CT"
    mkbm src "$CS"
}

merge() {
    jreq POST "/acme/$R/bookmarks/merge" "$1"
}

@test "a new repo lists one bookmark, main, the default, at the root change" {
    api GET "/acme/$R/bookmarks"
    expect 200
    jcheck --arg root "$ROOT_CHANGE" '.bookmarks == [{"name":"main","change_id":$root,"is_default":true}]
        and .has_more == false and .next_cursor == null'
}

@test "creating a bookmark answers 201 and makes a git branch at the change's commit" {
    local c
    c=$(new_change "$R" "$ROOT_CHANGE" "[$(file_json a 1)]")
    jreq POST "/acme/$R/bookmarks" "{\"name\":\"feature/x\",\"change_id\":\"$c\"}"
    expect 201
    jcheck --arg c "$c" '. == {"name":"feature/x","change_id":$c,"is_default":false}'
    api GET "/acme/$R/bookmarks"
    expect 200
    jcheck --arg c "$c" '[.bookmarks[] | select(.name == "feature/x")] == [{"name":"feature/x","change_id":$c,"is_default":false}]'
    [ "$(git --git-dir="$GITDIR" rev-parse refs/heads/feature/x)" = "$(commit_of "$c")" ]
}

@test "creating a bookmark that exists gets 409 ALREADY_EXISTS" {
    mkbm dup "$ROOT_CHANGE"
    jreq POST "/acme/$R/bookmarks" "{\"name\":\"dup\",\"change_id\":\"$ROOT_CHANGE\"}"
    expect_error 409 ALREADY_EXISTS
    jreq POST "/acme/$R/bookmarks" "{\"name\":\"main\",\"change_id\":\"$ROOT_CHANGE\"}"
    expect_error 409 ALREADY_EXISTS
}

@test "invalid bookmark names get 400 BAD_REQUEST" {
    local n long
    long=$(printf 'b%.0s' $(seq 1 201))
    for n in "a..b" "-x" "a b" "" "a~b" "x.lock" "a:b" "/a" "a/" "a^b" "a?b" "a*b" "a[b" "@" 'a\b' "$long"; do
        jreq POST "/acme/$R/bookmarks" "$(jq -cn --arg n "$n" --arg c "$ROOT_CHANGE" '{name:$n,change_id:$c}')"
        expect_error 400 BAD_REQUEST || { echo "name '$n'" >&2; false; }
    done
    api GET "/acme/$R/bookmarks"
    expect 200
    jcheck '[.bookmarks[].name] == ["main"]'
    # 200 bytes is fine
    mkbm "$(printf 'b%.0s' $(seq 1 200))" "$ROOT_CHANGE"
}

@test "creating a bookmark on an unknown change gets 404" {
    jreq POST "/acme/$R/bookmarks" '{"name":"lost","change_id":"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"}'
    expect_error 404 NOT_FOUND
    api GET "/acme/$R/bookmarks/lost"
    expect_error 404 NOT_FOUND
}

@test "getting a bookmark returns it; a missing one gets 404" {
    local c
    c=$(new_change "$R" "$ROOT_CHANGE" "[$(file_json a 1)]")
    mkbm topic "$c"
    api GET "/acme/$R/bookmarks/topic"
    expect 200
    jcheck --arg c "$c" '. == {"name":"topic","change_id":$c,"is_default":false}'
    api GET "/acme/$R/bookmarks/main"
    expect 200
    jcheck '.is_default == true'
    api GET "/acme/$R/bookmarks/nope"
    expect_error 404 NOT_FOUND
}

@test "moving a bookmark answers from_change_id and moves the git branch, to the root too" {
    local c
    c=$(new_change "$R" "$ROOT_CHANGE" "[$(file_json a 1)]")
    jreq PATCH "/acme/$R/bookmarks/main" "{\"change_id\":\"$c\"}"
    expect 200
    jcheck --arg c "$c" --arg root "$ROOT_CHANGE" \
        '. == {"name":"main","change_id":$c,"is_default":true,"from_change_id":$root}'
    [ "$(at main)" = "$c" ]
    [ "$(git --git-dir="$GITDIR" rev-parse refs/heads/main)" = "$(commit_of "$c")" ]
    jreq PATCH "/acme/$R/bookmarks/main" "{\"change_id\":\"$ROOT_CHANGE\"}"
    expect 200
    jcheck --arg c "$c" --arg root "$ROOT_CHANGE" '.change_id == $root and .from_change_id == $c'
    [ "$(at main)" = "$ROOT_CHANGE" ]
    [ "$(git --git-dir="$GITDIR" rev-parse refs/heads/main)" = "$(commit_of "$ROOT_CHANGE")" ]
}

@test "moving a bookmark to an unknown change gets 404 and it stays; moving a missing bookmark gets 404" {
    jreq PATCH "/acme/$R/bookmarks/main" '{"change_id":"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"}'
    expect_error 404 NOT_FOUND
    [ "$(at main)" = "$ROOT_CHANGE" ]
    jreq PATCH "/acme/$R/bookmarks/nope" "{\"change_id\":\"$ROOT_CHANGE\"}"
    expect_error 404 NOT_FOUND
    api GET "/acme/$R/bookmarks/nope"
    expect_error 404 NOT_FOUND
}

@test "deleting a bookmark answers success, then it is 404 and its git branch is gone" {
    mkbm gone "$ROOT_CHANGE"
    git --git-dir="$GITDIR" rev-parse --verify -q refs/heads/gone >/dev/null
    api DELETE "/acme/$R/bookmarks/gone"
    expect 200
    jcheck '. == {"success":true}'
    api GET "/acme/$R/bookmarks/gone"
    expect_error 404 NOT_FOUND
    run git --git-dir="$GITDIR" rev-parse --verify -q refs/heads/gone
    [ "$status" -ne 0 ]
    api DELETE "/acme/$R/bookmarks/gone"
    expect_error 404 NOT_FOUND
}

@test "deleting the default bookmark gets 409 CONFLICT and it stays" {
    api DELETE "/acme/$R/bookmarks/main"
    expect_error 409 CONFLICT
    api GET "/acme/$R/bookmarks/main"
    expect 200
    jcheck '.is_default == true'
}

@test "listing bookmarks with glob returns only the matching names" {
    mkbm feat/a "$ROOT_CHANGE"
    mkbm feat/b "$ROOT_CHANGE"
    mkbm fix/c "$ROOT_CHANGE"
    api GET "/acme/$R/bookmarks?glob=feat/*"
    expect 200
    jcheck '([.bookmarks[].name] | sort) == ["feat/a","feat/b"]'
    api GET "/acme/$R/bookmarks?glob=ma%3Fn"
    expect 200
    jcheck '[.bookmarks[].name] == ["main"]'
    api GET "/acme/$R/bookmarks?glob=nothing*"
    expect 200
    jcheck '.bookmarks == [] and .has_more == false'
}

@test "listing bookmarks pages with limit and cursor, each bookmark once" {
    local i names="" cursor=""
    for i in 1 2 3 4; do mkbm "p$i" "$ROOT_CHANGE"; done
    for i in $(seq 1 10); do
        api GET "/acme/$R/bookmarks?limit=2${cursor:+&cursor=$cursor}"
        expect 200
        jcheck '(.bookmarks | length) <= 2'
        names="$names $(jq -r '[.bookmarks[].name] | join(" ")' <<<"$body")"
        [ "$(jq -r .has_more <<<"$body")" = true ] || break
        cursor=$(jq -r '.next_cursor | @uri' <<<"$body")
    done
    [ "$(tr ' ' '\n' <<<"$names" | sed '/^$/d' | sort | tr '\n' ' ')" = "main p1 p2 p3 p4 " ]
}

@test "merging two bookmarks at the same commit is a no_op that writes nothing" {
    local c n
    c=$(new_change "$R" "$ROOT_CHANGE" "[$(file_json a 1)]")
    move main "$c"
    mkbm same "$c"
    n=$(nchanges)
    merge '{"target":"main","source":"same"}'
    expect 200
    jcheck --arg c "$c" --arg oid "$(commit_of "$c")" '
        .merge_type == "no_op" and .is_conflicted == false and .commit_oid == $oid and .change_id == $c
        and .target == "main" and .source == "same" and .source_deleted == false'
    [ "$(at main)" = "$c" ]
    [ "$(at same)" = "$c" ]
    [ "$(nchanges)" = "$n" ]
}

@test "merging branches that touch different files makes a merge commit with both and moves the target" {
    local m
    branches "[$(file_json x.txt from-target)]" "[$(file_json y.txt from-source)]"
    merge '{"target":"main","source":"src","message":"merge src"}'
    expect 200
    jcheck '.merge_type == "merge_commit" and .is_conflicted == false and .target == "main"
        and .source == "src" and .source_deleted == false and (.commit_oid | test("^[0-9a-f]{40}$"))
        and (.change_id | test("^[k-z]{32}$"))'
    m=$(jq -r .change_id <<<"$body")
    [ "$m" != "$CT" ] && [ "$m" != "$CS" ]
    [ "$(jq -r .commit_oid <<<"$body")" = "$(commit_of "$m")" ]
    api GET "/acme/$R/changes/$m"
    expect 200
    jcheck --arg t "$CT" --arg s "$CS" '.parents == [$t, $s] and .is_conflicted == false and .conflicts == []'
    [ "$(at main)" = "$m" ]
    [ "$(at src)" = "$CS" ]
    [ "$(raw main x.txt)" = from-target ]
    [ "$(raw main y.txt)" = from-source ]
    [ "$(raw main base.txt)" = b ]
    [ "$(git --git-dir="$GITDIR" rev-list --parents -n1 refs/heads/main)" = \
        "$(commit_of "$m") $(commit_of "$CT") $(commit_of "$CS")" ]
}

@test "merging with delete_source removes the source bookmark" {
    branches "[$(file_json x.txt t)]" "[$(file_json y.txt s)]"
    merge '{"target":"main","source":"src","delete_source":true}'
    expect 200
    jcheck '.merge_type == "merge_commit" and .source_deleted == true'
    api GET "/acme/$R/bookmarks/src"
    expect_error 404 NOT_FOUND
    run git --git-dir="$GITDIR" rev-parse --verify -q refs/heads/src
    [ "$status" -ne 0 ]
    [ "$(raw main y.txt)" = s ]
}

@test "merging conflicting edits gets 409 MERGE_CONFLICT naming the path and moves nothing" {
    local n
    branches "[$(file_json f.txt $'one\nTARGET\nthree\n'),$(file_json x.txt t)]" \
        "[$(file_json f.txt $'one\nSOURCE\nthree\n'),$(file_json y.txt s)]"
    n=$(nchanges)
    merge '{"target":"main","source":"src","delete_source":true}'
    expect_error 409 MERGE_CONFLICT
    jcheck '.error.details.conflict_paths == ["f.txt"]'
    [ "$(at main)" = "$CT" ]
    [ "$(at src)" = "$CS" ]
    [ "$(nchanges)" = "$n" ]
    [ "$(raw main f.txt)" = $'one\nTARGET\nthree' ]
}

@test "merging conflicting edits with allow_conflicted makes a conflicted change with markers" {
    local m
    branches "[$(file_json f.txt $'one\nTARGET\nthree\n')]" "[$(file_json f.txt $'one\nSOURCE\nthree\n')]"
    merge '{"target":"main","source":"src","allow_conflicted":true}'
    expect 200
    jcheck '.merge_type == "merge_commit" and .is_conflicted == true'
    m=$(jq -r .change_id <<<"$body")
    [ "$(at main)" = "$m" ]
    raw main f.txt >"$BATS_TEST_TMPDIR/f"
    grep -q '^<<<<<<<' "$BATS_TEST_TMPDIR/f"
    grep -q '^>>>>>>>' "$BATS_TEST_TMPDIR/f"
    grep -q TARGET "$BATS_TEST_TMPDIR/f"
    grep -q SOURCE "$BATS_TEST_TMPDIR/f"
    api GET "/acme/$R/changes/$m"
    expect 200
    jcheck '.is_conflicted == true and .conflicts == ["f.txt"]'
}

@test "a take:source resolution settles a conflict with the source's content" {
    branches "[$(file_json f.txt $'one\nTARGET\nthree\n')]" "[$(file_json f.txt $'one\nSOURCE\nthree\n')]"
    merge '{"target":"main","source":"src","resolutions":[{"path":"f.txt","take":"source"}]}'
    expect 200
    jcheck '.merge_type == "merge_commit" and .is_conflicted == false'
    [ "$(raw main f.txt)" = $'one\nSOURCE\nthree' ]
    api GET "/acme/$R/changes/$(jq -r .change_id <<<"$body")"
    expect 200
    jcheck '.is_conflicted == false and .conflicts == []'
}

@test "take:target and content resolutions settle a conflict with that content" {
    branches "[$(file_json f.txt $'one\nTARGET\nthree\n'),$(file_json g.txt $'t\n')]" \
        "[$(file_json f.txt $'one\nSOURCE\nthree\n'),$(file_json g.txt $'s\n')]"
    merge "{\"target\":\"main\",\"source\":\"src\",\"resolutions\":[{\"path\":\"f.txt\",\"take\":\"target\"},
        {\"path\":\"g.txt\",\"content\":\"$(printf 'mine\n' | base64 -w0)\"}]}"
    expect 200
    jcheck '.is_conflicted == false'
    [ "$(raw main f.txt)" = $'one\nTARGET\nthree' ]
    [ "$(raw main g.txt)" = mine ]
}

@test "hunk-level resolutions get 400 (not supported by mesad)" {
    branches "[$(file_json f.txt $'one\nTARGET\nthree\n')]" "[$(file_json f.txt $'one\nSOURCE\nthree\n')]"
    merge '{"target":"main","source":"src","resolutions":[{"path":"f.txt","hunks":[{"hunk_id":"h1","take":"source"}]}]}'
    expect_error 400 BAD_REQUEST
    [ "$(at main)" = "$CT" ]
}

@test "merging an unknown source or target bookmark gets 404" {
    merge '{"target":"main","source":"nope"}'
    expect_error 404 NOT_FOUND
    merge '{"target":"nope","source":"main"}'
    expect_error 404 NOT_FOUND
    [ "$(at main)" = "$ROOT_CHANGE" ]
}
