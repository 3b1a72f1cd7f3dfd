#!/usr/bin/env bats
# tests/shim/git.bats - git workflows inside a mount: init, add, commit,
# log and a clean status; branches switched in the work tree; git clone of a
# local repository into the mount and a build there. A .git directory is
# the mount's own business: it stays in the local store, is never pushed,
# and is there again in the next run with the same cache.
# Contract: shared/DESIGN.md §3 (.git stays local), §6.

bats_require_minimum_version 1.5.0
load ../lib/mount
load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

# setup_file, setup, teardown: the shim suites' defaults (tests/lib/mount.bash)

GITC="git -c user.name=T -c user.email=t@example.com -c init.defaultBranch=main"

# server_files REPO: the files (not directories) of the default bookmark's tree
server_files() {
    api GET "/$MESA_ORG/$1/tree"
    expect 200 || return 1
    jq -r '.entries[] | select(.type != "dir") | .path' <<<"$body" | LC_ALL=C sort
}

# c_src DIR: a two-file C program with a Makefile; the binary is ignored
c_src() {
    mkdir -p "$1/src"
    printf 'int two(void);\n' >"$1/src/two.h"
    printf '#include "two.h"\nint two(void) { return 2; }\n' >"$1/src/two.c"
    printf '#include <stdio.h>\n#include "two.h"\nint main(void) { printf("two=%%d\\n", two()); return 0; }\n' >"$1/src/main.c"
    printf 'prog: src/main.c src/two.c src/two.h\n\tcc -Isrc -o $@ src/main.c src/two.c\n' >"$1/Makefile"
    printf 'prog\n' >"$1/.gitignore"
}

@test "git init, add -A, commit and log in the mount; status is clean; .git is never pushed" {
    local d=$T/src
    c_src "$d"
    mkrepo gt-init "$d"
    run -0 --separate-stderr in_repo gt-init "$GITC init -q && git add -A && $GITC commit -qm first && git log --format=%s && git status --porcelain && echo clean && git ls-files"
    assert_output "first
clean
.gitignore
Makefile
src/main.c
src/two.c
src/two.h"
    run -0 server_files gt-init
    assert_output ".gitignore
Makefile
src/main.c
src/two.c
src/two.h"
    # the next run with the same cache has the history; fsck finds nothing wrong
    run -0 --separate-stderr in_repo gt-init "git log --format=%s && git status --porcelain && git fsck --no-progress && echo fsck ok"
    assert_output "first
fsck ok"
    # a fresh cache starts without it (it lived in the local store)
    MOUNT_CACHE=$T/cache2 run -128 --separate-stderr in_repo gt-init "git log"
    [[ "$stderr" == *"not a git repository"* ]]
}

@test "git in the mount: a branch, an edit, a commit; checkout back restores the file on the server" {
    local d=$T/src
    c_src "$d"
    mkrepo gt-branch "$d"
    run -0 --separate-stderr in_repo gt-branch "$GITC init -q && git add -A && $GITC commit -qm base &&
        git checkout -q -b feature && echo '/* feature */' >> src/two.c && $GITC commit -qam feature &&
        git checkout -q main && git log --format=%s --all | sort && git diff --stat main feature | tail -1 && git status --porcelain"
    assert_output "base
feature
 1 file changed, 1 insertion(+)"
    server_is gt-branch src/two.c $'#include "two.h"\nint two(void) { return 2; }\n'
    run -0 --separate-stderr in_repo gt-branch "git checkout -q feature && tail -1 src/two.c && git stash list | wc -l"
    assert_output "/* feature */
0"
    run -0 server_cat gt-branch src/two.c
    assert_line --index 2 "/* feature */"
}

@test "git clone of a local repository into the mount, then make there" {
    local up=$T/upstream
    c_src "$up"
    (cd "$up" && $GITC init -q && git add -A && $GITC commit -qm upstream)
    mkrepo gt-clone
    run -0 --separate-stderr in_repo gt-clone "git clone -q $up work && git clone -q file://$up work2 && cd work && make -s && ./prog && git status --porcelain && git log --format=%s && cd ../work2 && git rev-parse HEAD"
    assert_line --index 0 "two=2"
    assert_line --index 1 "upstream"
    assert_line --index 2 "$(git -C "$up" rev-parse HEAD)"
    # sources are on the server, the clones' .git directories and the binary are not
    run -0 server_files gt-clone
    assert_output "work/.gitignore
work/Makefile
work/src/main.c
work/src/two.c
work/src/two.h
work2/.gitignore
work2/Makefile
work2/src/main.c
work2/src/two.c
work2/src/two.h"
    # the clone is whole in the next run: fsck, and make has nothing to do
    run -0 --separate-stderr in_repo gt-clone "cd work && git fsck --no-progress && make && ./prog"
    assert_output "make: 'prog' is up to date.
two=2"
}
