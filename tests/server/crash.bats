#!/usr/bin/env bats
# tests/server/crash.bats - nothing acknowledged is lost on kill -9
# (docs/PROTOCOL.md, "Durability and concurrency"): writers PATCH distinct
# paths, mesad is killed with SIGKILL mid-storm and restarted on the same
# data dir; git stays consistent and every acknowledged path is there.
# The server is started per test (setup/teardown run in the test's shell,
# so the restarted server's pid is the one teardown stops).

bats_require_minimum_version 1.5.0
load ../lib/mesad
load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

setup() { mesad_start; }

teardown() {
    local pid
    for pid in ${WRITERS:-}; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    mesad_stop
}

# crash_writer REPO CHANGE TAG DIR: PATCH paths TAG_1, TAG_2, ... (at most
# 2000) until the connection fails; acknowledged paths go to DIR/ack.TAG,
# other HTTP answers to DIR/err.TAG.
crash_writer() {
    local repo=$1 cid=$2 tag=$3 dir=$4 i path code b
    for i in $(seq 1 2000); do
        path="${tag}_$i"
        b=$(printf %s "$path" | base64 -w0)
        code=$(curl -sS --max-time 20 -o "$dir/body.$tag" -w '%{http_code}' -X PATCH \
            -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \
            --data-binary "{\"files\":[{\"path\":\"$path\",\"content\":\"$b\"}]}" \
            "$MESAD_URL/v1/$MESA_ORG/$repo/changes/$cid" 2>/dev/null) || break
        if [ "$code" = 200 ]; then
            echo "$path" >>"$dir/ack.$tag"
        else
            echo "$path HTTP $code" >>"$dir/err.$tag"
        fi
    done
}

@test "kill -9 during a write storm loses no acknowledged write and leaves git consistent (3 cycles)" {
    make_repo crash
    api GET "/$MESA_ORG/crash"
    g="$MESAD_DATA/repos/$(jq -r .id <<<"$body").git"
    [ -d "$g" ]
    cid=$(new_change crash "$ROOT_CHANGE" "[$(file_json seed seed)]")
    # main follows the change, so refs/heads/main is the change's commit
    jreq PATCH "/$MESA_ORG/crash/bookmarks/main" "{\"change_id\":\"$cid\"}"
    expect 200
    dir=$BATS_TEST_TMPDIR
    echo seed >"$dir/ack.seed"

    for cycle in 1 2 3; do
        WRITERS=
        for w in 1 2 3 4; do
            crash_writer crash "$cid" "c${cycle}w$w" "$dir" 3>&- &
            WRITERS="$WRITERS $!"
        done
        sleep 1.5
        kill -KILL "$MESAD_PID"
        wait "$MESAD_PID" 2>/dev/null || true
        for pid in $WRITERS; do wait "$pid" || true; done
        WRITERS=
        echo "# cycle $cycle: $(cat "$dir"/ack.c${cycle}w* 2>/dev/null | wc -l) writes acknowledged before kill -9" >&3

        # the server comes back on the same data dir
        mesad_serve
        api GET "/$MESA_ORG/crash"
        expect 200

        # git is consistent (dangling objects from the interrupted write are fine)
        run git --git-dir "$g" fsck --no-dangling
        assert_success
        assert_equal "$(grep -v '^notice:' <<<"$output")" ""

        # the change's commit is main's commit, and it has every acknowledged path
        api GET "/$MESA_ORG/crash/changes/$cid"
        expect 200
        commit=$(jq -r .current_commit_oid <<<"$body")
        assert_equal "$(git --git-dir "$g" rev-parse refs/heads/main)" "$commit"
        api GET "/$MESA_ORG/crash/tree?change_id=$cid"
        expect 200
        assert_equal "$(jq -r .commit_oid <<<"$body")" "$commit"
        jq -r '.entries[].path' <<<"$body" | LC_ALL=C sort >"$dir/tree"
        git --git-dir "$g" ls-tree -r --name-only "$commit" | LC_ALL=C sort >"$dir/gittree"
        cat "$dir"/ack.* | LC_ALL=C sort >"$dir/acked"
        lost=$(LC_ALL=C comm -23 "$dir/acked" "$dir/tree")
        [ -z "$lost" ] || {
            echo "cycle $cycle: acknowledged but missing from the REST tree: $lost" >&2
            false
        }
        lost=$(LC_ALL=C comm -23 "$dir/acked" "$dir/gittree")
        [ -z "$lost" ] || {
            echo "cycle $cycle: acknowledged but missing from git: $lost" >&2
            false
        }

        # new writes succeed
        jreq PATCH "/$MESA_ORG/crash/changes/$cid" "{\"files\":[$(file_json "after$cycle" "after$cycle")]}"
        expect 200
        echo "after$cycle" >>"$dir/ack.after"
        assert_equal "$(git --git-dir "$g" rev-parse refs/heads/main)" "$(jq -r .current_commit_oid <<<"$body")"
    done

    # the storm was real: some writes were acknowledged
    [ "$(cat "$dir"/ack.c* | wc -l)" -gt 0 ]
    # and every PATCH the server answered was a success (racing PATCHes
    # without base_commit_oid are re-applied, never refused)
    if ls "$dir"/err.* >/dev/null 2>&1; then
        echo "HTTP answers other than 200 during the storms:" >&2
        cat "$dir"/err.* >&2
        false
    fi
}
