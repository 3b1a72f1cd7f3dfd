#!/usr/bin/env bats
# tests/shim/trap.bats - `mesarun --trap-raw` (tools/mesarun_trap.c,
# core/trap.c, shim/trap.c): a statically linked program, which never
# loads the shim, opens, reads, stats, lists and writes the mount through
# mesarun's seccomp supervisor under --trap-raw and under --sandbox, and
# sees no /mesa without them; --trap-raw=all serves raw system calls of a
# dynamic program; dynamic programs are not trapped otherwise; a trapped
# process killed mid-call leaves mesarun healthy; a mount symlink to a host
# file is opened as the caller could (under --sandbox: not for writing
# outside the writable places).
# The reference for every answer is the same probe built dynamically,
# served by the shim.

bats_require_minimum_version 1.5.0
load ../lib/mount
load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

# teardown_file, teardown: the shim suites' defaults (tests/lib/mount.bash)
setup_file() {
    mesad_start
    mesa_env unix
    local src=$MESA_TOP_SRCDIR/tests/shim/static-probe.c
    [ -f "$src" ] || src=$(cd "$(dirname "$BATS_TEST_FILENAME")" && pwd)/static-probe.c
    SPROBE=${MESA_TOP_BUILDDIR:-/nonexistent}/tests/shim/static-probe
    if [ ! -x "$SPROBE" ]; then
        SPROBE=$BATS_FILE_TMPDIR/static-probe
        gcc -O2 -static -o "$SPROBE" "$src"
    fi
    gcc -O2 -o "$BATS_FILE_TMPDIR/dyn-probe" "$src"
    export SPROBE DPROBE=$BATS_FILE_TMPDIR/dyn-probe
}

setup() {
    mesa_env unix
    export LC_ALL=C TZ=UTC
    T=$BATS_TEST_TMPDIR
}

# fixture NAME: import the standard tree as repo NAME; the host file
# $T/host.txt and a mount symlink to it (hostlink)
fixture() {
    local d=$T/src
    mkdir -p "$d/sub/deep"
    printf 'hello mesa\n' >"$d/README.md"
    printf 'alpha\nbeta\ngamma\n' >"$d/a.txt"
    printf 'int main(void) { return 0; }\n' >"$d/sub/b.c"
    printf '#!/bin/sh\necho run\n' >"$d/run.sh"
    chmod 755 "$d/run.sh"
    ln -s a.txt "$d/link"
    ln -s sub "$d/dirlink"
    printf 'host file\n' >"$T/host.txt"
    ln -s "$T/host.txt" "$d/hostlink"
    mkrepo "$1" "$d"
}

# the operations every mode is checked with (relative to the repo root)
OPS=(cat:README.md cat:/mesa/acme/REPO/sub/b.c cat:link cat:dirlink/b.c
     stat:a.txt stat:run.sh stat:sub lstat:link fstatat:link fstatat:a.txt statx:a.txt
     statx:sub access:a.txt:r access:run.sh:x access:a.txt:x access:nope
     readlink:link readlink:a.txt getcwd ls:. ls:/mesa/acme/REPO/sub ls:/mesa/acme
     catat:sub:b.c cat:nope stat:sub/nope)

ops_for() {
    local op
    for op in "${OPS[@]}"; do
        printf '%s\n' "${op//REPO/$1}"
    done
}

EXPECTED='hello mesa\n
int main(void) { return 0; }\n
alpha\nbeta\ngamma\n
int main(void) { return 0; }\n
size=17 mode=100644
size=19 mode=100755
STATSUB
size=5 mode=120777
size=5 mode=120777
size=17 mode=100644
size=17 mode=100644
STATSUB
ok
ok
ERR EACCES
ERR ENOENT
a.txt
ERR EINVAL
/mesa/acme/REPO
README.md/f a.txt/f dirlink/l hostlink/l link/l run.sh/f sub/d
b.c/f deep/d
REPO/d
int main(void) { return 0; }\n
ERR ENOENT
ERR ENOENT'

# expected NAME: the answers above for repo NAME (a directory's stat line
# taken from the shim's answer, as the mount reports it)
expected() {
    local statsub
    statsub=$(mr --repo "$1" -- "$DPROBE" stat:sub)
    local e=${EXPECTED//REPO/$1}
    printf '%s\n' "${e//STATSUB/$statsub}"
}

@test "a dynamic program under the shim gives the reference answers (the probe's own check)" {
    fixture tr-ref
    mapfile -t ops < <(ops_for tr-ref)
    run -1 --separate-stderr mr --repo tr-ref -- "$DPROBE" "${ops[@]}"
    assert_output "$(expected tr-ref)"
    [[ "$(mr --repo tr-ref -- "$DPROBE" stat:sub)" == "size="*" mode=040755" ]]
}

@test "--trap-raw: a static program opens, reads, stats, lists, reads links and its cwd in the mount" {
    fixture tr-static
    mapfile -t ops < <(ops_for tr-static)
    run -1 --separate-stderr mr --trap-raw --repo tr-static -- "$SPROBE" "${ops[@]}"
    assert_output "$(expected tr-static)"
    [ -z "$stderr" ]
    # the same through a shell (the shim's exec path hands it over)
    run -0 --separate-stderr mr --trap-raw --repo tr-static -- sh -c "$SPROBE cat:a.txt ls:sub seccomp; echo rc=\$?"
    assert_output 'alpha\nbeta\ngamma\n
b.c/f deep/d
filters=1
rc=0'
}

@test "without --trap-raw a static program sees no mount: ENOENT" {
    fixture tr-none
    run -1 --separate-stderr mr --repo tr-none -- "$SPROBE" cat:/mesa/acme/tr-none/a.txt stat:/mesa/acme/tr-none/a.txt ls:/mesa/acme/tr-none access:/mesa/acme/tr-none/a.txt readlink:/mesa/acme/tr-none/link seccomp
    assert_output "ERR ENOENT
ERR ENOENT
ERR ENOENT
ERR ENOENT
ERR ENOENT
filters=0"
    run -1 --separate-stderr mr --repo tr-none -- sh -c "$SPROBE cat:/mesa/acme/tr-none/a.txt"
    assert_output "ERR ENOENT"
}

@test "--sandbox traps static programs by default: the same answers as the shim's" {
    fixture tr-sb
    mapfile -t ops < <(ops_for tr-sb)
    # the shim's answers under --sandbox (through the sandbox's proxy) are
    # the reference answers, and the static program's are the same
    run -1 --separate-stderr mr --sandbox --repo tr-sb -- "$DPROBE" "${ops[@]}"
    assert_output "$(expected tr-sb)"
    run -1 --separate-stderr mr --sandbox --repo tr-sb -- "$SPROBE" "${ops[@]}"
    assert_output "$(expected tr-sb)"
    run -0 --separate-stderr mr --sandbox --repo tr-sb -- "$SPROBE" cat:a.txt stat:a.txt stat:run.sh statx:a.txt access:a.txt:r getcwd ls:sub catat:sub:b.c
    assert_output "alpha\nbeta\ngamma\n
size=17 mode=100644
size=19 mode=100755
size=17 mode=100644
ok
/mesa/acme/tr-sb
b.c/f deep/d
int main(void) { return 0; }\n"
    run -0 --separate-stderr mr --sandbox --repo tr-sb -- sh -c "$SPROBE cat:README.md seccomp"
    assert_output 'hello mesa\n
filters=2'
}

@test "posix_spawn and posix_spawnp of a static program (python's os.posix_spawn, make's recipes) are trapped too" {
    fixture tr-spawn
    cp "$SPROBE" "$T/sprobe-on-path"
    cat >"$T/spawn.py" <<EOF
import os
os.environ["PATH"] = "$T:" + os.environ["PATH"]  # posix_spawnp searches the caller's PATH
for fn, prog in ((os.posix_spawn, "$SPROBE"), (os.posix_spawnp, "sprobe-on-path")):
    pid = fn(prog, [prog, "cat:a.txt", "seccomp"], os.environ)
    print(fn.__name__, "exit", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
EOF
    run -0 --separate-stderr mr --trap-raw --repo tr-spawn -- python3 "$T/spawn.py"
    assert_output 'alpha\nbeta\ngamma\n
filters=1
posix_spawn exit 0
alpha\nbeta\ngamma\n
filters=1
posix_spawnp exit 0'
    printf 'all:\n\t%s cat:sub/b.c\n' "$SPROBE" >"$T/Makefile"
    run -0 --separate-stderr mr --sandbox --repo tr-spawn -- make -s -f "$T/Makefile"
    assert_output 'int main(void) { return 0; }\n'
}

@test "--trap-raw: a static program writes, makes and removes directories, renames; the writes are pushed" {
    fixture tr-write
    run -1 --separate-stderr mr --trap-raw --repo tr-write -- "$SPROBE" write:new.txt:fresh mkdir:d rename:new.txt:d/moved.txt cat:d/moved.txt unlink:a.txt stat:a.txt mkdir:e rmdir:e stat:e rename:README.md:/tmp/x
    assert_output "ok
ok
ok
fresh
ok
ERR ENOENT
ok
ok
ERR ENOENT
ERR EXDEV"
    server_is tr-write d/moved.txt 'fresh'
    run ! server_has tr-write a.txt
    run ! server_has tr-write new.txt
}

@test "--trap-raw=all serves raw syscall(SYS_openat) of a dynamic program; plain --trap-raw does not trap dynamic programs" {
    fixture tr-all
    run -0 --separate-stderr mr --trap-raw=all --repo tr-all -- "$DPROBE" rawcat:a.txt rawcat:/mesa/acme/tr-all/sub/b.c cat:README.md seccomp
    assert_output 'alpha\nbeta\ngamma\n
int main(void) { return 0; }\n
hello mesa\n
filters=1'
    run -1 --separate-stderr mr --trap-raw --repo tr-all -- "$DPROBE" rawcat:/mesa/acme/tr-all/a.txt cat:README.md seccomp
    assert_output 'ERR ENOENT
hello mesa\n
filters=0'
    run -2 --separate-stderr mr --trap-raw=some --repo tr-all -- true
    [[ "$stderr" == *"--trap-raw: the only value is 'all'"* ]]
}

@test "a relative path from a cwd in the mount, and ../, work for a static program" {
    fixture tr-rel
    run -0 --separate-stderr mr --trap-raw --repo tr-rel --cwd /mesa/acme/tr-rel/sub -- "$SPROBE" getcwd cat:b.c cat:../a.txt stat:deep ls:.. catat:..:README.md
    assert_output "/mesa/acme/tr-rel/sub
int main(void) { return 0; }\n
alpha\nbeta\ngamma\n
$(mr --repo tr-rel -- "$DPROBE" stat:sub/deep)
README.md/f a.txt/f dirlink/l hostlink/l link/l run.sh/f sub/d
hello mesa\n"
}

@test "trapped processes SIGKILLed mid-call leave mesarun healthy" {
    fixture tr-kill
    run -0 --separate-stderr mr --trap-raw --repo tr-kill -- sh -c "
        pids=
        for i in 1 2 3 4; do $SPROBE spin:a.txt >/dev/null & pids=\"\$pids \$!\"; done
        sleep 1; kill -9 \$pids
        for p in \$pids; do wait \$p; echo status=\$?; done
        $SPROBE cat:README.md stat:a.txt ls:sub; echo rc=\$?"
    assert_output 'status=137
status=137
status=137
status=137
hello mesa\n
size=17 mode=100644
b.c/f deep/d
rc=0'
    # COMMAND itself killed while it is trapped: mesarun reports the signal
    mount_cache
    "$MESARUN" --cache-dir "$MOUNT_CACHE" --trap-raw --repo tr-kill -- "$SPROBE" spin:a.txt >"$T/spin.out" 2>&1 &
    local mrpid=$! st=0 i
    for i in $(seq 1 100); do # until it is in its trapped loop (10 s at most)
        grep -q spinning "$T/spin.out" && break
        sleep 0.1
    done
    grep -q spinning "$T/spin.out"
    pkill -KILL -f "^$SPROBE spin" || true
    wait "$mrpid" || st=$?
    [ "$st" -eq 137 ]
}

@test "a mount symlink to a host file is opened as the caller: readable, writable only where the caller may write" {
    fixture tr-host
    run -0 --separate-stderr mr --trap-raw --repo tr-host -- "$SPROBE" cat:hostlink readlink:hostlink write:hostlink:changed
    assert_output "host file\n
$T/host.txt
ok"
    [ "$(cat "$T/host.txt")" = changed ]
    local abi
    abi=$(python3 -c 'import ctypes; print(ctypes.CDLL(None).syscall(444, None, 0, 1))')
    if [ "$abi" -lt 1 ]; then
        skip "this kernel has no Landlock (landlock_create_ruleset returned $abi)"
    fi
    printf 'host file\n' >"$T/host.txt"
    run -1 --separate-stderr mr --sandbox --private-tmp --repo tr-host -- "$SPROBE" cat:hostlink write:hostlink:sandboxed
    assert_output "host file\n
ERR EACCES"
    [ "$(cat "$T/host.txt")" = "host file" ]
}

@test "--trap-raw -v names the programs it serves; --sandbox -v keeps logging refusals and says static programs are not trapped" {
    fixture tr-log
    run -0 --separate-stderr mr --trap-raw -v --repo tr-log -- "$SPROBE" cat:README.md
    assert_output 'hello mesa\n'
    [[ "$stderr" == *"trap: serving the raw system calls of pid "* ]]
    run -1 --separate-stderr mr --sandbox -v --repo tr-log -- "$SPROBE" cat:README.md
    assert_output 'ERR ENOENT'
    [[ "$stderr" == *"static programs are not trapped (add --trap-raw)"* ]]
}
