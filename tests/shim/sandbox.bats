#!/usr/bin/env bats
# tests/shim/sandbox.bats - `mesarun --sandbox` (tools/mesarun_sandbox.c):
# the seccomp deny list answers with errnos (EACCES for sockets other than
# AF_UNIX, EPERM for ptrace, mounts and namespaces, ENOSYS for io_uring and
# clone3), -v logs each refusal, Landlock leaves the host read-only outside
# the run's directories and /tmp (or a private TMPDIR), and the mount still
# reads and writes. --unset-env removes variables.

bats_require_minimum_version 1.5.0
load ../lib/mount
load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

# setup_file, setup, teardown: the shim suites' defaults (tests/lib/mount.bash)

# calls.py: each named call made through libc, its errno name (or "ok")
calls_py() {
    cat >"$T/calls.py" <<'EOF'
import ctypes, errno, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
def res(r):
    return "ok" if r >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")
def tcp():
    try:
        socket.create_connection(("127.0.0.1", 9), timeout=2)
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, "?")
calls = {
    "tcp": tcp,
    "udp": lambda: res(libc.socket(socket.AF_INET, socket.SOCK_DGRAM, 0)),
    "unix": lambda: res(libc.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0)),
    "ptrace": lambda: res(libc.ptrace(16, 1, 0, 0)),  # PTRACE_ATTACH to init
    "mount": lambda: res(libc.mount(b"none", b"/mnt", b"tmpfs", 0, None)),
    "unshare-user": lambda: res(libc.unshare(0x10000000)),
    "unshare-mnt": lambda: res(libc.unshare(0x00020000)),
    "io_uring_setup": lambda: res(libc.syscall(425, 1, ctypes.c_void_p(0))),
    "clone3": lambda: res(libc.syscall(435, ctypes.c_void_p(0), 0)),
    "bpf": lambda: res(libc.syscall(321, 0, ctypes.c_void_p(0), 0)),
}
for name in sys.argv[1:]:
    print(name, calls[name]())
EOF
}

@test "--sandbox: TCP and UDP sockets get EACCES, AF_UNIX works; the mount still reads and writes" {
    calls_py
    printf 'hello\n' >"$T/a.txt"
    mkdir "$T/src" && cp "$T/a.txt" "$T/src/"
    mkrepo sb-net "$T/src"
    run -0 --separate-stderr mr --sandbox --repo sb-net -- sh -c "python3 $T/calls.py tcp udp unix && cat a.txt && echo new > b.txt && cat b.txt"
    assert_output "tcp EACCES
udp EACCES
unix ok
hello
new"
    server_is sb-net b.txt $'new\n'
    # --allow-net gives sockets back (nothing listens on port 9)
    run -0 --separate-stderr mr --sandbox --allow-net --repo sb-net -- python3 "$T/calls.py" tcp unix
    assert_output "tcp ECONNREFUSED
unix ok"
}

@test "--sandbox: ptrace, mount, unshare and bpf fail with EPERM; io_uring_setup and clone3 with ENOSYS; threads still start" {
    calls_py
    mkrepo sb-calls
    run -0 --separate-stderr mr --sandbox --repo sb-calls -- python3 "$T/calls.py" ptrace mount unshare-user unshare-mnt bpf io_uring_setup clone3
    assert_output "ptrace EPERM
mount EPERM
unshare-user EPERM
unshare-mnt EPERM
bpf EPERM
io_uring_setup ENOSYS
clone3 ENOSYS"
    # glibc falls back from clone3 to clone: threads and processes work
    run -0 --separate-stderr mr --sandbox --repo sb-calls -- python3 -c '
import threading, subprocess
t = threading.Thread(target=lambda: print("thread ran")); t.start(); t.join()
print(subprocess.run(["echo", "child ran"], capture_output=True, text=True).stdout.strip())'
    assert_output "thread ran
child ran"
}

@test "--sandbox -v logs each refused call on stderr; without -v nothing is logged" {
    calls_py
    mkrepo sb-log
    run -0 --separate-stderr mr --sandbox -v --repo sb-log -- python3 "$T/calls.py" ptrace tcp
    assert_output "ptrace EPERM
tcp EACCES"
    [[ "$stderr" == *"sandbox refused ptrace (pid "*"): Operation not permitted"* ]]
    [[ "$stderr" == *"sandbox refused socket (pid "*"): Permission denied"* ]]
    run -0 --separate-stderr mr --sandbox --repo sb-log -- python3 "$T/calls.py" ptrace
    assert_output "ptrace EPERM"
    [[ "$stderr" != *"refused"* ]]
}

@test "--sandbox: the host is read-only outside the mount and /tmp (Landlock); --private-tmp makes /tmp read-only too" {
    mkrepo sb-fs
    local abi
    abi=$(python3 -c 'import ctypes; print(ctypes.CDLL(None).syscall(444, None, 0, 1))')
    if [ "$abi" -lt 1 ]; then
        skip "this kernel has no Landlock (landlock_create_ruleset returned $abi)"
    fi
    local out=$T/outside
    mkdir -p "$out"
    local var=/var/tmp/mesa-sandbox-$$
    run -0 --separate-stderr mr --sandbox -v --repo sb-fs -- sh -c "
        echo x > $var 2>/dev/null; echo var=\$?
        mkdir /var/tmp/mesa-sb-dir-$$ 2>/dev/null; echo mkdir=\$?
        echo y > $out/t.txt; echo tmp=\$?
        echo z > in-mount.txt; echo mount=\$?
        echo n > /dev/null; echo null=\$?"
    assert_output "var=2
mkdir=1
tmp=0
mount=0
null=0"
    [ ! -e "$var" ]
    [ ! -e "/var/tmp/mesa-sb-dir-$$" ]
    [[ "$stderr" == *"Landlock ABI $abi"* ]]
    server_is sb-fs in-mount.txt $'z\n'
    run -0 --separate-stderr mr --sandbox --private-tmp --repo sb-fs -- sh -c "
        echo y > $out/u.txt 2>/dev/null; echo tmp=\$?
        case \$TMPDIR in /tmp/*|/*) echo p > \$TMPDIR/p && cat \$TMPDIR/p;; esac
        python3 -c 'import tempfile; f = tempfile.NamedTemporaryFile(); f.write(b\"ok\"); f.flush(); print(\"tempfile\", open(f.name).read())'"
    assert_output "tmp=2
p
tempfile ok"
    [ ! -e "$out/u.txt" ]
}

@test "--unset-env removes variables; --allow-net and --private-tmp need --sandbox; a TCP server needs --allow-net" {
    mkrepo sb-env
    SECRET_ONE=1 SECRET_TWO=2 run -0 --separate-stderr mr --unset-env SECRET_ONE --repo sb-env -- sh -c 'echo "${SECRET_ONE-unset} ${SECRET_TWO-unset}"'
    assert_output "unset 2"
    run -2 --separate-stderr mr --allow-net --repo sb-env -- true
    assert_output ""
    [[ "$stderr" == "mesarun: --allow-net: needs --sandbox" ]]
    run -2 --separate-stderr mr --sandbox --private-tmp --unset-env A=B --repo sb-env -- true
    [[ "$stderr" == *"--unset-env: must be a variable name (got 'A=B')"* ]]
    # a TCP server: the shim could not reach it from the sandbox
    run -2 --separate-stderr mr --sandbox --url "$MESAD_URL" --repo sb-env -- touch "$T/ran"
    [[ "$stderr" == "mesarun: --sandbox: the server $MESAD_URL is reached over TCP, which the sandbox refuses: use a unix: URL, or --allow-net" ]]
    [ ! -e "$T/ran" ]
    run -0 --separate-stderr mr --sandbox --allow-net --url "$MESAD_URL" --repo sb-env -- true
}

@test "--sandbox: the generated C project builds with make -j2 and passes make check" {
    local d=$T/proj
    python3 "$BATS_TEST_DIRNAME/gen-project.py" "$d" --modules 120 --seed 7 >/dev/null
    mkrepo sb-build "$d"
    run -0 --separate-stderr mr --sandbox --repo sb-build -- sh -c 'make -j2 >/dev/null && make check'
    assert_line "check: ok"
    run -0 --separate-stderr mr --sandbox --repo sb-build -- ./bin/genproj
    assert_output "$(cat "$d/expected.txt")"
}
