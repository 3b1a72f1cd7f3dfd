#!/usr/bin/env bats
# tests/shim/pinning.bats - conformance: what a mount shows and where its
# writes go. --bookmark B and --change ID mount those states (two bookmarks
# with different contents), writes land in the mounted change; --read-only
# fails every mutating call with EROFS and writes nothing (change count,
# tree and commit unchanged); a read-only repo beside a writable one in one
# mount (cwd /mesa/acme).
# Contract: shared/DESIGN.md §3, mesarun --help.

bats_require_minimum_version 1.5.0
load ../lib/mount
load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

# setup_file, setup, teardown: the shim suites' defaults (tests/lib/mount.bash)

# v1_repo NAME: import a.txt "v1\n", common.txt, empty/ as repo NAME
v1_repo() {
    local d=$T/src-$1
    mkdir -p "$d/empty" "$d/sub"
    printf 'v1\n' >"$d/a.txt"
    printf 'common\n' >"$d/common.txt"
    printf 'bee\n' >"$d/sub/b.txt"
    mkrepo "$1" "$d"
}

# ------------------------------------------------------------ --bookmark

@test "--bookmark B mounts that bookmark's state; its writes go to B's change" {
    v1_repo pn-bm
    mesa bookmark create pn-bm b2 >/dev/null
    mesa change new pn-bm --bookmark b2 >/dev/null
    printf 'v2\n' | mesa put --bookmark b2 pn-bm:a.txt >/dev/null
    [ "$(mesa cat --bookmark b2 pn-bm:a.txt)" = v2 ]
    [ "$(mesa cat pn-bm:a.txt)" = v1 ]

    run -0 --separate-stderr mr --repo pn-bm --bookmark b2 -- cat a.txt common.txt
    assert_output "v2
common"
    run -0 --separate-stderr mr --repo pn-bm -- cat a.txt
    assert_output "v1"
    run -0 --separate-stderr mr --repo pn-bm --bookmark main -- cat a.txt
    assert_output "v1"

    local before_main
    before_main=$(server_commit pn-bm)
    run -0 --separate-stderr mr --repo pn-bm --bookmark b2 -- sh -c 'echo w > new.txt && echo v3 > a.txt'
    [ "$(mesa cat --bookmark b2 pn-bm:new.txt)" = w ]
    [ "$(mesa cat --bookmark b2 pn-bm:a.txt)" = v3 ]
    # main did not move and has neither write
    [ "$(server_commit pn-bm)" = "$before_main" ]
    run -1 server_has pn-bm new.txt
    server_is pn-bm a.txt $'v1\n'
}

# ------------------------------------------------------------ --change

@test "--change ID mounts that change; the root change is empty" {
    v1_repo pn-ch
    local c1 c2
    c1=$(bookmark_change pn-ch main)
    mesa change new pn-ch >/dev/null
    printf 'v2\n' | mesa put pn-ch:a.txt >/dev/null
    c2=$(bookmark_change pn-ch main)
    [ "$c1" != "$c2" ]

    run -0 --separate-stderr mr --repo pn-ch --change "$c1" -- cat a.txt
    assert_output "v1"
    run -0 --separate-stderr mr --repo pn-ch --change "$c2" -- cat a.txt
    assert_output "v2"
    run -0 --separate-stderr mr --repo pn-ch --change "$ROOT_CHANGE" -- sh -c 'pwd && ls -A && echo end'
    assert_output "/mesa/acme/pn-ch
end"
}

@test "writes under --change ID land in that change" {
    v1_repo pn-chw
    local c1
    c1=$(bookmark_change pn-chw main)
    mesa change new pn-chw >/dev/null
    local main_before
    main_before=$(bookmark_change pn-chw main)
    run -0 --separate-stderr mr --repo pn-chw --change "$c1" -- sh -c 'echo w > w.txt'
    [ "$(mesa cat --change "$c1" pn-chw:w.txt)" = w ]
    # the bookmark still names the change it named
    [ "$(bookmark_change pn-chw main)" = "$main_before" ]
}

@test "--bookmark and --change together, or a missing bookmark, are refused" {
    v1_repo pn-bad
    run -2 --separate-stderr mr --repo pn-bad --bookmark main --change "$ROOT_CHANGE" -- true
    [ "${#stderr_lines[@]}" -ge 1 ]
    # a bookmark that does not exist: a one-line error, the command never
    # runs (2, a bad option, or 1, the mount cannot be set up)
    run --separate-stderr mr --repo pn-bad --bookmark no-such-bookmark -- echo never
    [ "$status" -eq 1 ] || [ "$status" -eq 2 ]
    [ -z "$output" ]
    [ "${#stderr_lines[@]}" -eq 1 ]
    [[ "$stderr" == *no-such-bookmark* ]]
}

# ------------------------------------------------------------ --read-only

@test "--read-only: every mutating call fails with EROFS; reads work" {
    v1_repo pn-ro
    run -1 --separate-stderr mr --repo pn-ro --read-only -- "$P" \
        open a.txt w -- open new.txt w,creat -- open a.txt rw -- open a.txt w,trunc \
        -- creat new2.txt -- mkdir d -- rmdir empty -- unlink a.txt -- rename a.txt b.txt \
        -- rename sub sub2 -- symlink a.txt s -- chmod a.txt 755 -- truncate a.txt 0 \
        -- utimensat a.txt now -- utimensat a.txt 1600000000.5 -- access a.txt w \
        -- open a.txt r -- stat a.txt -- access a.txt r -- opendir sub
    assert_output "EROFS
EROFS
EROFS
EROFS
EROFS
EROFS
EROFS
EROFS
EROFS
EROFS
EROFS
EROFS
EROFS
EROFS
EROFS
EROFS
ok
ok
ok
ok"
}

@test "--read-only: shell redirections, touch, rm, mkdir, mv fail; the server is unchanged" {
    v1_repo pn-ro2
    local count tree commit
    count=$(server_change_count pn-ro2)
    tree=$(repo_tree pn-ro2)
    commit=$(server_commit pn-ro2)
    run -1 --separate-stderr mr --repo pn-ro2 --read-only -- sh -c '
        cat a.txt
        (echo x > a.txt) 2>/dev/null || echo "redirect failed"
        (echo x >> new.txt) 2>/dev/null || echo "append failed"
        touch a.txt 2>/dev/null || echo "touch failed"
        rm a.txt 2>/dev/null || echo "rm failed"
        rm -r sub 2>/dev/null || echo "rm -r failed"
        mkdir -p x/y 2>/dev/null || echo "mkdir failed"
        mv a.txt b.txt 2>/dev/null || echo "mv failed"
        chmod +x a.txt 2>/dev/null || echo "chmod failed"
        ln -s a.txt s 2>/dev/null || echo "ln -s failed"
        test -w a.txt || echo "not writable"
        cat a.txt sub/b.txt
        touch new.txt'
    assert_output "v1
redirect failed
append failed
touch failed
rm failed
rm -r failed
mkdir failed
mv failed
chmod failed
ln -s failed
not writable
v1
bee"
    [[ "$stderr" == *"touch: cannot touch 'new.txt': Read-only file system"* ]]
    # nothing reached the server
    [ "$(server_change_count pn-ro2)" = "$count" ]
    [ "$(repo_tree pn-ro2)" = "$tree" ]
    [ "$(server_commit pn-ro2)" = "$commit" ]
}

# ------------------------------------------------------------ two repos

# two_repos RO RW: RO has x.txt "ex\n"; RW has keep.txt
two_repos() {
    mkdir -p "$T/$1" "$T/$2"
    printf 'ex\n' >"$T/$1/x.txt"
    printf 'keep\n' >"$T/$2/keep.txt"
    mkrepo "$1" "$T/$1"
    mkrepo "$2" "$T/$2"
}

@test "a read-only repo beside a writable one in one mount: copy from one to the other" {
    two_repos pn-a pn-b
    local count_a tree_a
    count_a=$(server_change_count pn-a)
    tree_a=$(repo_tree pn-a)
    run -0 --separate-stderr mr --repo pn-a --read-only --repo pn-b -- sh -c \
        "pwd && ls && cp pn-a/x.txt pn-b/y.txt && cat pn-b/y.txt && $P open pn-a/z w,creat -- open pn-b/z w,creat; true"
    assert_output "/mesa/acme
pn-a
pn-b
ex
EROFS
ok"
    server_is pn-b y.txt $'ex\n'
    server_is pn-b z ''
    server_is pn-b keep.txt $'keep\n'
    [ "$(server_change_count pn-a)" = "$count_a" ]
    [ "$(repo_tree pn-a)" = "$tree_a" ]
}

@test "two repos with --cwd in the writable one: cp /mesa/acme/ro/x y (.. stays in the repo)" {
    two_repos pn-c pn-d
    # ".." never climbs above a repo root (the client issue's path rule), so
    # the other repo is reached by its absolute path
    run -0 --separate-stderr mr --repo pn-c --read-only --repo pn-d --cwd /mesa/acme/pn-d -- sh -c \
        'pwd && cp /mesa/acme/pn-c/x.txt y.txt && cat y.txt && ! cat ../pn-c/x.txt 2>/dev/null'
    assert_output "/mesa/acme/pn-d
ex"
    server_is pn-d y.txt $'ex\n'
    run -1 server_has pn-c y.txt
}

@test "--read-only applies to the --repo it follows (the second one here)" {
    two_repos pn-e pn-f
    run -1 --separate-stderr mr --repo pn-e --repo pn-f --read-only -- "$P" \
        write pn-e/w.txt w -- write pn-f/w.txt w
    assert_output "ok
EROFS"
    server_is pn-e w.txt w
    run -1 server_has pn-f w.txt
}
