#!/usr/bin/env bats
# tests/server/git.bats - the storage is real git in Jujutsu's format
# (docs/PROTOCOL.md; ../shared/MESA-API.md "Storage format"): one bare repo
# per Mesa repo at $MESAD_DATA/repos/<repo id>.git, a change-id header on
# every commit, the root change, keep-refs, bookmarks as refs/heads, files
# with their modes, empty directories as empty trees, fsck-clean objects.
# One shared server; every test makes its own repo.

bats_require_minimum_version 1.5.0
load ../lib/mesad
load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

setup_file() { mesad_start; }
teardown_file() { mesad_stop; }

EMPTY_TREE=4b825dc642cb6eb9a060e54bf8d69288fbee4904

# gitdir REPO: the bare git repo of a Mesa repo
gitdir() {
    api GET "/$MESA_ORG/$1"
    expect 200 || return 1
    echo "$MESAD_DATA/repos/$(jq -r .id <<<"$body").git"
}

change_commit() {
    api GET "/$MESA_ORG/$1/changes/$2"
    expect 200 || return 1
    jq -r .current_commit_oid <<<"$body"
}

move_bookmark() { # REPO NAME CHANGE
    jreq PATCH "/$MESA_ORG/$1/bookmarks/$2" "{\"change_id\":\"$3\"}"
    expect 200
}

@test "a new repo is a bare git repo whose main is the root commit: change-id 32 z, no parents, empty tree" {
    make_repo git-root
    g=$(gitdir git-root)
    [ -d "$g" ]
    assert_equal "$(git --git-dir "$g" rev-parse --is-bare-repository)" true
    root=$(git --git-dir "$g" rev-parse refs/heads/main)
    assert_equal "$(change_commit git-root "$ROOT_CHANGE")" "$root"
    run git --git-dir "$g" cat-file -p "$root"
    assert_success
    assert_line "tree $EMPTY_TREE"
    assert_line "change-id $ROOT_CHANGE"
    refute_line --regexp '^parent '
}

@test "every commit on main carries a change-id header of 32 letters k-z" {
    make_repo git-log
    g=$(gitdir git-log)
    c1=$(new_change git-log "$ROOT_CHANGE" "[$(file_json a a)]")
    c2=$(new_change git-log "$c1" "[$(file_json b b)]")
    jreq PATCH "/$MESA_ORG/git-log/changes/$c2" "{\"files\":[$(file_json c c)]}"
    expect 200
    move_bookmark git-log main "$c2"

    git --git-dir "$g" log --format=raw refs/heads/main >"$BATS_TEST_TMPDIR/log"
    assert_equal "$(grep -c '^commit ' "$BATS_TEST_TMPDIR/log")" 3
    assert_equal "$(grep -c '^change-id ' "$BATS_TEST_TMPDIR/log")" 3
    assert_equal "$(grep -cE '^change-id [k-z]{32}$' "$BATS_TEST_TMPDIR/log")" 3
    # newest first: c2, c1, root
    assert_equal "$(grep '^change-id ' "$BATS_TEST_TMPDIR/log" | cut -d' ' -f2 | tr '\n' ' ')" \
        "$c2 $c1 $ROOT_CHANGE "
    # the root commit: no parents, the empty tree
    root=$(git --git-dir "$g" rev-list --max-parents=0 refs/heads/main)
    assert_equal "$(wc -l <<<"$root")" 1
    assert_equal "$(git --git-dir "$g" rev-parse "$root^{tree}")" "$EMPTY_TREE"
    run git --git-dir "$g" cat-file -p "$root"
    assert_line "change-id $ROOT_CHANGE"
    refute_line --regexp '^parent '
}

@test "the change-id header of a change's commit is its REST id, and its parent is the base's commit" {
    make_repo git-id
    g=$(gitdir git-id)
    c1=$(new_change git-id "$ROOT_CHANGE" "[$(file_json a a)]")
    c2=$(new_change git-id "$c1" "[$(file_json b b)]")
    k1=$(change_commit git-id "$c1")
    k2=$(change_commit git-id "$c2")
    assert_equal "$(git --git-dir "$g" cat-file -p "$k1" | sed -n 's/^change-id //p')" "$c1"
    assert_equal "$(git --git-dir "$g" cat-file -p "$k2" | sed -n 's/^change-id //p')" "$c2"
    assert_equal "$(git --git-dir "$g" cat-file -p "$k2" | sed -n 's/^parent //p')" "$k1"
    assert_equal "$(git --git-dir "$g" cat-file -p "$k1" | sed -n 's/^parent //p')" \
        "$(change_commit git-id "$ROOT_CHANGE")"

    # a PATCH writes a new commit with the same change id and the same parent
    jreq PATCH "/$MESA_ORG/git-id/changes/$c2" "{\"message\":\"reworded\",\"files\":[$(file_json c c)]}"
    expect 200
    k2b=$(jq -r .current_commit_oid <<<"$body")
    [ "$k2b" != "$k2" ]
    assert_equal "$(git --git-dir "$g" cat-file -p "$k2b" | sed -n 's/^change-id //p')" "$c2"
    assert_equal "$(git --git-dir "$g" cat-file -p "$k2b" | sed -n 's/^parent //p')" "$k1"
    assert_equal "$(git --git-dir "$g" log -1 --format=%B "$k2b" | head -1)" reworded
}

@test "git cat-file shows the commit's tree and the files' content" {
    make_repo git-cat
    g=$(gitdir git-cat)
    cid=$(new_change git-cat "$ROOT_CHANGE" "[$(file_json hello.txt 'hello world
'),$(file_json sub/deep.txt deep)]")
    commit=$(change_commit git-cat "$cid")
    tree=$(git --git-dir "$g" cat-file -p "$commit" | sed -n 's/^tree //p')
    [[ "$tree" =~ ^[0-9a-f]{40}$ ]]
    hello=$(printf 'hello world\n' | git hash-object --stdin)

    run git --git-dir "$g" cat-file -p "$tree"
    assert_success
    assert_line "100644 blob $hello	hello.txt"
    assert_line --regexp "^040000 tree [0-9a-f]{40}	sub$"
    assert_equal "$(git --git-dir "$g" cat-file -p "$hello")" "hello world"
    assert_equal "$(git --git-dir "$g" show "$commit:sub/deep.txt")" deep

    move_bookmark git-cat main "$cid"
    assert_equal "$(git --git-dir "$g" show main:hello.txt)" "hello world"
}

@test "refs/jj/keep/<oid> exists for every commit written, the commit a PATCH replaced included" {
    make_repo git-keep
    g=$(gitdir git-keep)
    root=$(change_commit git-keep "$ROOT_CHANGE")
    cid=$(new_change git-keep "$ROOT_CHANGE" "[$(file_json a a)]")
    old=$(change_commit git-keep "$cid")
    jreq PATCH "/$MESA_ORG/git-keep/changes/$cid" "{\"files\":[$(file_json b b)]}"
    expect 200
    new=$(jq -r .current_commit_oid <<<"$body")
    other=$(new_change git-keep "$ROOT_CHANGE" "[$(file_json o o)]")
    jreq POST "/$MESA_ORG/git-keep/bookmarks" "{\"name\":\"side\",\"change_id\":\"$other\"}"
    expect 201
    move_bookmark git-keep main "$cid"
    jreq POST "/$MESA_ORG/git-keep/bookmarks/merge" '{"target":"main","source":"side"}'
    expect 200
    merge=$(jq -r .commit_oid <<<"$body")

    for oid in "$root" "$old" "$new" "$(change_commit git-keep "$other")" "$merge"; do
        assert_equal "$(git --git-dir "$g" rev-parse --verify -q "refs/jj/keep/$oid")" "$oid"
    done
    # and no commit object in the repo lacks one
    git --git-dir "$g" cat-file --batch-all-objects --batch-check='%(objectname) %(objecttype)' |
        awk '$2 == "commit" { print $1 }' | sort >"$BATS_TEST_TMPDIR/commits"
    git --git-dir "$g" for-each-ref --format='%(refname)' refs/jj/keep/ |
        sed 's|^refs/jj/keep/||' | sort >"$BATS_TEST_TMPDIR/keeps"
    assert_equal "$(comm -23 "$BATS_TEST_TMPDIR/commits" "$BATS_TEST_TMPDIR/keeps")" ""
    [ "$(wc -l <"$BATS_TEST_TMPDIR/commits")" -ge 5 ]
}

@test "git clone of the bare repo checks out the files byte-exact, with the executable bit and symlinks" {
    make_repo git-clone
    g=$(gitdir git-clone)
    printf 'bin\000ary\377\r\n' >"$BATS_TEST_TMPDIR/bin"
    bin=$(base64 -w0 <"$BATS_TEST_TMPDIR/bin")
    cid=$(new_change git-clone "$ROOT_CHANGE" "[
        $(file_json README 'read me
'),
        $(file_json tools/run.sh '#!/bin/sh
echo run
' 100755),
        $(file_json tools/link 'run.sh' 120000),
        {\"path\":\"data/blob.bin\",\"content\":\"$bin\"}
    ]")
    move_bookmark git-clone main "$cid"

    run git clone -q -b main "$g" "$BATS_TEST_TMPDIR/wt"
    assert_success
    wt=$BATS_TEST_TMPDIR/wt
    assert_equal "$(cat "$wt/README")" "read me"
    printf '#!/bin/sh\necho run\n' | cmp - "$wt/tools/run.sh"
    cmp "$BATS_TEST_TMPDIR/bin" "$wt/data/blob.bin"
    [ -x "$wt/tools/run.sh" ]
    [ ! -x "$wt/README" ]
    [ ! -x "$wt/data/blob.bin" ]
    [ -L "$wt/tools/link" ]
    assert_equal "$(readlink "$wt/tools/link")" run.sh
    run git -C "$wt" ls-files -s
    assert_line --regexp '^100755 [0-9a-f]{40} 0	tools/run.sh$'
    assert_line --regexp '^120000 [0-9a-f]{40} 0	tools/link$'
    assert_line --regexp '^100644 [0-9a-f]{40} 0	README$'
    run git -C "$wt" status --porcelain
    assert_output ""
}

@test "an empty directory made with action mkdir is an empty tree in git ls-tree" {
    make_repo git-mkdir
    g=$(gitdir git-mkdir)
    cid=$(new_change git-mkdir "$ROOT_CHANGE" \
        "[{\"path\":\"empty\",\"action\":\"mkdir\"},{\"path\":\"a/b\",\"action\":\"mkdir\"},$(file_json f f)]")
    commit=$(change_commit git-mkdir "$cid")
    run git --git-dir "$g" ls-tree -r -t "$commit"
    assert_success
    assert_line "040000 tree $EMPTY_TREE	empty"
    assert_line "040000 tree $EMPTY_TREE	a/b"
    assert_line --regexp "^040000 tree [0-9a-f]{40}	a$"
    assert_line --regexp "^100644 blob [0-9a-f]{40}	f$"
    assert_equal "${#lines[@]}" 4
}

@test "bookmarks are refs/heads/<name>: created, moved and deleted with the bookmark" {
    make_repo git-refs
    g=$(gitdir git-refs)
    c1=$(new_change git-refs "$ROOT_CHANGE" "[$(file_json a a)]")
    c2=$(new_change git-refs "$c1" "[$(file_json b b)]")
    jreq POST "/$MESA_ORG/git-refs/bookmarks" "{\"name\":\"feature/x\",\"change_id\":\"$c1\"}"
    expect 201
    assert_equal "$(git --git-dir "$g" rev-parse refs/heads/feature/x)" "$(change_commit git-refs "$c1")"
    assert_equal "$(git --git-dir "$g" for-each-ref --format='%(refname)' refs/heads/ | sort | tr '\n' ' ')" \
        "refs/heads/feature/x refs/heads/main "

    move_bookmark git-refs feature%2Fx "$c2"  # the name URL-encoded, as Mesa's client sends it
    assert_equal "$(git --git-dir "$g" rev-parse refs/heads/feature/x)" "$(change_commit git-refs "$c2")"

    # a PATCH of the change carries the bookmark to the new commit
    jreq PATCH "/$MESA_ORG/git-refs/changes/$c2" "{\"files\":[$(file_json c c)]}"
    expect 200
    assert_equal "$(git --git-dir "$g" rev-parse refs/heads/feature/x)" "$(jq -r .current_commit_oid <<<"$body")"

    api DELETE "/$MESA_ORG/git-refs/bookmarks/feature%2Fx"
    expect 200
    run git --git-dir "$g" rev-parse --verify -q refs/heads/feature/x
    assert_failure
    assert_equal "$(git --git-dir "$g" for-each-ref --format='%(refname)' refs/heads/)" refs/heads/main
}

@test "a merge of bookmarks is a git commit with the target's and the source's commits as parents" {
    make_repo git-merge
    g=$(gitdir git-merge)
    c1=$(new_change git-merge "$ROOT_CHANGE" "[$(file_json a a)]")
    c2=$(new_change git-merge "$ROOT_CHANGE" "[$(file_json b b)]")
    move_bookmark git-merge main "$c1"
    jreq POST "/$MESA_ORG/git-merge/bookmarks" "{\"name\":\"side\",\"change_id\":\"$c2\"}"
    expect 201
    jreq POST "/$MESA_ORG/git-merge/bookmarks/merge" '{"target":"main","source":"side"}'
    expect 200
    assert_equal "$(jq -r .merge_type <<<"$body")" merge_commit
    merge=$(jq -r .commit_oid <<<"$body")
    mcid=$(jq -r .change_id <<<"$body")
    assert_equal "$(git --git-dir "$g" rev-parse refs/heads/main)" "$merge"
    assert_equal "$(git --git-dir "$g" log -1 --format=%P "$merge")" \
        "$(change_commit git-merge "$c1") $(change_commit git-merge "$c2")"
    assert_equal "$(git --git-dir "$g" cat-file -p "$merge" | sed -n 's/^change-id //p')" "$mcid"
    assert_equal "$(git --git-dir "$g" ls-tree --name-only "$merge" | tr '\n' ' ')" "a b "
}

@test "git fsck --strict finds nothing wrong after a mix of writes" {
    make_repo git-fsck
    g=$(gitdir git-fsck)
    c1=$(new_change git-fsck "$ROOT_CHANGE" "[
        $(file_json a.txt a),$(file_json a-b.txt ab),$(file_json a/z.txt az),
        $(file_json 'sp ace/x' x),$(file_json x.sh x 100755),$(file_json l 'a.txt' 120000),
        {\"path\":\"e/m\",\"action\":\"mkdir\"}]")
    jreq PATCH "/$MESA_ORG/git-fsck/changes/$c1" \
        "{\"files\":[{\"path\":\"a.txt\",\"action\":\"delete\"},{\"path\":\"a\",\"action\":\"delete\"},$(file_json a0 z)]}"
    expect 200
    c2=$(new_change git-fsck "$ROOT_CHANGE" "[$(file_json other o)]")
    move_bookmark git-fsck main "$c1"
    jreq POST "/$MESA_ORG/git-fsck/bookmarks" "{\"name\":\"side\",\"change_id\":\"$c2\"}"
    expect 201
    jreq POST "/$MESA_ORG/git-fsck/bookmarks/merge" '{"target":"main","source":"side","delete_source":true}'
    expect 200

    run git --git-dir "$g" fsck --strict --no-dangling
    assert_success
    # nothing but notices (e.g. about HEAD) may be printed
    assert_equal "$(grep -v '^notice:' <<<"$output")" ""
}
