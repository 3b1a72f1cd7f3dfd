#!/usr/bin/env bats
# tests/tools/mesarun.bats - the launcher (tools/mesarun*.c) against a private
# mesad: option checks (exit 2 before COMMAND runs), exit status, COMMAND's
# environment (docs/MOUNT.md "What mesarun exports"), the runtime directory
# and cache it prepares, start directories, straggler reaping, signal
# forwarding, pushing, the unpushable path (exit 75, then mesa push-pending),
# token expiry, the event follower, --memory-cache, the embedded default.
#
# This suite tests the launcher, not the shim: COMMAND runs with an empty
# stand-in library as the preload (built here; STUB_SHIM), and writes are
# made the way the shim makes them: a file in $MESA_MOUNT/staging and a W
# record in $MESA_MOUNT/journal. tests/shim/ runs mesarun with the real shim.

# (COMMAND scripts are single-quoted on purpose; bats sets stderr_lines and body)
# shellcheck disable=SC2016,SC2154
bats_require_minimum_version 1.5.0
load ../lib/mesa
load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

setup_file() {
    mesad_start
    mesa_env unix
    export STUB_SHIM="$BATS_FILE_TMPDIR/libstub.so"
    # an empty shared library; libc itself (harmless to preload) without a compiler
    if ! "${CC:-cc}" -shared -fPIC -o "$STUB_SHIM" -x c /dev/null 2>/dev/null; then
        cp "$(ldd "$(command -v true)" | awk '/libc\.so/ {print $3}')" "$STUB_SHIM"
    fi
    local src=$BATS_FILE_TMPDIR/src
    mkdir -p "$src/src/deep"
    printf 'hello\n' >"$src/README"
    printf 'int x;\n' >"$src/src/a.c"
    printf 'deep\n' >"$src/src/deep/d.txt"
    "$MESA" repo import app "$src" >/dev/null
}
teardown_file() { mesad_stop; }

setup() {
    mesa_env unix
    export MESA_SHIM=$STUB_SHIM
    export XDG_RUNTIME_DIR=$BATS_TEST_TMPDIR/run XDG_CACHE_HOME=$BATS_TEST_TMPDIR/xdgcache
    mkdir -p "$XDG_RUNTIME_DIR"
    MARK=$BATS_TEST_TMPDIR/ran
    OWN_MESAD=""
    EMB=""
}

teardown() {
    mesa_kill_bg
    [ -z "$OWN_MESAD" ] || mesad_stop
    embedded_stop
}

# ------------------------------------------------------------ helpers

mr() {
    "$MESARUN" "$@"
}

# newrepo TAG [empty]: a fresh repo (its name printed) holding seed.txt, or
# nothing at all (a new repo: main at the root change).
newrepo() {
    local name=r$BATS_TEST_NUMBER-$1
    "$MESA" repo create "$name" >/dev/null || return 1
    [ "${2:-}" = empty ] || printf 'seed\n' | "$MESA" put "$name:seed.txt" >/dev/null
    echo "$name"
}

# expect_usage TEXT ARGS...: exit 2, exactly one line on stderr containing
# TEXT, nothing on stdout, COMMAND (touch $MARK) not run, no runtime dir left.
expect_usage() {
    local text=$1
    shift
    rm -f "$MARK"
    run --separate-stderr "$MESARUN" "$@"
    if [ "$status" -ne 2 ] || [ "${#stderr_lines[@]}" -ne 1 ] ||
        [[ "$stderr" != "mesarun: "*"$text"* ]] || [ -n "$output" ] || [ -e "$MARK" ]; then
        echo "mesarun $*: status $status, stderr:" >&2
        printf '%s\n' "$stderr" >&2
        [ ! -e "$MARK" ] || echo "(COMMAND ran)" >&2
        return 1
    fi
    if [ -n "$(ls -A "$XDG_RUNTIME_DIR/mesa-$(id -u)" 2>/dev/null)" ]; then
        echo "mesarun $*: a runtime directory was left behind" >&2
        return 1
    fi
}

# jwt_payload TOKEN: the decoded payload JSON
jwt_payload() {
    local p
    p=$(cut -d. -f2 <<<"$1" | tr '_-' '/+')
    while ((${#p} % 4)); do p+="="; done
    base64 -d <<<"$p"
}

# state_field FILE SLOT NAME: a field of a slot of a state file
# (layout: core/state.c: 64-byte header, 1024-byte slots)
state_field() {
    local off len
    case $3 in
    org) off=8 len=101 ;;
    repo) off=109 len=101 ;;
    bookmark) off=210 len=256 ;;
    change_id) off=466 len=33 ;;
    commit) off=499 len=41 ;;
    base_commit) off=540 len=41 ;;
    flags)
        od -An -tu4 -j $((64 + $2 * 1024 + 4)) -N4 "$1" | tr -d ' '
        return
        ;;
    esac
    dd if="$1" bs=1 skip=$((64 + $2 * 1024 + off)) count=$len 2>/dev/null | tr -d '\0'
}

# A COMMAND fragment that writes PATH (slot SLOT) with CONTENT as the shim
# does: staging file, then the journal record.
WRITE='w() {
    id=$(od -An -N8 -tx1 /dev/urandom | tr -d " \n")
    printf %s "$3" >"$MESA_MOUNT/staging/$id"
    printf "W\t%s\t%s\t%s\t%s\n" "$1" "$(date +%s%N)" "$id" "$2" >>"$MESA_MOUNT/journal"
}'

# A COMMAND printing its virtual cwd, its kernel cwd and $MESA_MOUNT.
WHERE='printf "%s\n" "$MESA_CWD" "$(readlink /proc/self/cwd)" "$MESA_MOUNT"'

# bookmark_commit REPO CHANGE_OR_BOOKMARK: its current commit
bookmark_commit() {
    api GET "/$MESA_ORG/$1/changes/$2"
    expect 200 || return 1
    jq -r .current_commit_oid <<<"$body"
}

# The embedded default under $EMB (as tests/tools/mesa.bats does).
embedded_stop() {
    [ -n "${EMB:-}" ] || return 0
    local pids pid
    pids=$(cat "$EMB/data/mesa/serve.lock" 2>/dev/null || true)
    pids="$pids $(pgrep -f "serve --data $EMB/data/mesa" || true)"
    for pid in $pids; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in $pids; do
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$EMB"
    EMB=""
}

# ------------------------------------------------------------ options

@test "--help prints the usage on stdout and exits 0; --version the version" {
    run -0 --separate-stderr mr --help
    assert_output --partial "usage: mesarun [options] -- COMMAND"
    local o
    for o in --repo --bookmark --change --read-only --ttl --cache-dir --cache-size \
        --memory-cache --push-ignored --grace --prefix --cwd --org --url -v; do
        assert_output --partial -- "$o"
    done
    [ -z "$stderr" ]
    run -0 --separate-stderr mr --version
    assert_output --regexp '^mesarun [0-9]+\.[0-9]+'
}

@test "an empty repo list, missing -- COMMAND, unknown options: exit 2, one line, nothing run" {
    expect_usage "--repo: give at least one repository" -- touch "$MARK"
    expect_usage "--repo: give at least one repository" --ttl 5 -- touch "$MARK"
    expect_usage "COMMAND: missing" --repo app
    expect_usage "COMMAND: missing" --repo app --
    expect_usage "--frob: unknown option" --repo app --frob -- touch "$MARK"
    expect_usage "-x: unknown option" --repo app -x -- touch "$MARK"
    expect_usage "touch: unexpected argument" --repo app touch "$MARK"
    expect_usage "--ttl: needs a value" --repo app --ttl
    expect_usage "--read-only: takes no value" --repo app --read-only=1 -- touch "$MARK"
}

@test "--ttl outside 1..86400 or not a number: exit 2 naming --ttl" {
    local t
    for t in 0 86401 -1 abc 1.5 "" 10s 99999999999999999999; do
        expect_usage "--ttl: must be an integer in 1..86400" --repo app --ttl "$t" -- touch "$MARK"
    done
    expect_usage "--ttl: must be an integer in 1..86400" --repo app --ttl=0 -- touch "$MARK"
}

@test "--bookmark/--change/--read-only before any --repo, or both on one repo: exit 2" {
    expect_usage "--bookmark: must follow a --repo" --bookmark main --repo app -- touch "$MARK"
    expect_usage "--change: must follow a --repo" --change x --repo app -- touch "$MARK"
    expect_usage "--read-only: must follow a --repo" --read-only --repo app -- touch "$MARK"
    expect_usage "--change: --bookmark and --change are mutually exclusive" \
        --repo app --bookmark main --change x -- touch "$MARK"
    expect_usage "--bookmark: --bookmark and --change are mutually exclusive" \
        --repo app --change x --bookmark main -- touch "$MARK"
    expect_usage "--bookmark: given twice" --repo app --bookmark a --bookmark b -- touch "$MARK"
    # per repo: one --bookmark and one --change on two repos is fine (checked later: exit 2
    # only for the unknown names, not for exclusivity)
    expect_usage "--bookmark: nope: no such bookmark" \
        --repo app --change main --repo "$(newrepo two)" --bookmark nope -- touch "$MARK"
}

@test "bad values of --repo, --cache-size, --grace, --prefix, --org, --url: exit 2" {
    expect_usage "--repo: 'a b' is not a repository name" --repo "a b" -- touch "$MARK"
    expect_usage "--repo: '.x' is not a repository name" --repo .x -- touch "$MARK"
    expect_usage "--repo: 'Bad/x': ORG must be" --repo Bad/x -- touch "$MARK"
    expect_usage "--repo: 'a/b/c' is not a repository name" --repo a/b/c -- touch "$MARK"
    local s
    for s in 0 12X -5 K ""; do
        expect_usage "--cache-size: must be a number of bytes" --repo app --cache-size "$s" \
            -- touch "$MARK"
    done
    expect_usage "--grace: must be an integer in 0..86400" --repo app --grace -1 -- touch "$MARK"
    expect_usage "--grace: must be an integer in 0..86400" --repo app --grace x -- touch "$MARK"
    expect_usage "--prefix: must be an absolute path" --repo app --prefix rel -- touch "$MARK"
    expect_usage "--prefix: must be an absolute path" --repo app --prefix / -- touch "$MARK"
    expect_usage "--org: must be 1..64 of [a-z0-9-]" --repo app --org BAD -- touch "$MARK"
    expect_usage "--url: must start with http://, https:// or unix:/" --repo app --url ftp://x \
        -- touch "$MARK"
    expect_usage "--memory-cache: cannot be combined with --cache-dir" \
        --repo app --memory-cache --cache-dir "$BATS_TEST_TMPDIR/c" -- touch "$MARK"
}

@test "a repo of another org, or the same repo twice: exit 2" {
    expect_usage "--repo: other/app: org 'other' is not the client's org 'acme'" \
        --repo other/app -- touch "$MARK"
    expect_usage "--repo: other/app: org 'other' is not the client's org 'acme'" \
        --repo app --repo other/app -- touch "$MARK"
    # --org changes the client's org: then acme/app is the foreign one
    expect_usage "--repo: acme/app: org 'acme' is not the client's org 'zz'" \
        --org zz --repo acme/app -- touch "$MARK"
    expect_usage "--repo: acme/app: given twice" --repo app --repo acme/app -- touch "$MARK"
}

@test "unknown repo, bookmark or change (asked of the server): exit 2 before COMMAND" {
    expect_usage "--repo: acme/nosuch: no such repository" --repo nosuch -- touch "$MARK"
    expect_usage "--repo: acme/nosuch: no such repository" --repo app --repo nosuch \
        -- touch "$MARK"
    expect_usage "--bookmark: nosuch: no such bookmark in acme/app" \
        --repo app --bookmark nosuch -- touch "$MARK"
    expect_usage "--change: kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk: no such change in acme/app" \
        --repo app --change kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk -- touch "$MARK"
}

@test "a --cwd outside the mounted repos or missing: exit 2 before COMMAND" {
    expect_usage "--cwd: /mesa/acme/nosuch: repository 'nosuch' is not mounted" \
        --repo app --cwd /mesa/acme/nosuch -- touch "$MARK"
    expect_usage "--cwd: /mesa/other: org 'other' is not mounted" \
        --repo app --cwd /mesa/other -- touch "$MARK"
    expect_usage "--cwd: /mesa/acme/app/nosuch: No such file or directory" \
        --repo app --cwd /mesa/acme/app/nosuch -- touch "$MARK"
    expect_usage "--cwd: /mesa/acme/app/README: Not a directory" \
        --repo app --cwd /mesa/acme/app/README -- touch "$MARK"
    expect_usage "--cwd: $BATS_TEST_TMPDIR/none: No such file or directory" \
        --repo app --cwd "$BATS_TEST_TMPDIR/none" -- touch "$MARK"
}

@test "environment mistakes: exit 2 with one line naming the variable" {
    rm -f "$MARK"
    run -2 --separate-stderr env MESA_URL=ftp://x "$MESARUN" --repo app -- touch "$MARK"
    [[ "$stderr" == "mesarun: MESA_URL must start with"* ]]
    run -2 --separate-stderr env MESA_ACCESS_TOKEN=x "$MESARUN" --repo app -- touch "$MARK"
    [[ "$stderr" == *"MESA_API_KEY or MESA_ACCESS_TOKEN, not both"* ]]
    run -2 --separate-stderr env -u MESA_API_KEY -u MESA_URL "$MESARUN" --url "unix:$MESAD_SOCK" \
        --repo app -- touch "$MARK"
    [[ "$stderr" == "mesarun: --url: set MESA_API_KEY"* ]]
    [ ! -e "$MARK" ]
}

@test "MESA_SHIM naming no file: exit 1 with a clear line, COMMAND not run" {
    run -1 --separate-stderr env MESA_SHIM="$BATS_TEST_TMPDIR/nope.so" "$MESARUN" --repo app \
        -- touch "$MARK"
    [ "$stderr" = "mesarun: MESA_SHIM=$BATS_TEST_TMPDIR/nope.so: No such file or directory" ]
    [ ! -e "$MARK" ]
}

@test "a wrong API key: exit 1 with the server's reason, COMMAND not run" {
    run -1 --separate-stderr env MESA_API_KEY=mesa_0000000000000000000000000000000000000000 \
        "$MESARUN" --repo app -- touch "$MARK"
    [[ "$stderr" == mesarun:*"HTTP 401"* ]]
    [ ! -e "$MARK" ]
}

# ------------------------------------------------------------ exit status

@test "COMMAND's exit status is mesarun's: 0, 3, 128+15 for TERM, 127 not found, 126" {
    run -0 mr --repo app -- true
    run -3 mr --repo app -- sh -c 'exit 3'
    run -143 mr --repo app -- sh -c 'kill -TERM $$'
    run -137 mr --repo app -- sh -c 'kill -KILL $$'
    run -127 --separate-stderr mr --repo app -- nosuch-command-here
    [ "$stderr" = "mesarun: nosuch-command-here: No such file or directory" ]
    printf 'x' >"$BATS_TEST_TMPDIR/noexec"
    run -126 --separate-stderr mr --repo app -- "$BATS_TEST_TMPDIR/noexec"
    [ "$stderr" = "mesarun: $BATS_TEST_TMPDIR/noexec: Permission denied" ]
    # the runtime directory is gone every time
    [ -z "$(ls -A "$XDG_RUNTIME_DIR/mesa-$(id -u)")" ]
}

@test "stdin, stdout and inherited descriptors reach COMMAND; mesarun's own do not" {
    run -0 bash -c 'echo hi | "$MESARUN" --repo app -- cat'
    assert_output hi
    run -0 bash -c '"$MESARUN" --repo app -- sh -c "cat <&7; ls -l /proc/self/fd" 7<<<seven'
    assert_line seven
    refute_output --partial socket:
    refute_output --partial inotify
}

@test "SIGTERM to mesarun reaches COMMAND, whose status is returned" {
    local out=$BATS_TEST_TMPDIR/out
    "$MESARUN" --repo app -- \
        sh -c 'trap "echo got TERM; exit 9" TERM; echo ready; sleep 100 & wait' >"$out" 2>&1 &
    local pid=$!
    wait_for_line "$out" ready
    kill -TERM "$pid"
    local rc=0
    wait "$pid" || rc=$?
    [ "$rc" -eq 9 ]
    grep -qx "got TERM" "$out"
}

# ------------------------------------------------------------ environment

@test "COMMAND gets a repo-scoped token, never the API key" {
    local r
    r=$(newrepo tok)
    run -0 mr --ttl 120 --repo app --repo "$r" --read-only -- env
    refute_line --regexp '^MESA_API_KEY='
    local tok payload
    tok=$(grep '^MESA_ACCESS_TOKEN=' <<<"$output" | cut -d= -f2-)
    [ -n "$tok" ]
    [ "$tok" != "$ADMIN_KEY" ]
    payload=$(jwt_payload "$tok")
    [ "$(jq -c .repos <<<"$payload")" = "[\"acme/app\",\"acme/$r\"]" ]
    [ "$(jq -c .ro_repos <<<"$payload")" = "[\"acme/$r\"]" ]
    [ "$(jq -c .scopes <<<"$payload")" = '["read","write"]' ]
    [ "$(jq '.exp - .iat' <<<"$payload")" -eq 120 ]
    [ "$(jq -r .aud <<<"$payload")" = mesa-api ]
    # all read-only: no write scope at all
    run -0 mr --repo app --read-only -- printenv MESA_ACCESS_TOKEN
    [ "$(jwt_payload "$output" | jq -c .scopes)" = '["read"]' ]
    # the default ttl is an hour
    run -0 mr --repo app -- printenv MESA_ACCESS_TOKEN
    [ "$(jwt_payload "$output" | jq '.exp - .iat')" -eq 3600 ]
}

@test "the token works for the mounted repos only" {
    local r
    r=$(newrepo other)
    run -0 mr --repo app -- sh -c '"$MESA" cat app:README && ! "$MESA" cat '"$r"':seed.txt'
    assert_line hello
}

@test "LD_PRELOAD, MESA_PRELOAD and every MESA_* variable are exported" {
    # (a sanitizer build of mesarun must tolerate a preloaded library)
    local asan=ASAN_OPTIONS=verify_asan_link_order=0
    run -0 --separate-stderr env "$asan" LD_PRELOAD=/nonexistent/other.so MESA_PREFIX=/zz \
        MESA_CWD=/old PWD=/old MESA_FDS=3 "$MESARUN" --repo app -- env
    # a sanitizer build puts its ASan/UBSan runtimes before the shim
    local mp san
    mp=$(grep '^MESA_PRELOAD=' <<<"$output")
    mp=${mp#MESA_PRELOAD=}
    san=${mp%"$STUB_SHIM"}
    [[ -z "$san" || "$san" == /*libasan.so*:*libubsan.so*: ]]
    assert_line "LD_PRELOAD=$san$STUB_SHIM:/nonexistent/other.so"
    assert_line --regexp "^MESA_MOUNT=$XDG_RUNTIME_DIR/mesa-$(id -u)/mount-[0-9]+$"
    assert_line "MESA_CACHE=$XDG_CACHE_HOME/mesa"
    assert_line "MESA_PREFIX=/mesa"
    assert_line "MESA_URL=unix:$MESAD_SOCK"
    assert_line "MESA_ORG=acme"
    assert_line "MESA_CWD=/mesa/acme/app"
    assert_line "PWD=/mesa/acme/app"
    refute_line --regexp '^MESA_PUSH_IGNORED='
    refute_line --regexp '^MESA_FDS='
    [ "$(grep -c '^LD_PRELOAD=' <<<"$output")" -eq 1 ]
    run -0 mr --push-ignored --prefix /m/x --repo app -- env
    assert_line "MESA_PUSH_IGNORED=1"
    assert_line "MESA_PREFIX=/m/x"
    assert_line "PWD=/m/x/acme/app"
    # the shim is not listed twice when mesarun runs inside a mount
    run -0 env "$asan" LD_PRELOAD="$STUB_SHIM" "$MESARUN" --repo app -- printenv LD_PRELOAD
    assert_output "$san$STUB_SHIM"
}

@test "start directory: the repo; PREFIX/ORG for several; --cwd virtual or real" {
    local r
    r=$(newrepo cwd)
    # one repo: its root; the kernel cwd is the placeholder in $RUN/cwd
    run -0 mr --repo app -- sh -c "$WHERE"
    [ "${lines[0]}" = /mesa/acme/app ]
    [ "${lines[1]}" = "${lines[2]}/cwd/acme/app" ]
    run -0 mr --repo app --repo "$r" -- printenv PWD MESA_CWD
    assert_output "$(printf '/mesa/acme\n/mesa/acme')"
    run -0 mr --repo app --cwd /mesa/acme/app/src/deep -- sh -c "$WHERE"
    [ "${lines[0]}" = /mesa/acme/app/src/deep ]
    [ "${lines[1]}" = "${lines[2]}/cwd/acme/app/src/deep" ]
    run -0 mr --repo app --cwd /mesa -- sh -c "$WHERE"
    [ "${lines[0]}" = /mesa ]
    [ "${lines[1]}" = "${lines[2]}/cwd" ]
    run -0 mr --repo app --cwd /mesa/acme/app/src/../src/./deep -- printenv PWD
    assert_output /mesa/acme/app/src/deep
    # a real directory: entered for real, no MESA_CWD; relative to mesarun's cwd
    mkdir -p "$BATS_TEST_TMPDIR/real/sub"
    local real
    real=$(cd "$BATS_TEST_TMPDIR/real" && pwd -P)
    run -0 mr --repo app --cwd "$real" -- \
        sh -c 'printf "%s\n" "$PWD" "$(pwd -P)" "${MESA_CWD-unset}"'
    assert_output "$(printf '%s\n%s\nunset' "$real" "$real")"
    cd "$real"
    run -0 mr --repo app --cwd sub -- pwd -P
    assert_output "$real/sub"
}

# ------------------------------------------------------------ $RUN and $CACHE

@test "the runtime directory: state with one slot per repo, journal, staging/, cwd/, exec/" {
    local r main_change main_commit
    r=$(newrepo layout)
    main_change=$(bookmark_change "$r" main)
    main_commit=$(bookmark_commit "$r" "$main_change")
    run -0 mr --repo app --repo "$r" --read-only -- sh -c '
        cd "$MESA_MOUNT" && ls && stat -c "%a %n" . staging && wc -c <journal && cp state "$0"' \
        "$BATS_TEST_TMPDIR/state"
    assert_output "$(printf 'cwd\nexec\njournal\nstaging\nstate\n700 .\n700 staging\n0')"
    local st=$BATS_TEST_TMPDIR/state
    [ "$(state_field "$st" 0 org)" = acme ]
    [ "$(state_field "$st" 0 repo)" = app ]
    [ "$(state_field "$st" 0 bookmark)" = main ]
    [ "$(state_field "$st" 0 flags)" = 0 ]
    [ "$(state_field "$st" 1 repo)" = "$r" ]
    [ "$(state_field "$st" 1 bookmark)" = main ]
    [ "$(state_field "$st" 1 change_id)" = "$main_change" ]
    [ "$(state_field "$st" 1 commit)" = "$main_commit" ]
    [ "$(state_field "$st" 1 base_commit)" = "$main_commit" ]
    [ "$(state_field "$st" 1 flags)" = 1 ]
    # and it is removed once COMMAND is done
    [ -z "$(ls -A "$XDG_RUNTIME_DIR/mesa-$(id -u)")" ]
}

@test "the cache holds every slot's listing and local/ dirs keyed by bookmark or change" {
    local r c commit
    r=$(newrepo cache)
    printf 'v2\n' | "$MESA" put "$r:two.txt" >/dev/null
    "$MESA" bookmark create "$r" feature >/dev/null
    c=$(bookmark_change "$r" main)
    commit=$(bookmark_commit "$r" "$c")
    run -0 mr --repo "$r" --change "$c" -- \
        sh -c 'cp "$MESA_MOUNT/state" "$0"' "$BATS_TEST_TMPDIR/st"
    [ "$(state_field "$BATS_TEST_TMPDIR/st" 0 bookmark)" = "" ]
    [ "$(state_field "$BATS_TEST_TMPDIR/st" 0 change_id)" = "$c" ]
    local cache=$XDG_CACHE_HOME/mesa
    [ -f "$cache/trees/$commit" ]
    [ -d "$cache/local/acme/$r/c-$c" ]
    run -0 mr --repo "$r" --bookmark feature -- true
    [ -d "$cache/local/acme/$r/b-feature" ]
    [ -d "$cache/blobs" ]
    # --cache-dir puts it elsewhere
    run -0 mr --cache-dir "$BATS_TEST_TMPDIR/cd" --cache-size 64M --repo "$r" -- printenv MESA_CACHE
    assert_output "$BATS_TEST_TMPDIR/cd"
    [ -f "$BATS_TEST_TMPDIR/cd/trees/$commit" ]
    # the cap reaches the mount's processes; without it they auto-size
    run -0 mr --cache-size 64M --repo "$r" -- printenv MESA_CACHE_SIZE
    assert_output $((64 << 20))
    run -1 mr --repo "$r" -- printenv MESA_CACHE_SIZE
    # a bookmark name with '/' is one path segment: a and a/b do not nest
    "$MESA" bookmark create "$r" "feat/x" >/dev/null
    run -0 mr --repo "$r" --bookmark feat/x -- true
    [ -d "$cache/local/acme/$r/b-feat%2Fx" ]
    [ ! -e "$cache/local/acme/$r/b-feat" ]
}

@test "--memory-cache: a per-run directory in memory, removed at exit" {
    run -0 mr --memory-cache --repo app -- \
        sh -c 'echo "$MESA_CACHE"; ls "$MESA_CACHE/trees" | wc -l'
    local dir=${lines[0]}
    [[ "$dir" == /dev/shm/* || "$dir" == "$XDG_RUNTIME_DIR"/* || "$dir" == /tmp/* ]]
    [ "${lines[1]}" -eq 1 ]
    [ ! -e "$dir" ]
    [ ! -e "$XDG_CACHE_HOME/mesa" ]
}

@test "a runtime dir on a noexec filesystem: exec/ goes under the cache, named in exec.path" {
    [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null || skip "needs root and unshare -m"
    local nx=$BATS_TEST_TMPDIR/nx
    mkdir -p "$nx"
    local show='ls "$MESA_MOUNT"; p=$(cat "$MESA_MOUNT/exec.path"); echo "$p"
        test -d "$p" && echo isdir'
    run -0 unshare -m sh -c 'mount -t tmpfs -o noexec tmpfs "$1" &&
        XDG_RUNTIME_DIR=$1 "$MESARUN" --repo app -- sh -c "$2"' sh "$nx" "$show"
    refute_line exec
    assert_line exec.path
    assert_line --regexp "^$XDG_CACHE_HOME/mesa/exec/mount-[0-9]+\..+"
    assert_line isdir
    [ -z "$(ls -A "$XDG_CACHE_HOME/mesa/exec")" ]
}

# ------------------------------------------------------------ pushing

@test "closed writes are pushed; mesarun exits with COMMAND's status after the drain" {
    local r
    r=$(newrepo push)
    run -3 --separate-stderr mr -v --repo "$r" -- sh -c "$WRITE"'
        w 0 new.txt "hello"; w 0 "dir/with space.txt" two; exit 3'
    [[ "$stderr" == *"mesarun: pushed "*" path(s) to acme/$r: change "* ]]
    run -0 mesa cat "$r:new.txt"
    assert_output hello
    run -0 mesa cat "$r:dir/with space.txt"
    assert_output two
    run -0 mesa cat "$r:seed.txt"
    assert_output seed
}

@test "a new empty repo mounts the root change; the first write moves main to a new change" {
    local r
    r=$(newrepo empty empty)
    [ "$(bookmark_change "$r" main)" = "$ROOT_CHANGE" ]
    run -0 mr --repo "$r" -- sh -c "$WRITE"'; cp "$MESA_MOUNT/state" "$0"; w 0 first.txt one' \
        "$BATS_TEST_TMPDIR/st"
    [ "$(state_field "$BATS_TEST_TMPDIR/st" 0 change_id)" = "$ROOT_CHANGE" ]
    [ "$(state_field "$BATS_TEST_TMPDIR/st" 0 bookmark)" = main ]
    [ "$(bookmark_change "$r" main)" != "$ROOT_CHANGE" ]
    run -0 mesa cat "$r:first.txt"
    assert_output one
}

@test "the server gone mid-run: exit 75, pending paths listed, then mesa push-pending pushes them" {
    OWN_MESAD=1
    mesad_start
    mesa_env unix
    "$MESA" repo create lost >/dev/null
    printf 's\n' | "$MESA" put lost:seed >/dev/null
    run -75 --separate-stderr mr --repo lost -- sh -c "$WRITE"'
        kill -TERM "$0"; while kill -0 "$0" 2>/dev/null; do sleep 0.05; done
        w 0 kept.txt "not lost"; w 0 "sub/two.txt" two; exit 3' "$MESAD_PID"
    local dir
    dir=$(ls -d "$XDG_RUNTIME_DIR/mesa-$(id -u)"/mount-*)
    [ -d "$dir/staging" ]
    [[ "${stderr_lines[0]}" == "mesarun: could not push 2 path(s): "* ]]
    assert_equal "${stderr_lines[3]}" "mesarun: COMMAND exited with status 3"
    assert_equal "${stderr_lines[4]}" \
        "mesarun: pending writes kept in $dir; run: mesa push-pending $dir"
    [ "${#stderr_lines[@]}" -eq 5 ]
    run -0 sort <<<"$(printf '%s\n' "${stderr_lines[@]:1:2}")"
    assert_output "$(printf '  acme/lost/kept.txt\n  acme/lost/sub/two.txt')"
    mesad_serve
    run -0 mesa push-pending "$dir"
    run -0 mesa cat lost:kept.txt
    assert_output "not lost"
    run -0 mesa cat lost:sub/two.txt
    assert_output two
}

@test "a token that expires mid-run: exit 75 with the reason; MESA_ACCESS_TOKEN used as is, and --ttl with it is an error" {
    local r tok
    r=$(newrepo expire)
    # the lifetime of a given token is its own: --ttl is a usage error (exit 2, COMMAND not run)
    run -2 --separate-stderr env -u MESA_API_KEY MESA_ACCESS_TOKEN="$(token)" "$MESARUN" --ttl 30 \
        --repo "$r" -- touch "$BATS_TEST_TMPDIR/ran"
    assert_equal "$stderr" "mesarun: --ttl: the lifetime of an existing access token cannot be changed"
    [ ! -e "$BATS_TEST_TMPDIR/ran" ]
    # valid for about 3 more seconds (the server allows 60 s of clock skew)
    tok=$(token '.iat -= 70 | .exp = .iat + 13')
    run -75 --separate-stderr env -u MESA_API_KEY MESA_ACCESS_TOKEN="$tok" "$MESARUN" \
        --repo "$r" -- sh -c "$WRITE"'
            [ "$MESA_ACCESS_TOKEN" = "$0" ] || exit 9; sleep 4.5; w 0 late.txt late' "$tok"
    [[ "${stderr_lines[0]}" == "mesarun: could not push 1 path(s): "*"401"* ]]
    assert_equal "${stderr_lines[1]}" "  acme/$r/late.txt"
}

# ------------------------------------------------------------ processes

@test "stragglers: a background process is gone when mesarun returns (--grace 1)" {
    local pidf=$BATS_TEST_TMPDIR/pid
    run -0 mr --grace 1 --repo app -- sh -c 'sleep 1000 & echo $! >"$0"' "$pidf"
    [ -s "$pidf" ]
    run ! kill -0 "$(cat "$pidf")" 2>/dev/null
}

@test "stragglers that ignore SIGTERM get SIGKILL after --grace; daemons too" {
    local pidf=$BATS_TEST_TMPDIR/pid start end
    start=$(date +%s%N)
    run -4 mr --grace 1 --repo app -- sh -c '
        (trap "" TERM; exec sleep 1000) & echo $! >"$0"
        setsid sh -c "sleep 1000 & echo \$! >\"$0.d\"" </dev/null >/dev/null 2>&1 &
        while [ ! -s "$0.d" ]; do sleep 0.05; done; exit 4' "$pidf"
    end=$(date +%s%N)
    run ! kill -0 "$(cat "$pidf")" 2>/dev/null
    run ! kill -0 "$(cat "$pidf.d")" 2>/dev/null
    # it waited for the grace period, not much longer
    [ $(((end - start) / 1000000)) -ge 900 ]
    [ $(((end - start) / 1000000)) -lt 8000 ]
}

@test "COMMAND leaving no process behind does not wait for --grace" {
    local start end
    start=$(date +%s%N)
    run -0 mr --grace 30 --repo app -- true
    end=$(date +%s%N)
    [ $(((end - start) / 1000000)) -lt 5000 ]
}

# ------------------------------------------------------------ realtime

@test "another client's write to the mounted change moves the state and caches the listing" {
    local r
    r=$(newrepo follow)
    run -0 --separate-stderr mr -v --repo "$r" -- sh -c '
        f() { head -c 603 "$MESA_MOUNT/state" | tail -c 40; } # (not dd: ASan rejects its aligned_alloc)
        c0=$(f)
        printf remote | "$MESA" put "$0:remote.txt" >/dev/null
        i=0; while [ "$(f)" = "$c0" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
        c=$(f); [ "$c" != "$c0" ] && test -f "$MESA_CACHE/trees/$c" && echo "$c"' "$r"
    [ -n "$output" ]
    [ "$output" = "$(bookmark_commit "$r" main)" ]
    [[ "$stderr" == *"remote write to change"* ]]
}

# ------------------------------------------------------------ embedded default

@test "without MESA_URL the embedded mesad is used (and outlives mesarun)" {
    EMB=$(mktemp -d "${TMPDIR:-/tmp}/mesarun-emb.XXXXXX")
    local e=(env -u MESA_URL -u MESA_API_KEY -u MESA_ACCESS_TOKEN -u MESA_ORG
        XDG_DATA_HOME="$EMB/data" XDG_CONFIG_HOME="$EMB/conf" MESAD="$MESAD")
    "${e[@]}" "$MESA" repo create emb >/dev/null
    run -0 "${e[@]}" "$MESARUN" --repo emb -- env
    assert_line "MESA_URL=unix:$EMB/data/mesa/mesad.sock"
    assert_line "MESA_ORG=local"
    assert_line "PWD=/mesa/local/emb"
    run -0 "${e[@]}" "$MESA" repo list
    assert_output --partial emb
}

# ------------------------------------------------------------ fork at mount (--branched-from)

# change_field REPO CHANGE_OR_BOOKMARK JQ: a field of a change, through the API
change_field() {
    api GET "/$MESA_ORG/$1/changes/$2"
    expect 200 || return 1
    jq -r "$3" <<<"$body"
}

# nchanges REPO: how many changes the repo has
nchanges() {
    "$MESA" --json change list "$1" --limit 0 | jq '.changes | length'
}

@test "--branched-from/--as misused (read-only, with --bookmark/--change, --as alone, twice, empty): exit 2, nothing created" {
    local r n
    r=$(newrepo forkopt)
    n=$(nchanges "$r")
    expect_usage "--branched-from: needs a writable repository: --repo $r is --read-only" \
        --repo "$r" --branched-from main --read-only -- touch "$MARK"
    expect_usage "--branched-from: needs a writable repository: --repo $r is --read-only" \
        --repo "$r" --read-only --branched-from main --as x -- touch "$MARK"
    expect_usage "--branched-from: cannot be combined with --bookmark (--repo $r)" \
        --repo "$r" --bookmark main --branched-from main -- touch "$MARK"
    expect_usage "--branched-from: cannot be combined with --change (--repo $r)" \
        --repo "$r" --branched-from main --change "$ROOT_CHANGE" -- touch "$MARK"
    expect_usage "--as: needs --branched-from (--repo $r)" --repo "$r" --as x -- touch "$MARK"
    expect_usage "--as: needs --branched-from (--repo app)" \
        --repo app --as x --repo "$r" --branched-from main -- touch "$MARK"
    expect_usage "--branched-from: given twice for --repo $r" \
        --repo "$r" --branched-from main --branched-from main -- touch "$MARK"
    expect_usage "--as: given twice for --repo $r" \
        --repo "$r" --branched-from main --as a --as b -- touch "$MARK"
    expect_usage "--branched-from: must not be empty" --repo "$r" --branched-from "" -- touch "$MARK"
    expect_usage "--as: must not be empty" --repo "$r" --branched-from main --as= -- touch "$MARK"
    expect_usage "--branched-from: must follow a --repo" --branched-from main --repo "$r" \
        -- touch "$MARK"
    expect_usage "--as: must follow a --repo" --as x --repo "$r" -- touch "$MARK"
    expect_usage "--branched-from: nosuch: no such bookmark or change in acme/$r" \
        --repo "$r" --branched-from nosuch --as x -- touch "$MARK"
    expect_usage "--branched-from: a..b: no such bookmark or change in acme/$r" \
        --repo "$r" --branched-from a..b -- touch "$MARK"
    expect_usage "--branched-from: kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk: no such bookmark or change" \
        --repo "$r" --branched-from kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk -- touch "$MARK"
    # a later repo's bad option: the earlier repo's fork is not made either
    expect_usage "--bookmark: nope: no such bookmark in acme/app" \
        --repo "$r" --branched-from main --as early --repo app --bookmark nope -- touch "$MARK"
    [ "$(nchanges "$r")" = "$n" ]
    [ "$("$MESA" --json bookmark list "$r" | jq -r '[.bookmarks[].name] | join(",")')" = main ]
    run -0 mr --help
    assert_output --partial --branched-from
    assert_output --partial "--as NAME"
}

@test "--branched-from BOOKMARK: the mount is on a new change on top of it; writes go there, main stays" {
    local r main0 c0 fork
    r=$(newrepo fork)
    main0=$(bookmark_change "$r" main)
    c0=$(bookmark_commit "$r" main)
    run -0 --separate-stderr mr -v --repo "$r" --branched-from main -- sh -c "$WRITE"'
        cp "$MESA_MOUNT/state" "$0"; w 0 mine.txt forked' "$BATS_TEST_TMPDIR/st"
    [[ "$stderr" == *"mesarun: acme/$r: forked from main (change $main0) as change "* ]]
    fork=$(state_field "$BATS_TEST_TMPDIR/st" 0 change_id)
    [ -n "$fork" ] && [ "$fork" != "$main0" ]
    [ -z "$(state_field "$BATS_TEST_TMPDIR/st" 0 bookmark)" ] # an anonymous tip
    [ "$(change_field "$r" "$fork" '.parents | join(",")')" = "$main0" ]
    [ "$(change_field "$r" "$fork" .message)" = "" ]
    # main did not move and does not have the write; the fork has it and main's files
    [ "$(bookmark_change "$r" main)" = "$main0" ]
    [ "$(bookmark_commit "$r" main)" = "$c0" ]
    run -1 "$MESA" cat "$r:mine.txt"
    run -0 "$MESA" cat --change "$fork" "$r:mine.txt"
    assert_output forked
    run -0 "$MESA" cat --change "$fork" "$r:seed.txt"
    assert_output seed
}

@test "--branched-from CHANGE --as NAME: bookmark NAME is created on the fork and follows its writes" {
    local r base fork
    r=$(newrepo forkas)
    base=$(bookmark_change "$r" main)
    # main moves on to a new change with one more file; the fork is from base
    "$MESA" change new "$r" >/dev/null
    printf more | "$MESA" put "$r:later.txt" >/dev/null
    [ "$(bookmark_change "$r" main)" != "$base" ]
    run -0 mr --repo "$r" --branched-from "$base" --as topic -- sh -c "$WRITE"'
        cp "$MESA_MOUNT/state" "$0"; w 0 t.txt topic-work' "$BATS_TEST_TMPDIR/st"
    fork=$(state_field "$BATS_TEST_TMPDIR/st" 0 change_id)
    [ "$(state_field "$BATS_TEST_TMPDIR/st" 0 bookmark)" = topic ]
    [ "$(bookmark_change "$r" topic)" = "$fork" ]
    [ "$(change_field "$r" topic '.parents | join(",")')" = "$base" ]
    run -0 "$MESA" cat "$r:t.txt" --bookmark topic
    assert_output topic-work
    run -1 "$MESA" cat --bookmark topic "$r:later.txt"
    run -1 "$MESA" cat "$r:t.txt"
    # a second run with the same --as: exit 1, the server untouched, COMMAND not run
    local n
    n=$(nchanges "$r")
    rm -f "$MARK"
    run -1 --separate-stderr mr --repo "$r" --branched-from main --as topic -- touch "$MARK"
    [ "$stderr" = "mesarun: --as topic: bookmark already exists in acme/$r (nothing created; pick another name, or mount it with --bookmark topic)" ]
    [ ! -e "$MARK" ]
    [ "$(nchanges "$r")" = "$n" ]
    [ "$(bookmark_change "$r" topic)" = "$fork" ]
    # an invalid bookmark name: the server's message (exit 1), and the orphan change is named
    run -1 --separate-stderr mr --repo "$r" --branched-from main --as 'bad..name' -- touch "$MARK"
    [[ "$stderr" == "mesarun: --as bad..name (the new change "*" has no bookmark): "*"(HTTP 400"* ]]
    [ ! -e "$MARK" ]
}

@test "two concurrent runs forked with different --as on one repo each write only their own fork" {
    local r main0
    r=$(newrepo forktwo)
    main0=$(bookmark_change "$r" main)
    # each writes its file, then waits for the other to have forked, so both run at once
    mr --repo "$r" --branched-from main --as agent-a -- sh -c "$WRITE"'
        w 0 a.txt from-a; touch "$0.a"; i=0
        while [ ! -e "$0.b" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done' \
        "$BATS_TEST_TMPDIR/sync" >"$BATS_TEST_TMPDIR/a.out" 2>&1 &
    local pa=$!
    mr --repo "$r" --branched-from main --as agent-b -- sh -c "$WRITE"'
        w 0 b.txt from-b; touch "$0.b"; i=0
        while [ ! -e "$0.a" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done' \
        "$BATS_TEST_TMPDIR/sync" >"$BATS_TEST_TMPDIR/b.out" 2>&1 &
    local pb=$!
    wait "$pa" || { cat "$BATS_TEST_TMPDIR/a.out"; return 1; }
    wait "$pb" || { cat "$BATS_TEST_TMPDIR/b.out"; return 1; }
    local a b
    a=$(bookmark_change "$r" agent-a)
    b=$(bookmark_change "$r" agent-b)
    [ "$a" != "$b" ] && [ "$a" != "$main0" ] && [ "$b" != "$main0" ]
    [ "$(change_field "$r" agent-a '.parents | join(",")')" = "$main0" ]
    [ "$(change_field "$r" agent-b '.parents | join(",")')" = "$main0" ]
    [ "$(repo_tree "$r" agent-a | cut -d' ' -f1 | xargs)" = "a.txt seed.txt" ]
    [ "$(repo_tree "$r" agent-b | cut -d' ' -f1 | xargs)" = "b.txt seed.txt" ]
    [ "$("$MESA" cat --bookmark agent-a "$r:a.txt")" = from-a ]
    [ "$("$MESA" cat --bookmark agent-b "$r:b.txt")" = from-b ]
    [ "$(bookmark_change "$r" main)" = "$main0" ]
}
