#!/usr/bin/env bats
# tests/shim/procs.bats - conformance: process creation inside the mount.
# make -j2 (recipes through shells and posix_spawn of a repo script), the
# gcc driver compiling and linking (cc1/as/collect2 through vfork), xargs,
# pipelines, find -exec/-execdir, python subprocess (vfork, cwd=, shell),
# env -i (the exec wrappers put the mount back), git, and mesarun's exit
# status (the command's; 128+N for a signal).
# Contract: shared/DESIGN.md §6 (vfork, posix_spawn, exec wrappers), §7.

bats_require_minimum_version 1.5.0
load ../lib/mount
load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

# setup_file, setup, teardown: the shim suites' defaults (tests/lib/mount.bash)

# c_project DIR: a small C program in three files and a Makefile;
# .gitignore keeps objects local
c_project() {
    local d=$1
    mkdir -p "$d/sub"
    printf '*.o\n*.d\n' >"$d/.gitignore"
    cat >"$d/util.h" <<'EOF'
int util_value(void);
EOF
    cat >"$d/util.c" <<'EOF'
#include "util.h"
int util_value(void) { return 42; }
EOF
    cat >"$d/hello.c" <<'EOF'
#include <stdio.h>
#include "util.h"
int main(void)
{
    printf("hello %d\n", util_value());
    return 0;
}
EOF
    cat >"$d/sub/other.c" <<'EOF'
int main(void) { return 0; }
EOF
    printf 'hello\n' >"$d/a.txt"
    printf 'bee\n' >"$d/sub/b.txt"
}

# ------------------------------------------------------------ make

@test "make -j2 runs recipes through shells and spawns a repo script; outputs reach the server" {
    local d=$T/mk
    mkdir -p "$d/src"
    printf 'alpha\n' >"$d/src/a.in"
    printf 'beta\n' >"$d/src/b.in"
    printf 'gamma\n' >"$d/src/c.in"
    printf 'delta\n' >"$d/src/d.in"
    printf '#!/bin/sh\necho generated > "$1"\n' >"$d/gen.sh"
    chmod 0755 "$d/gen.sh"
    # gen.out's recipe has no shell metacharacters: make runs it directly
    cat >"$d/Makefile" <<'EOF'
all: all.txt gen.out
all.txt: out/a.txt out/b.txt out/c.txt out/d.txt
	sh -c 'cat out/a.txt out/b.txt out/c.txt out/d.txt > all.txt'
out/%.txt: src/%.in | out
	sh -c 'tr a-z A-Z < $< > $@'
out:
	mkdir -p out
gen.out: gen.sh
	./gen.sh gen.out
EOF
    mkrepo pr-make "$d"
    run -0 --separate-stderr in_repo pr-make 'make -s -j2 && cat all.txt gen.out && make -q && echo up-to-date'
    assert_output "ALPHA
BETA
GAMMA
DELTA
generated
up-to-date"
    [ -z "$stderr" ]
    server_is pr-make all.txt $'ALPHA\nBETA\nGAMMA\nDELTA\n'
    server_is pr-make out/c.txt $'GAMMA\n'
    server_is pr-make gen.out $'generated\n'
    # a new run: nothing to rebuild
    run -0 --separate-stderr in_repo pr-make 'make -j2'
    assert_output "make: Nothing to be done for 'all'."
}

# ------------------------------------------------------------ gcc

@test "gcc compiles and links a C program in the mount; it runs; the binary reaches the server" {
    local d=$T/c
    c_project "$d"
    mkrepo pr-gcc "$d"
    run -0 --separate-stderr in_repo pr-gcc 'gcc -O2 -c util.c && gcc -O2 -o hello hello.c util.o && ./hello && ls util.o hello'
    assert_output "hello 42
hello
util.o"
    [ -z "$stderr" ]
    [ "$(server_entry pr-gcc hello)" = "file 100755" ]
    run -1 server_has pr-gcc util.o
    # byte for byte what the same commands build on a local disk
    cp -r "$d" "$T/native"
    (cd "$T/native" && gcc -O2 -c util.c && gcc -O2 -o hello hello.c util.o)
    server_cat pr-gcc hello >"$T/hello.server"
    cmp "$T/native/hello" "$T/hello.server"
    # and it runs from a new mount (cold cache)
    MOUNT_CACHE=$T/cache2 run -0 --separate-stderr in_repo pr-gcc './hello'
    assert_output "hello 42"
}

@test "gcc -MD writes dependency files and -I finds headers in the mount" {
    local d=$T/c
    c_project "$d"
    mkdir -p "$d/include"
    mv "$d/util.h" "$d/include/"
    mkrepo pr-gccdep "$d"
    run -0 --separate-stderr in_repo pr-gccdep 'gcc -MD -Iinclude -c hello.c && cat hello.d'
    assert_line --index 0 --regexp '^hello\.o: hello\.c '
    assert_line --regexp ' include/util\.h$'
}

# ------------------------------------------------------------ xargs, pipelines, find

@test "xargs runs commands on files of the mount" {
    local d=$T/c
    c_project "$d"
    mkrepo pr-xargs "$d"
    local want
    # shellcheck disable=SC2011,SC2035
    want=$(cd "$d" && ls *.c | xargs wc -c)
    run -0 --separate-stderr in_repo pr-xargs 'ls *.c | xargs wc -c'
    assert_output "$want"
    run -0 --separate-stderr in_repo pr-xargs 'printf "a.txt\nsub/b.txt\n" | xargs -n1 cat'
    assert_output "hello
bee"
}

@test "a pipeline: find . -name '*.c' | xargs grep -l main" {
    local d=$T/c
    c_project "$d"
    mkrepo pr-pipe "$d"
    run -0 --separate-stderr in_repo pr-pipe "find . -name '*.c' | xargs grep -l main | sort"
    assert_output "./hello.c
./sub/other.c"
    run -0 --separate-stderr in_repo pr-pipe 'cat a.txt sub/b.txt | tr a-z A-Z | sort -r'
    assert_output "HELLO
BEE"
}

@test "find -exec and -execdir run commands on mount paths" {
    local d=$T/c
    c_project "$d"
    mkrepo pr-find "$d"
    run -0 --separate-stderr in_repo pr-find "find . -name '*.txt' -exec cat {} + | sort"
    assert_output "bee
hello"
    run -0 --separate-stderr in_repo pr-find "find sub -name b.txt -execdir pwd \\;"
    assert_output "/mesa/acme/pr-find/sub"
}

# ------------------------------------------------------------ python

@test "python3 subprocess runs programs in the mount (run, cwd=, shell=True, a repo script)" {
    local d=$T/c
    c_project "$d"
    printf '#!/bin/sh\necho "script in $(pwd)"\nexit 4\n' >"$d/run.sh"
    chmod 0755 "$d/run.sh"
    mkrepo pr-py "$d"
    run -0 --separate-stderr in_repo pr-py "python3 -u -c '
import os, subprocess
print(subprocess.run([\"cat\", \"a.txt\"], capture_output=True, text=True).stdout, end=\"\")
print(subprocess.run([\"cat\", \"b.txt\"], cwd=\"sub\", capture_output=True, text=True).stdout, end=\"\")
print(subprocess.run([\"pwd\"], cwd=\"sub\", capture_output=True, text=True).stdout, end=\"\")
print(subprocess.check_output(\"cat a.txt | tr a-z A-Z\", shell=True, text=True), end=\"\")
r = subprocess.run([\"./run.sh\"], capture_output=True, text=True)
print(r.stdout, end=\"\")
print(\"status\", r.returncode)
print(\"system\", os.system(\"cat sub/b.txt\") >> 8)
p = subprocess.Popen([\"sh\", \"-c\", \"cat > piped.txt\"], stdin=subprocess.PIPE)
p.communicate(b\"through a pipe\\n\")
print(open(\"piped.txt\").read(), end=\"\")
'"
    assert_output "hello
bee
/mesa/acme/pr-py/sub
HELLO
script in /mesa/acme/pr-py
status 4
bee
system 0
through a pipe"
    server_is pr-py piped.txt $'through a pipe\n'
}

# ------------------------------------------------------------ env -i

@test "env -i /bin/sh -c 'cat f' inside the mount: the exec wrappers put the mount back" {
    local d=$T/c
    c_project "$d"
    mkrepo pr-envi "$d"
    run -0 --separate-stderr in_repo pr-envi "env -i /bin/sh -c 'cat a.txt && pwd && cd sub && cat b.txt && sh -c \"cat ../a.txt\" && echo envi > ../e.txt'"
    assert_output "hello
/mesa/acme/pr-envi
bee
hello"
    server_is pr-envi e.txt $'envi\n'
    run -0 --separate-stderr in_repo pr-envi 'env -i PATH=/usr/bin:/bin cat /mesa/acme/pr-envi/sub/b.txt'
    assert_output "bee"
}

# ------------------------------------------------------------ git

@test "git init, add, commit and status work in the mount; .git stays local" {
    local d=$T/c
    c_project "$d"
    mkrepo pr-git "$d"
    run -0 --separate-stderr in_repo pr-git 'git init -q && git add -A && git -c user.name=t -c user.email=t@example.com commit -qm init && git log --format=%s && git status --porcelain && echo changed >> a.txt && git status --porcelain && git diff --stat | tail -1'
    assert_output "init
 M a.txt
 1 file changed, 1 insertion(+)"
    server_is pr-git a.txt $'hello\nchanged\n'
    run -0 server_paths pr-git
    refute_output --partial ".git/"
}

# ------------------------------------------------------------ exit status

@test "mesarun exits with the command's status, 128+N when it is killed by signal N" {
    mkrepo pr-status
    run -3 --separate-stderr in_repo pr-status 'exit 3'
    run -0 --separate-stderr in_repo pr-status 'true'
    run -143 --separate-stderr in_repo pr-status 'kill -TERM $$'
    run -137 --separate-stderr in_repo pr-status 'kill -KILL $$'
    run -0 --separate-stderr mr --repo pr-status -- true
    run -127 --separate-stderr mr --repo pr-status -- /nonexistent/command
}

@test "a command started by mesarun without a shell gets the repo as cwd" {
    local d=$T/c
    c_project "$d"
    mkrepo pr-direct "$d"
    run -0 --separate-stderr mr --repo pr-direct -- cat a.txt sub/b.txt
    assert_output "hello
bee"
    run -0 --separate-stderr mr --repo pr-direct -- pwd
    assert_output "/mesa/acme/pr-direct"
}
