#!/usr/bin/env bats
# tests/shim/sandbox.bats - `mesarun --sandbox` (tools/mesarun_sandbox.c):
# the seccomp deny list answers with errnos (EACCES for sockets other than
# AF_UNIX, EPERM for ptrace, mounts and namespaces, ENOSYS for io_uring and
# clone3), -v logs each refusal, Landlock leaves the host read-only outside
# the run's directories and /tmp (or a private TMPDIR), and the mount still
# reads and writes. --unset-env removes variables. No credential inside:
# COMMAND's server is mesarun's proxy (tools/mesarun_proxy.c), which forwards
# only the mount's own operations; the caches are read-only and filled by
# mesarun; the embedded server's key and data, mesarun's memory and other
# processes' environments are unreadable.

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

@test "--sandbox, cold cache: files, symlinks and directories read as without it" {
    mkdir -p "$T/src/d/e"
    printf 'one\n' >"$T/src/d/one.txt"
    printf 'two\n' >"$T/src/d/e/two.txt"
    ln -s d/one.txt "$T/src/link"
    ln -s d "$T/src/dlink"
    mkrepo sb-cold "$T/src"
    mount_cache
    local script='readlink link dlink; cat link dlink/e/two.txt; ls -R | tr "\n" " "; echo; stat -c "%n %s %F" d/one.txt link'
    run -0 --separate-stderr mr --repo sb-cold -- sh -c "$script"
    local want=$output
    rm -rf "$MOUNT_CACHE"
    run -0 --separate-stderr mr --sandbox --repo sb-cold -- sh -c "$script"
    assert_output "$want"
    assert_line -n 0 d/one.txt
    assert_line -n 3 "two"
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

@test "--unset-env removes variables; --allow-net and --private-tmp need --sandbox" {
    mkrepo sb-env
    SECRET_ONE=1 SECRET_TWO=2 run -0 --separate-stderr mr --unset-env SECRET_ONE --repo sb-env -- sh -c 'echo "${SECRET_ONE-unset} ${SECRET_TWO-unset}"'
    assert_output "unset 2"
    run -2 --separate-stderr mr --allow-net --repo sb-env -- true
    assert_output ""
    [[ "$stderr" == "mesarun: --allow-net: needs --sandbox" ]]
    run -2 --separate-stderr mr --sandbox --private-tmp --unset-env A=B --repo sb-env -- true
    [[ "$stderr" == *"--unset-env: must be a variable name (got 'A=B')"* ]]
}

@test "--sandbox with a server over TCP: the mount reads and writes through mesarun's proxy, without --allow-net" {
    calls_py
    printf 'over tcp\n' >"$T/a.txt"
    mkdir "$T/src" && cp "$T/a.txt" "$T/src/"
    mkrepo sb-tcp "$T/src"
    run -0 --separate-stderr mr --sandbox --url "$MESAD_URL" --repo sb-tcp -- sh -c "python3 $T/calls.py tcp && cat a.txt && echo t > t.txt && echo \$MESA_URL"
    assert_line -n 0 "tcp EACCES"
    assert_line -n 1 "over tcp"
    [[ "${lines[2]}" == unix:*/proxy.sock ]]
    server_is sb-tcp t.txt $'t\n'
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

# uc.py: an HTTP connection over a Unix socket. px.py FILE: HTTP calls on
# $MESA_URL (the proxy's socket), one per line of FILE: "METHOD PATH [JSON
# BODY]"; prints "METHOD PATH STATUS [ERROR CODE]" (PATH without its query).
px_py() {
    cat >"$T/uc.py" <<'EOF'
import http.client, socket
class UC(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("mesad", timeout=20)
        self.p = path
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self.p)
EOF
    cat >"$T/px.py" <<'EOF'
import json, os, sys
from uc import UC
url = os.environ["MESA_URL"]
assert url.startswith("unix:"), url
c = UC(url[5:])
for line in open(sys.argv[1]):
    parts = line.rstrip("\n").split(" ", 2)
    method, path = parts[0], parts[1]
    body = parts[2] if len(parts) > 2 else None
    h = {"Content-Type": "application/json"} if body else {}
    c.request(method, "/v1" + path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    out = [method, path.split("?")[0], str(r.status)]
    if r.status >= 400:
        try:
            out.append(json.loads(data)["error"]["code"])
        except Exception:
            out.append("?")
    print(" ".join(out))
EOF
}

@test "--sandbox: COMMAND holds no credential; the proxy forwards only the mount's own operations" {
    px_py
    mkdir "$T/src" && printf 'hello\n' >"$T/src/a.txt"
    mkrepo sb-px "$T/src"
    mkdir "$T/osrc" && printf 'other\n' >"$T/osrc/o.txt"
    mkrepo sb-other "$T/osrc"
    api GET "/$MESA_ORG/sb-px/bookmarks/main"
    local ch other_oid other_commit
    ch=$(jq -r .change_id <<<"$body")
    other_oid=$(server_oid sb-other o.txt)
    other_commit=$(server_commit sb-other)
    local Z=zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz
    cat >"$T/calls.txt" <<EOF
GET /whoami
GET /$MESA_ORG/sb-px/tree?change_id=$ch
GET /$MESA_ORG/sb-px/content?change_id=main&path=a.txt
GET /$MESA_ORG/sb-px/changes/$ch
GET /$MESA_ORG/sb-px/tree
GET /$MESA_ORG/sb-px/tree?commit=$other_commit
GET /$MESA_ORG/sb-px/tree?change_id=$ch&change_id=$other_commit
PATCH /$MESA_ORG/sb-px/bookmarks/main {"change_id":"$Z"}
DELETE /$MESA_ORG/sb-px/bookmarks/main
POST /$MESA_ORG/sb-px/bookmarks {"name":"evil","change_id":"$ch"}
POST /$MESA_ORG/sb-px/changes {"base_change_id":"$Z","message":"x","files":[]}
DELETE /$MESA_ORG/sb-px
POST /$MESA_ORG/repos {"name":"evil"}
GET /$MESA_ORG/sb-other/tree?change_id=main
GET /$MESA_ORG/sb-px/blobs/$other_oid
POST /$MESA_ORG/sb-px/blobs/batch {"oids":["$other_oid"]}
POST /_mesarun/tree {"org":"$MESA_ORG","repo":"sb-px","commit":"$other_commit"}
POST /_mesarun/blobs {"org":"$MESA_ORG","repo":"sb-px","oids":["$other_oid"],"sizes":[6]}
GET /$MESA_ORG/keys
EOF
    # (ADMIN_KEY and ADMIN_S are the test harness's own variables)
    run -0 --separate-stderr env -u ADMIN_KEY -u ADMIN_S "$MESARUN" --cache-dir "$T/cache" --sandbox --repo sb-px -- sh -c "env | grep -c -e MESA_ACCESS_TOKEN -e MESA_API_KEY -e '$MESA_API_KEY'; grep -rl eyJ \$MESA_MOUNT | wc -l; python3 $T/px.py $T/calls.txt"
    # no variable, and no file of the run, holds a key or a token (a JWT: eyJ...)
    assert_output "0
0
GET /whoami 200
GET /$MESA_ORG/sb-px/tree 200
GET /$MESA_ORG/sb-px/content 200
GET /$MESA_ORG/sb-px/changes/$ch 200
GET /$MESA_ORG/sb-px/tree 403 SANDBOX_DENIED
GET /$MESA_ORG/sb-px/tree 403 SANDBOX_DENIED
GET /$MESA_ORG/sb-px/tree 403 SANDBOX_DENIED
PATCH /$MESA_ORG/sb-px/bookmarks/main 403 SANDBOX_DENIED
DELETE /$MESA_ORG/sb-px/bookmarks/main 403 SANDBOX_DENIED
POST /$MESA_ORG/sb-px/bookmarks 403 SANDBOX_DENIED
POST /$MESA_ORG/sb-px/changes 403 SANDBOX_DENIED
DELETE /$MESA_ORG/sb-px 403 SANDBOX_DENIED
POST /$MESA_ORG/repos 403 SANDBOX_DENIED
GET /$MESA_ORG/sb-other/tree 403 SANDBOX_DENIED
GET /$MESA_ORG/sb-px/blobs/$other_oid 403 SANDBOX_DENIED
POST /$MESA_ORG/sb-px/blobs/batch 403 SANDBOX_DENIED
POST /_mesarun/tree 403 SANDBOX_DENIED
POST /_mesarun/blobs 403 SANDBOX_DENIED
GET /$MESA_ORG/keys 403 SANDBOX_DENIED"
    # nothing moved or appeared
    api GET "/$MESA_ORG/sb-px/bookmarks/main"
    [ "$(jq -r .change_id <<<"$body")" = "$ch" ]
    api GET "/$MESA_ORG/sb-px/bookmarks/evil"
    expect 404
    api GET "/$MESA_ORG/evil"
    expect 404
    # the mesa CLI inside gets the proxy's reason; -v logs the refusal
    run -1 --separate-stderr mr --sandbox -v --repo sb-px -- "$MESA" bookmark delete sb-px main
    [[ "$stderr" == *"mesa: bookmark delete: mesarun --sandbox: DELETE /v1/$MESA_ORG/sb-px/bookmarks/main is not an operation of this mount"* ]]
    [[ "$stderr" == *"mesarun: proxy refused DELETE /v1/$MESA_ORG/sb-px/bookmarks/main: "* ]]
    api GET "/$MESA_ORG/sb-px/bookmarks/main"
    expect 200
}

@test "--sandbox: the event stream of a mounted repo goes through the proxy" {
    px_py
    mkrepo sb-ev
    cat >"$T/ev.py" <<'EOF'
import os
from uc import UC
c = UC(os.environ["MESA_URL"][5:])
c.request("GET", "/v1/%s/sb-ev/events" % os.environ["MESA_ORG"], headers={"Accept": "text/event-stream"})
r = c.getresponse()
print("status", r.status, r.getheader("Content-Type"))
with open("ev.txt", "w") as f:  # its push is an event
    f.write("x\n")
for raw in r:
    line = raw.decode().strip()
    if line.startswith("event:"):
        print(line)
        break
EOF
    run -0 --separate-stderr timeout 30 "$MESARUN" --cache-dir "$T/cache" --sandbox --repo sb-ev -- python3 "$T/ev.py"
    assert_line -n 0 --regexp '^status 200 text/event-stream'
    assert_line -n 1 --regexp '^event: change\.'
    server_is sb-ev ev.txt $'x\n'
}

@test "--sandbox: the caches and the state are read-only; mesarun fills the caches with verified blobs; ignored files still work" {
    # the test's cache is beneath /tmp, which --sandbox leaves writable
    # (Landlock only adds rights): --private-tmp makes /tmp read-only
    mkdir "$T/src" && printf 'hello\n' >"$T/src/a.txt" && printf '*.o\n' >"$T/src/.gitignore"
    mkrepo sb-ro "$T/src"
    local oid
    oid=$(server_oid sb-ro a.txt)
    local b=blobs/${oid:0:2}/$oid
    mount_cache
    run -0 --separate-stderr mr --sandbox --private-tmp --repo sb-ro -- sh -c "
        cat a.txt
        test -f \$MESA_CACHE/$b && echo cached
        chmod u+w \$MESA_CACHE/$b 2>/dev/null; (echo evil > \$MESA_CACHE/$b) 2>/dev/null; echo write=\$?
        rm -f \$MESA_CACHE/$b 2>/dev/null; echo rm=\$?
        (echo x > \$MESA_CACHE/blobs/new) 2>/dev/null; echo new=\$?
        (echo x > \$MESA_CACHE/trees/new) 2>/dev/null; echo tree=\$?
        mv \$MESA_CACHE/trees \$MESA_CACHE/t2 2>/dev/null; echo mv=\$?
        (echo junk >> \$MESA_MOUNT/state) 2>/dev/null; echo state=\$?
        echo obj > x.o && cat x.o"
    assert_output "hello
cached
write=2
rm=1
new=2
tree=2
mv=1
state=2
obj"
    [ "$(cat "$MOUNT_CACHE/$b")" = hello ]
    [ ! -e "$MOUNT_CACHE/blobs/new" ]
    # the next run (not sandboxed) has the same content; the ignored file stayed local
    run -0 --separate-stderr mr --repo sb-ro -- sh -c 'cat a.txt x.o'
    assert_output "hello
obj"
    ! server_has sb-ro x.o
}

@test "--sandbox: nothing inside can read a credential: the embedded server's key and data, mesarun's environment and memory" {
    local abi
    abi=$(python3 -c 'import ctypes; print(ctypes.CDLL(None).syscall(444, None, 0, 1))')
    if [ "$abi" -lt 1 ]; then
        skip "this kernel has no Landlock (landlock_create_ruleset returned $abi)"
    fi
    mkrepo sb-cred
    # outside /tmp, which the sandbox may write (and so read)
    local base
    base=$(mktemp -d /var/tmp/mesa-sb-cred.XXXXXX)
    mkdir -p "$base/config/mesa" "$base/data/mesa"
    echo '{"api_key":"the-secret-key","org":"local"}' >"$base/config/mesa/credentials.json"
    echo 'SQLite' >"$base/data/mesa/mesad.db"
    echo 'fine' >"$base/config/other.txt"
    # the key only in mesarun's environment, as `MESA_API_KEY=... mesarun` gives it
    XDG_CONFIG_HOME=$base/config XDG_DATA_HOME=$base/data \
        run -0 --separate-stderr env -u ADMIN_KEY -u ADMIN_S "$MESARUN" --cache-dir "$T/cache" --sandbox --repo sb-cred -- sh -c "
        cat \$XDG_CONFIG_HOME/mesa/credentials.json 2>/dev/null; echo key=\$?
        cat \$XDG_DATA_HOME/mesa/mesad.db 2>/dev/null; echo data=\$?
        ls \$XDG_CONFIG_HOME/mesa
        cat \$XDG_CONFIG_HOME/other.txt
        tr '\\0' '\\n' </proc/\$PPID/environ | grep -c '$MESA_API_KEY'
        head -c1 /proc/\$PPID/mem >/dev/null 2>&1; echo mem=\$?"
    rm -rf "$base"
    assert_output "key=1
data=1
credentials.json
fine
0
mem=1"
}

@test "--sandbox: a forged journal record cannot make mesarun push a file from outside the mount" {
    mkrepo sb-forge
    printf 'not for the server\n' >"$T/secret.txt"
    local id=0123456789abcdef0123456789abcdef
    # the write that names a symlink is refused, and holds the batch back:
    # mesarun keeps it pending (exit 75) rather than push what it points to
    run -75 --separate-stderr mr --sandbox --grace 0 --repo sb-forge -- sh -c "
        ln -s $T/secret.txt \$MESA_MOUNT/staging/$id
        printf 'W\t0\t1\t$id\tleak.txt\n' >> \$MESA_MOUNT/journal
        printf 'W\t0\t1\t../../..$T/secret.txt\tleak2.txt\n' >> \$MESA_MOUNT/journal
        echo fine > ok.txt"
    [[ "$stderr" == *"could not push 2 path(s): Too many levels of symbolic links"* ]]
    [[ "$stderr" == *"$MESA_ORG/sb-forge/ok.txt"* ]]
    [[ "$stderr" != *"leak2.txt"* ]] # not even a path: the record is malformed
    ! server_has sb-forge leak.txt
    ! server_has sb-forge leak2.txt
    [[ "$stderr" != *"not for the server"* ]]
}
