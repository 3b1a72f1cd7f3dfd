#!/usr/bin/env bats
# tests/server/changes.bats - POST/GET/PATCH /v1/{org}/{repo}/changes: change
# ids and parents, files entries (upsert, delete, modes, symlinks, mkdir),
# atomicity, STALE_BASE, bookmarks following a rewritten change, mtimes
# (docs/PROTOCOL.md "Changes"). Each test gets a fresh repo $R (setup).

load ../lib/mesad

setup_file() { mesad_start; }
teardown_file() { mesad_stop; }

setup() {
    R="ch$BATS_TEST_NUMBER"
    make_repo "$R"
    REPO_ID=$(jq -r .id <<<"$body")
    GITDIR="$MESAD_DATA/repos/$REPO_ID.git"
}

# raw CHANGE PATH: the raw bytes of PATH at CHANGE (fails unless 200)
raw() {
    api GET "/acme/$R/content?change_id=$1&path=$2" -H 'Accept: application/octet-stream'
    expect 200 || return 1
    cat "$MESAD_TMP/body"
}

# commit_of CHANGE: its current_commit_oid
commit_of() {
    api GET "/acme/$R/changes/$1"
    expect 200 || return 1
    jq -r .current_commit_oid <<<"$body"
}

# tree_mtime CHANGE PATH: mtime_ns of PATH in the /tree listing, as exact
# digits (jq 1.6 would round a nanosecond count through a double)
tree_mtime() {
    api GET "/acme/$R/tree?change_id=$1"
    expect 200 || return 1
    sed -E 's/("mtime_ns"[[:space:]]*:[[:space:]]*)(-?[0-9]+)/\1"\2"/g' <<<"$body" |
        jq -r --arg p "$2" '.entries[] | select(.path == $p) | .mtime_ns'
}

# patch_change CHANGE FILES_JSON [extra JSON members]
patch_change() {
    jreq PATCH "/acme/$R/changes/$1" "{\"files\":$2${3:+,$3}}"
}

@test "creating a change on the root answers 201 with a new change id, the root as parent, message and author" {
    jreq POST "/acme/$R/changes" "{\"base_change_id\":\"$ROOT_CHANGE\",\"message\":\"first change\",
        \"author\":{\"name\":\"Ada Lovelace\",\"email\":\"ada@example.com\"},
        \"files\":[$(file_json a.txt hello),$(file_json d/b.txt bee)]}"
    expect 201
    jcheck --arg root "$ROOT_CHANGE" --arg ts "$TS_RE" '
        (.id | test("^[k-z]{32}$")) and .id != $root
        and .parents == [$root]
        and .message == "first change"
        and .author.name == "Ada Lovelace" and .author.email == "ada@example.com"
        and (.committer.name | type == "string") and (.committer.email | type == "string")
        and (.current_commit_oid | test("^[0-9a-f]{40}$"))
        and .is_conflicted == false
        and (.created_at | test($ts)) and (.updated_at | test($ts))'
    local c
    c=$(jq -r .id <<<"$body")
    [ "$(raw "$c" a.txt)" = hello ]
    [ "$(raw "$c" d/b.txt)" = bee ]
    # bookmarks do not move
    api GET "/acme/$R/bookmarks/main"
    expect 200
    jcheck --arg root "$ROOT_CHANGE" '.change_id == $root'
}

@test "author and committer dates are RFC 3339 UTC with milliseconds, like every time" {
    jreq POST "/acme/$R/changes" "{\"base_change_id\":\"$ROOT_CHANGE\",\"files\":[$(file_json a x)]}"
    expect 201
    jcheck --arg ts "$TS_RE" '(.author.date | test($ts)) and (.committer.date | test($ts))'
    api GET "/acme/$R/changes/$(jq -r .id <<<"$body")"
    expect 200
    jcheck --arg ts "$TS_RE" '(.author.date | test($ts)) and (.committer.date | test($ts))'
}

@test "two changes on the same base get different change ids" {
    local a b
    a=$(new_change "$R" "$ROOT_CHANGE" "[$(file_json x 1)]")
    b=$(new_change "$R" "$ROOT_CHANGE" "[$(file_json x 1)]")
    [ "$a" != "$b" ]
}

@test "creating a change with a bookmark name as base uses the bookmark's change as parent" {
    local c1
    c1=$(new_change "$R" "$ROOT_CHANGE" "[$(file_json a.txt one)]")
    jreq PATCH "/acme/$R/bookmarks/main" "{\"change_id\":\"$c1\"}"
    expect 200
    jreq POST "/acme/$R/changes" "{\"base_change_id\":\"main\",\"files\":[$(file_json b.txt two)]}"
    expect 201
    jcheck --arg c1 "$c1" '.parents == [$c1]'
    local c2
    c2=$(jq -r .id <<<"$body")
    [ "$(raw "$c2" a.txt)" = one ]
    [ "$(raw "$c2" b.txt)" = two ]
}

@test "creating a change without files copies the base's tree" {
    local c1 c2
    c1=$(new_change "$R" "$ROOT_CHANGE" "[$(file_json a.txt one)]")
    jreq POST "/acme/$R/changes" "{\"base_change_id\":\"$c1\",\"message\":\"empty\"}"
    expect 201
    c2=$(jq -r .id <<<"$body")
    jcheck --arg c1 "$c1" '.parents == [$c1] and .message == "empty"'
    [ "$(raw "$c2" a.txt)" = one ]
}

@test "creating a change on an unknown base gets 404" {
    jreq POST "/acme/$R/changes" '{"base_change_id":"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk","files":[]}'
    expect_error 404 NOT_FOUND
    jreq POST "/acme/$R/changes" '{"base_change_id":"no-such-bookmark","files":[]}'
    expect_error 404 NOT_FOUND
}

@test "listing changes: all of them, most recently updated first; with bookmark, its change and ancestors newest first" {
    local c1 c2 c3
    c1=$(new_change "$R" "$ROOT_CHANGE" "[$(file_json a 1)]")
    c2=$(new_change "$R" "$c1" "[$(file_json a 2)]")
    c3=$(new_change "$R" "$ROOT_CHANGE" "[$(file_json side 3)]")
    jreq PATCH "/acme/$R/bookmarks/main" "{\"change_id\":\"$c2\"}"
    expect 200
    api GET "/acme/$R/changes"
    expect 200
    jcheck --arg c1 "$c1" --arg c2 "$c2" --arg c3 "$c3" '
        ([.changes[].id] as $ids | ($ids | index($c1)) != null and ($ids | index($c2)) != null and ($ids | index($c3)) != null)
        and .has_more == false'
    # a rewrite makes c1 the most recently updated
    patch_change "$c1" "[$(file_json a 1b)]"
    expect 200
    api GET "/acme/$R/changes"
    expect 200
    jcheck --arg c1 "$c1" '.changes[0].id == $c1'
    api GET "/acme/$R/changes?bookmark=main"
    expect 200
    jcheck --arg c1 "$c1" --arg c2 "$c2" --arg root "$ROOT_CHANGE" \
        '[.changes[].id] == [$c2, $c1, $root] and .has_more == false'
}

@test "listing changes of a bookmark pages with limit and cursor" {
    local c1 c2 cursor ids
    c1=$(new_change "$R" "$ROOT_CHANGE" "[$(file_json a 1)]")
    c2=$(new_change "$R" "$c1" "[$(file_json a 2)]")
    jreq PATCH "/acme/$R/bookmarks/main" "{\"change_id\":\"$c2\"}"
    expect 200
    api GET "/acme/$R/changes?bookmark=main&limit=1"
    expect 200
    jcheck --arg c2 "$c2" '[.changes[].id] == [$c2] and .has_more == true and (.next_cursor | type == "string")'
    ids=$c2
    local i
    for i in 1 2 3 4 5; do
        cursor=$(jq -r '.next_cursor | @uri' <<<"$body")
        api GET "/acme/$R/changes?bookmark=main&limit=1&cursor=$cursor"
        expect 200
        ids="$ids $(jq -r '.changes[].id' <<<"$body")"
        [ "$(jq -r .has_more <<<"$body")" = true ] || break
    done
    [ "$ids" = "$c2 $c1 $ROOT_CHANGE" ]
}

@test "listing changes of an unknown bookmark gets 404" {
    api GET "/acme/$R/changes?bookmark=nope"
    expect_error 404 NOT_FOUND
}

@test "getting a change lists the paths changed against its parent and no conflicts" {
    local c1 c2
    c1=$(new_change "$R" "$ROOT_CHANGE" "[$(file_json a.txt 1),$(file_json d/b.txt 2),$(file_json same 3)]")
    api GET "/acme/$R/changes/$c1"
    expect 200
    jcheck --arg c1 "$c1" --arg root "$ROOT_CHANGE" '
        .id == $c1 and .parents == [$root] and (.files | sort) == ["a.txt","d/b.txt","same"] and .conflicts == []
        and .is_conflicted == false'
    c2=$(new_change "$R" "$c1" "[$(file_json a.txt changed),{\"path\":\"d/b.txt\",\"action\":\"delete\"},$(file_json new 4)]")
    api GET "/acme/$R/changes/$c2"
    expect 200
    jcheck '(.files | sort) == ["a.txt","d/b.txt","new"] and .conflicts == []'
}

@test "getting a change by bookmark name returns the bookmark's change; an unknown change gets 404" {
    local c1
    c1=$(new_change "$R" "$ROOT_CHANGE" "[$(file_json a 1)]")
    jreq POST "/acme/$R/bookmarks" "{\"name\":\"feat\",\"change_id\":\"$c1\"}"
    expect 201
    api GET "/acme/$R/changes/feat"
    expect 200
    jcheck --arg c1 "$c1" '.id == $c1'
    api GET "/acme/$R/changes/kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
    expect_error 404 NOT_FOUND
}

@test "PATCH with files and the current base_commit_oid gives 200, the same change id and a new commit" {
    local c old
    c=$(new_change "$R" "$ROOT_CHANGE" "[$(file_json a.txt v1)]" "msg one")
    old=$(commit_of "$c")
    patch_change "$c" "[$(file_json a.txt v2),$(file_json b.txt new)]" "\"base_commit_oid\":\"$old\""
    expect 200
    jcheck --arg c "$c" --arg old "$old" --arg root "$ROOT_CHANGE" '
        .id == $c and .current_commit_oid != $old and (.current_commit_oid | test("^[0-9a-f]{40}$"))
        and .parents == [$root] and .message == "msg one"'
    [ "$(commit_of "$c")" = "$(jq -r .current_commit_oid <<<"$body")" ]
    [ "$(raw "$c" a.txt)" = v2 ]
    [ "$(raw "$c" b.txt)" = new ]
}

@test "a rewrite back to an earlier tree in the same second still gets a commit id never handed out before" {
    # clients cache a commit's listing and per-path mtimes by its id
    local c ids=() i
    c=$(new_change "$R" "$ROOT_CHANGE" "[$(file_json a.txt v1)]")
    ids+=("$(commit_of "$c")")
    for i in 2 1 2 1; do
        patch_change "$c" "[$(file_json a.txt "v$i")]"
        expect 200
        ids+=("$(jq -r .current_commit_oid <<<"$body")")
    done
    [ "$(printf '%s\n' "${ids[@]}" | sort -u | wc -l)" -eq 5 ]
    [ "$(raw "$c" a.txt)" = v1 ]
}

@test "PATCH with a stale base_commit_oid gets 409 STALE_BASE naming the current commit and changes nothing" {
    local c old cur
    c=$(new_change "$R" "$ROOT_CHANGE" "[$(file_json a.txt v1)]")
    old=$(commit_of "$c")
    patch_change "$c" "[$(file_json a.txt v2)]" "\"base_commit_oid\":\"$old\""
    expect 200
    cur=$(jq -r .current_commit_oid <<<"$body")
    patch_change "$c" "[$(file_json a.txt v3)]" "\"base_commit_oid\":\"$old\""
    expect_error 409 STALE_BASE
    jcheck --arg cur "$cur" '.error.details.current_commit_oid == $cur'
    [ "$(commit_of "$c")" = "$cur" ]
    [ "$(raw "$c" a.txt)" = v2 ]
}

@test "PATCH without message keeps the message; with one it replaces it" {
    local c
    c=$(new_change "$R" "$ROOT_CHANGE" "[$(file_json a.txt v1)]" "keep me")
    patch_change "$c" "[$(file_json a.txt v2)]"
    expect 200
    jcheck '.message == "keep me"'
    jreq PATCH "/acme/$R/changes/$c" '{"message":"new words"}'
    expect 200
    jcheck '.message == "new words"'
    api GET "/acme/$R/changes/$c"
    expect 200
    jcheck '.message == "new words"'
    [ "$(raw "$c" a.txt)" = v2 ]
}

@test "bookmarks on a rewritten change follow the PATCH, in the API and in git" {
    local c new
    c=$(new_change "$R" "$ROOT_CHANGE" "[$(file_json a.txt v1)]")
    jreq PATCH "/acme/$R/bookmarks/main" "{\"change_id\":\"$c\"}"
    expect 200
    jreq POST "/acme/$R/bookmarks" "{\"name\":\"feat\",\"change_id\":\"$c\"}"
    expect 201
    patch_change "$c" "[$(file_json a.txt v2)]"
    expect 200
    new=$(jq -r .current_commit_oid <<<"$body")
    api GET "/acme/$R/bookmarks/main"
    expect 200
    jcheck --arg c "$c" '.change_id == $c'
    api GET "/acme/$R/bookmarks/feat"
    expect 200
    jcheck --arg c "$c" '.change_id == $c'
    [ "$(git --git-dir="$GITDIR" rev-parse refs/heads/main)" = "$new" ]
    [ "$(git --git-dir="$GITDIR" rev-parse refs/heads/feat)" = "$new" ]
    [ "$(raw main a.txt)" = v2 ]
}

@test "PATCH of the root change gets 400 IMMUTABLE_CHANGE; of an unknown change 404" {
    patch_change "$ROOT_CHANGE" "[$(file_json a.txt x)]"
    expect_error 400 IMMUTABLE_CHANGE
    api GET "/acme/$R/content?change_id=$ROOT_CHANGE"
    expect 200
    jcheck '.entries == []'
    patch_change kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk "[$(file_json a.txt x)]"
    expect_error 404 NOT_FOUND
}

@test "a delete entry removes a file; deleting a missing path is a no-op" {
    local c c2
    c=$(new_change "$R" "$ROOT_CHANGE" "[$(file_json a.txt 1),$(file_json b.txt 2)]")
    patch_change "$c" '[{"path":"a.txt","action":"delete"}]'
    expect 200
    api GET "/acme/$R/content?change_id=$c&path=a.txt"
    expect_error 404 NOT_FOUND
    [ "$(raw "$c" b.txt)" = 2 ]
    patch_change "$c" '[{"path":"never/was","action":"delete"},{"path":"a.txt","action":"delete"}]'
    expect 200
    [ "$(raw "$c" b.txt)" = 2 ]
    c2=$(new_change "$R" "$c" '[{"path":"ghost","action":"delete"}]')
    [ "$(raw "$c2" b.txt)" = 2 ]
}

@test "deleting a directory removes everything under it" {
    local c
    c=$(new_change "$R" "$ROOT_CHANGE" "[$(file_json d/x 1),$(file_json d/e/y 2),$(file_json keep 3)]")
    patch_change "$c" '[{"path":"d","action":"delete"}]'
    expect 200
    api GET "/acme/$R/content?change_id=$c&path=d"
    expect_error 404 NOT_FOUND
    api GET "/acme/$R/content?change_id=$c&path=d/e/y"
    expect_error 404 NOT_FOUND
    [ "$(raw "$c" keep)" = 3 ]
}

@test "mode 100755 is kept, in the API and in git" {
    local c
    c=$(new_change "$R" "$ROOT_CHANGE" "[$(file_json run.sh '#!/bin/sh' 100755),$(file_json plain x)]")
    api GET "/acme/$R/content?change_id=$c&path=run.sh"
    expect 200
    jcheck '.type == "file" and .mode == "100755"'
    api GET "/acme/$R/content?change_id=$c&path=plain"
    expect 200
    jcheck '.mode == "100644"'
    [ "$(git --git-dir="$GITDIR" ls-tree "$(commit_of "$c")" run.sh | cut -d' ' -f1)" = 100755 ]
    # a later PATCH of another path keeps it
    patch_change "$c" "[$(file_json other y)]"
    expect 200
    api GET "/acme/$R/content?change_id=$c&path=run.sh"
    expect 200
    jcheck '.mode == "100755"'
}

@test "mode 120000 makes a symlink whose target is the content" {
    local c
    c=$(new_change "$R" "$ROOT_CHANGE" "[$(file_json target.txt data),$(file_json link ../up/target.txt 120000)]")
    api GET "/acme/$R/content?change_id=$c&path=link"
    expect 200
    jcheck '.type == "symlink" and .mode == "120000" and .name == "link" and .path == "link"'
    [ "$(jq -r .content <<<"$body" | base64 -d)" = ../up/target.txt ]
    [ "$(raw "$c" link)" = ../up/target.txt ]
    [ "$(git --git-dir="$GITDIR" ls-tree "$(commit_of "$c")" link | cut -d' ' -f1)" = 120000 ]
}

@test "a mkdir entry makes an empty directory visible in the content listing" {
    local c
    c=$(new_change "$R" "$ROOT_CHANGE" '[{"path":"emptydir","action":"mkdir"},{"path":"p/q","action":"mkdir"}]')
    api GET "/acme/$R/content?change_id=$c"
    expect 200
    jcheck '[.entries[] | select(.name == "emptydir" and .type == "dir")] | length == 1'
    api GET "/acme/$R/content?change_id=$c&path=emptydir"
    expect 200
    jcheck '.type == "dir" and .entries == [] and .child_count == 0'
    api GET "/acme/$R/content?change_id=$c&path=p/q"
    expect 200
    jcheck '.type == "dir" and .entries == []'
    # a file later written into it is listed there
    patch_change "$c" "[$(file_json emptydir/f x)]"
    expect 200
    api GET "/acme/$R/content?change_id=$c&path=emptydir"
    expect 200
    jcheck '[.entries[].name] == ["f"] and .child_count == 1'
}

@test "a file where a directory exists, or below a file, gets 409 CONFLICT and changes nothing" {
    local c old
    c=$(new_change "$R" "$ROOT_CHANGE" "[$(file_json d/b.txt 1),$(file_json f 2)]")
    old=$(commit_of "$c")
    patch_change "$c" "[$(file_json d x)]"
    expect_error 409 CONFLICT
    patch_change "$c" "[$(file_json f/x y)]"
    expect_error 409 CONFLICT
    patch_change "$c" '[{"path":"f","action":"mkdir"}]'
    expect_error 409 CONFLICT
    jreq POST "/acme/$R/changes" "{\"base_change_id\":\"$c\",\"files\":[$(file_json d x)]}"
    expect_error 409 CONFLICT
    [ "$(commit_of "$c")" = "$old" ]
    [ "$(raw "$c" d/b.txt)" = 1 ]
    # entries apply in order: delete the directory, then write a file there
    patch_change "$c" "[{\"path\":\"d\",\"action\":\"delete\"},$(file_json d now-a-file)]"
    expect 200
    [ "$(raw "$c" d)" = now-a-file ]
}

@test "files apply atomically: one invalid entry gets 400 and none of the entries is applied" {
    local c old n
    c=$(new_change "$R" "$ROOT_CHANGE" "[$(file_json a.txt orig)]")
    old=$(commit_of "$c")
    patch_change "$c" "[$(file_json a.txt changed),$(file_json good1 1),{\"path\":\"bad\",\"content\":\"@@@\"},$(file_json good2 2)]"
    expect_error 400 BAD_REQUEST
    [ "$(commit_of "$c")" = "$old" ]
    [ "$(raw "$c" a.txt)" = orig ]
    api GET "/acme/$R/content?change_id=$c&path=good1"
    expect_error 404 NOT_FOUND
    api GET "/acme/$R/changes"
    expect 200
    n=$(jq '.changes | length' <<<"$body")
    jreq POST "/acme/$R/changes" "{\"base_change_id\":\"$c\",\"files\":[$(file_json good1 1),{\"path\":\"bad\",\"content\":\"@@@\"}]}"
    expect_error 400 BAD_REQUEST
    api GET "/acme/$R/changes"
    expect 200
    [ "$(jq '.changes | length' <<<"$body")" -eq "$n" ]
}

@test "mtime_ns given for a path is returned by the tree listing" {
    local c
    c=$(new_change "$R" "$ROOT_CHANGE" "[{\"path\":\"m.txt\",\"content\":\"eA==\",\"mtime_ns\":1700000000123456789},
        {\"path\":\"d/n.txt\",\"content\":\"eQ==\",\"mtime_ns\":1600000000000000001}]")
    [ "$(tree_mtime "$c" m.txt)" = 1700000000123456789 ]
    [ "$(tree_mtime "$c" d/n.txt)" = 1600000000000000001 ]
    # a directory's mtime is the newest of its subtree
    [ "$(tree_mtime "$c" d)" = 1600000000000000001 ]
    # and the content endpoint reports it too
    api GET "/acme/$R/content?change_id=$c&path=m.txt"
    expect 200
    grep -Eq '"mtime_ns"[[:space:]]*:[[:space:]]*1700000000123456789([^0-9]|$)' <<<"$body" || {
        echo "content has no exact mtime_ns: $body" >&2
        false
    }
}

@test "unchanged paths keep their mtime across a later PATCH and in a child change" {
    local c m c2
    c=$(new_change "$R" "$ROOT_CHANGE" "[{\"path\":\"a.txt\",\"content\":\"YQ==\",\"mtime_ns\":1500000000000000007},
        {\"path\":\"b.txt\",\"content\":\"Yg==\",\"mtime_ns\":1500000000000000009}]")
    patch_change "$c" "[$(file_json b.txt changed)]"
    expect 200
    [ "$(tree_mtime "$c" a.txt)" = 1500000000000000007 ]
    # b.txt was written without mtime_ns: it gets the server's clock
    m=$(tree_mtime "$c" b.txt)
    [[ "$m" =~ ^[0-9]+$ ]]
    [ "$m" != 1500000000000000009 ]
    [ "$m" -gt 1600000000000000000 ]
    c2=$(new_change "$R" "$c" "[$(file_json other.txt o)]")
    [ "$(tree_mtime "$c2" a.txt)" = 1500000000000000007 ]
    [ "$(tree_mtime "$c2" b.txt)" = "$m" ]
}
