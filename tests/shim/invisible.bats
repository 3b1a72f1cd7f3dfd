#!/usr/bin/env bats
# tests/shim/invisible.bats - conformance: the shim is invisible to
# processes that never touch /mesa. Each command runs twice from the same
# fresh copy of a work directory under $BATS_TEST_TMPDIR: once plainly and
# once with the shim, either preloaded directly (LD_PRELOAD=$MESA_SHIM, no
# mesarun, no MESA_MOUNT) or inside a mesarun (the mount's variables set,
# --cwd in the work directory); stdout, stderr and the exit status must be
# identical. Also: no extra descriptors or threads at start-up, no new
# environment variables, and /mesa does not exist for a process that is
# not in a mount.
# Contract: shared/DESIGN.md §6 ("invisible to processes that never touch
# /mesa: no network, no threads, no output at start-up").

bats_require_minimum_version 1.5.0
load ../lib/mount
load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

setup_file() {
    mesad_start
    mesa_env unix
    # the template of the work directory
    local t=$BATS_FILE_TMPDIR/template
    mkdir -p "$t/sub/deep"
    printf 'pear\napple\nfig\n' >"$t/fruit.txt"
    printf 'hello\n' >"$t/a.txt"
    printf 'deep\n' >"$t/sub/deep/d.txt"
    ln -s a.txt "$t/link"
    printf 'out.txt: in.txt\n\tsh -c "tr a-z A-Z < in.txt > out.txt"\n\tcat out.txt\n' >"$t/Makefile"
    printf 'make me\n' >"$t/in.txt"
    cat >"$t/hello.c" <<'EOF'
#include <stdio.h>
int main(void)
{
    puts("hello from c");
    return 4;
}
EOF
    touch -h -d '2022-02-02 02:02:02' "$t" "$t"/* "$t/sub" "$t/sub/deep" "$t/sub/deep/d.txt"
    mkrepo inv-repo
}
teardown_file() { mesad_stop; }

setup() {
    mesa_env unix
    export LC_ALL=C TZ=UTC
    T=$BATS_TEST_TMPDIR
    W=$T/work
    unset MESA_MOUNT MESA_CWD MESA_FDS MESA_PRELOAD MESA_CACHE
}

teardown() {
    mr_kill_bg
}

# reset_w: the work directory, fresh from the template (same path, same
# times), so that both runs of a command see the same thing
reset_w() {
    rm -rf "$W"
    cp -a "$BATS_FILE_TMPDIR/template" "$W"
}

# run_plain TAG CMD / run_preload TAG CMD / run_mounted TAG CMD: run the sh
# command string CMD in a fresh $W; $T/TAG.out, .err, .rc
run_plain() {
    reset_w
    local rc=0
    # (a sanitizer build: the plain run has the sanitizer runtimes too, so
    # that only the shim differs)
    if [ -n "$SAN_PRELOAD" ]; then
        (cd "$W" && timeout 120 env LD_PRELOAD="${SAN_PRELOAD%:}" sh -c "$2") </dev/null \
            >"$T/$1.out" 2>"$T/$1.err" || rc=$?
    else
        (cd "$W" && timeout 120 env -u LD_PRELOAD sh -c "$2") </dev/null >"$T/$1.out" 2>"$T/$1.err" || rc=$?
    fi
    echo "$rc" >"$T/$1.rc"
}
run_preload() {
    reset_w
    local rc=0
    (cd "$W" && timeout 120 env LD_PRELOAD="$SAN_PRELOAD$MESA_SHIM" sh -c "$2") </dev/null \
        >"$T/$1.out" 2>"$T/$1.err" || rc=$?
    echo "$rc" >"$T/$1.rc"
}
run_mounted() {
    reset_w
    mount_cache
    local rc=0
    timeout 120 "$MESARUN" --cache-dir "$MOUNT_CACHE" --repo inv-repo --cwd "$W" -- sh -c "$2" \
        </dev/null >"$T/$1.out" 2>"$T/$1.err" || rc=$?
    echo "$rc" >"$T/$1.rc"
}

# same A B: stdout, stderr and status of runs A and B are identical
same() {
    local f ok=0
    for f in out err rc; do
        if ! cmp -s "$T/$1.$f" "$T/$2.$f"; then
            echo "--- $f differs ($1 vs $2):" >&2
            diff "$T/$1.$f" "$T/$2.$f" >&2 || true
            ok=1
        fi
    done
    return $ok
}

# invisible MODE CMD [STATUS]: CMD behaves the same plainly and under MODE
# (preload or mounted); its plain status is STATUS (default 0)
invisible() {
    run_plain plain "$2"
    "run_$1" shim "$2"
    [ "$(cat "$T/plain.rc")" = "${3:-0}" ] || {
        echo "plain run of '$2' exited $(cat "$T/plain.rc"), expected ${3:-0}:" >&2
        cat "$T/plain.err" >&2
        return 1
    }
    same plain shim
}

# the command set of the suite (each a sh -c string run in $W)
CMDS=(
    'ls -la /usr/bin | head -20'
    'ls -la . sub && ls -lR sub && cat a.txt link'
    'sort fruit.txt && sort -r fruit.txt | head -1'
    'python3 -c "import os, sys; print(sorted(os.listdir(\".\"))); print(os.getcwd() == os.environ[\"PWD\"]); sys.stderr.write(\"to stderr\n\"); sys.exit(3)"'
    'make -C . && make'
    'gcc -O2 -o hello hello.c && ./hello; echo "status $?"; sha256sum hello'
    'tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - . | sha256sum && tar cf ../w.tar . && tar tvf ../w.tar | sort'
    'find . | sort && find . -type l -exec readlink {} +'
    'cp -a . ../copy && diff -r . ../copy && rm -r ../copy && echo copied'
    'stat -c "%n %s %a %F %Y" a.txt sub link fruit.txt'
    'cd sub && pwd && pwd -P && cd deep && cat d.txt && realpath ../../link'
    'echo x > new.txt && mv new.txt moved.txt && ln -s moved.txt l2 && chmod +x moved.txt && rm -r sub && ls -l moved.txt l2 | cut -c1-10'
    'ls /nonexistent'
    'cat missing.txt'
    'ls /mesa; cat /mesa/acme/inv-repo/x; ls /mesa-not'
    'python3 -c "import subprocess; print(subprocess.run([\"sh\", \"-c\", \"echo child; exit 2\"], capture_output=True))"'
)
STATUS=(0 0 0 3 0 0 0 0 0 0 0 0 2 1 2 0)

# ------------------------------------------------------------ preloaded directly

@test "commands that never touch /mesa behave the same with the shim preloaded (no mesarun)" {
    [ "${#CMDS[@]}" -eq "${#STATUS[@]}" ]
    local i failed=0
    for i in "${!CMDS[@]}"; do
        invisible preload "${CMDS[$i]}" "${STATUS[$i]}" || {
            echo "^^^ differs: ${CMDS[$i]}" >&2
            failed=1
        }
    done
    [ "$failed" = 0 ]
}

@test "the preloaded shim opens no descriptor, starts no thread, sets no variable" {
    invisible preload 'ls /proc/self/fd'
    invisible preload 'grep -E "^Threads:" /proc/self/status'
    run_plain plain 'grep -E "^Threads:" /proc/self/status'
    run cat "$T/plain.out"
    assert_output "Threads:	1"
    invisible preload 'env | grep -v "^LD_PRELOAD=" | sort'
    invisible preload 'python3 -c "import os; print(sorted(os.listdir(\"/proc/self/fd\")), os.getppid() > 0)"'
}

@test "without a mount, /mesa does not exist for a preloaded process" {
    run_preload shim 'ls /mesa; stat /mesa/acme; cat /mesa/acme/inv-repo/x; test -e /mesa || echo absent'
    run cat "$T/shim.out"
    assert_output "absent"
    run cat "$T/shim.err"
    assert_line "ls: cannot access '/mesa': No such file or directory"
    assert_line "stat: cannot statx '/mesa/acme': No such file or directory"
    assert_line "cat: /mesa/acme/inv-repo/x: No such file or directory"
}

# ------------------------------------------------------------ inside a mesarun

@test "inside a mesarun, commands that only touch a local directory behave as without it" {
    local i failed=0
    for i in "${!CMDS[@]}"; do
        # the /mesa probe is not invisible in a mount: skip it here
        [[ "${CMDS[$i]}" == *"ls /mesa;"* ]] && continue
        invisible mounted "${CMDS[$i]}" "${STATUS[$i]}" || {
            echo "^^^ differs: ${CMDS[$i]}" >&2
            failed=1
        }
    done
    [ "$failed" = 0 ]
}

@test "inside a mesarun, a local command gets no extra descriptors or threads" {
    invisible mounted 'ls /proc/self/fd'
    invisible mounted 'grep -E "^Threads:" /proc/self/status'
    # and nothing was pushed to the mounted repo
    run -0 server_paths inv-repo
    [ -z "$output" ]
}
