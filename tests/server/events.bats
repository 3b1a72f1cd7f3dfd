#!/usr/bin/env bats
# tests/server/events.bats - the event stream GET /v1/{org}/{repo}/events
# (docs/PROTOCOL.md, "Extensions"): long poll (?after=&wait=), server-sent
# events (resume with Last-Event-ID or ?after=, keep-alive comments), the
# envelope shape, per-repo isolation and access rules.
# One shared server with --keepalive 1; every test makes its own repo.
# Background curls are recorded in $BATS_TEST_TMPDIR/pids and killed in teardown.

bats_require_minimum_version 1.5.0
load ../lib/mesad
load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

setup_file() { mesad_start --keepalive 1; }
teardown_file() { mesad_stop; }

teardown() {
    local pid
    if [ -f "$BATS_TEST_TMPDIR/pids" ]; then
        while read -r pid; do
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        done <"$BATS_TEST_TMPDIR/pids"
    fi
}

# sse_start OUT [curl args]: open the SSE stream of REPO ($SSE_REPO, query in
# $SSE_QUERY) in the background, writing to OUT (headers in OUT.h); waits
# (at most 5 s) until the response headers arrived.
sse_start() {
    local out=$1 i
    shift
    curl -sS -N --max-time 60 -D "$out.h" -o "$out" \
        -H 'Accept: text/event-stream' -H "Authorization: Bearer ${AUTH-$ADMIN_KEY}" "$@" \
        "$MESAD_URL/v1/$MESA_ORG/$SSE_REPO/events${SSE_QUERY:-}" 3>&- &
    echo $! >>"$BATS_TEST_TMPDIR/pids"
    for i in $(seq 1 100); do
        grep -q '^HTTP/' "$out.h" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "# no SSE response headers after 5 s" >&3
}

# sse_events FILE: one line per complete event: ID<TAB>TYPE<TAB>DATA
sse_events() {
    tr -d '\r' <"$1" | awk '
        /^id:/    { id = substr($0, 4); sub(/^ /, "", id) }
        /^event:/ { ev = substr($0, 7); sub(/^ /, "", ev) }
        /^data:/  { d = substr($0, 6); sub(/^ /, "", d); data = (data == "" ? d : data "\n" d) }
        /^$/      { if (ev != "" || data != "") print id "\t" ev "\t" data; id = ""; ev = ""; data = "" }'
}

# wait_for SECONDS COMMAND...: poll COMMAND every 0.1 s until it succeeds.
wait_for() {
    local n=$(($1 * 10)) i
    shift
    for i in $(seq 1 "$n"); do
        "$@" && return 0
        sleep 0.1
    done
    "$@"
}

has_event() { sse_events "$1" | awk -F'\t' -v t="$2" '$2 == t { f = 1 } END { exit !f }'; }
has_event_id() { sse_events "$1" | awk -F'\t' -v i="$2" '$1 == i { f = 1 } END { exit !f }'; }

# poll REPO AFTER [WAIT]: long poll; sets $body
poll() {
    api GET "/$MESA_ORG/$1/events?after=$2&wait=${3:-0}" --max-time 70
    expect 200
}

change_commit() {
    api GET "/$MESA_ORG/$1/changes/$2"
    expect 200 || return 1
    jq -r .current_commit_oid <<<"$body"
}

repo_id() {
    api GET "/$MESA_ORG/$1"
    expect 200 || return 1
    jq -r .id <<<"$body"
}

patch_files() { # REPO CHANGE FILES_JSON
    jreq PATCH "/$MESA_ORG/$1/changes/$2" "{\"files\":$3}"
    expect 200
}

# jq: is $want a subsequence of the input array?
SUBSEQ='def subseq($want): reduce .[] as $x (0; if . < ($want | length) and $x == $want[.] then . + 1 else . end) == ($want | length);'

# ---------------------------------------------------------------- long poll

@test "long poll with after=0 wait=0 lists the repo's events in the webhook envelope" {
    make_repo ev-list
    rid=$(repo_id ev-list)
    cid=$(new_change ev-list "$ROOT_CHANGE" "[$(file_json a.txt a)]")
    patch_files ev-list "$cid" "[$(file_json b.txt b)]"
    jreq POST "/$MESA_ORG/ev-list/bookmarks" "{\"name\":\"feat\",\"change_id\":\"$cid\"}"
    expect 201
    jreq PATCH "/$MESA_ORG/ev-list/bookmarks/feat" "{\"change_id\":\"$ROOT_CHANGE\"}"
    expect 200
    api DELETE "/$MESA_ORG/ev-list/bookmarks/feat"
    expect 200
    api GET "/whoami"
    expect 200
    org=$(jq -c .org <<<"$body")

    poll ev-list 0
    jq -e "$SUBSEQ"' [.events[].type] | subseq(["repo.created","change.created","change.evolved","bookmark.created","bookmark.moved","bookmark.deleted"])' <<<"$body"
    # envelope fields on every event
    jq -e --arg rid "$rid" --argjson org "$org" '.events | length >= 6 and all(
        (.id | tostring | test("^[0-9]+$")) and
        (.type | type == "string") and
        (.occurred_at | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$")) and
        .organization.id == $org.id and .organization.slug == $org.slug and
        .organization.name == $org.name and
        .repository.id == $rid and .repository.name == "ev-list" and
        (.data | type == "object"))' <<<"$body"
    # ids increase, last_event_id is the newest
    jq -e '[.events[].id | tonumber] as $ids | $ids == ($ids | sort) and ($ids | unique | length) == ($ids | length)
           and (.last_event_id | tonumber) == $ids[-1]' <<<"$body"
    # change.created names the change
    jq -e --arg c "$cid" '[.events[] | select(.type == "change.created")][0].data
        | .change_id == $c and (.commit_oid | test("^[0-9a-f]{40}$")) and (.paths | index("a.txt") != null)' <<<"$body"
    # bookmark events
    jq -e --arg c "$cid" '[.events[] | select(.type == "bookmark.created")][0].data
        | .bookmark == "feat" and .change_id == $c and (.commit_oid | test("^[0-9a-f]{40}$"))' <<<"$body"
    jq -e --arg c "$cid" --arg r "$ROOT_CHANGE" '[.events[] | select(.type == "bookmark.moved")][-1].data
        | .bookmark == "feat" and .change_id == $r and .from_change_id == $c' <<<"$body"
    jq -e '[.events[] | select(.type == "bookmark.deleted")][0].data | .bookmark == "feat"' <<<"$body"
}

@test "a change.evolved event names the change, the new and previous commit and the changed paths" {
    make_repo ev-evolved
    cid=$(new_change ev-evolved "$ROOT_CHANGE" "[$(file_json keep.txt k),$(file_json gone.txt g)]")
    prev=$(change_commit ev-evolved "$cid")
    patch_files ev-evolved "$cid" "[$(file_json dir/new.txt n),{\"path\":\"gone.txt\",\"action\":\"delete\"}]"
    new=$(jq -r .current_commit_oid <<<"$body")

    poll ev-evolved 0
    run jq -c --arg c "$cid" '[.events[] | select(.type == "change.evolved" and .data.change_id == $c)]' <<<"$body"
    assert_success
    ev=$output
    assert_equal "$(jq length <<<"$ev")" 1
    assert_equal "$(jq -r '.[0].data.commit_oid' <<<"$ev")" "$new"
    assert_equal "$(jq -r '.[0].data.previous_commit_oid' <<<"$ev")" "$prev"
    assert_equal "$(jq -c '.[0].data.paths | sort' <<<"$ev")" '["dir/new.txt","gone.txt"]'
    assert_equal "$(jq -c '.[0].data.paths_truncated' <<<"$ev")" false
}

@test "a long poll with wait=10 returns once a PATCH makes a new event" {
    make_repo ev-wait
    cid=$(new_change ev-wait "$ROOT_CHANGE" "[$(file_json a a)]")
    poll ev-wait 0
    last=$(jq -r .last_event_id <<<"$body")

    curl -sS --max-time 30 -H "Authorization: Bearer $ADMIN_KEY" \
        "$MESAD_URL/v1/$MESA_ORG/ev-wait/events?after=$last&wait=10" \
        >"$BATS_TEST_TMPDIR/poll" 3>&- &
    pid=$!
    echo "$pid" >>"$BATS_TEST_TMPDIR/pids"
    sleep 0.3
    patch_files ev-wait "$cid" "[$(file_json b b)]"
    new=$(jq -r .current_commit_oid <<<"$body")
    wait "$pid"
    jq -e --arg o "$new" --argjson last "$last" '
        (.events | length) >= 1 and
        all(.events[]; (.id | tonumber) > $last) and
        any(.events[]; .type == "change.evolved" and .data.commit_oid == $o)' "$BATS_TEST_TMPDIR/poll"
}

@test "a long poll with wait=0 and nothing new returns no events at once" {
    make_repo ev-empty
    poll ev-empty 0
    last=$(jq -r .last_event_id <<<"$body")
    [[ "$last" =~ ^[0-9]+$ ]]
    poll ev-empty "$last" 0
    assert_equal "$(jq -c .events <<<"$body")" '[]'
    assert_equal "$(jq -r .last_event_id <<<"$body")" "$last"
}

# ---------------------------------------------------------------- SSE

@test "the SSE stream delivers a change.evolved event with id, event and data lines" {
    make_repo ev-sse
    cid=$(new_change ev-sse "$ROOT_CHANGE" "[$(file_json a a)]")
    out=$BATS_TEST_TMPDIR/sse
    SSE_REPO=ev-sse sse_start "$out"
    grep -qi '^content-type: *text/event-stream' "$out.h"
    patch_files ev-sse "$cid" "[$(file_json b.txt b)]"
    new=$(jq -r .current_commit_oid <<<"$body")

    wait_for 10 has_event "$out" change.evolved
    line=$(sse_events "$out" | awk -F'\t' '$2 == "change.evolved"' | head -1)
    id=$(cut -f1 <<<"$line")
    data=$(cut -f3- <<<"$line")
    [[ "$id" =~ ^[0-9]+$ ]]
    jq -e --arg c "$cid" --arg o "$new" --arg id "$id" '
        .type == "change.evolved" and (.id | tostring) == $id and
        .data.change_id == $c and .data.commit_oid == $o and (.data.paths | index("b.txt") != null) and
        .repository.name == "ev-sse"' <<<"$data"
    # without Last-Event-ID or after=, only new events: not the change.created before
    run has_event "$out" change.created
    assert_failure
}

@test "resuming with Last-Event-ID: n delivers exactly the events after n" {
    make_repo ev-resume
    cid=$(new_change ev-resume "$ROOT_CHANGE" "[$(file_json a a)]")
    for f in b c d; do patch_files ev-resume "$cid" "[$(file_json "$f" "$f")]"; done
    poll ev-resume 0
    ids=$(jq -r '.events[].id | tostring' <<<"$body")
    [ "$(wc -l <<<"$ids")" -ge 5 ]
    n=$(sed -n 2p <<<"$ids")
    want=$(sed -n '3,$p' <<<"$ids")
    lastid=$(tail -1 <<<"$ids")

    out=$BATS_TEST_TMPDIR/sse
    SSE_REPO=ev-resume sse_start "$out" -H "Last-Event-ID: $n"
    wait_for 10 has_event_id "$out" "$lastid"
    sleep 0.3
    assert_equal "$(sse_events "$out" | cut -f1)" "$want"
    # the stream's types are the long poll's types
    assert_equal "$(sse_events "$out" | cut -f2)" \
        "$(jq -r --argjson n "$n" '.events[] | select((.id | tonumber) > $n) | .type' <<<"$body")"
}

@test "resuming with ?after=n on the SSE stream delivers exactly the events after n" {
    make_repo ev-after
    cid=$(new_change ev-after "$ROOT_CHANGE" "[$(file_json a a)]")
    patch_files ev-after "$cid" "[$(file_json b b)]"
    poll ev-after 0
    ids=$(jq -r '.events[].id | tostring' <<<"$body")
    n=$(head -1 <<<"$ids")
    want=$(sed -n '2,$p' <<<"$ids")

    out=$BATS_TEST_TMPDIR/sse
    SSE_REPO=ev-after SSE_QUERY="?after=$n" sse_start "$out"
    wait_for 10 has_event_id "$out" "$(tail -1 <<<"$ids")"
    sleep 0.3
    assert_equal "$(sse_events "$out" | cut -f1)" "$want"
}

@test "the SSE stream sends ': keep-alive' comments every --keepalive seconds" {
    make_repo ev-keepalive
    out=$BATS_TEST_TMPDIR/sse
    SSE_REPO=ev-keepalive sse_start "$out"
    wait_for 5 grep -q '^: keep-alive' "$out"
}

@test "events of another repo do not appear in this repo's stream or long poll" {
    make_repo ev-mine
    make_repo ev-theirs
    mine=$(new_change ev-mine "$ROOT_CHANGE" "[$(file_json m m)]")
    theirs=$(new_change ev-theirs "$ROOT_CHANGE" "[$(file_json t t)]")

    out=$BATS_TEST_TMPDIR/sse
    SSE_REPO=ev-mine sse_start "$out"
    patch_files ev-theirs "$theirs" "[$(file_json t2 t2)]"
    patch_files ev-mine "$mine" "[$(file_json m2 m2)]"
    wait_for 10 has_event "$out" change.evolved
    sleep 0.3
    sse_events "$out" | cut -f3- | jq -e -s --arg t "$theirs" \
        'length >= 1 and all(.repository.name == "ev-mine" and .data.change_id != $t)'

    poll ev-mine 0
    jq -e --arg t "$theirs" '(.events | length) >= 3 and
        all(.events[]; .repository.name == "ev-mine" and .data.change_id != $t)' <<<"$body"
}

@test "a read-scope token can read events; a token for another repo gets 403 FORBIDDEN" {
    make_repo ev-auth
    make_repo ev-auth-other
    AUTH=$(token '.scopes=["read"]') api GET "/$MESA_ORG/ev-auth/events?after=0&wait=0"
    expect 200
    jq -e '.events | any(.type == "repo.created")' <<<"$body"

    AUTH=$(token ".scopes=[\"read\"] | .repos=[\"$MESA_ORG/ev-auth\"]") \
        api GET "/$MESA_ORG/ev-auth/events?after=0&wait=0"
    expect 200

    other=$(token ".repos=[\"$MESA_ORG/ev-auth-other\"]")
    AUTH=$other api GET "/$MESA_ORG/ev-auth/events?after=0&wait=0"
    expect 403 FORBIDDEN
    AUTH=$other api GET "/$MESA_ORG/ev-auth/events" -H 'Accept: text/event-stream' --max-time 5
    expect 403 FORBIDDEN

    AUTH= api GET "/$MESA_ORG/ev-auth/events?after=0&wait=0"
    expect 401 UNAUTHORIZED
}
