#!/usr/bin/env bats
# tests/shim/reads.bats - conformance: unmodified programs read a mounted
# repo through the preload shim exactly as they read a local directory:
# cat, less, grep -r, find, ls -la, tar c, cp -a out, wc, sha256sum, python,
# mmap (git hash-object, python mmap), head on a 5 MB file, shell
# redirections and descriptors inherited by children, #! scripts and an ELF
# binary stored in the repo run directly.
# Contract: shared/DESIGN.md §3-§6, docs/MOUNT.md. Each test imports its own
# repo from a directory built in $BATS_TEST_TMPDIR and compares what the
# programs print in the mount with what they print on that directory.

bats_require_minimum_version 1.5.0
load ../lib/mount
load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

setup_file() {
    mesad_start
    mesa_env unix
    # an ELF binary for the fixtures: prints its arguments, exits 7
    cat >"$BATS_FILE_TMPDIR/tool.c" <<'EOF'
#include <stdio.h>
int main(int argc, char **argv)
{
    printf("tool:");
    for (int i = 1; i < argc; i++)
        printf(" %s", argv[i]);
    printf("\n");
    return 7;
}
EOF
    gcc -O2 -o "$BATS_FILE_TMPDIR/tool" "$BATS_FILE_TMPDIR/tool.c"
}
teardown_file() { mesad_stop; }

setup() {
    mesa_env unix
    export LC_ALL=C TZ=UTC
    T=$BATS_TEST_TMPDIR
    P=$(probe_bin)
}

teardown() {
    mr_kill_bg
}

# ------------------------------------------------------------ helpers

# fixture DIR: the standard source tree (see the comments)
fixture() {
    local d=$1
    mkdir -p "$d/sub/deep" "$d/empty" "$d/bin"
    printf 'hello mesa\n' >"$d/README.md"
    printf 'alpha\nbeta\ngamma\n' >"$d/a.txt"
    printf 'int main(void) { return 0; }\n' >"$d/sub/b.c"
    printf '#define C 1\n' >"$d/sub/deep/c.h"
    printf 'main notes\n' >"$d/sub/deep/notes.txt"
    printf '1.2.3\n' >"$d/VERSION"
    ln -s a.txt "$d/link"
    ln -s sub "$d/dirlink"
    # a configure-like script that finds its srcdir from $0
    cat >"$d/configure" <<'EOF'
#!/bin/sh
srcdir=$(dirname "$0")
echo "0=$0"
echo "srcdir=$srcdir"
cat "$srcdir/VERSION"
EOF
    cat >"$d/build.sh" <<'EOF'
#!/bin/sh
echo "building $(cat VERSION)"
exit 3
EOF
    printf '#!/bin/sh\necho should-not-run\n' >"$d/noexec.sh"
    chmod 0755 "$d/configure" "$d/build.sh"
    cp "$BATS_FILE_TMPDIR/tool" "$d/bin/tool"
    chmod 0755 "$d/bin/tool"
}

# src NAME: build the fixture in $T/NAME, import it as repo NAME; echo the dir
src_repo() {
    local d=$T/src-$1
    fixture "$d"
    mkrepo "$1" "$d"
    echo "$d"
}

# ------------------------------------------------------------ cat, less, wc, sha256sum

@test "cat prints the bytes of files in the mount, by relative and absolute path" {
    src_repo rd-cat >/dev/null
    run -0 --separate-stderr in_repo rd-cat 'cat a.txt sub/deep/c.h /mesa/acme/rd-cat/README.md'
    assert_output "alpha
beta
gamma
#define C 1
hello mesa"
    [ -z "$stderr" ]
}

@test "cat of a missing file fails with ENOENT, of a directory with EISDIR" {
    src_repo rd-cat-err >/dev/null
    run -1 --separate-stderr in_repo rd-cat-err 'cat nope.txt'
    [ -z "$output" ]
    [[ "$stderr" == *"cat: nope.txt: No such file or directory"* ]]
    run -1 --separate-stderr in_repo rd-cat-err 'cat sub'
    [[ "$stderr" == *"cat: sub: Is a directory"* ]]
    run -1 --separate-stderr in_repo rd-cat-err "$P open nope.txt -- open a.txt/x -- stat sub/nope/x"
    assert_output "ENOENT
ENOTDIR
ENOENT"
}

@test "less shows a file non-interactively (less -F, LESS=-FX, stdin redirected)" {
    src_repo rd-less >/dev/null
    run -0 --separate-stderr in_repo rd-less 'less -F a.txt </dev/null | cat'
    assert_output "alpha
beta
gamma"
    run -0 --separate-stderr in_repo rd-less 'LESS=-FX less <sub/b.c | cat'
    assert_output "int main(void) { return 0; }"
}

@test "wc counts lines, words and bytes as on the source directory" {
    local d
    d=$(src_repo rd-wc)
    local want
    want=$(cd "$d" && wc README.md a.txt sub/b.c bin/tool && wc -c <a.txt)
    run -0 --separate-stderr in_repo rd-wc 'wc README.md a.txt sub/b.c bin/tool && wc -c <a.txt'
    assert_output "$want"
    assert_line --index 0 --regexp '^ *1 +2 +11 README.md$'
}

@test "sha256sum of files in the mount equals the sums of the source files" {
    local d
    d=$(src_repo rd-sha)
    local want
    want=$(cd "$d" && sha256sum a.txt sub/b.c bin/tool configure)
    run -0 --separate-stderr in_repo rd-sha 'sha256sum a.txt sub/b.c bin/tool configure'
    assert_output "$want"
    run -0 --separate-stderr in_repo rd-sha 'sha256sum -c -' <<<"$want"
}

# ------------------------------------------------------------ trees: grep, find, ls

@test "grep -r searches the tree (not following symlinked directories)" {
    src_repo rd-grep >/dev/null
    run -0 --separate-stderr in_repo rd-grep 'grep -rn main . | sort'
    assert_output "./sub/b.c:1:int main(void) { return 0; }
./sub/deep/notes.txt:1:main notes"
    run -0 --separate-stderr in_repo rd-grep 'grep -rl define sub'
    assert_output "sub/deep/c.h"
    # no match: exit 1, nothing printed
    run -1 --separate-stderr in_repo rd-grep 'grep -r nomatch-anywhere .'
    [ -z "$output" ]
    [ -z "$stderr" ]
}

@test "find lists the same tree as on the source directory" {
    local d
    d=$(src_repo rd-find)
    local want
    want=$(cd "$d" && find . | sort)
    run -0 --separate-stderr in_repo rd-find 'find . | sort'
    assert_output "$want"
    run -0 --separate-stderr in_repo rd-find 'find . -type l | sort'
    assert_output "./dirlink
./link"
    run -0 --separate-stderr in_repo rd-find 'find . -type d -empty'
    assert_output "./empty"
    run -0 --separate-stderr in_repo rd-find 'find -L . -name c.h | sort'
    assert_output "./dirlink/deep/c.h
./sub/deep/c.h"
    run -0 --separate-stderr in_repo rd-find 'find /mesa/acme/rd-find/sub -name "*.c"'
    assert_output "/mesa/acme/rd-find/sub/b.c"
}

@test "ls -la shows every entry with its type, mode, size and link target" {
    src_repo rd-ls >/dev/null
    run -0 --separate-stderr in_repo rd-ls 'ls -1a'
    assert_output ".
..
README.md
VERSION
a.txt
bin
build.sh
configure
dirlink
empty
link
noexec.sh
sub"
    run -0 --separate-stderr in_repo rd-ls 'ls -la'
    assert_line --regexp '^-rw-r--r-- +1 [^ ]+ +[^ ]+ +17 .* a\.txt$'
    assert_line --regexp '^-rwxr-xr-x +1 [^ ]+ +[^ ]+ +[0-9]+ .* configure$'
    assert_line --regexp '^lrwxrwxrwx +1 [^ ]+ +[^ ]+ +5 .* link -> a\.txt$'
    assert_line --regexp '^lrwxrwxrwx +1 [^ ]+ +[^ ]+ +3 .* dirlink -> sub$'
    assert_line --regexp '^drwxr-xr-x +[0-9]+ [^ ]+ +[^ ]+ +[0-9]+ .* sub$'
    assert_line --regexp '^drwxr-xr-x +2 [^ ]+ +[^ ]+ +[0-9]+ .* empty$'
    assert_line --regexp '^total [0-9]+$'
    run -0 --separate-stderr in_repo rd-ls 'ls -la sub/deep'
    assert_line --regexp '^-rw-r--r-- +1 .* 12 .* c\.h$'
    run -2 --separate-stderr in_repo rd-ls 'ls nope'
    [[ "$stderr" == *"cannot access 'nope': No such file or directory"* ]]
}

# ------------------------------------------------------------ copies out: tar, cp -a

@test "tar c of the mount lists and extracts outside as the source tree" {
    local d
    d=$(src_repo rd-tar)
    run -0 --separate-stderr in_repo rd-tar "tar cf $T/out.tar ."
    [ -z "$stderr" ]
    run -0 tar tf "$T/out.tar"
    local got want
    got=$(tar tf "$T/out.tar" | sort)
    want=$(cd "$d" && tar cf - . | tar tf - | sort)
    [ "$got" = "$want" ]
    mkdir "$T/x"
    tar xf "$T/out.tar" -C "$T/x"
    run -0 diff -r --no-dereference "$d" "$T/x"
    [ -z "$output" ]
    [ "$(stat -c %a "$T/x/configure")" = 755 ]
    [ "$(stat -c %a "$T/x/a.txt")" = 644 ]
    [ "$(readlink "$T/x/link")" = a.txt ]
    [ -d "$T/x/empty" ]
}

@test "cp -a out of the mount copies contents, modes, symlinks and mtimes" {
    local d
    d=$(src_repo rd-cp)
    run -0 --separate-stderr in_repo rd-cp "cp -a /mesa/acme/rd-cp/. $T/copy"
    [ -z "$stderr" ]
    run -0 diff -r --no-dereference "$d" "$T/copy"
    [ -z "$output" ]
    [ "$(stat -c %a "$T/copy/bin/tool")" = 755 ]
    [ "$(stat -c %a "$T/copy/noexec.sh")" = 644 ]
    [ "$(readlink "$T/copy/dirlink")" = sub ]
    [ -d "$T/copy/empty" ]
    # the mtime preserved is the one the mount reports: the server's
    local ns
    ns=$(server_mtime_ns rd-cp a.txt)
    [ "$(stat -c %Y "$T/copy/a.txt")" = "$((ns / 1000000000))" ]
}

# ------------------------------------------------------------ programs: python, mmap, head

@test "python3 open() reads text and binary files" {
    local d
    d=$(src_repo rd-py)
    run -0 --separate-stderr in_repo rd-py "python3 -c '
import sys
sys.stdout.write(open(\"a.txt\").read())
with open(\"bin/tool\", \"rb\") as f:
    print(len(f.read()))
print(open(\"/mesa/acme/rd-py/sub/b.c\").readline(), end=\"\")
'"
    assert_output "alpha
beta
gamma
$(stat -c %s "$d/bin/tool")
int main(void) { return 0; }"
}

@test "mmap: git hash-object of files in the mount equals the repo's blob ids" {
    local d
    d=$(src_repo rd-mmap-src)
    # git mmaps files larger than 32 KiB; this one is 100 KiB
    head -c 102400 /dev/urandom >"$d/big.bin"
    mkrepo rd-mmap "$d"
    local want_big want_a
    want_big=$(server_oid rd-mmap big.bin)
    want_a=$(server_oid rd-mmap a.txt)
    [ "$want_big" = "$(git hash-object "$d/big.bin")" ]
    run -0 --separate-stderr in_repo rd-mmap 'git hash-object big.bin a.txt'
    assert_output "$want_big
$want_a"
    run -0 --separate-stderr in_repo rd-mmap "$P mmap big.bin -- mmap a.txt"
    assert_output "ok
ok"
}

@test "mmap: python mmap of a file in the mount has the file's bytes" {
    local d
    d=$(src_repo rd-pymmap-src)
    head -c 200000 /dev/urandom >"$d/big.bin"
    mkrepo rd-pymmap "$d"
    run -0 --separate-stderr in_repo rd-pymmap "python3 -c '
import hashlib, mmap
with open(\"big.bin\", \"rb\") as f:
    m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    print(len(m), hashlib.sha256(m).hexdigest())
    m.close()
'"
    assert_output "200000 $(sha256sum <"$d/big.bin" | cut -d' ' -f1)"
}

@test "head, tail and sha256sum of a 5 MB file" {
    local d=$T/big
    mkdir "$d"
    seq -f 'line %07g' 1 400000 >"$d/big.txt"
    [ "$(stat -c %s "$d/big.txt")" -gt 5000000 ]
    mkrepo rd-head "$d"
    run -0 --separate-stderr in_repo rd-head 'head -n 2 big.txt; head -c 12 big.txt; echo; tail -n 1 big.txt; wc -c <big.txt'
    assert_output "line 0000001
line 0000002
line 0000001
line 0400000
$(stat -c %s "$d/big.txt")"
    run -0 --separate-stderr in_repo rd-head 'sha256sum <big.txt'
    assert_output "$(sha256sum <"$d/big.txt")"
    run -0 --separate-stderr in_repo rd-head "cmp big.txt $d/big.txt"
}

# ------------------------------------------------------------ redirections, descriptors

@test "shell redirection < from the mount, relative and absolute" {
    src_repo rd-redir >/dev/null
    run -0 --separate-stderr in_repo rd-redir 'wc -l <a.txt; cat </mesa/acme/rd-redir/sub/b.c'
    assert_output "3
int main(void) { return 0; }"
    # the shell cannot open it: status 2 and its message, as on a local disk
    run -2 --separate-stderr in_repo rd-redir 'cat <nope.txt'
    [ -z "$output" ]
    [[ "$stderr" == *"cannot open nope.txt: No such file"* ]]
}

@test "exec 3< a mesa file is read by the shell and by child processes" {
    src_repo rd-fd3 >/dev/null
    run -0 --separate-stderr in_repo rd-fd3 'exec 3<a.txt; cat <&3'
    assert_output "alpha
beta
gamma"
    run -0 --separate-stderr in_repo rd-fd3 'exec 3<a.txt; sh -c "cat <&3"'
    assert_output "alpha
beta
gamma"
    # the descriptor's offset is shared with the child (one open file)
    run -0 --separate-stderr in_repo rd-fd3 'exec 3<a.txt; read -r first <&3; echo "first=$first"; sh -c "cat <&3"'
    assert_output "first=alpha
beta
gamma"
}

@test "an inherited mesa descriptor is the file in a new program (fstat, read)" {
    src_repo rd-inherit >/dev/null
    run -0 --separate-stderr in_repo rd-inherit "exec 3<a.txt; python3 -c '
import os
a = os.fstat(3); b = os.stat(\"a.txt\")
print(a.st_size, a.st_ino == b.st_ino, a.st_dev == b.st_dev, a.st_mode == b.st_mode)
print(os.read(3, 5).decode())
'"
    assert_output "17 True True True
alpha"
}

@test "a child reads an inherited descriptor through /dev/fd/3" {
    src_repo rd-devfd >/dev/null
    run -0 --separate-stderr in_repo rd-devfd 'exec 3<sub/b.c; cat /dev/fd/3'
    assert_output "int main(void) { return 0; }"
}

# ------------------------------------------------------------ executing files of the repo

# conf_ok GIVEN: the configure fixture's output when run as GIVEN from
# /mesa/acme/rd-conf or below: $0 is the path as given (a kernel mount) or
# the absolute mount path (DESIGN §6 lets the shim pass the virtual path);
# either way srcdir is dirname "$0" and VERSION is found through it.
conf_ok() {
    local given=$1 abs=/mesa/acme/rd-conf/configure
    if [ "${lines[0]}" = "0=$given" ]; then
        [ "${lines[1]}" = "srcdir=$(dirname "$given")" ]
    else
        assert_equal "${lines[0]}" "0=$abs"
        [ "${lines[1]}" = "srcdir=/mesa/acme/rd-conf" ]
    fi
    [ "${lines[2]}" = 1.2.3 ]
    [ "${#lines[@]}" -eq 3 ]
}

@test "a #! script finds its srcdir with dirname \"\$0\" (./configure, ../configure, absolute)" {
    src_repo rd-conf >/dev/null
    run -0 --separate-stderr in_repo rd-conf './configure'
    conf_ok ./configure
    run -0 --separate-stderr in_repo rd-conf 'cd sub && ../configure'
    conf_ok ../configure
    run -0 --separate-stderr in_repo rd-conf 'cd sub/deep && ../../configure'
    conf_ok ../../configure
    run -0 --separate-stderr in_repo rd-conf '/mesa/acme/rd-conf/configure'
    assert_output "0=/mesa/acme/rd-conf/configure
srcdir=/mesa/acme/rd-conf
1.2.3"
    # from a directory outside the mount
    run -0 --separate-stderr in_repo rd-conf "cd $T && /mesa/acme/rd-conf/configure"
    assert_output "0=/mesa/acme/rd-conf/configure
srcdir=/mesa/acme/rd-conf
1.2.3"
    # the interpreter named explicitly: $0 is exactly the argument
    run -0 --separate-stderr in_repo rd-conf 'sh configure'
    assert_output "0=configure
srcdir=.
1.2.3"
}

@test "./build.sh runs and its exit status is mesarun's" {
    src_repo rd-build >/dev/null
    run -3 --separate-stderr in_repo rd-build './build.sh'
    assert_output "building 1.2.3"
    run -3 --separate-stderr mr --repo rd-build -- ./build.sh
    assert_output "building 1.2.3"
}

@test "an ELF binary stored with mode 0755 runs as ./bin/tool, via PATH and from a shell" {
    src_repo rd-elf >/dev/null
    [ "$(server_entry rd-elf bin/tool)" = "file 100755" ]
    run -7 --separate-stderr in_repo rd-elf './bin/tool a "b c"'
    assert_output "tool: a b c"
    run -7 --separate-stderr in_repo rd-elf 'cd bin && ./tool x'
    assert_output "tool: x"
    run -7 --separate-stderr in_repo rd-elf 'PATH=/mesa/acme/rd-elf/bin:$PATH tool y'
    assert_output "tool: y"
    run -7 --separate-stderr mr --repo rd-elf -- ./bin/tool direct
    assert_output "tool: direct"
    run -0 --separate-stderr in_repo rd-elf 'sh -c "./bin/tool z"; echo "status $?"'
    assert_output "tool: z
status 7"
}

@test "a file without the executable bit does not run (126, EACCES)" {
    src_repo rd-noexec >/dev/null
    run -126 --separate-stderr in_repo rd-noexec './noexec.sh'
    [ -z "$output" ]
    [[ "$stderr" == *"Permission denied"* ]]
    run -1 --separate-stderr in_repo rd-noexec "$P access noexec.sh x -- access configure x -- access noexec.sh r"
    assert_output "EACCES
ok
ok"
}
