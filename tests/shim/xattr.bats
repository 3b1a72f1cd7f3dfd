#!/usr/bin/env bats
# tests/shim/xattr.bats - extended attributes in a mount (shim/xattr.c,
# core/vfs_meta.c): user.* names are the server's per-path metadata, so a
# value set in one mount is seen by another and by `mesa meta`; user.org
# and user.repo are read-only; other namespaces are not supported; errno as
# a kernel filesystem answers; a rename carries the metadata along; the
# same under `mesarun --sandbox` (through mesarun's proxy).
# Python's os.*xattr and ctypes call the libc functions the shim wraps;
# setfattr/getfattr (Debian's attr) are used when installed.

bats_require_minimum_version 1.5.0
load ../lib/mount

setup_file() {
    mesad_start
    mesa_env unix
    export XT=$BATS_FILE_TMPDIR
    # x.py OP ARGS...: one xattr call, printing the value / list, or the
    # errno name on failure (exit 1)
    cat >"$XT/x.py" <<'EOF'
import ctypes, errno, os, sys
op, args = sys.argv[1], sys.argv[2:]
flags = {"create": os.XATTR_CREATE, "replace": os.XATTR_REPLACE}
try:
    if op == "get":
        print(os.getxattr(args[0], args[1]).decode())
    elif op == "lget":
        print(os.getxattr(args[0], args[1], follow_symlinks=False).decode())
    elif op == "list":
        print(" ".join(sorted(os.listxattr(args[0]))))
    elif op == "set":
        f = flags[args[3]] if len(args) > 3 else 0
        os.setxattr(args[0], args[1], args[2].encode(), f)
    elif op == "rm":
        os.removexattr(args[0], args[1])
    elif op == "fdset":
        fd = os.open(args[0], os.O_RDONLY)
        os.setxattr(fd, args[1], args[2].encode())
        print(os.getxattr(fd, args[1]).decode(), " ".join(sorted(os.listxattr(fd))))
        os.removexattr(fd, args[1])
        print(" ".join(sorted(os.listxattr(fd))))
    elif op == "sizes":
        # getxattr/listxattr with size 0 answer the size needed; too small is ERANGE
        libc = ctypes.CDLL(None, use_errno=True)
        p, n = args[0].encode(), args[1].encode()
        need = libc.getxattr(p, n, None, 0)
        lneed = libc.listxattr(p, None, 0)
        buf = ctypes.create_string_buffer(4)
        small = libc.getxattr(p, n, buf, 1)
        e1 = errno.errorcode[ctypes.get_errno()]
        lsmall = libc.listxattr(p, buf, 2)
        e2 = errno.errorcode[ctypes.get_errno()]
        lbuf = ctypes.create_string_buffer(lneed)
        got = libc.listxattr(p, lbuf, lneed)
        print(need, lneed, small, e1, lsmall, e2, got)
except OSError as e:
    print(errno.errorcode[e.errno])
    sys.exit(1)
EOF
    mkdir -p "$XT/bin" "$XT/src/d/e"
    printf '#!/bin/sh\nexec python3 %s/x.py "$@"\n' "$XT" >"$XT/bin/x"
    chmod +x "$XT/bin/x"
    export PATH="$XT/bin:$PATH"
    echo a >"$XT/src/f"
    echo b >"$XT/src/g"
    echo y >"$XT/src/d/e/y"
    ln -s f "$XT/src/link"
}
teardown_file() { mesad_stop; }

setup() {
    R="xa$BATS_TEST_NUMBER"
    mkrepo "$R" "$XT/src"
}

# in_r CMD: run CMD (one string) in the repo's mount; $output/$status
in_r() { run --separate-stderr mr --repo "$R" -- sh -c "$1"; }

@test "setxattr then getxattr and listxattr: user.* names, with the read-only user.org and user.repo" {
    in_r 'x set f user.owner team-a && x get f user.owner && x list f && x get f user.org && x get f user.repo'
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = "team-a" ]
    [ "${lines[1]}" = "user.org user.owner user.repo" ]
    [ "${lines[2]}" = "acme" ]
    [ "${lines[3]}" = "$R" ]
}

@test "setfattr -n user.owner -v team-a f; getfattr -d f dumps the user.* attributes" {
    command -v setfattr >/dev/null && command -v getfattr >/dev/null || skip "attr (setfattr/getfattr) not installed"
    in_r 'setfattr -n user.owner -v team-a f && getfattr -d f && setfattr -x user.owner f && getfattr -d f'
    [ "$status" -eq 0 ]
    [[ "$output" == *'# file: f'*'user.org="acme"'*'user.owner="team-a"'*"user.repo=\"$R\""* ]]
    [ "$(grep -c user.owner <<<"$output")" -eq 1 ]
}

@test "errno: ENODATA for a missing name, EEXIST with XATTR_CREATE, ENODATA with XATTR_REPLACE, ENODATA to remove a missing one" {
    in_r 'x get f user.nope; x set f user.k v1; x set f user.k v2 create; x set f user.other v replace; x rm f user.nope; x get f user.k'
    [ "${lines[0]}" = "ENODATA" ]
    [ "${lines[1]}" = "EEXIST" ]
    [ "${lines[2]}" = "ENODATA" ]
    [ "${lines[3]}" = "ENODATA" ]
    [ "${lines[4]}" = "v1" ]
    in_r 'x set f user.k v3 replace && x set f user.new n create && x get f user.k && x get f user.new'
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = "v3" ]
    [ "${lines[1]}" = "n" ]
}

@test "removexattr deletes the name; the value is gone from the server too" {
    "$MESA" meta set "$R:f" owner=team-a tier=1
    in_r 'x rm f user.owner && x list f && x get f user.owner'
    [ "$status" -eq 1 ]
    [ "${lines[0]}" = "user.org user.repo user.tier" ]
    [ "${lines[1]}" = "ENODATA" ]
    run -0 "$MESA" meta get "$R:f"
    [ "$output" = "$(printf 'org=acme\nrepo=%s\ntier=1' "$R")" ]
}

@test "names outside user. are ENOTSUP; user.org and user.repo are EPERM to set or remove" {
    in_r 'x set f trusted.k v; x get f security.selinux; x set f system.posix_acl_access v; x rm f trusted.k; x set f user.org x; x set f user.repo x; x rm f user.org; x get f user.org'
    [ "${lines[0]}" = "ENOTSUP" ]
    [ "${lines[1]}" = "ENOTSUP" ]
    [ "${lines[2]}" = "ENOTSUP" ]
    [ "${lines[3]}" = "ENOTSUP" ]
    [ "${lines[4]}" = "EPERM" ]
    [ "${lines[5]}" = "EPERM" ]
    [ "${lines[6]}" = "EPERM" ]
    [ "${lines[7]}" = "acme" ]
}

@test "a path that does not exist is ENOENT for every call" {
    in_r 'x get nope user.k; x set nope user.k v; x list nope; x rm nope user.k; x get d/nope/z user.k'
    [ "${lines[*]}" = "ENOENT ENOENT ENOENT ENOENT ENOENT" ]
    run -0 "$MESA" meta get "$R:nope"
    [ "$output" = "$(printf 'org=acme\nrepo=%s' "$R")" ]
}

@test "size 0 answers the size needed; a buffer too small is ERANGE" {
    "$MESA" meta set "$R:f" owner=team-a
    in_r 'x sizes f user.owner'
    [ "$status" -eq 0 ]
    # "team-a" = 6; "user.owner\0user.org\0user.repo\0" = 11 + 9 + 10 = 30
    read -r need lneed small e1 lsmall e2 got _ <<<"$output"
    [ "$need" = 6 ]
    [ "$lneed" = 30 ]
    [ "$small" = -1 ] && [ "$e1" = ERANGE ]
    [ "$lsmall" = -1 ] && [ "$e2" = ERANGE ]
    [ "$got" = 30 ]
}

@test "a read-only repo: getxattr works, setxattr and removexattr are EROFS" {
    "$MESA" meta set "$R:f" owner=team-a
    run --separate-stderr mr --repo "$R" --read-only -- sh -c 'x get f user.owner; x set f user.k v; x rm f user.owner'
    [ "${lines[*]}" = "team-a EROFS EROFS" ]
    run -0 "$MESA" meta get "$R:f" owner
    [ "$output" = "team-a" ]
}

@test "directories, symlinks (getxattr follows, lgetxattr does not) and descriptors" {
    in_r 'x set d user.kind dir && x get d/ user.kind && x set link user.via link && x get f user.via && x lget link user.via; x fdset g user.fd v'
    [ "${lines[0]}" = "dir" ]
    [ "${lines[1]}" = "link" ]
    [ "${lines[2]}" = "ENODATA" ]
    [ "${lines[3]}" = "v user.fd user.org user.repo" ]
    [ "${lines[4]}" = "user.org user.repo" ]
    run -0 "$MESA" meta get "$R:f" via
    [ "$output" = "link" ]
}

@test "the repo root takes attributes; the prefix and org directories have none (ENODATA, ENOTSUP to set)" {
    in_r 'x set . user.top yes && x get /mesa/acme/'"$R"' user.top; x list /mesa/acme; x get /mesa/acme user.k; x set /mesa/acme user.k v; x get /mesa/acme user.org'
    [ "$output" = "$(printf 'yes\n\nENODATA\nENOTSUP\nENODATA')" ]
    run -0 "$MESA" meta get "$R:" top
    [ "$output" = "yes" ]
}

@test "values set in one mount are seen by another mount and by mesa meta get, and the reverse" {
    in_r 'x set f user.owner team-a'
    [ "$status" -eq 0 ]
    run --separate-stderr mr --repo "$R" --read-only -- sh -c 'x get f user.owner'
    [ "$output" = "team-a" ]
    run -0 "$MESA" meta get "$R:f" owner
    [ "$output" = "team-a" ]
    run -0 "$MESA" meta set "/mesa/acme/$R/f" owner=team-b
    in_r 'x get f user.owner'
    [ "$output" = "team-b" ]
}

@test "a file written in the mount (not pushed yet) takes attributes at once" {
    in_r 'echo new > n && x set n user.k v && x get n user.k'
    [ "$status" -eq 0 ]
    [ "$output" = "v" ]
    run -0 "$MESA" meta get "$R:n" k
    [ "$output" = "v" ]
}

@test "mv in the mount carries the metadata (a file, and a directory's whole subtree)" {
    in_r 'x set f user.owner team-a && mv f moved && x get moved user.owner && x get f user.owner'
    [ "${lines[0]}" = "team-a" ]
    [ "${lines[1]}" = "ENOENT" ]
    in_r 'x set d/e/y user.deep yes && mv d dd && x get dd/e/y user.deep'
    [ "$output" = "yes" ]
    run -0 "$MESA" meta get "$R:dd/e/y" deep
    [ "$output" = "yes" ]
    run -1 "$MESA" meta get "$R:d/e/y" deep
    [[ "$stderr$output" == *"has no key 'deep'"* ]]
}

@test "a rename onto a file replaces its attributes with the moved file's" {
    in_r 'x set f user.a 1 && x set g user.b 2 && mv f g && x list g'
    [ "$status" -eq 0 ]
    [ "$output" = "user.a user.org user.repo" ]
}

@test "ls -l, cp -a and find work in a mount with attributes (no crash, normal output)" {
    in_r 'x set f user.owner team-a && ls -l f | cut -c1-10 && cp -a f copy && cat copy && find . -name f'
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = "-rw-r--r--" ]
    [ "${lines[1]}" = "a" ]
    [ "${lines[2]}" = "./f" ]
}

@test "outside the mount the xattr calls reach the real filesystem" {
    echo x >"$BATS_TEST_TMPDIR/plain"
    run mr --repo "$R" -- sh -c "x get $BATS_TEST_TMPDIR/plain user.nope; x list $BATS_TEST_TMPDIR/plain"
    # whatever the host filesystem answers, not the mount's user.org/user.repo
    [[ "$output" != *"user.org"* ]]
    [[ "${lines[0]}" == ENODATA || "${lines[0]}" == ENOTSUP ]]
}

@test "--sandbox: getxattr, setxattr, removexattr and mv carry-over go through mesarun's proxy" {
    run --separate-stderr mr --sandbox --repo "$R" -- sh -c 'x set f user.owner team-a && x get f user.owner && x list f && mv f h && x get h user.owner && x rm h user.owner; x get h user.owner; x set h user.org x'
    [ "${lines[0]}" = "team-a" ]
    [ "${lines[1]}" = "user.org user.owner user.repo" ]
    [ "${lines[2]}" = "team-a" ]
    [ "${lines[3]}" = "ENODATA" ]
    [ "${lines[4]}" = "EPERM" ]
    run -0 "$MESA" meta get "$R:h"
    [ "$output" = "$(printf 'org=acme\nrepo=%s' "$R")" ]
}

@test "--sandbox, read-only repo: getxattr works, setxattr is EROFS" {
    "$MESA" meta set "$R:f" owner=team-a
    run --separate-stderr mr --sandbox --repo "$R" --read-only -- sh -c 'x get f user.owner; x set f user.k v'
    [ "${lines[*]}" = "team-a EROFS" ]
}
