#!/usr/bin/env bats
# tests/shim/fork.bats - forks and checkpoints of a mount (issue 7 "Fork at
# mount, checkpoint"): `mesarun --branched-from S [--as NAME]` starts the
# mount on a new change forked from S; `mesa change checkpoint REPO [-m M]`
# inside the mount pushes every write, describes the change, continues in
# a new empty descendant and moves the mount's bookmark there; `mesa
# bookmark move` inside the mount refuses to go backwards and the mount
# follows its own bookmark. Real mesad, mesarun, shim, sh and mesa; what is
# asserted is read back through the API.

bats_require_minimum_version 1.5.0
load ../lib/mount
load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

# setup_file, teardown_file, teardown: the shim suites' defaults
# (tests/lib/mount.bash)

setup() {
    mesa_env unix
    T=$BATS_TEST_TMPDIR
    mkdir -p "$T/src"
    echo base >"$T/src/base.txt"
}

# at_change REPO CHANGE PATH: the file's content at a change, through the API
at_change() {
    "$MESA" cat --change "$2" "$1:$3"
}

# field REPO CHANGE_OR_BOOKMARK JQ: a field of a change, through the API
field() {
    api GET "/$MESA_ORG/$1/changes/$2"
    expect 200 || return 1
    jq -r "$3" <<<"$body"
}

nchanges() {
    "$MESA" --json change list "$1" --limit 0 | jq '.changes | length'
}

# ------------------------------------------------------------ checkpoint

@test "checkpoint -m: the saved change keeps the earlier writes and the message; later writes go to a new descendant on the bookmark" {
    mkrepo cp-a "$T/src"
    local old
    old=$(bookmark_change cp-a main)
    run -0 --separate-stderr mr --repo cp-a -- sh -c '
        echo one > a.txt
        "$MESA" --json change checkpoint cp-a -m "first step" > "$0" || exit 9
        echo two > b.txt; echo more >> a.txt
        "$MESA" --json change current cp-a' "$T/cp.json"
    local saved scommit active
    saved=$(jq -r .saved_change_id "$T/cp.json")
    scommit=$(jq -r .saved_commit_oid "$T/cp.json")
    active=$(jq -r .active_change_id "$T/cp.json")
    [ "$(jq -r 'keys_unsorted | join(",")' "$T/cp.json")" = saved_change_id,saved_commit_oid,active_change_id,active_commit_oid ]
    [ "$saved" = "$old" ]
    [[ "$(jq -r .active_commit_oid "$T/cp.json")" =~ ^[0-9a-f]{40}$ ]]
    # the mount's own view after the checkpoint: the active change, on main
    [ "$(jq -r .change_id <<<"$output")" = "$active" ]
    [ "$(jq -r .bookmark <<<"$output")" = main ]
    # the saved change: described, a.txt as it was, no b.txt, commit unchanged since
    [ "$(field cp-a "$saved" .message)" = "first step" ]
    [ "$(field cp-a "$saved" .current_commit_oid)" = "$scommit" ]
    [ "$(at_change cp-a "$saved" a.txt)" = one ]
    run -1 at_change cp-a "$saved" b.txt
    # the active change: on top of the saved one, main moved there, holds everything
    [ "$(bookmark_change cp-a main)" = "$active" ]
    [ "$(field cp-a "$active" '.parents | join(",")')" = "$saved" ]
    [ "$(field cp-a "$active" .message)" = "" ]
    [ "$(at_change cp-a "$active" a.txt)" = $'one\nmore' ]
    [ "$(at_change cp-a "$active" b.txt)" = two ]
    [ "$(at_change cp-a "$active" base.txt)" = base ]
}

@test "checkpoint without -m keeps the description, -m '' clears it; the text output names both changes" {
    mkrepo cp-msg "$T/src"
    "$MESA" change new cp-msg -m "keep me" >/dev/null
    local c1
    c1=$(bookmark_change cp-msg main)
    run -0 --separate-stderr mr --repo cp-msg -- sh -c '
        echo x > x.txt
        "$MESA" change checkpoint cp-msg || exit 9
        echo y > y.txt
        "$MESA" change checkpoint cp-msg -m "" || exit 8'
    [ "${#lines[@]}" = 4 ]
    local c2 c3
    c2=$(bookmark_change cp-msg main) # main's change after the second checkpoint: c3
    [[ "${lines[0]}" =~ ^saved\ \ $c1\ [0-9a-f]{40}$ ]]
    [[ "${lines[1]}" =~ ^active\ ([k-z]{32})\ [0-9a-f]{40}\ main$ ]]
    c2=${BASH_REMATCH[1]}
    [[ "${lines[2]}" =~ ^saved\ \ $c2\ [0-9a-f]{40}$ ]]
    [[ "${lines[3]}" =~ ^active\ ([k-z]{32})\ [0-9a-f]{40}\ main$ ]]
    c3=${BASH_REMATCH[1]}
    [ "$(bookmark_change cp-msg main)" = "$c3" ]
    [ "$(field cp-msg "$c1" .message)" = "keep me" ]
    [ "$(field cp-msg "$c2" .message)" = "" ]
    [ "$(at_change cp-msg "$c1" x.txt)" = x ]
    run -1 at_change cp-msg "$c1" y.txt
    [ "$(at_change cp-msg "$c2" y.txt)" = y ]
    [ "$(field cp-msg "$c3" '.parents | join(",")')" = "$c2" ]
    [ "$(field cp-msg "$c2" '.parents | join(",")')" = "$c1" ]
}

@test "checkpoint -m '' clears a description" {
    mkrepo cp-clear "$T/src"
    "$MESA" change new cp-clear -m "to be cleared" >/dev/null
    local c1
    c1=$(bookmark_change cp-clear main)
    run -0 --separate-stderr mr --repo cp-clear -- "$MESA" change checkpoint cp-clear -m ""
    [ "$(field cp-clear "$c1" .message)" = "" ]
    [ "$(field cp-clear main '.parents | join(",")')" = "$c1" ]
}

@test "checkpoint of a mount at a change (no bookmark): exit 1, nothing made or moved" {
    mkrepo cp-pin "$T/src"
    local c n
    c=$(bookmark_change cp-pin main)
    n=$(nchanges cp-pin)
    run -0 --separate-stderr mr --repo cp-pin --change "$c" -- sh -c \
        'echo w > w.txt; "$MESA" change checkpoint cp-pin -m nope; echo "rc=$?"'
    assert_output "rc=1"
    [ "$stderr" = "mesa change checkpoint: checkpoint needs the mount to be on a bookmark (mounted at change $c); nothing done" ]
    [ "$(nchanges cp-pin)" = "$n" ]
    [ "$(bookmark_change cp-pin main)" = "$c" ]
    [ "$(field cp-pin "$c" .message)" != nope ]
    [ "$(at_change cp-pin "$c" w.txt)" = w ] # the write itself went to the change
}

@test "checkpoint outside a session, of a repo not mounted, with --bookmark, or of a read-only repo: refused" {
    mkrepo cp-out "$T/src"
    mkrepo cp-other "$T/src"
    local n
    n=$(nchanges cp-out)
    run -2 --separate-stderr env -u MESA_MOUNT "$MESA" change checkpoint cp-out -m x
    [ "$stderr" = "mesa change: checkpoint works inside a mesarun session only (MESA_MOUNT is not set): run it from COMMAND" ]
    [ -z "$output" ]
    run -0 --separate-stderr mr --repo cp-out -- sh -c '
        "$MESA" change checkpoint cp-other; echo "rc=$?"
        "$MESA" change checkpoint cp-out --bookmark main; echo "rc=$?"
        "$MESA" change checkpoint; echo "rc=$?"'
    assert_output $'rc=2\nrc=2\nrc=2'
    [ "${stderr_lines[0]}" = "mesa change: checkpoint: cp-other is not mounted in this session" ]
    [ "${stderr_lines[1]}" = "mesa change: checkpoint takes no --bookmark/--change: it acts on the mount's change" ]
    [ "${stderr_lines[2]}" = "mesa change: expects REPO" ]
    run -0 --separate-stderr mr --repo cp-out --read-only -- sh -c \
        '"$MESA" change checkpoint cp-out; echo "rc=$?"'
    assert_output "rc=1"
    [ "$stderr" = "mesa change checkpoint: cp-out is mounted read-only; nothing done" ]
    [ "$(nchanges cp-out)" = "$n" ]
    run -0 "$MESA" change --help
    assert_output --partial "checkpoint REPO [-m MESSAGE]"
}

@test "checkpoint under --sandbox fails with exit 1 before touching anything (the proxy refuses new changes)" {
    mkrepo cp-sb "$T/src"
    local c n
    c=$(bookmark_change cp-sb main)
    n=$(nchanges cp-sb)
    run -0 --separate-stderr mr --sandbox --repo cp-sb -- sh -c \
        'echo s > s.txt; "$MESA" change checkpoint cp-sb -m "sandboxed"; echo "rc=$?"'
    assert_output "rc=1"
    [ "$stderr" = "mesa change checkpoint: not available under mesarun --sandbox (its proxy lets no new change or bookmark move through); nothing done" ]
    [ "$(nchanges cp-sb)" = "$n" ]
    [ "$(bookmark_change cp-sb main)" = "$c" ]
    [ "$(field cp-sb "$c" .message)" != sandboxed ]
    [ "$(at_change cp-sb "$c" s.txt)" = s ]
}

@test "checkpoint refuses (exit 1, nothing done) while a process of the mount has a file open for writing" {
    mkrepo cp-busy "$T/src"
    local c n
    c=$(bookmark_change cp-busy main)
    n=$(nchanges cp-busy)
    run -0 --separate-stderr mr --repo cp-busy -- sh -c '
        exec 3>open.txt; echo partial >&3
        "$MESA" change checkpoint cp-busy -m busy; echo "rc=$?"
        exec 3>&-'
    assert_output "rc=1"
    [[ "$stderr" == "mesa: change checkpoint: process "*" has a file of the mount open for writing; close it first (nothing switched)" ]]
    [ "$(nchanges cp-busy)" = "$n" ]
    [ "$(bookmark_change cp-busy main)" = "$c" ]
    [ "$(field cp-busy "$c" .message)" != busy ]
}

# ------------------------------------------------------------ fork + checkpoint

@test "a fork made with --branched-from --as is checkpointed on its own bookmark; main never moves" {
    mkrepo fk-cp "$T/src"
    local main0
    main0=$(bookmark_change fk-cp main)
    run -0 --separate-stderr mr --repo fk-cp --branched-from main --as agent -- sh -c '
        cat base.txt; echo step1 > s.txt
        "$MESA" --json change checkpoint fk-cp -m "step 1" > "$0" || exit 9
        echo step2 > s.txt' "$T/cp.json"
    assert_output base
    local saved active
    saved=$(jq -r .saved_change_id "$T/cp.json")
    active=$(jq -r .active_change_id "$T/cp.json")
    [ "$(field fk-cp "$saved" '.parents | join(",")')" = "$main0" ]
    [ "$(field fk-cp "$active" '.parents | join(",")')" = "$saved" ]
    [ "$(bookmark_change fk-cp agent)" = "$active" ]
    [ "$(bookmark_change fk-cp main)" = "$main0" ]
    [ "$(at_change fk-cp "$saved" s.txt)" = step1 ]
    [ "$(at_change fk-cp "$active" s.txt)" = step2 ]
    run -1 "$MESA" cat fk-cp:s.txt
}

@test "two mounts forked from main with different --as, written through the shim at once: each fork has only its own file" {
    mkrepo fk-two "$T/src"
    local main0
    main0=$(bookmark_change fk-two main)
    mr_bg "$T/a.out" "$T/a.err" --repo fk-two --branched-from main --as one -- sh -c \
        'echo 1 > one.txt; touch "$0.1"; i=0; while [ ! -e "$0.2" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; ls' "$T/sync"
    local p1=$MR_BG_PID
    run -0 --separate-stderr mr --repo fk-two --branched-from main --as two -- sh -c \
        'echo 2 > two.txt; touch "$0.2"; i=0; while [ ! -e "$0.1" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; ls' "$T/sync"
    assert_output $'base.txt\ntwo.txt'
    wait "$p1"
    [ "$(cat "$T/a.out")" = $'base.txt\none.txt' ]
    [ "$(server_paths_at fk-two one)" = $'base.txt\none.txt' ]
    [ "$(server_paths_at fk-two two)" = $'base.txt\ntwo.txt' ]
    [ "$(field fk-two one '.parents | join(",")')" = "$main0" ]
    [ "$(field fk-two two '.parents | join(",")')" = "$main0" ]
    [ "$(bookmark_change fk-two main)" = "$main0" ]
}

# server_paths_at REPO BOOKMARK: the paths of its tree, sorted
server_paths_at() {
    api GET "/$MESA_ORG/$1/tree?change_id=$2"
    expect 200 || return 1
    jq -r '.entries[] | select(.type != "dir") | .path' <<<"$body" | LC_ALL=C sort
}

# ------------------------------------------------------------ bookmark move inside a mount

@test "bookmark move of the mount's bookmark, forward: earlier writes stay in the old change, the mount follows" {
    mkrepo bm-fwd "$T/src"
    local c d
    c=$(bookmark_change bm-fwd main)
    d=$(new_change bm-fwd "$c" "[$(file_json d.txt from-d)]" child)
    run -0 --separate-stderr mr --repo bm-fwd -- sh -c '
        echo a > a.txt
        "$MESA" bookmark move bm-fwd main --change "$0" || exit 9
        "$MESA" --json change current bm-fwd
        cat d.txt; echo b > b.txt' "$d"
    [ "${lines[0]}" = "moved main from $c to $d" ]
    [ "$(jq -r '.change_id + " " + .bookmark' <<<"${lines[1]}")" = "$d main" ]
    [ "${lines[2]}" = from-d ]
    [ "$(bookmark_change bm-fwd main)" = "$d" ]
    [ "$(at_change bm-fwd "$c" a.txt)" = a ]
    run -1 at_change bm-fwd "$c" b.txt
    [ "$(at_change bm-fwd "$d" b.txt)" = b ]
    [ "$(at_change bm-fwd "$d" d.txt)" = from-d ]
}

@test "bookmark move backwards or sideways inside a mount: exit 1 with the reason, nothing moved or switched; --allow-backwards moves and the mount follows" {
    mkrepo bm-back "$T/src"
    local c d s
    c=$(bookmark_change bm-back main)
    d=$(new_change bm-back "$c" "[$(file_json d.txt d)]" child)
    s=$(new_change bm-back "$ROOT_CHANGE" "[$(file_json s.txt s)]" side)
    "$MESA" bookmark move bm-back main --change "$d" >/dev/null
    run -0 --separate-stderr mr --repo bm-back -- sh -c '
        "$MESA" bookmark move bm-back main --change "$0"; echo "rc=$?"
        "$MESA" bookmark move bm-back main --change "$1"; echo "rc=$?"
        "$MESA" change current bm-back | cut -d" " -f1
        echo w > w.txt
        "$MESA" --json bookmark move bm-back main --change "$0" --allow-backwards | jq -r .from_change_id
        "$MESA" change current bm-back | cut -d" " -f1
        cat base.txt; test -e d.txt || echo "no d.txt"' "$c" "$s"
    assert_output "rc=1
rc=1
$d
$d
$c
base
no d.txt"
    [ "${stderr_lines[0]}" = "mesa bookmark move: moving main from $d to $c would move main backwards (or sideways): $c is not a descendant of $d; use --allow-backwards to move it anyway" ]
    [ "${stderr_lines[1]}" = "mesa bookmark move: moving main from $d to $s would move main backwards (or sideways): $s is not a descendant of $d; use --allow-backwards to move it anyway" ]
    [ "${#stderr_lines[@]}" = 2 ]
    [ "$(bookmark_change bm-back main)" = "$c" ]
    [ "$(at_change bm-back "$d" w.txt)" = w ] # written before the move: in the change it was on
    run -1 at_change bm-back "$c" w.txt
}

@test "bookmark move inside a mount: another bookmark moves without switching the mount; the mount's token is used" {
    mkrepo bm-other "$T/src"
    mkrepo bm-notmounted "$T/src"
    local c d
    c=$(bookmark_change bm-other main)
    d=$(new_change bm-other "$c" '[]' child)
    "$MESA" bookmark create bm-other side --change "$c" >/dev/null
    local nm
    nm=$(bookmark_change bm-notmounted main)
    run -0 --separate-stderr mr --repo bm-other -- sh -c '
        "$MESA" bookmark move bm-other side --change "$0" >/dev/null || exit 9
        "$MESA" change current bm-other | cut -d" " -f1
        "$MESA" bookmark move bm-notmounted main --change "$1" --allow-backwards; echo "rc=$?"' \
        "$d" "$ROOT_CHANGE"
    assert_output "$c
rc=1"
    [ "$(bookmark_change bm-other side)" = "$d" ]
    [ "$(bookmark_change bm-other main)" = "$c" ]
    [[ "$stderr" == "mesa: bookmark move: "*"(HTTP 403, FORBIDDEN)" ]]
    [ "$(bookmark_change bm-notmounted main)" = "$nm" ]
}

@test "bookmark move under --sandbox: exit 1 (the proxy refuses it), nothing moved" {
    mkrepo bm-sb "$T/src"
    local c d
    c=$(bookmark_change bm-sb main)
    d=$(new_change bm-sb "$c" '[]' child)
    run -0 --separate-stderr mr --sandbox --repo bm-sb -- sh -c \
        '"$MESA" bookmark move bm-sb main --change "$0"; echo "rc=$?"' "$d"
    assert_output "rc=1"
    [[ "$stderr" == *"SANDBOX_DENIED"* ]]
    [ "$(bookmark_change bm-sb main)" = "$c" ]
}

@test "--branched-from --as under --sandbox: the proxy lets the fork's writes through; main stays" {
    mkrepo fk-sb "$T/src"
    local main0
    main0=$(bookmark_change fk-sb main)
    run -0 --separate-stderr mr --sandbox --repo fk-sb --branched-from main --as sb-fork -- sh -c \
        'cat base.txt; echo sandboxed > sb.txt; cat sb.txt'
    assert_output $'base\nsandboxed'
    [ "$(bookmark_change fk-sb main)" = "$main0" ]
    [ "$(field fk-sb sb-fork '.parents | join(",")')" = "$main0" ]
    [ "$("$MESA" cat --bookmark sb-fork fk-sb:sb.txt)" = sandboxed ]
    run -1 "$MESA" cat fk-sb:sb.txt
}

@test "checkpoint of a new, empty repo (main at the root change): the first write's change is saved" {
    "$MESA" repo create cp-root >/dev/null
    run -0 --separate-stderr mr --repo cp-root -- sh -c '
        "$MESA" change checkpoint cp-root -m "on root"; echo "rc=$?"
        echo first > f.txt
        "$MESA" --json change checkpoint cp-root -m "first" > "$0" || exit 9
        echo second > g.txt' "$T/cp.json"
    assert_output "rc=1"
    [[ "$stderr" == "mesa: change checkpoint: "*"(HTTP 400, IMMUTABLE_CHANGE)" ]]
    local saved active
    saved=$(jq -r .saved_change_id "$T/cp.json")
    active=$(jq -r .active_change_id "$T/cp.json")
    [ "$saved" != "$ROOT_CHANGE" ]
    [ "$(field cp-root "$saved" '.parents | join(",")')" = "$ROOT_CHANGE" ]
    [ "$(field cp-root "$saved" .message)" = first ]
    [ "$(at_change cp-root "$saved" f.txt)" = first ]
    run -1 at_change cp-root "$saved" g.txt
    [ "$(bookmark_change cp-root main)" = "$active" ]
    [ "$(at_change cp-root "$active" g.txt)" = second ]
}
