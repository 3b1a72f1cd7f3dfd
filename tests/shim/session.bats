#!/usr/bin/env bats
# tests/shim/session.bats - `mesa change|bookmark|watch` inside a mesarun
# session act on the mount (the client issue's "inside a session" rules,
# DESIGN §3): change new/edit first drain the pending writes into the old
# change, then every process of the mount sees the new change's files and
# writes go there; change current names the mount's change; bookmark create
# is at the mount's change. Real mesad, mesarun, shim, sh and mesa.

bats_require_minimum_version 1.5.0
load ../lib/mount
load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

setup_file() {
    mesad_start
    mesa_env unix
}
teardown_file() { mesad_stop; }

setup() {
    mesa_env unix
    T=$BATS_TEST_TMPDIR
    mkdir -p "$T/src"
    echo base >"$T/src/base.txt"
}

teardown() {
    mr_kill_bg
}

# the change ids of REPO, newest first
changes() {
    "$MESA" --json change list "$1" | jq -r '.changes[].id'
}

# file content at a change, through the API
at_change() {
    "$MESA" cat --change "$2" "$1:$3"
}

@test "change new inside a session: earlier writes stay in the old change, later ones go to the new one" {
    mkrepo se-new "$T/src"
    local old
    old=$(bookmark_change se-new main)
    run -0 --separate-stderr mr --repo se-new -- sh -c \
        'echo one > a.txt && "$MESA" change new se-new >/dev/null && echo two > b.txt && cat a.txt b.txt base.txt'
    assert_output $'one\ntwo\nbase'
    local new
    new=$(bookmark_change se-new main)
    [ "$new" != "$old" ]
    # the old change has a.txt only; the new one (main moved there) has both
    [ "$(at_change se-new "$old" a.txt)" = one ]
    run -1 at_change se-new "$old" b.txt
    [ "$(at_change se-new "$new" a.txt)" = one ]
    [ "$(at_change se-new "$new" b.txt)" = two ]
    [ "$(changes se-new | head -1)" = "$new" ]
}

@test "change current inside a session names the mount's change, also after change new" {
    mkrepo se-cur "$T/src"
    local main
    main=$(bookmark_change se-cur main)
    run -0 --separate-stderr mr --repo se-cur -- sh -c \
        '"$MESA" --json change current se-cur | jq -r .change_id; "$MESA" change new se-cur >/dev/null; "$MESA" --json change current se-cur | jq -r .change_id'
    [ "${lines[0]}" = "$main" ]
    [ "${lines[1]}" != "$main" ]
    [ "${lines[1]}" = "$(bookmark_change se-cur main)" ]
}

@test "change edit switches every process of the mount; writes then go to that change, no bookmark moves" {
    mkrepo se-edit "$T/src"
    local old
    old=$(bookmark_change se-edit main)
    # a first run makes a newer change on main with b.txt
    mr --repo se-edit -- sh -c '"$MESA" change new se-edit >/dev/null && echo two > b.txt'
    local newer
    newer=$(bookmark_change se-edit main)
    # a reader started before the switch sees b.txt go away; the writer
    # after the switch writes into the old change
    run -0 --separate-stderr mr --repo se-edit -- sh -c '
        ( for i in $(seq 100); do [ -e b.txt ] || { echo reader-saw-switch; exit 0; }; sleep 0.1; done; echo reader-timeout ) &
        sleep 0.3
        "$MESA" change edit se-edit --change '"$old"' >/dev/null
        wait
        ls
        echo three > c.txt'
    assert_output $'reader-saw-switch\nbase.txt'
    [ "$(bookmark_change se-edit main)" = "$newer" ]
    [ "$(at_change se-edit "$old" c.txt)" = three ]
    run -1 at_change se-edit "$newer" c.txt
}

@test "bookmark create inside a session is at the mount's change; an existing name fails with exit 1" {
    mkrepo se-bm "$T/src"
    run -0 --separate-stderr mr --repo se-bm -- sh -c \
        '"$MESA" change new se-bm >/dev/null && "$MESA" --json change current se-bm | jq -r .change_id && "$MESA" bookmark create se-bm topic >/dev/null && echo created'
    assert_line --index 1 created
    [ "$(bookmark_change se-bm topic)" = "${lines[0]}" ]
    run -1 --separate-stderr mr --repo se-bm -- "$MESA" bookmark create se-bm topic
    assert_output ""
    [[ "$stderr" == *"File exists"* ]]
}

@test "outside a session the same commands act through the API (nothing to drain)" {
    mkrepo se-out "$T/src"
    local old
    old=$(bookmark_change se-out main)
    run -0 "$MESA" change new se-out
    [ "$(bookmark_change se-out main)" != "$old" ]
    run -0 "$MESA" --json change current se-out
    [ "$(jq -r .change_id <<<"$output")" = "$(bookmark_change se-out main)" ]
}

@test "change new and edit refuse (exit 1, nothing switched) while a process of the mount has a file open for writing" {
    mkrepo se-busy "$T/src"
    local main
    main=$(bookmark_change se-busy main)
    run -0 --separate-stderr mr --repo se-busy -- sh -c '
        exec 3>held.txt; echo held >&3
        "$MESA" change new se-busy; echo "new=$?"
        "$MESA" change edit se-busy --change '"$main"'; echo "edit=$?"
        exec 3>&-
        "$MESA" change new se-busy >/dev/null; echo "after close=$?"'
    assert_line "new=1"
    assert_line "edit=1"
    assert_line "after close=0"
    [[ "$stderr" == *"open for writing"* ]]
    # held.txt went to the first change, which main left after the close
    [ "$(at_change se-busy "$main" held.txt)" = held ]
    [ "$(bookmark_change se-busy main)" != "$main" ]
}
