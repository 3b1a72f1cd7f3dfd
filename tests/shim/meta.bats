#!/usr/bin/env bats
# tests/shim/meta.bats - conformance: metadata calls on the mount answer
# as a kernel filesystem would: the stat family (statx through stat(1) and
# ls -l, the legacy __xstat through GNU make), access, readlink, realpath,
# opendir/readdir/fdopendir (ls, find, python, rm -r), getcwd and cd inside
# the mount (no placeholder path leaking), st_ino stable per path and
# distinct for equal contents, directory st_nlink = 2 + subdirectories, and
# fstat of a descriptor equal to stat of its path.
# Contract: shared/DESIGN.md §3 (identity, timestamps), §5, §6.

bats_require_minimum_version 1.5.0
load ../lib/mount
load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

# setup_file, setup, teardown: the shim suites' defaults (tests/lib/mount.bash)

# src_repo NAME: import the fixture as repo NAME; echo its dir
#   a.txt "hello\n" (6 bytes); run.sh 0755 (19 bytes); sub/b.txt;
#   sub/deep/c.txt; empty/; link -> a.txt; dirlink -> sub; same1, same2
#   with equal contents
src_repo() {
    local d=$T/src-$1
    mkdir -p "$d/sub/deep" "$d/empty"
    printf 'hello\n' >"$d/a.txt"
    printf '#!/bin/sh\necho run\n' >"$d/run.sh"
    chmod 0755 "$d/run.sh"
    printf 'bee\n' >"$d/sub/b.txt"
    printf 'sea\n' >"$d/sub/deep/c.txt"
    ln -s a.txt "$d/link"
    ln -s sub "$d/dirlink"
    printf 'same\n' >"$d/same1"
    printf 'same\n' >"$d/same2"
    mkrepo "$1" "$d"
    echo "$d"
}

# ------------------------------------------------------------ stat family

@test "stat (statx) reports type, size, permissions and owner" {
    src_repo mt-stat >/dev/null
    local u g
    u=$(id -u)
    g=$(id -g)
    run -0 --separate-stderr in_repo mt-stat "stat -c '%n|%F|%s|%a|%u|%g|%h' a.txt run.sh link && stat -c '%n|%F|%a|%u' sub empty && stat -L -c '%n|%F|%s' link dirlink"
    assert_output "a.txt|regular file|6|644|$u|$g|1
run.sh|regular file|19|755|$u|$g|1
link|symbolic link|5|777|$u|$g|1
sub|directory|755|$u
empty|directory|755|$u
link|regular file|6
dirlink|directory|4096"
}

@test "stat's mtime is the server's; the prefix and the org are directories" {
    src_repo mt-mtime >/dev/null
    local ns
    ns=$(server_mtime_ns mt-mtime sub/b.txt)
    run -0 --separate-stderr in_repo mt-mtime 'stat -c %Y sub/b.txt && stat -c "%n %F" /mesa /mesa/acme /mesa/acme/mt-mtime'
    assert_output "$((ns / 1000000000))
/mesa directory
/mesa/acme directory
/mesa/acme/mt-mtime directory"
}

@test "ls -l (statx) shows mode, links, owner, size, mtime and link targets" {
    src_repo mt-lsl >/dev/null
    local u g s1 s2
    u=$(id -u)
    g=$(id -g)
    s1=$(($(server_mtime_ns mt-lsl a.txt) / 1000000000))
    s2=$(($(server_mtime_ns mt-lsl run.sh) / 1000000000))
    run -0 --separate-stderr in_repo mt-lsl 'ls -ln --time-style=+%s a.txt run.sh link | tr -s " "'
    assert_output "-rw-r--r-- 1 $u $g 6 $s1 a.txt
lrwxrwxrwx 1 $u $g 5 $(($(server_mtime_ns mt-lsl link) / 1000000000)) link -> a.txt
-rwxr-xr-x 1 $u $g 19 $s2 run.sh"
}

@test "GNU make (legacy __xstat) rebuilds a target older than its prerequisite only" {
    local d=$T/mk
    mkdir -p "$d"
    printf 'out.txt: in.txt\n\tcp in.txt out.txt\n' >"$d/Makefile"
    printf 'in\n' >"$d/in.txt"
    printf 'old\n' >"$d/out.txt"
    mkrepo mt-make "$d"
    run -0 --separate-stderr in_repo mt-make "touch -d 2020-01-01 out.txt && touch -d 2021-01-01 in.txt && make && make && touch -d 2019-01-01 in.txt && make && sleep 0.05 && touch in.txt && make && cat out.txt"
    assert_output "cp in.txt out.txt
make: 'out.txt' is up to date.
make: 'out.txt' is up to date.
cp in.txt out.txt
in"
    # the mtimes were pushed: a new mount (cold cache) agrees out.txt is newer
    MOUNT_CACHE=$T/cache2 run -0 --separate-stderr in_repo mt-make 'make'
    assert_output "make: 'out.txt' is up to date."
    MOUNT_CACHE=$T/cache2 run -0 --separate-stderr in_repo mt-make 'touch in.txt && make'
    assert_output "cp in.txt out.txt"
}

@test "access: test -r/-w/-x/-e/-d/-L and access(2) errno" {
    src_repo mt-access >/dev/null
    run -0 --separate-stderr in_repo mt-access 'test -r a.txt && echo r; test -w a.txt && echo w; test -x run.sh && echo x; test -x a.txt || echo not-x; test -e nope || echo not-e; test -d sub && echo d; test -L link && echo L; test -h dirlink && test -d dirlink && echo dirlink; test -f link && echo f'
    assert_output "r
w
x
not-x
not-e
d
L
dirlink
f"
    run -1 --separate-stderr in_repo mt-access "$P access a.txt r -- access a.txt rw -- access a.txt x -- access run.sh x -- access nope f -- access sub x -- access a.txt/x f"
    assert_output "ok
ok
EACCES
ok
ENOENT
ok
ENOTDIR"
}

@test "readlink and realpath resolve symlinks inside the mount" {
    src_repo mt-real >/dev/null
    run -0 --separate-stderr in_repo mt-real 'ln -s /mesa/acme/mt-real/sub abslink && readlink link dirlink abslink && readlink -f link && realpath dirlink/deep/c.txt sub/../a.txt abslink/b.txt && realpath -e nope || echo missing; readlink a.txt || echo not-a-link'
    assert_output "a.txt
sub
/mesa/acme/mt-real/sub
/mesa/acme/mt-real/a.txt
/mesa/acme/mt-real/sub/deep/c.txt
/mesa/acme/mt-real/a.txt
/mesa/acme/mt-real/sub/b.txt
missing
not-a-link"
    run -0 --separate-stderr in_repo mt-real "python3 -c '
import os
print(os.path.realpath(\"dirlink/deep\"))
print(os.readlink(\"link\"))
'"
    assert_output "/mesa/acme/mt-real/sub/deep
a.txt"
    # ".." after a symlinked directory is the parent of its target (a
    # kernel resolves components in order), not a lexical step back
    run -0 --separate-stderr in_repo mt-real 'ln -s sub/deep deeplink && cat deeplink/../b.txt && realpath deeplink/../b.txt'
    assert_output "bee
/mesa/acme/mt-real/sub/b.txt"
    run -1 --separate-stderr in_repo mt-real "ln -s loop2 loop1 && ln -s loop1 loop2 && $P readlink a.txt -- readlink nope -- readlink link -- stat loop1"
    assert_output "EINVAL
ENOENT
ok
ELOOP"
}

@test "stat errors: ENOENT, ENOTDIR, dangling symlinks, opendir and chdir of files" {
    src_repo mt-staterr >/dev/null
    run -1 --separate-stderr in_repo mt-staterr "ln -s nowhere dangling && $P stat nope -- stat a.txt/x -- stat a.txt/.. -- lstat dangling -- stat dangling -- stat link -- stat sub/../a.txt -- opendir a.txt -- opendir nope -- opendir dirlink -- chdir a.txt -- chdir nope"
    assert_output "ENOENT
ENOTDIR
ENOTDIR
ok
ENOENT
ok
ok
ENOTDIR
ENOENT
ok
ENOTDIR
ENOENT"
}

# ------------------------------------------------------------ directories

@test "opendir/readdir/fdopendir: ls, find, python scandir and rm -r agree" {
    src_repo mt-readdir >/dev/null
    run -0 --separate-stderr in_repo mt-readdir 'touch sub/new && ls -a sub && find sub -mindepth 1 | sort && ls -R sub'
    assert_output ".
..
b.txt
deep
new
sub/b.txt
sub/deep
sub/deep/c.txt
sub/new
sub:
b.txt
deep
new

sub/deep:
c.txt"
    # d_type and d_ino from readdir agree with lstat
    run -0 --separate-stderr in_repo mt-readdir "python3 -c '
import os
for e in sorted(os.scandir(\".\"), key=lambda e: e.name):
    st = os.lstat(e.name)
    print(e.name, e.is_dir(follow_symlinks=False), e.is_symlink(), e.is_file(follow_symlinks=False), e.inode() == st.st_ino)
'"
    assert_output "a.txt False False True True
dirlink False True False True
empty True False False True
link False True False True
run.sh False False True True
same1 False False True True
same2 False False True True
sub True False False True"
    run -0 --separate-stderr in_repo mt-readdir 'rm -r sub && ls'
    assert_output "a.txt
dirlink
empty
link
run.sh
same1
same2"
    run -1 server_has mt-readdir sub/deep/c.txt
}

@test "cd inside the mount: pwd, pwd -P, /bin/pwd, getcwd in python and children" {
    src_repo mt-cwd >/dev/null
    run -0 --separate-stderr in_repo mt-cwd "pwd && pwd -P && echo \"PWD=\$PWD\" && cd sub && pwd && pwd -P && /bin/pwd && python3 -c 'import os; print(os.getcwd())' && sh -c pwd && cat b.txt && cd deep && cd ../.. && pwd"
    assert_output "/mesa/acme/mt-cwd
/mesa/acme/mt-cwd
PWD=/mesa/acme/mt-cwd
/mesa/acme/mt-cwd/sub
/mesa/acme/mt-cwd/sub
/mesa/acme/mt-cwd/sub
/mesa/acme/mt-cwd/sub
/mesa/acme/mt-cwd/sub
bee
/mesa/acme/mt-cwd"
}

@test "cd through a symlink: pwd is logical, pwd -P and getcwd are physical" {
    src_repo mt-cwdlink >/dev/null
    run -0 --separate-stderr in_repo mt-cwdlink "cd dirlink && pwd && pwd -P && /bin/pwd && python3 -c 'import os; print(os.getcwd())' && cat b.txt"
    assert_output "/mesa/acme/mt-cwdlink/dirlink
/mesa/acme/mt-cwdlink/sub
/mesa/acme/mt-cwdlink/sub
/mesa/acme/mt-cwdlink/sub
bee"
}

@test "cd to the org, the prefix and out of the mount; cd into a file or nothing fails" {
    src_repo mt-cdout >/dev/null
    run -0 --separate-stderr in_repo mt-cdout "cd .. && pwd -P && ls && cd /mesa && pwd -P && ls && cd $T && pwd -P && cd /mesa/acme/mt-cdout/sub && cat b.txt"
    assert_output "/mesa/acme
mt-cdout
/mesa
acme
$(cd "$T" && pwd -P)
bee"
    run -2 --separate-stderr in_repo mt-cdout 'cd nope'
    [[ "$stderr" == *"can't cd to nope"* ]]
    run -2 --separate-stderr in_repo mt-cdout 'cd a.txt'
    [[ "$stderr" == *"can't cd to a.txt"* ]]
}

@test "a relative .. at a repo root stays at the root; absolute paths reach the org and the prefix" {
    # the client issue's path rule: no path climbs above /mesa/<org>/<repo>
    src_repo mt-dotdot >/dev/null
    run -0 --separate-stderr in_repo mt-dotdot 'ls .. | head -1 && cat ../a.txt && cd sub && cat ../../a.txt && ls /mesa/acme && ls /mesa && stat -c %F /mesa/acme /mesa ..'
    assert_output "a.txt
hello
hello
mt-dotdot
acme
directory
directory
directory"
}

@test "mesarun --cwd starts the command in a subdirectory" {
    src_repo mt-cwdopt >/dev/null
    run -0 --separate-stderr mr --repo mt-cwdopt --cwd /mesa/acme/mt-cwdopt/sub/deep -- sh -c 'pwd -P && cat c.txt ../b.txt'
    assert_output "/mesa/acme/mt-cwdopt/sub/deep
sea
bee"
}

@test "directories report st_nlink = 2 + subdirectories" {
    src_repo mt-nlink >/dev/null
    run -0 --separate-stderr in_repo mt-nlink "stat -c '%n %h' . sub empty sub/deep a.txt && mkdir sub/new && stat -c '%n %h' sub && rmdir sub/new && stat -c '%n %h' sub"
    assert_output ". 4
sub 3
empty 2
sub/deep 2
a.txt 1
sub 4
sub 3"
}

# ------------------------------------------------------------ identity

@test "st_ino is stable per path, distinct for equal contents; cp does not see one file" {
    src_repo mt-ino >/dev/null
    run -0 --separate-stderr in_repo mt-ino "stat -c '%i %d' same1 same2 a.txt > $T/one; sh -c \"stat -c '%i %d' same1 same2 a.txt\" > $T/two; cat $T/one"
    local one two
    one=$(cat "$T/one")
    two=$(cat "$T/two")
    [ "$one" = "$two" ]
    local i1 i2 i3 d1 d2 d3
    read -r i1 d1 i2 d2 i3 d3 <<<"$(tr '\n' ' ' <"$T/one")"
    [ "$i1" != "$i2" ]
    [ "$i1" != "$i3" ]
    [ "$i2" != "$i3" ]
    [ "$d1" = "$d2" ]
    [ "$d2" = "$d3" ]
    # cp between the two equal files works; a file onto itself does not
    run -0 --separate-stderr in_repo mt-ino 'cp same1 same2 && echo copied && stat -c %i same2'
    assert_output "copied
$i2"
    [ -z "$stderr" ]
    run -1 --separate-stderr in_repo mt-ino 'cp a.txt a.txt'
    [[ "$stderr" == *"are the same file"* ]]
    # stable across mounts too: a hash of (repo, path)
    MOUNT_CACHE=$T/cache2 run -0 --separate-stderr in_repo mt-ino 'stat -c %i same1'
    assert_output "$i1"
}

@test "fstat of a descriptor equals stat of its path (ino, size, mode, mtime)" {
    src_repo mt-fstat >/dev/null
    run -0 --separate-stderr in_repo mt-fstat "python3 -c '
import os
keys = (\"st_ino\", \"st_dev\", \"st_size\", \"st_mode\", \"st_mtime_ns\", \"st_nlink\", \"st_uid\")
def same(a, b):
    return [k for k in keys if getattr(a, k) != getattr(b, k)] or \"same\"
for p in (\"a.txt\", \"run.sh\", \"sub\", \"link\"):
    fd = os.open(p, os.O_RDONLY)
    print(p, same(os.fstat(fd), os.stat(p)))
    os.close(fd)
with open(\"new.txt\", \"w\") as f:
    f.write(\"abc\")
    f.flush()
    a = os.fstat(f.fileno()); b = os.stat(\"new.txt\")
    print(\"new.txt\", same(a, b), a.st_size)
with open(\"a.txt\", \"a\") as f:
    f.write(\"more\")
    f.flush()
    a = os.fstat(f.fileno()); b = os.stat(\"a.txt\")
    print(\"a.txt+\", same(a, b), a.st_size)
'"
    assert_output "a.txt same
run.sh same
sub same
link same
new.txt same 3
a.txt+ same 10"
}
