#!/usr/bin/env bats
# tests/server/cli.bats - the mesad command line: init, key create/list/revoke,
# serve (listeners, ready file, one server per data dir, SIGTERM), usage errors.
# One shared server (mesad_start) for the tests that need a running server;
# tests of init/serve on their own data dir use $BATS_TEST_TMPDIR.

bats_require_minimum_version 1.5.0
load ../lib/mesad
load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

setup_file() { mesad_start; }
teardown_file() { mesad_stop; }

# A serve started by a test on its own data dir is killed here even when the
# test failed half-way.
teardown() {
    if [ -n "${OWN_PID:-}" ]; then
        kill -KILL "$OWN_PID" 2>/dev/null || true
        wait "$OWN_PID" 2>/dev/null || true
    fi
}

# serve_own DIR: `mesad serve` on DIR (loopback port 0 + DIR.sock), waits for
# DIR.ready; sets OWN_PID and OWN_URL.
serve_own() {
    local dir=$1 i
    rm -f "$dir.ready"
    "$MESAD" serve --data "$dir" --listen 127.0.0.1:0 --listen "unix:$dir.sock" \
        --ready-file "$dir.ready" >"$dir.log" 2>&1 3>&- &
    OWN_PID=$!
    for i in $(seq 1 200); do
        [ -s "$dir.ready" ] && break
        kill -0 "$OWN_PID" 2>/dev/null || {
            echo "serve exited early:" >&2
            cat "$dir.log" >&2
            return 1
        }
        sleep 0.05
    done
    [ -s "$dir.ready" ] || { echo "serve did not become ready" >&2; return 1; }
    OWN_URL=http://$(grep -o '127\.0\.0\.1:[0-9]*' "$dir.ready" | head -1)
}

# wait_exit PID: wait (at most 10 s) for PID to exit; sets EXIT_RC to its
# exit status (not in a subshell: only the parent shell can wait for it).
wait_exit() {
    local pid=$1 i rc=0
    for i in $(seq 1 200); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "process $pid still running 10 s after SIGTERM" >&2
        return 1
    fi
    wait "$pid" || rc=$?
    EXIT_RC=$rc
}

# whoami_as KEY [URL]: HTTP status of GET /v1/whoami with KEY
whoami_as() {
    curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" "${2:-$MESAD_URL}/v1/whoami"
}

@test "init creates a 0700 data dir holding mesa.db in WAL mode and a repos directory" {
    local d=$BATS_TEST_TMPDIR/data
    run "$MESAD" init --data "$d" --org acme --json
    assert_success
    [ -d "$d" ]
    assert_equal "$(stat -c %a "$d")" 700
    [ -f "$d/mesa.db" ]
    [ -d "$d/repos" ]
    assert_equal "$(sqlite3 "$d/mesa.db" 'PRAGMA journal_mode')" wal
}

@test "init --json prints org, key_id and an api key of mesa_ and 40 base62 characters" {
    local d=$BATS_TEST_TMPDIR/data
    run --separate-stderr "$MESAD" init --data "$d" --org acme --json
    assert_success
    jq -e '.org == "acme" and (.key_id | type == "string" and length > 0)
           and (.api_key | test("^mesa_[A-Za-z0-9]{40}$"))' <<<"$output"
}

@test "init without --org creates the org named local" {
    local d=$BATS_TEST_TMPDIR/data
    run --separate-stderr "$MESAD" init --data "$d" --json
    assert_success
    assert_equal "$(jq -r .org <<<"$output")" local
    run "$MESAD" key list --data "$d" --org local --json
    assert_success
    assert_equal "$(jq '.keys | length' <<<"$output")" 1
}

@test "init in human form prints the api key on an 'api key:' line and that key authenticates" {
    local d=$BATS_TEST_TMPDIR/data key
    run --separate-stderr "$MESAD" init --data "$d" --org acme
    assert_success
    key=$(grep -o 'api key: mesa_[A-Za-z0-9]*' <<<"$output" | head -1 | sed 's/^api key: //')
    [[ "$key" =~ ^mesa_[A-Za-z0-9]{40}$ ]] || { echo "no api key line in: $output" >&2; false; }
    serve_own "$d"
    assert_equal "$(whoami_as "$key" "$OWN_URL")" 200
}

@test "the api key is shown once: neither init's nor key create's raw key is stored in the data dir" {
    local d=$BATS_TEST_TMPDIR/data k1 k2 k
    k1=$("$MESAD" init --data "$d" --org acme --json | jq -r .api_key)
    k2=$("$MESAD" key create --data "$d" --org acme --scopes read --json | jq -r .api_key)
    [[ "$k1" == mesa_* && "$k2" == mesa_* ]]
    for k in "$k1" "$k2" "${k1#mesa_}" "${k2#mesa_}"; do
        if grep -r -a -F -q -- "$k" "$d"; then
            echo "raw key material '$k' found in: $(grep -r -a -F -l -- "$k" "$d")" >&2
            false
        fi
    done
}

@test "init twice for the same org exits 1 saying the org already exists" {
    local d=$BATS_TEST_TMPDIR/data
    run "$MESAD" init --data "$d" --org acme --json
    assert_success
    run "$MESAD" init --data "$d" --org acme --json
    assert_failure 1
    assert_output --partial "already exists"
    run "$MESAD" key list --data "$d" --org acme --json
    assert_success
    assert_equal "$(jq '.keys | length' <<<"$output")" 1
}

@test "init with a new org on an existing data dir adds that org and keeps the first" {
    local d=$BATS_TEST_TMPDIR/data
    run "$MESAD" init --data "$d" --org acme --json
    assert_success
    run --separate-stderr "$MESAD" init --data "$d" --org beta --json
    assert_success
    assert_equal "$(jq -r .org <<<"$output")" beta
    run "$MESAD" key list --data "$d" --org beta --json
    assert_success
    assert_equal "$(jq '.keys | length' <<<"$output")" 1
    run "$MESAD" key list --data "$d" --org acme --json
    assert_success
    assert_equal "$(jq '.keys | length' <<<"$output")" 1
}

@test "init without --data is a usage error (exit 2)" {
    run --separate-stderr "$MESAD" init --org acme
    assert_failure 2
}

@test "key create --json prints org, key_id, api_key, name and scopes" {
    run --separate-stderr "$MESAD" key create --data "$MESAD_DATA" --org acme \
        --scopes read,write --name ci --json
    assert_success
    jq -e '.org == "acme" and .name == "ci" and (.scopes | sort) == ["read","write"]
           and (.key_id | type == "string" and length > 0)
           and (.api_key | test("^mesa_[A-Za-z0-9]{40}$"))' <<<"$output"
}

@test "a key created with --scopes read reads but its writes get 403 READ_ONLY" {
    local k
    run --separate-stderr "$MESAD" key create --data "$MESAD_DATA" --org acme --scopes read --json
    assert_success
    k=$(jq -r .api_key <<<"$output")
    make_repo cli-ro
    AUTH=$k api GET /whoami
    expect 200
    assert_equal "$(jq -c '.scopes' <<<"$body")" '["read"]'
    AUTH=$k api GET /acme/cli-ro
    expect 200
    AUTH=$k jreq POST /acme/cli-ro/changes "{\"base_change_id\":\"$ROOT_CHANGE\",\"files\":[$(file_json a.txt hi)]}"
    expect 403 READ_ONLY
    AUTH=$k jreq POST /acme/cli-ro/bookmarks "{\"name\":\"b\",\"change_id\":\"$ROOT_CHANGE\"}"
    expect 403 READ_ONLY
}

@test "key list --json shows each key with key_id, name, scopes, created_at and revoked" {
    local id
    id=$("$MESAD" key create --data "$MESAD_DATA" --org acme --scopes read,write --name listed --json | jq -r .key_id)
    run --separate-stderr "$MESAD" key list --data "$MESAD_DATA" --org acme --json
    assert_success
    jq -e --arg id "$id" --arg admin "$ADMIN_KEY_ID" '
        (.keys | type == "array")
        and (.keys | all(has("key_id") and has("name") and has("scopes") and has("created_at") and has("revoked")))
        and (.keys[] | select(.key_id == $id) | .name == "listed" and (.scopes | sort) == ["read","write"] and .revoked == false)
        and (.keys[] | select(.key_id == $admin) | (.scopes | sort) == ["admin","read","write"])' <<<"$output"
    # the raw key is never listed
    run bash -c "\"$MESAD\" key list --data \"$MESAD_DATA\" --org acme --json | grep -cE 'mesa_[A-Za-z0-9]{40}'"
    assert_output 0
}

@test "key revoke makes the key get 401 from the running server and key list marks it revoked" {
    local out k id
    out=$("$MESAD" key create --data "$MESAD_DATA" --org acme --name victim --json)
    k=$(jq -r .api_key <<<"$out")
    id=$(jq -r .key_id <<<"$out")
    assert_equal "$(whoami_as "$k")" 200
    run "$MESAD" key revoke --data "$MESAD_DATA" --org acme "$id"
    assert_success
    assert_equal "$(whoami_as "$k")" 401
    AUTH=$k api GET /acme/repos
    expect 401 UNAUTHORIZED
    run "$MESAD" key list --data "$MESAD_DATA" --org acme --json
    assert_success
    assert_equal "$(jq --arg id "$id" '.keys[] | select(.key_id == $id) | .revoked' <<<"$output")" true
    # the admin key is untouched
    assert_equal "$(whoami_as "$ADMIN_KEY")" 200
}

@test "key revoke of an unknown key id exits 1" {
    run "$MESAD" key revoke --data "$MESAD_DATA" --org acme no-such-key-id
    assert_failure 1
}

@test "key create with an unknown scope name exits 2" {
    run "$MESAD" key create --data "$MESAD_DATA" --org acme --scopes read,superuser --json
    assert_failure 2
    run "$MESAD" key create --data "$MESAD_DATA" --org acme --scopes "" --json
    assert_failure 2
}

@test "key create for an unknown org exits 1" {
    run "$MESAD" key create --data "$MESAD_DATA" --org no-such-org --json
    assert_failure 1
}

@test "an unknown option exits 2 with a one-line error on stderr for every command" {
    local d=$BATS_TEST_TMPDIR/data
    local -a cmds=(
        "init --data $d --bogus"
        "key create --data $MESAD_DATA --org acme --bogus"
        "key list --data $MESAD_DATA --org acme --bogus"
        "key revoke --data $MESAD_DATA --org acme --bogus $ADMIN_KEY_ID"
        "serve --data $MESAD_DATA --listen 127.0.0.1:0 --bogus"
        "--bogus"
    )
    local c
    for c in "${cmds[@]}"; do
        # word splitting of $c is intended
        run --separate-stderr timeout 10 "$MESAD" $c
        [ "$status" -eq 2 ] || { echo "mesad $c: exit $status, expected 2" >&2; false; }
        [ "${#stderr_lines[@]}" -eq 1 ] || {
            echo "mesad $c: stderr has ${#stderr_lines[@]} lines, expected 1: $stderr" >&2
            false
        }
    done
    # the admin key was not revoked by the bad revoke
    assert_equal "$(whoami_as "$ADMIN_KEY")" 200
}

@test "an unknown subcommand exits 2 with a one-line error on stderr" {
    local c
    for c in frobnicate "key frobnicate"; do
        run --separate-stderr "$MESAD" $c
        [ "$status" -eq 2 ] || { echo "mesad $c: exit $status, expected 2" >&2; false; }
        [ "${#stderr_lines[@]}" -eq 1 ] || {
            echo "mesad $c: stderr has ${#stderr_lines[@]} lines, expected 1: $stderr" >&2
            false
        }
    done
}

@test "--help and --version print to stdout and exit 0 on every command" {
    local c f
    for c in "" init key "key create" "key revoke" "key list" serve; do
        for f in --help --version; do
            run --separate-stderr timeout 10 "$MESAD" $c $f
            [ "$status" -eq 0 ] || { echo "mesad $c $f: exit $status" >&2; false; }
            [ -n "$output" ] || { echo "mesad $c $f: nothing on stdout" >&2; false; }
        done
    done
}

@test "serve on a missing data dir exits 1" {
    run timeout 10 "$MESAD" serve --data "$BATS_TEST_TMPDIR/nope" --listen 127.0.0.1:0
    assert_failure 1
    [ ! -e "$BATS_TEST_TMPDIR/nope/mesa.db" ]
}

@test "serve on an existing but uninitialised dir exits 1" {
    mkdir -p "$BATS_TEST_TMPDIR/empty"
    run timeout 10 "$MESAD" serve --data "$BATS_TEST_TMPDIR/empty" --listen 127.0.0.1:0
    assert_failure 1
}

@test "a second serve on the same data dir exits 1 saying it is in use, and the first keeps serving" {
    run timeout 10 "$MESAD" serve --data "$MESAD_DATA" --listen 127.0.0.1:0 \
        --listen "unix:$BATS_TEST_TMPDIR/second.sock"
    assert_failure 1
    assert_output --partial "in use"
    kill -0 "$MESAD_PID"
    assert_equal "$(whoami_as "$ADMIN_KEY")" 200
    assert_equal "$(curl -sS -o /dev/null -w '%{http_code}' --unix-socket "$MESAD_SOCK" \
        -H "Authorization: Bearer $ADMIN_KEY" http://x/v1/whoami)" 200
}

@test "serve exits 0 on SIGTERM" {
    local d=$BATS_TEST_TMPDIR/data key
    key=$("$MESAD" init --data "$d" --org acme --json | jq -r .api_key)
    serve_own "$d"
    assert_equal "$(whoami_as "$key" "$OWN_URL")" 200
    kill -TERM "$OWN_PID"
    wait_exit "$OWN_PID"
    OWN_PID=
    assert_equal "$EXIT_RC" 0
    # the port is closed afterwards
    run curl -sS -o /dev/null --max-time 5 "$OWN_URL/healthz"
    assert_failure
}

@test "serve listens on TCP and on the unix socket and writes both addresses to the ready file" {
    grep -qx "unix:$MESAD_SOCK" "$MESAD_TMP/ready"
    grep -qE '^127\.0\.0\.1:[0-9]+$' "$MESAD_TMP/ready"
    [ -S "$MESAD_SOCK" ]
    run curl -sS --unix-socket "$MESAD_SOCK" -H "Authorization: Bearer $ADMIN_KEY" http://x/v1/whoami
    assert_success
    assert_equal "$(jq -r .org.slug <<<"$output")" acme
    assert_equal "$(jq -r .key_id <<<"$output")" "$ADMIN_KEY_ID"
    run curl -sS -H "Authorization: Bearer $ADMIN_KEY" "$MESAD_URL/v1/whoami"
    assert_success
    assert_equal "$(jq -r .org.slug <<<"$output")" acme
    run curl -sS --unix-socket "$MESAD_SOCK" http://x/healthz
    assert_success
    assert_equal "$(jq -c . <<<"$output")" '{"ok":true}'
}
