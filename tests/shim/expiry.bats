#!/usr/bin/env bats
# tests/shim/expiry.bats - conformance: the mount's one token expires.
# After expiry, calls that need the server (a file never read before: cold
# cache; a write that must copy the file up first) fail with EACCES and the
# process says once, in one stderr line, that the mount token expired;
# cached reads may keep working; nothing hangs. mesarun then cannot push:
# it keeps the pending writes, names them, exits 75, and `mesa push-pending
# DIR` pushes them with a fresh credential. --ttl outside 1..86400 is a bad
# option (2).
# Contract: shared/DESIGN.md §3 (errors, consistency contract), §7;
# docs/MOUNT.md (drain, push-pending); mesarun --help.
#
# Timing: mesad accepts a token up to 60 s after its exp (MESA_TOKEN_LEEWAY
# in core/token.h, tests/server/auth.bats), so with --ttl 2 the server
# refuses the mount's token only ~62 s after mesarun signed it. The
# commands below wait $EXPIRY_WAIT s (default 65) before the calls that
# must fail; a shim that also refuses calls past exp locally passes too.
# Each of the two long tests takes about that long.

bats_require_minimum_version 1.5.0
load ../lib/mount
load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

: "${EXPIRY_WAIT:=65}"

# setup_file, setup, teardown: the shim suites' defaults (tests/lib/mount.bash)

# mrt ARGS... : mr bounded in time: the expiry wait plus 120 s
mrt() {
    mount_cache
    timeout $((EXPIRY_WAIT + 120)) "$MESARUN" --cache-dir "$MOUNT_CACHE" "$@"
}

@test "after the token expired: a cold read fails with EACCES and one stderr line; nothing hangs" {
    # the cold files sit in their own directory and are large, so that
    # reading warm.txt cannot have fetched them along (batched fetches)
    mkdir -p "$T/s/cold"
    printf 'warm\n' >"$T/s/warm.txt"
    head -c 1048576 /dev/urandom >"$T/s/cold/c1.bin"
    head -c 1048577 /dev/urandom >"$T/s/cold/c2.bin"
    head -c 1048578 /dev/urandom >"$T/s/cold/c3.bin"
    mkrepo ex-read "$T/s"
    run --separate-stderr mrt --ttl 2 --repo ex-read -- sh -c "
        cat warm.txt
        sleep $EXPIRY_WAIT
        # one process, three calls that need the server: two cold reads and
        # an open for writing that must copy the file up
        $P open cold/c1.bin -- open cold/c2.bin r -- open cold/c3.bin w >$T/probe.out 2>$T/probe.err
        timeout 60 cat cold/c1.bin >$T/cat.out 2>$T/cat.err; echo \$? >$T/cat.rc
        timeout 60 cat warm.txt >$T/warm.out 2>$T/warm.err; echo \$? >$T/warm.rc
        exit 5"
    local mr_status=$status mr_stderr=$stderr
    assert_output "warm"
    run cat "$T/probe.out"
    assert_output "EACCES
EACCES
EACCES"
    # one line for the process, however many calls failed
    run cat "$T/probe.err"
    [ "${#lines[@]}" -eq 1 ]
    assert_output --regexp '[Ee]xpired'
    assert_output --partial token
    # cat: its own message and the shim's one line
    [ "$(cat "$T/cat.rc")" = 1 ]
    [ ! -s "$T/cat.out" ]
    run cat "$T/cat.err"
    assert_line "cat: cold/c1.bin: Permission denied"
    assert_line --regexp '[Ee]xpired'
    [ "${#lines[@]}" -eq 2 ]
    # a cached read may keep working, or fail the same way: never hang
    local rc
    rc=$(cat "$T/warm.rc")
    if [ "$rc" = 0 ]; then
        [ "$(cat "$T/warm.out")" = warm ]
    else
        [ "$rc" = 1 ]
        grep -q 'Permission denied' "$T/warm.err"
    fi
    # nothing was written (the failed open for writing wrote nothing):
    # mesarun exits with the command's status, not 75
    [ "$mr_status" -eq 5 ] || {
        echo "mesarun exited $mr_status; stderr: $mr_stderr" >&2
        false
    }
}

@test "after the token expired mesarun cannot push: exit 75, the write is kept; mesa push-pending pushes it" {
    mkrepo ex-push
    run --separate-stderr mrt --ttl 2 --repo ex-push -- sh -c "
        echo early > early.txt
        sleep $EXPIRY_WAIT
        echo late > late.txt
        exit 0"
    [ "$status" -eq 75 ] || {
        echo "mesarun exited $status; stderr: $stderr" >&2
        false
    }
    # the early write went out while the token was valid; the late one not
    server_is ex-push early.txt $'early\n'
    run -1 server_has ex-push late.txt
    # mesarun named what is pending and where it kept it
    [[ "$stderr" == *late.txt* ]]
    local dir
    dir=$(grep -o '/[^ :'"'"'"]*/mount-[0-9][0-9]*' <<<"$stderr" | head -1)
    [ -n "$dir" ] || {
        echo "no runtime directory (…/mount-PID) named in: $stderr" >&2
        false
    }
    [ -d "$dir" ]
    # a fresh credential pushes it; a second run has nothing left to push
    run -0 mesa push-pending "$dir"
    server_is ex-push late.txt $'late\n'
    server_is ex-push early.txt $'early\n'
    run -0 mesa push-pending "$dir"
    server_is ex-push late.txt $'late\n'
}

@test "--ttl outside 1..86400 is a bad option (exit 2, one line, the command never runs)" {
    mkrepo ex-ttl
    local ttl
    for ttl in 0 86401 -5 abc ''; do
        run --separate-stderr mrt --ttl "$ttl" --repo ex-ttl -- echo never
        [ "$status" -eq 2 ] || {
            echo "--ttl '$ttl': exit $status" >&2
            false
        }
        [ -z "$output" ]
        [ "${#stderr_lines[@]}" -eq 1 ]
    done
    run -0 --separate-stderr mrt --ttl 86400 --repo ex-ttl -- echo ran
    assert_output ran
    run -0 --separate-stderr mrt --ttl 1 --repo ex-ttl -- echo ran
    assert_output ran
}
