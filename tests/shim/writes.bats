#!/usr/bin/env bats
# tests/shim/writes.bats - conformance: unmodified programs write into a
# mounted repo, and what they leave behind reaches the server when mesarun
# returns: > and >>, cp/cp -r, mkdir -p, rm -rf, mv (within a repo, and
# across two repos: EXDEV for rename(2), a copy for mv), ln -s (verbatim
# targets), chmod +x, touch/utimensat with sub-second times, truncate,
# sed -i, write-to-temp-then-rename, tar x, hard links (EPERM), fsync,
# ignored files (kept local, not pushed), errno of failing mutations.
# Contract: shared/DESIGN.md §3-§6, docs/MOUNT.md. After each mesarun the
# server is checked through the API (server_is/server_has/server_entry).

bats_require_minimum_version 1.5.0
load ../lib/mount
load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

# setup_file, setup, teardown: the shim suites' defaults (tests/lib/mount.bash)

# ------------------------------------------------------------ helpers

# src_repo NAME: import the standard fixture as repo NAME; echo its dir
#   a.txt "hello\n"; run.sh (0755); sub/b.txt "bee\n"; sub/deep/c.txt "sea\n"
src_repo() {
    local d=$T/src-$1
    mkdir -p "$d/sub/deep"
    printf 'hello\n' >"$d/a.txt"
    printf '#!/bin/sh\necho run\n' >"$d/run.sh"
    chmod 0755 "$d/run.sh"
    printf 'bee\n' >"$d/sub/b.txt"
    printf 'sea\n' >"$d/sub/deep/c.txt"
    mkrepo "$1" "$d"
    echo "$d"
}

# ------------------------------------------------------------ > and >>

@test "echo > f creates a file on the server; > on an existing file replaces it" {
    src_repo wr-echo >/dev/null
    run -0 --separate-stderr in_repo wr-echo 'echo hello > new.txt && echo changed > a.txt && cat new.txt a.txt'
    assert_output "hello
changed"
    [ -z "$stderr" ]
    server_is wr-echo new.txt $'hello\n'
    server_is wr-echo a.txt $'changed\n'
    [ "$(server_entry wr-echo new.txt)" = "file 100644" ]
    # nothing else appeared
    run -0 server_paths wr-echo
    assert_output "a.txt
new.txt
run.sh
sub
sub/b.txt
sub/deep
sub/deep/c.txt"
}

@test ">> appends, from several processes in turn, to old and new files" {
    src_repo wr-append >/dev/null
    run -0 --separate-stderr in_repo wr-append 'echo one >> a.txt; sh -c "echo two >> a.txt"; printf three >> a.txt; echo x >> fresh.txt; echo y >> fresh.txt; cat a.txt'
    assert_output "hello
one
two
three"
    server_is wr-append a.txt $'hello\none\ntwo\nthree'
    server_is wr-append fresh.txt $'x\ny\n'
}

@test "a file written and closed again and again while pushes are in flight ends up whole on the server" {
    mkrepo wr-rewrite
    run -0 --separate-stderr in_repo wr-rewrite 'i=1; while [ $i -le 30 ]; do echo "line $i" >> log.txt; echo "v$i" > last.txt; [ $((i % 5)) -eq 0 ] && sleep 0.2; i=$((i + 1)); done; wc -l < log.txt'
    assert_output 30
    server_is wr-rewrite log.txt "$(seq -f 'line %g' 1 30)"$'\n'
    server_is wr-rewrite last.txt $'v30\n'
}

@test "a write is visible at once to the other processes of the mount" {
    src_repo wr-see >/dev/null
    run -0 --separate-stderr in_repo wr-see "echo one > f; sh -c 'cat f'; python3 -c 'print(open(\"f\").read(), end=\"\")'; echo two >> f; sh -c 'cat f'; rm f; sh -c 'test -e f' || echo gone"
    assert_output "one
one
one
two
gone"
    run -1 server_has wr-see f
}

# ------------------------------------------------------------ cp, mkdir, rm, mv

@test "cp and cp -r into the mount copy files and trees to the server" {
    src_repo wr-cp >/dev/null
    local in=$T/in
    mkdir -p "$in/tree/sub"
    head -c 300000 /dev/urandom >"$in/bin.dat"
    printf 'ex\n' >"$in/tree/x.txt"
    printf '#!/bin/sh\necho y\n' >"$in/tree/sub/y.sh"
    chmod 0755 "$in/tree/sub/y.sh"
    ln -s x.txt "$in/tree/link"
    run -0 --separate-stderr in_repo wr-cp "cp $in/bin.dat . && cp -r $in/tree dest && cp $in/tree/x.txt sub/ && diff -r --no-dereference $in/tree dest && cmp bin.dat $in/bin.dat && echo same"
    assert_output same
    [ -z "$stderr" ]
    server_cat wr-cp bin.dat >"$T/bin.got"
    cmp "$in/bin.dat" "$T/bin.got"
    server_is wr-cp dest/x.txt $'ex\n'
    server_is wr-cp sub/x.txt $'ex\n'
    [ "$(server_entry wr-cp dest/sub/y.sh)" = "file 100755" ]
    [ "$(server_entry wr-cp dest/link)" = "symlink 120000" ]
    server_is wr-cp dest/link x.txt
    run -0 mesa ls wr-cp:dest
    assert_output "link
sub/
x.txt"
}

@test "mkdir -p creates nested directories, kept on the server as empty trees" {
    src_repo wr-mkdir >/dev/null
    run -0 --separate-stderr in_repo wr-mkdir 'mkdir -p x/y/z && test -d x/y/z && mkdir -p x/y/z sub/deep/n && ls -d x/y/z'
    assert_output "x/y/z"
    [ "$(server_entry wr-mkdir x)" = "dir 040000" ]
    [ "$(server_entry wr-mkdir x/y/z)" = "dir 040000" ]
    [ "$(server_entry wr-mkdir sub/deep/n)" = "dir 040000" ]
    run -1 --separate-stderr in_repo wr-mkdir 'mkdir x'
    [[ "$stderr" == *"cannot create directory 'x': File exists"* ]]
}

@test "rm -rf of a tree in the mount removes it on the server" {
    src_repo wr-rm >/dev/null
    run -0 --separate-stderr in_repo wr-rm 'rm -rf sub && test ! -e sub && rm a.txt && rm -rf nothing-here && ls'
    assert_output "run.sh"
    run -1 server_has wr-rm sub/b.txt
    run -1 server_has wr-rm sub/deep/c.txt
    run -1 server_has wr-rm a.txt
    run -0 server_paths wr-rm
    assert_output "run.sh"
    run -0 mesa ls wr-rm:
    assert_output "run.sh"
}

@test "rm -r of a tree made in the same run leaves nothing on the server" {
    src_repo wr-rmnew >/dev/null
    run -0 --separate-stderr in_repo wr-rmnew 'mkdir -p t/u/v && echo 1 > t/u/v/f && echo 2 > t/g && rm -r t && ls'
    assert_output "a.txt
run.sh
sub"
    run -1 server_has wr-rmnew t/g
    run -0 server_paths wr-rmnew
    refute_output --partial "t/"
}

@test "unlink of an open file: the reader keeps its data, the path is gone" {
    src_repo wr-unlinkopen >/dev/null
    run -0 --separate-stderr in_repo wr-unlinkopen 'exec 3<a.txt; rm a.txt; test ! -e a.txt && cat <&3'
    assert_output "hello"
    run -1 server_has wr-unlinkopen a.txt
}

@test "mv within a repo renames files and directories on the server" {
    src_repo wr-mv >/dev/null
    run -0 --separate-stderr in_repo wr-mv 'mv a.txt moved.txt && mv sub sub2 && mkdir tools && mv run.sh tools/ && cat moved.txt sub2/deep/c.txt && ls'
    assert_output "hello
sea
moved.txt
sub2
tools"
    server_is wr-mv moved.txt $'hello\n'
    server_is wr-mv sub2/b.txt $'bee\n'
    server_is wr-mv sub2/deep/c.txt $'sea\n'
    [ "$(server_entry wr-mv tools/run.sh)" = "file 100755" ]
    run -0 server_paths wr-mv
    assert_output "moved.txt
sub2
sub2/b.txt
sub2/deep
sub2/deep/c.txt
tools
tools/run.sh"
}

@test "mv onto an existing file replaces it" {
    src_repo wr-mvover >/dev/null
    run -0 --separate-stderr in_repo wr-mvover 'echo new > n.txt && mv -f n.txt a.txt && cat a.txt && test ! -e n.txt'
    assert_output "new"
    server_is wr-mvover a.txt $'new\n'
    run -1 server_has wr-mvover n.txt
}

@test "mv across two mounted repos works by copying; rename(2) there fails with EXDEV" {
    local d=$T/xa
    mkdir -p "$d/dir"
    printf 'ex\n' >"$d/x.txt"
    printf 'why\n' >"$d/y.txt"
    printf 'dee\n' >"$d/dir/f"
    mkrepo wr-xa "$d"
    mkrepo wr-xb
    run -0 --separate-stderr mr --repo wr-xa --repo wr-xb -- sh -c \
        "pwd; mv wr-xa/x.txt wr-xb/x.txt; mv wr-xa/dir wr-xb/dir; $P rename wr-xa/y.txt wr-xb/y.txt; ls wr-xa; cat wr-xb/x.txt"
    assert_output "/mesa/acme
EXDEV
y.txt
ex"
    server_is wr-xb x.txt $'ex\n'
    server_is wr-xb dir/f $'dee\n'
    run -1 server_has wr-xa x.txt
    run -1 server_has wr-xa dir/f
    server_is wr-xa y.txt $'why\n'
    run -1 server_has wr-xb y.txt
}

# ------------------------------------------------------------ symlinks, hard links

@test "ln -s stores targets verbatim: readlink gives them back, the server has them" {
    src_repo wr-ln >/dev/null
    run -0 --separate-stderr in_repo wr-ln "ln -s a.txt good && ln -s ../outside/../x dangling && ln -s /etc/hostname abs && ln -s 'sp ace/..//x' odd && ln -s ../a.txt sub/up && readlink good dangling abs odd sub/up && cat good sub/up"
    assert_output "a.txt
../outside/../x
/etc/hostname
sp ace/..//x
../a.txt
hello
hello"
    [ "$(server_entry wr-ln good)" = "symlink 120000" ]
    server_is wr-ln good a.txt
    server_is wr-ln dangling ../outside/../x
    server_is wr-ln abs /etc/hostname
    server_is wr-ln odd 'sp ace/..//x'
    server_is wr-ln sub/up ../a.txt
    # an existing name: EEXIST
    run -1 --separate-stderr in_repo wr-ln 'ln -s x good'
    [[ "$stderr" == *"File exists"* ]]
    server_is wr-ln good a.txt
}

@test "ln a b (a hard link) fails with EPERM and creates nothing" {
    src_repo wr-hard >/dev/null
    run -1 --separate-stderr in_repo wr-hard 'ln a.txt b.txt'
    [[ "$stderr" == *"Operation not permitted"* ]]
    run -1 --separate-stderr in_repo wr-hard "$P link a.txt b.txt; test -e b.txt"
    assert_output "EPERM"
    run -1 server_has wr-hard b.txt
    server_is wr-hard a.txt $'hello\n'
}

# ------------------------------------------------------------ metadata writes

@test "chmod +x and -x set the server's mode (100755 / 100644)" {
    src_repo wr-chmod >/dev/null
    run -0 --separate-stderr in_repo wr-chmod 'chmod +x a.txt && chmod -x run.sh && echo n > new.sh && chmod 755 new.sh && stat -c "%n %a" a.txt run.sh new.sh && test -x a.txt && test ! -x run.sh; test -x run.sh || echo "run.sh not executable"'
    assert_output "a.txt 755
run.sh 644
new.sh 755
run.sh not executable"
    [ "$(server_entry wr-chmod a.txt)" = "file 100755" ]
    [ "$(server_entry wr-chmod run.sh)" = "file 100644" ]
    [ "$(server_entry wr-chmod new.sh)" = "file 100755" ]
    server_is wr-chmod a.txt $'hello\n'
}

@test "touch -d with milliseconds: stat shows them, the server keeps them, a new mount sees them" {
    src_repo wr-touch >/dev/null
    run -0 --separate-stderr in_repo wr-touch "touch -d '2020-01-02 03:04:05.123' a.txt && stat -c %y a.txt && touch empty.txt && stat -c %s empty.txt && $P utimensat sub/b.txt 1600000000.5 && stat -c %y sub/b.txt"
    assert_output "2020-01-02 03:04:05.123000000 +0000
0
ok
2020-09-13 12:26:40.500000000 +0000"
    [ "$(server_mtime_ns wr-touch a.txt)" = 1577934245123000000 ]
    [ "$(server_mtime_ns wr-touch sub/b.txt)" = 1600000000500000000 ]
    server_is wr-touch empty.txt ''
    server_is wr-touch a.txt $'hello\n'
    # a new mount with a cold cache gets the times from the server
    MOUNT_CACHE=$T/cache2 run -0 --separate-stderr in_repo wr-touch 'stat -c %y a.txt sub/b.txt'
    assert_output "2020-01-02 03:04:05.123000000 +0000
2020-09-13 12:26:40.500000000 +0000"
}

@test "truncate shortens and extends files; the mode is kept" {
    src_repo wr-trunc >/dev/null
    run -0 --separate-stderr in_repo wr-trunc "truncate -s 3 a.txt && truncate -s 4 z.bin && $P truncate sub/b.txt 1 && truncate -s 0 run.sh && wc -c <a.txt && cat a.txt && echo"
    assert_output "ok
3
hel"
    server_is wr-trunc a.txt hel
    # (bash strings cannot hold NUL: compare with a file)
    printf '\0\0\0\0' >"$T/zeros"
    server_cat wr-trunc z.bin | cmp - "$T/zeros"
    server_is wr-trunc sub/b.txt b
    server_is wr-trunc run.sh ''
    [ "$(server_entry wr-trunc run.sh)" = "file 100755" ]
}

# ------------------------------------------------------------ rename-over edits

@test "sed -i edits in place (temp file renamed over it), keeping the mode" {
    src_repo wr-sed >/dev/null
    run -0 --separate-stderr in_repo wr-sed 'sed -i s/hello/bye/ a.txt && sed -i s/run/ran/ run.sh && cat a.txt && ls -a'
    assert_output "bye
.
..
a.txt
run.sh
sub"
    server_is wr-sed a.txt $'bye\n'
    server_is wr-sed run.sh $'#!/bin/sh\necho ran\n'
    [ "$(server_entry wr-sed run.sh)" = "file 100755" ]
    # sed's temporary files did not reach the server
    run -0 server_paths wr-sed
    assert_output "a.txt
run.sh
sub
sub/b.txt
sub/deep
sub/deep/c.txt"
}

@test "editors: write f.tmp then rename it over f; backup-then-write" {
    src_repo wr-editor >/dev/null
    run -0 --separate-stderr in_repo wr-editor "python3 -c '
import os
with open(\"a.txt.tmp\", \"w\") as f:
    f.write(\"new\\n\")
os.rename(\"a.txt.tmp\", \"a.txt\")
print(open(\"a.txt\").read(), end=\"\")
# vim-like: rename the original to a backup, write anew, drop the backup
os.rename(\"sub/b.txt\", \"sub/b.txt~\")
with open(\"sub/b.txt\", \"w\") as f:
    f.write(\"bee2\\n\")
os.unlink(\"sub/b.txt~\")
print(sorted(os.listdir(\"sub\")))
'"
    assert_output "new
['b.txt', 'deep']"
    server_is wr-editor a.txt $'new\n'
    server_is wr-editor sub/b.txt $'bee2\n'
    run -1 server_has wr-editor a.txt.tmp
    run -1 server_has wr-editor 'sub/b.txt~'
}

# ------------------------------------------------------------ tar x

@test "tar x into the mount creates files, dirs, symlinks, modes and mtimes on the server" {
    mkrepo wr-tarx
    local s=$T/tsrc
    mkdir -p "$s/t/d/e" "$s/t/emptyd"
    printf 'ex\n' >"$s/t/x.txt"
    printf '#!/bin/sh\necho exe\n' >"$s/t/exe"
    chmod 0755 "$s/t/exe"
    printf 'deep\n' >"$s/t/d/e/f.txt"
    ln -s x.txt "$s/t/ln"
    touch -h -d '2021-05-06 07:08:09' "$s/t/x.txt" "$s/t/exe" "$s/t/d/e/f.txt" "$s/t/ln"
    tar cf "$T/in.tar" -C "$s" t
    run -0 --separate-stderr in_repo wr-tarx "tar xf $T/in.tar && diff -r --no-dereference $s/t t && stat -c '%n %y' t/x.txt && ./t/exe"
    assert_output "t/x.txt 2021-05-06 07:08:09.000000000 +0000
exe"
    [ -z "$stderr" ]
    [ "$(server_entry wr-tarx t/x.txt)" = "file 100644" ]
    [ "$(server_entry wr-tarx t/exe)" = "file 100755" ]
    [ "$(server_entry wr-tarx t/ln)" = "symlink 120000" ]
    [ "$(server_entry wr-tarx t/emptyd)" = "dir 040000" ]
    server_is wr-tarx t/d/e/f.txt $'deep\n'
    server_is wr-tarx t/ln x.txt
    [ "$(server_mtime_ns wr-tarx t/x.txt)" = 1620284889000000000 ]
}

# ------------------------------------------------------------ durability

@test "fsync returns once the file is on the server (while the command still runs)" {
    src_repo wr-fsync >/dev/null
    run -0 --separate-stderr in_repo wr-fsync "python3 -c '
import os
fd = os.open(\"synced.txt\", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b\"durable\\n\")
os.fsync(fd)
print(\"synced\")
' && \"\$MESA\" cat wr-fsync:synced.txt && echo later > g.txt && $P fsync g.txt && \"\$MESA\" cat wr-fsync:g.txt"
    assert_output "synced
durable
ok
later"
    server_is wr-fsync synced.txt $'durable\n'
}

# ------------------------------------------------------------ ignored files

@test "ignored files (.gitignore) are not pushed but are there in the next run with the same cache" {
    local d=$T/ig
    mkdir -p "$d"
    printf '*.o\nbuild/\n' >"$d/.gitignore"
    printf 'int x;\n' >"$d/main.c"
    mkrepo wr-ignore "$d"
    run -0 --separate-stderr in_repo wr-ignore 'echo obj > main.o && mkdir -p build && echo out > build/out.txt && echo src > new.c && ls -a && cat main.o build/out.txt'
    assert_output ".
..
.gitignore
build
main.c
main.o
new.c
obj
out"
    server_is wr-ignore new.c $'src\n'
    run -1 server_has wr-ignore main.o
    run -1 server_has wr-ignore build/out.txt
    run -1 server_has wr-ignore build
    # the same cache dir: the ignored files are still there
    run -0 --separate-stderr in_repo wr-ignore 'cat main.o build/out.txt && find . -name "*.o"'
    assert_output "obj
out
./main.o"
    # another cache dir: they are not
    MOUNT_CACHE=$T/other-cache run -2 --separate-stderr in_repo wr-ignore 'ls main.o'
    [[ "$stderr" == *"No such file or directory"* ]]
}

@test "--push-ignored pushes ignored files too" {
    local d=$T/igp
    mkdir -p "$d"
    printf '*.o\n' >"$d/.gitignore"
    mkrepo wr-pushig "$d"
    run -0 --separate-stderr mr --repo wr-pushig --push-ignored -- sh -c 'echo obj > pushed.o'
    server_is wr-pushig pushed.o $'obj\n'
}

# ------------------------------------------------------------ empty repo, errors

@test "the first write to a new empty repo creates a change and moves main to it" {
    mkrepo wr-empty
    [ "$(bookmark_change wr-empty main)" = "$ROOT_CHANGE" ]
    run -0 --separate-stderr in_repo wr-empty 'ls -A; echo first > f.txt; cat f.txt'
    assert_output "first"
    server_is wr-empty f.txt $'first\n'
    local c
    c=$(bookmark_change wr-empty main)
    [ -n "$c" ]
    [ "$c" != "$ROOT_CHANGE" ]
}

@test "failing mutations return the errno of a kernel filesystem and change nothing" {
    src_repo wr-errno >/dev/null
    local before
    before=$(server_paths wr-errno)
    run -0 --separate-stderr in_repo wr-errno "mkdir d2 && touch d2/x && $P \
mkdir a.txt -- mkdir nope/x -- rmdir sub -- rmdir a.txt -- unlink sub -- unlink nope \
-- open a.txt w,creat,excl -- open sub w -- open a.txt/x w,creat -- open nope/x w,creat \
-- rename sub a.txt -- rename a.txt sub -- rename nope x -- rename sub d2 \
-- symlink x a.txt -- mkfifo fifo -- link a.txt hard -- chmod nope 755 -- truncate nope 1 \
-- truncate sub 0 -- rmdir d2/x; rm -r d2"
    assert_output "EEXIST
ENOENT
ENOTEMPTY
ENOTDIR
EISDIR
ENOENT
EEXIST
EISDIR
ENOTDIR
ENOENT
ENOTDIR
EISDIR
ENOENT
ENOTEMPTY
EEXIST
EPERM
EPERM
ENOENT
ENOENT
EISDIR
ENOTDIR"
    run -0 server_paths wr-errno
    assert_output "$before"
    server_is wr-errno a.txt $'hello\n'
}
