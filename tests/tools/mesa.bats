#!/usr/bin/env bats
# tests/tools/mesa.bats - the `mesa` command-line client (tools/mesa*.c)
# against a private mesad: every subcommand's success and failure paths,
# exit codes (0 ok, 1 failed, 2 usage), stdout and stderr; the environment
# checks; repo import (ignores, modes, symlinks, batches, a 1,000-file
# round trip through git); watch; the embedded default server.
# The contract is each command's --help text, docs/PROTOCOL.md and the
# client issue. One shared server; every test uses its own repos.

bats_require_minimum_version 1.5.0
load ../lib/mesa
load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

setup_file() {
    mesad_start
    mesa_env
}
teardown_file() { mesad_stop; }

setup() {
    mesa_env
    EMB=""
}

teardown() {
    mesa_kill_bg
    embedded_stop
}

# ------------------------------------------------------------ helpers

# put_str REPO:PATH CONTENT [mesa put options...]
put_str() {
    local target=$1 content=$2
    shift 2
    printf %s "$content" | "$MESA" put "$@" "$target" >/dev/null
}

# change count of a repo (every change, the root included)
change_count() {
    api GET "/$MESA_ORG/$1/changes?limit=100"
    expect 200 || return 1
    jq '.changes | length' <<<"$body"
}

# change_parents REPO ID -> space-separated parent ids
change_parents() {
    api GET "/$MESA_ORG/$1/changes/$2"
    expect 200 || return 1
    jq -r '.parents | join(" ")' <<<"$body"
}

# repo_id NAME
repo_id() {
    api GET "/$MESA_ORG/$1"
    expect 200 || return 1
    jq -r .id <<<"$body"
}

# The embedded default: a private server under $EMB (fresh per test).
embedded_env() {
    EMB=$(mktemp -d "${TMPDIR:-/tmp}/mesa-emb.XXXXXX")
    EMB_DATA="$EMB/data/mesa"
    EMB_CONF="$EMB/conf/mesa"
}

# emb ARGS...: mesa with no MESA_URL and XDG dirs under $EMB
emb() {
    env -u MESA_URL -u MESA_API_KEY -u MESA_ACCESS_TOKEN -u MESA_ORG -u MESA_PREFIX \
        XDG_DATA_HOME="$EMB/data" XDG_CONFIG_HOME="$EMB/conf" MESAD="$MESAD" \
        "$MESA" "$@" 3>&-
}

embedded_stop() {
    [ -n "${EMB:-}" ] || return 0
    local pids pid i
    pids=$(cat "$EMB_DATA/serve.lock" 2>/dev/null || true)
    pids="$pids $(pgrep -f "serve --data $EMB_DATA" || true)"
    for pid in $pids; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in $pids; do
        for i in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$EMB"
    EMB=""
}

# put_until_seen OUT LINE REPO:PATH: write PATH (another client) until the
# watcher's OUT has LINE (the watcher may not be following yet the first
# time): at most 10 tries of 1 s.
put_until_seen() {
    local out=$1 line=$2 target=$3 i
    for i in $(seq 1 10); do
        put_str "$target" "try $i"
        wait_for_line "$out" "$line" 1 2>/dev/null && return 0
    done
    echo "watcher never printed '$line'; it has:" >&2
    cat "$out" >&2
    return 1
}

# ------------------------------------------------------------ global

@test "mesa --help prints the usage on stdout and exits 0" {
    run -0 --separate-stderr mesa --help
    assert_output --partial "usage: mesa"
    for c in whoami "repo list" "repo import" ls cat put rm change bookmark log watch; do
        assert_output --partial "$c"
    done
    assert_output --partial MESA_URL
    [ -z "$stderr" ]
}

@test "mesa --version prints the version" {
    run -0 --separate-stderr mesa --version
    assert_output --regexp '^mesa [0-9]+\.[0-9]+'
}

@test "mesa without a command is a usage error (2)" {
    run -2 --separate-stderr mesa
    [ -z "$output" ]
    [[ "$stderr" == *"usage: mesa"* ]]
}

@test "an unknown command is a usage error (2)" {
    run -2 --separate-stderr mesa frobnicate
    [ -z "$output" ]
    [[ "$stderr" == *"unknown command 'frobnicate'"* ]]
}

@test "every subcommand's --help prints its usage and exits 0" {
    local c
    for c in whoami repo "repo import" "repo list" ls cat put rm change "change new" \
        "change list" bookmark "bookmark merge" log watch token push-pending; do
        # shellcheck disable=SC2086
        run -0 --separate-stderr mesa $c --help
        [[ "$output" == *"usage: mesa ${c%% *}"* ]] || {
            echo "mesa $c --help: $output" >&2
            return 1
        }
        [ -z "$stderr" ]
    done
}

@test "--help needs no server or credentials" {
    local c
    for c in whoami repo ls cat put rm "change list" "bookmark list" log watch; do
        # shellcheck disable=SC2086
        run -0 --separate-stderr mesa_with -u MESA_API_KEY MESA_URL=http://127.0.0.1:1 -- $c --help
        [[ "$output" == *usage:* ]]
    done
}

@test "usage errors exit 2 without touching the server" {
    # an unreachable server proves no request is made
    local args
    while IFS= read -r args; do
        # shellcheck disable=SC2086
        run --separate-stderr mesa_with MESA_URL=http://127.0.0.1:1 -- $args
        [ "$status" -eq 2 ] || {
            echo "mesa $args: expected 2, got $status: $stderr" >&2
            return 1
        }
        [ -n "$stderr" ]
    done <<'EOF'
repo
repo frob
repo create
repo create a b
repo delete
repo import onlyname
repo list extra
repo list --bogus
whoami extra
ls
ls r:a r:b
ls --bogus r:a
cat
put
rm
ls --bookmark main --change x r:a
ls nocolon
change
change frob r
change list
change list r --limit -1
change list r --limit x
change edit r
change new r --bookmark main --change x
bookmark
bookmark frob r
bookmark list
bookmark create r
bookmark merge r a
log
log a b
watch
watch --bogus r:a
EOF
}

# ------------------------------------------------------------ environment

@test "MESA_URL with another scheme: exit 2 and one line naming MESA_URL" {
    run -2 --separate-stderr mesa_with MESA_URL=ftp://x -- whoami
    [ -z "$output" ]
    [ "${#stderr_lines[@]}" -eq 1 ]
    [[ "$stderr" == *MESA_URL* ]]
}

@test "MESA_API_KEY and MESA_ACCESS_TOKEN together: exit 2" {
    run -2 --separate-stderr mesa_with MESA_ACCESS_TOKEN="$(token)" -- whoami
    [ "${#stderr_lines[@]}" -eq 1 ]
    [[ "$stderr" == *MESA_API_KEY* && "$stderr" == *MESA_ACCESS_TOKEN* ]]
}

@test "MESA_URL without a credential: exit 2" {
    run -2 --separate-stderr mesa_with -u MESA_API_KEY -- whoami
    [ "${#stderr_lines[@]}" -eq 1 ]
    [[ "$stderr" == *MESA_API_KEY* ]]
    run -2 --separate-stderr mesa_with MESA_API_KEY= -- repo list
    [[ "$stderr" == *MESA_API_KEY* ]]
}

@test "an invalid MESA_ORG: exit 2" {
    local org
    for org in Acme -acme 'a b' 'x/y'; do
        run -2 --separate-stderr mesa_with MESA_ORG="$org" -- whoami
        [ "${#stderr_lines[@]}" -eq 1 ]
        [[ "$stderr" == *MESA_ORG* ]]
    done
}

@test "MESA_ACCESS_TOKEN signed from the key works" {
    run -0 --separate-stderr mesa_with -u MESA_API_KEY MESA_ACCESS_TOKEN="$(token)" -- --json whoami
    [ "$(jq -r .org.slug <<<"$output")" = acme ]
    [ "$(jq -r .key_id <<<"$output")" = "$ADMIN_KEY_ID" ]
    run -0 mesa_with -u MESA_API_KEY MESA_ACCESS_TOKEN="$(token)" -- repo create tok-repo
    run -0 mesa_with -u MESA_API_KEY MESA_ACCESS_TOKEN="$(token)" -- repo list
    assert_output --partial tok-repo
}

@test "a read-only token cannot write: exit 1" {
    mesa repo create tok-ro >/dev/null
    local t
    t=$(token '.scopes=["read"]')
    run -0 mesa_with -u MESA_API_KEY MESA_ACCESS_TOKEN="$t" -- ls tok-ro:
    run -1 --separate-stderr mesa_with -u MESA_API_KEY MESA_ACCESS_TOKEN="$t" -- put tok-ro:f </dev/null
    [[ "$stderr" == *403* ]]
}

@test "an expired token: exit 1 promptly with a message saying expired" {
    local t
    t=$(token '.iat=(.iat-7200) | .exp=(.iat+3600)')
    run --separate-stderr timeout 10 env -u MESA_API_KEY MESA_ACCESS_TOKEN="$t" "$MESA" whoami
    [ "$status" -eq 1 ]
    [[ "$stderr" == *expired* ]]
    # also when the org is not given and must come from whoami
    run --separate-stderr timeout 10 env -u MESA_API_KEY -u MESA_ORG MESA_ACCESS_TOKEN="$t" \
        "$MESA" repo list
    [ "$status" -eq 1 ]
    [[ "$stderr" == *expired* ]]
}

@test "a wrong API key: exit 1 with the server's reason" {
    run -1 --separate-stderr mesa_with MESA_API_KEY=mesa_nope -- whoami
    [[ "$stderr" == *401* ]]
}

@test "an unreachable server: exit 1 with a clear message, bounded" {
    run --separate-stderr timeout 10 env MESA_URL=http://127.0.0.1:1 "$MESA" whoami
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"cannot reach"* ]]
    [[ "$stderr" == *127.0.0.1:1* ]]
    run --separate-stderr timeout 10 env MESA_URL="unix:$BATS_TEST_TMPDIR/nosock" "$MESA" repo list
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"cannot reach"* ]]
}

@test "MESA_URL=unix:/socket works" {
    run -0 mesa_with MESA_URL="unix:$MESAD_SOCK" -- whoami
    assert_line "org:    acme"
}

@test "without MESA_ORG the org comes from whoami" {
    mesa repo create noorg >/dev/null
    run -0 mesa_with -u MESA_ORG -- repo list
    assert_output --partial noorg
    put_str noorg:f hello
    run -0 mesa_with -u MESA_ORG -- cat /mesa/acme/noorg/f
    assert_output hello
}

# ------------------------------------------------------------ whoami

@test "whoami prints org, key and scopes" {
    run -0 --separate-stderr mesa whoami
    assert_line "org:    acme"
    assert_line "key:    $ADMIN_KEY_ID (admin)"
    assert_line --regexp '^scopes: .*read.*write.*admin'
    [ -z "$stderr" ]
}

@test "whoami --json has org slug, key_id and scopes" {
    run -0 --separate-stderr mesa whoami --json
    [ "${#lines[@]}" -eq 1 ]
    [ "$(jq -r .org.slug <<<"$output")" = acme ]
    [ "$(jq -r .key_id <<<"$output")" = "$ADMIN_KEY_ID" ]
    [ "$(jq -c .scopes <<<"$output")" = '["read","write","admin"]' ]
}

# ------------------------------------------------------------ repo

@test "repo create / list / delete" {
    run -0 --separate-stderr mesa repo create rp-one
    assert_output "created acme/rp-one"
    [ -z "$stderr" ]
    run -0 mesa repo list
    assert_line --regexp "^rp-one +main +zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz$"
    run -0 --separate-stderr mesa repo delete rp-one
    assert_output "deleted acme/rp-one"
    run -0 mesa repo list
    refute_line --partial rp-one
    api GET /acme/rp-one
    expect 404
}

@test "repo create / list / delete --json" {
    run -0 mesa --json repo create rp-json
    [ "$(jq -r .name <<<"$output")" = rp-json ]
    [ "$(jq -r .default_bookmark <<<"$output")" = main ]
    run -0 mesa repo list --json
    [ "$(jq -r '.repos[] | select(.name == "rp-json") | .head_change_id' <<<"$output")" = "$ROOT_CHANGE" ]
    run -0 mesa repo delete rp-json --json
    [ "$(jq -r .success <<<"$output")" = true ]
}

@test "repo list follows pages (over 100 repos)" {
    # created 8 at a time (each is a git repository on disk)
    seq -w 1 105 | xargs -P 8 -I{} curl -sS -f -o /dev/null -X POST \
        -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \
        --data-binary '{"name":"many-{}"}' "$MESAD_URL/v1/acme/repos"
    run -0 mesa repo list
    [ "$(grep -c '^many-' <<<"$output")" -eq 105 ]
    run -0 mesa --json repo list
    [ "$(jq '[.repos[] | select(.name | startswith("many-"))] | length' <<<"$output")" -eq 105 ]
    [ "$(jq '[.repos[].name] | unique | length' <<<"$output")" -eq "$(jq '.repos | length' <<<"$output")" ]
}

@test "repo create of an existing repo: exit 1" {
    mesa repo create rp-dup >/dev/null
    run -1 --separate-stderr mesa repo create rp-dup
    [ -z "$output" ]
    [[ "$stderr" == *"already exists"* ]]
}

@test "repo delete of a missing repo: exit 1" {
    run -1 --separate-stderr mesa repo delete rp-missing
    [[ "$stderr" == *"not found"* ]]
}

@test "repo create with a bad name: exit 1 (HTTP 400)" {
    local n
    for n in .hidden x.git 'a b' 'a/b'; do
        run -1 --separate-stderr mesa repo create "$n"
        [[ "$stderr" == *400* ]] || {
            echo "$n: $stderr" >&2
            return 1
        }
    done
}

# ------------------------------------------------------------ repo import

@test "repo import creates the repo; skips .git; summary only on non-tty" {
    local src=$BATS_TEST_TMPDIR/src
    mkdir -p "$src/d/e"
    echo hi >"$src/a.txt"
    echo deep >"$src/d/e/f.txt"
    git -C "$src" init -q .
    run -0 --separate-stderr mesa repo import imp-basic "$src"
    [ "${#lines[@]}" -eq 1 ]
    assert_output --regexp "^imported 2 files .* into acme/imp-basic as change [k-z]{32}; main moved to it$"
    [ -z "$stderr" ]
    run -0 repo_tree imp-basic
    assert_output "a.txt file 100644
d dir 040000
d/e dir 040000
d/e/f.txt file 100644"
    # one new change on top of the root, and main is on it
    [ "$(change_count imp-basic)" -eq 2 ]
    local id
    id=$(bookmark_change imp-basic main)
    [ "$(change_parents imp-basic "$id")" = "$ROOT_CHANGE" ]
    run -0 mesa cat imp-basic:d/e/f.txt
    assert_output deep
}

@test "repo import --json prints the summary as JSON" {
    local src=$BATS_TEST_TMPDIR/src
    mkdir -p "$src"
    echo one >"$src/one"
    run -0 --separate-stderr mesa --json repo import imp-json "$src"
    [ "$(jq -r .repo <<<"$output")" = imp-json ]
    [ "$(jq -r .files <<<"$output")" = 1 ]
    [ "$(jq -r .change_id <<<"$output")" = "$(bookmark_change imp-json main)" ]
}

@test "repo import of a file over the server's body limit fails with the server's message and code" {
    local d=$BATS_TEST_TMPDIR/small src=$BATS_TEST_TMPDIR/src
    mkdir -p "$src"
    head -c 10000 /dev/zero >"$src/big.bin"
    local init key
    init=$("$MESAD" init --data "$d" --org small --json)
    key=$(jq -r .api_key <<<"$init")
    "$MESAD" serve --data "$d" --listen "unix:$d/s.sock" --max-body 4096 --ready-file "$d/ready" >"$d/log" 2>&1 &
    local pid=$! i
    for i in $(seq 1 100); do [ -s "$d/ready" ] && break; sleep 0.05; done
    MESA_URL=unix:$d/s.sock MESA_API_KEY=$key MESA_ORG=small run -1 --separate-stderr "$MESA" repo import imp-big "$src"
    kill -TERM "$pid"
    wait "$pid" || true
    assert_output ""
    [ "$stderr" = "mesa: repo import (the bookmark did not move): blob upload of big.bin failed: request body exceeds 4096 bytes (HTTP 413, PAYLOAD_TOO_LARGE)" ]
}

@test "repo import keeps the executable bit, symlinks and empty directories" {
    local src=$BATS_TEST_TMPDIR/src
    mkdir -p "$src/bin" "$src/empty" "$src/outer/inner"
    printf '#!/bin/sh\necho hi\n' >"$src/bin/run"
    chmod 755 "$src/bin/run"
    echo plain >"$src/plain"
    ln -s plain "$src/link"
    ln -s ../plain "$src/bin/uplink"
    ln -s /etc/hostname "$src/abslink"
    run -0 mesa repo import imp-modes "$src"
    run -0 repo_tree imp-modes
    assert_output "abslink symlink 120000
bin dir 040000
bin/run file 100755
bin/uplink symlink 120000
empty dir 040000
link symlink 120000
outer dir 040000
outer/inner dir 040000
plain file 100644"
    run -0 mesa cat imp-modes:link
    assert_output plain
    run -0 mesa cat imp-modes:abslink
    assert_output /etc/hostname
    run -0 mesa ls imp-modes:empty
    assert_output ""
}

@test "repo import skips what .gitignore files ignore (nested, negation) unless --all" {
    local src=$BATS_TEST_TMPDIR/src
    mkdir -p "$src/build" "$src/sub/deeper" "$src/logs"
    printf '*.log\nbuild/\n!keep.log\n/rootonly.txt\n' >"$src/.gitignore"
    echo a >"$src/a.log"
    echo k >"$src/keep.log"
    echo o >"$src/build/out.o"
    echo r >"$src/rootonly.txt"
    echo r >"$src/sub/rootonly.txt"
    printf 'secret.txt\n!x.log\n' >"$src/sub/.gitignore"
    echo s >"$src/sub/secret.txt"
    echo s >"$src/sub/deeper/secret.txt"
    echo x >"$src/sub/x.log"
    echo y >"$src/sub/y.log"
    echo ok >"$src/sub/ok.txt"
    echo l >"$src/logs/z.log"
    git -C "$src" init -q .
    run -0 mesa repo import imp-ignore "$src"
    assert_output --partial "imported 6 files"
    # the files (a directory left with only ignored files may or may not
    # be kept as an empty directory: not checked)
    local expected=".gitignore
keep.log
sub/.gitignore
sub/ok.txt
sub/rootonly.txt
sub/x.log"
    repo_tree imp-ignore >"$BATS_TEST_TMPDIR/tree"
    run -0 bash -c "grep -v ' dir ' '$BATS_TEST_TMPDIR/tree' | cut -d' ' -f1"
    assert_output "$expected"
    # the same set git itself would add
    git -C "$src" add -A
    run -0 bash -c "git -C '$src' ls-files | LC_ALL=C sort"
    assert_output "$expected"
}

@test "repo import --all imports ignored files too, but never .git" {
    local src=$BATS_TEST_TMPDIR/src
    mkdir -p "$src/build"
    printf '*.log\nbuild/\n' >"$src/.gitignore"
    echo a >"$src/a.log"
    echo o >"$src/build/out.o"
    echo t >"$src/t.txt"
    git -C "$src" init -q .
    run -0 mesa repo import imp-all "$src" --all
    assert_output --partial "imported 4 files"
    run -0 repo_tree imp-all
    assert_output ".gitignore file 100644
a.log file 100644
build dir 040000
build/out.o file 100644
t.txt file 100644"
}

@test "repo import of a 1,000-file tree round-trips byte for byte in one change" {
    local src=$BATS_TEST_TMPDIR/big dst=$BATS_TEST_TMPDIR/clone i
    mkdir -p "$src"
    head -c 20000 /dev/urandom >"$BATS_TEST_TMPDIR/pool"
    for i in $(seq 0 996); do
        local d="$src/d$((i % 10))/e$((i % 7))"
        [ $((i % 3)) -eq 0 ] && d="$src/top$((i % 4))"
        mkdir -p "$d"
        head -c $(((i * 37) % 19000)) "$BATS_TEST_TMPDIR/pool" >"$d/f$i.bin"
    done
    head -c 3145728 /dev/urandom >"$src/huge.bin"
    printf 'a\0b\r\n\377\376' >"$src/binary.dat"
    ln -s huge.bin "$src/huge.link"
    git -C "$src" init -q .
    [ "$(find "$src" -path "$src/.git" -prune -o \( -type f -o -type l \) -print | wc -l)" -eq 1000 ]

    run -0 --separate-stderr mesa repo import imp-big "$src"
    assert_output --regexp "^imported 1000 files "
    [ -z "$stderr" ]
    # one change (batches extend the same change), on top of the root
    [ "$(change_count imp-big)" -eq 2 ]
    local id
    id=$(bookmark_change imp-big main)
    [ "$(change_parents imp-big "$id")" = "$ROOT_CHANGE" ]

    local rid
    rid=$(repo_id imp-big)
    [ -d "$MESAD_DATA/repos/$rid.git" ]
    git clone -q -b main "$MESAD_DATA/repos/$rid.git" "$dst"
    diff -r -x .git "$src" "$dst"
    [ "$(readlink "$dst/huge.link")" = huge.bin ]
    cmp "$src/huge.bin" "$dst/huge.bin"
}

@test "repo import into an existing repo adds one change on top of the default bookmark" {
    mesa repo create imp-exist >/dev/null
    put_str imp-exist:old.txt old
    local before src=$BATS_TEST_TMPDIR/src
    before=$(bookmark_change imp-exist main)
    mkdir -p "$src"
    echo new >"$src/new.txt"
    run -0 mesa repo import imp-exist "$src"
    local after
    after=$(bookmark_change imp-exist main)
    [ "$after" != "$before" ]
    [ "$(change_parents imp-exist "$after")" = "$before" ]
    run -0 mesa cat imp-exist:new.txt
    assert_output new
    # the old change is untouched
    run -0 mesa cat --change "$before" imp-exist:old.txt
    assert_output old
}

@test "repo import on another default bookmark moves that bookmark" {
    mesa repo create imp-dflt >/dev/null
    jreq POST /acme/imp-dflt/bookmarks "{\"name\":\"trunk\",\"change_id\":\"$ROOT_CHANGE\"}"
    expect 201
    jreq PATCH /acme/imp-dflt '{"default_bookmark":"trunk"}'
    expect 200
    local src=$BATS_TEST_TMPDIR/src
    mkdir -p "$src"
    echo t >"$src/t"
    run -0 mesa repo import imp-dflt "$src"
    assert_output --partial "trunk moved to it"
    [ "$(bookmark_change imp-dflt trunk)" != "$ROOT_CHANGE" ]
    [ "$(bookmark_change imp-dflt main)" = "$ROOT_CHANGE" ]
}

@test "repo import of a missing DIR: exit 1, nothing created, bookmark unmoved" {
    mesa repo create imp-nodir >/dev/null
    put_str imp-nodir:f x
    local before
    before=$(bookmark_change imp-nodir main)
    run -1 --separate-stderr mesa repo import imp-nodir "$BATS_TEST_TMPDIR/nope"
    [[ "$stderr" == *nope* ]]
    [ "$(bookmark_change imp-nodir main)" = "$before" ]
    [ "$(change_count imp-nodir)" -eq 2 ]
    run -1 mesa repo import imp-nodir2 "$BATS_TEST_TMPDIR/nope"
    api GET /acme/imp-nodir2
    expect 404
    # a file is not a directory either
    echo x >"$BATS_TEST_TMPDIR/file"
    run -1 mesa repo import imp-nodir "$BATS_TEST_TMPDIR/file"
}

@test "repo import that fails midway leaves the bookmark where it was" {
    mesa repo create imp-fail >/dev/null
    put_str imp-fail:keep.txt keep
    local before src=$BATS_TEST_TMPDIR/src i
    before=$(bookmark_change imp-fail main)
    mkdir -p "$src/a" "$src/z"
    for i in $(seq 1 600); do echo "$i" >"$src/a/f$i"; done
    # over the server's 64 MiB body limit: its upload fails with 413
    truncate -s 65M "$src/z/too-big"
    run -1 --separate-stderr mesa repo import imp-fail "$src"
    [[ "$stderr" == *"did not move"* ]]
    [ "$(bookmark_change imp-fail main)" = "$before" ]
    run -1 mesa cat imp-fail:a/f1
    run -0 mesa cat imp-fail:keep.txt
    assert_output keep
}

@test "repo import killed midway leaves the bookmark where it was" {
    mesa repo create imp-kill >/dev/null
    put_str imp-kill:keep.txt keep
    local before src=$BATS_TEST_TMPDIR/src i d
    before=$(bookmark_change imp-kill main)
    for d in a b c d e f; do
        mkdir -p "$src/$d"
        for i in $(seq 1 500); do echo "$d$i" >"$src/$d/f$i"; done
    done
    mesa_bg "$BATS_TEST_TMPDIR/imp.out" "$BATS_TEST_TMPDIR/imp.err" repo import imp-kill "$src"
    local pid=$MESA_BG_PID
    # wait (at most 60 s) until the first batch made the import's change
    for i in $(seq 1 1200); do
        [ "$(change_count imp-kill)" -ge 3 ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -0 "$pid" 2>/dev/null || skip "the import finished before it could be interrupted"
    [ "$(change_count imp-kill)" -ge 3 ]
    kill -TERM "$pid"
    wait "$pid" || true
    [ "$(bookmark_change imp-kill main)" = "$before" ]
    run -0 mesa ls imp-kill:
    assert_output keep.txt
}

@test "repo import shows a progress bar on a terminal" {
    command -v script >/dev/null || skip "no script(1)"
    local src=$BATS_TEST_TMPDIR/src
    mkdir -p "$src"
    echo a >"$src/a"
    echo b >"$src/b"
    run -0 script -qec "'$MESA' repo import imp-tty '$src'" /dev/null
    assert_output --partial "import: 2/2 files"
    assert_output --partial "MiB/s"
    assert_output --partial "imported 2 files"
}

# ------------------------------------------------------------ ls / cat

@test "ls lists names, directories with a trailing /" {
    mesa repo create ls-names >/dev/null
    put_str ls-names:top.txt t
    put_str ls-names:a/b.txt b
    put_str ls-names:a/c/d.txt d
    run -0 --separate-stderr mesa ls ls-names:
    assert_output "a/
top.txt"
    [ -z "$stderr" ]
    run -0 mesa ls ls-names:a
    assert_output "b.txt
c/"
    run -0 mesa ls ls-names:a/
    assert_output "b.txt
c/"
    run -0 mesa ls /mesa/acme/ls-names
    assert_output "a/
top.txt"
}

@test "ls -l shows mode, type, size and mtime" {
    mesa repo create ls-long >/dev/null
    put_str ls-long:a/b.txt hello
    printf x | mesa put ls-long:top >/dev/null
    run -0 env TZ=UTC "$MESA" ls -l ls-long:
    [ "${#lines[@]}" -eq 2 ]
    assert_line --index 0 --regexp '^040000 +dir +[0-9]+ [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} a/$'
    assert_line --index 1 --regexp '^100644 +file +1 [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} top$'
    # the mtime is the server's (GET .../tree), shown in local time
    local mt when
    api GET /acme/ls-long/tree
    mt=$(jq -r '.entries[] | select(.path == "a/b.txt") | .mtime_ns' <<<"$body")
    when=$(TZ=UTC date -d "@$((mt / 1000000000))" '+%Y-%m-%d %H:%M:%S')
    run -0 env TZ=UTC "$MESA" ls -l ls-long:a
    assert_output --regexp "^100644 +file +5 $when b.txt$"
}

@test "ls of a file prints the file; ls -l of a file its long line" {
    mesa repo create ls-file >/dev/null
    put_str ls-file:dir/x.txt 12345
    run -0 mesa ls ls-file:dir/x.txt
    assert_output x.txt
    run -0 mesa ls -l ls-file:dir/x.txt
    assert_output --regexp '^100644 +file +5 .* x.txt$'
}

@test "ls --json prints the content object" {
    mesa repo create ls-json >/dev/null
    put_str ls-json:d/f x
    run -0 mesa --json ls ls-json:d
    [ "$(jq -r .type <<<"$output")" = dir ]
    [ "$(jq -r '.entries[0].name' <<<"$output")" = f ]
}

@test "ls of a missing path or repo: exit 1" {
    mesa repo create ls-miss >/dev/null
    run -1 --separate-stderr mesa ls ls-miss:nope
    [ -z "$output" ]
    [[ "$stderr" == *"not found"* ]]
    run -1 --separate-stderr mesa ls ls-nosuchrepo:
    [[ "$stderr" == *"not found"* ]]
}

@test "cat is byte-exact for binary content" {
    mesa repo create cat-bin >/dev/null
    local f=$BATS_TEST_TMPDIR/bin
    { printf '\0\0\377\r\n'; head -c 300000 /dev/urandom; printf '\0'; } >"$f"
    mesa put cat-bin:blob.bin <"$f" >/dev/null
    mesa cat cat-bin:blob.bin >"$BATS_TEST_TMPDIR/back"
    cmp "$f" "$BATS_TEST_TMPDIR/back"
}

@test "cat of a directory or a missing file: exit 1" {
    mesa repo create cat-dir >/dev/null
    put_str cat-dir:d/f x
    run -1 --separate-stderr mesa cat cat-dir:d
    [ -z "$output" ]
    [[ "$stderr" == *directory* ]]
    run -1 --separate-stderr mesa cat cat-dir:d/nope
    [ -z "$output" ]
    [[ "$stderr" == *"not found"* ]]
}

# ------------------------------------------------------------ put / rm

@test "put from stdin then cat; an empty stdin makes an empty file" {
    mesa repo create put-cat >/dev/null
    run -0 --separate-stderr bash -c "printf 'line1\nline2\n' | '$MESA' put put-cat:dir/f.txt"
    [ -z "$stderr" ]
    run -0 mesa cat put-cat:dir/f.txt
    assert_output "line1
line2"
    mesa put put-cat:empty </dev/null >/dev/null
    run -0 mesa ls -l put-cat:empty
    assert_output --regexp '^100644 +file +0 '
    # overwrite
    put_str put-cat:dir/f.txt v2
    run -0 mesa cat put-cat:dir/f.txt
    assert_output v2
}

@test "put on a fresh repo creates a change and moves main to it" {
    mesa repo create put-root >/dev/null
    put_str put-root:f one
    run -0 --separate-stderr mesa --json change current put-root
    local cur
    cur=$(jq -r .change_id <<<"$output")
    [ "$cur" != "$ROOT_CHANGE" ]
    [ "$(bookmark_change put-root main)" = "$cur" ]
    [ "$(change_parents put-root "$cur")" = "$ROOT_CHANGE" ]
    # further writes go into that same change
    put_str put-root:g two
    [ "$(bookmark_change put-root main)" = "$cur" ]
    [ "$(change_count put-root)" -eq 2 ]
    run -0 mesa cat put-root:f
    assert_output one
}

@test "put --json prints the change written" {
    mesa repo create put-json >/dev/null
    put_str put-json:a a
    run -0 --separate-stderr bash -c "printf b | '$MESA' --json put put-json:b"
    [ "$(jq -r .id <<<"$output")" = "$(bookmark_change put-json main)" ]
}

@test "put --bookmark writes to that bookmark's change only" {
    mesa repo create put-bm >/dev/null
    put_str put-bm:base base
    mesa bookmark create put-bm other >/dev/null
    mesa change new put-bm --bookmark other >/dev/null
    local main_before
    main_before=$(bookmark_change put-bm main)
    put_str put-bm:onlyother x --bookmark other
    run -0 mesa cat --bookmark other put-bm:onlyother
    assert_output x
    run -1 mesa cat put-bm:onlyother
    [ "$(bookmark_change put-bm main)" = "$main_before" ]
    run -1 --separate-stderr bash -c "printf x | '$MESA' put --bookmark nope put-bm:f"
    [[ "$stderr" == *"not found"* ]]
}

@test "put --change writes into that change; no bookmark moves" {
    mesa repo create put-chg >/dev/null
    put_str put-chg:a a
    local main_id side
    main_id=$(bookmark_change put-chg main)
    side=$(new_change put-chg "$main_id" '[]' side)
    put_str put-chg:side.txt s --change "$side"
    run -0 mesa cat --change "$side" put-chg:side.txt
    assert_output s
    run -1 mesa cat put-chg:side.txt
    [ "$(bookmark_change put-chg main)" = "$main_id" ]
    # the change got a new commit, same id
    api GET "/acme/put-chg/changes/$side"
    [ "$(jq -r '.files | join(",")' <<<"$body")" = side.txt ]
}

@test "put --change with an unknown change: exit 1" {
    mesa repo create put-nochg >/dev/null
    run -1 --separate-stderr bash -c "printf x | '$MESA' put --change kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk put-nochg:f"
    [[ "$stderr" == *"not found"* ]]
}

@test "put to a repo root path: usage error" {
    mesa repo create put-rootpath >/dev/null
    run -2 --separate-stderr mesa put put-rootpath: </dev/null
}

@test "rm of a file" {
    mesa repo create rm-file >/dev/null
    put_str rm-file:a x
    put_str rm-file:b y
    run -0 --separate-stderr mesa rm rm-file:a
    [ -z "$stderr" ]
    run -1 mesa cat rm-file:a
    run -0 mesa ls rm-file:
    assert_output b
}

@test "rm of a directory needs -r" {
    mesa repo create rm-dir >/dev/null
    put_str rm-dir:d/e/f x
    put_str rm-dir:keep k
    run -1 --separate-stderr mesa rm rm-dir:d
    [[ "$stderr" == *"is a directory"* ]]
    run -0 mesa cat rm-dir:d/e/f
    run -0 mesa rm -r rm-dir:d
    run -1 mesa ls rm-dir:d
    run -0 mesa ls rm-dir:
    assert_output keep
}

@test "rm of a missing path: exit 1" {
    mesa repo create rm-miss >/dev/null
    put_str rm-miss:a x
    local before
    api GET /acme/rm-miss/changes/main
    before=$(jq -r .current_commit_oid <<<"$body")
    run -1 --separate-stderr mesa rm rm-miss:nope
    [[ "$stderr" == *"not found"* ]]
    api GET /acme/rm-miss/changes/main
    [ "$(jq -r .current_commit_oid <<<"$body")" = "$before" ]
    run -2 mesa rm rm-miss:
}

@test "PATH forms: /mesa/acme/REPO/p, REPO:p and REPO:/p" {
    mesa repo create pf >/dev/null
    printf 1 | mesa put /mesa/acme/pf/x/one >/dev/null
    printf 2 | mesa put pf:x/two >/dev/null
    printf 3 | mesa put pf:/x/three >/dev/null
    run -0 mesa ls pf:x
    assert_output "one
three
two"
    run -0 mesa cat /mesa/acme/pf/x/three
    assert_output 3
    run -0 mesa cat pf:/x/one
    assert_output 1
    run -0 mesa ls /mesa/acme/pf/
    assert_output x/
}

@test "a PATH in another org or outside the prefix: usage error (2)" {
    mesa repo create pf-org >/dev/null
    put_str pf-org:f x
    run -2 --separate-stderr mesa cat /mesa/other/pf-org/f
    [[ "$stderr" == *other* || "$stderr" == *acme* ]]
    run -2 mesa ls /mesa/acmex/pf-org
    run -2 mesa ls /elsewhere/acme/pf-org/f
    run -2 mesa ls /mesa/acme
    run -2 mesa rm /mesa/other/pf-org/f
    run -2 mesa put /mesa/other/pf-org/f </dev/null
}

@test "MESA_PREFIX changes the accepted prefix" {
    mesa repo create pf-prefix >/dev/null
    put_str pf-prefix:f hello
    run -0 mesa_with MESA_PREFIX=/x -- cat /x/acme/pf-prefix/f
    assert_output hello
    run -2 mesa_with MESA_PREFIX=/x -- cat /mesa/acme/pf-prefix/f
    run -0 mesa_with MESA_PREFIX=/x -- cat pf-prefix:f
    assert_output hello
}

# ------------------------------------------------------------ change

@test "change new moves the default bookmark to a new empty change on top" {
    mesa repo create ch-new >/dev/null
    put_str ch-new:f x
    local old
    old=$(bookmark_change ch-new main)
    run -0 --separate-stderr mesa change new ch-new
    assert_output --regexp "^[k-z]{32} [0-9a-f]{40} main$"
    local new=${output%% *}
    [ "$new" != "$old" ]
    [ "$(bookmark_change ch-new main)" = "$new" ]
    [ "$(change_parents ch-new "$new")" = "$old" ]
    api GET "/acme/ch-new/changes/$new"
    [ "$(jq '.files | length' <<<"$body")" -eq 0 ]
    # the content is that of the parent
    run -0 mesa cat ch-new:f
    assert_output x
    # writes now land in the new change
    put_str ch-new:g y
    [ "$(bookmark_change ch-new main)" = "$new" ]
    run -1 mesa cat --change "$old" ch-new:g
}

@test "change new --json and -m MESSAGE" {
    mesa repo create ch-new-json >/dev/null
    run -0 mesa --json change new ch-new-json -m "a message"
    local id
    id=$(jq -r .change_id <<<"$output")
    [ "$(jq -r .bookmark <<<"$output")" = main ]
    [ "$(jq -r .commit_oid <<<"$output")" != null ]
    api GET "/acme/ch-new-json/changes/$id"
    [[ "$(jq -r .message <<<"$body")" == "a message"* ]]
    [ "$(jq -r .parents[0] <<<"$body")" = "$ROOT_CHANGE" ]
}

@test "change new --change ID moves no bookmark" {
    mesa repo create ch-new-id >/dev/null
    put_str ch-new-id:f x
    local base
    base=$(bookmark_change ch-new-id main)
    run -0 --separate-stderr mesa --json change new ch-new-id --change "$base"
    local id
    id=$(jq -r .change_id <<<"$output")
    [ "$id" != "$base" ]
    [ "$(jq -r .bookmark <<<"$output")" = null ]
    [ "$(bookmark_change ch-new-id main)" = "$base" ]
    [ "$(change_parents ch-new-id "$id")" = "$base" ]
}

@test "change new --bookmark B moves B only" {
    mesa repo create ch-new-bm >/dev/null
    put_str ch-new-bm:f x
    mesa bookmark create ch-new-bm side >/dev/null
    local base
    base=$(bookmark_change ch-new-bm main)
    run -0 mesa change new ch-new-bm --bookmark side
    assert_output --regexp " side$"
    [ "$(bookmark_change ch-new-bm main)" = "$base" ]
    [ "$(bookmark_change ch-new-bm side)" != "$base" ]
}

@test "change new on a missing repo or bookmark: exit 1" {
    run -1 --separate-stderr mesa change new ch-nosuch
    [[ "$stderr" == *"not found"* ]]
    mesa repo create ch-new-nobm >/dev/null
    run -1 mesa change new ch-new-nobm --bookmark nope
}

@test "change edit needs --bookmark or --change (2) and creates nothing" {
    mesa repo create ch-edit >/dev/null
    put_str ch-edit:f x
    run -2 --separate-stderr mesa change edit ch-edit
    [[ "$stderr" == *--bookmark* ]]
    local n main
    n=$(change_count ch-edit)
    main=$(bookmark_change ch-edit main)
    run -0 --separate-stderr mesa --json change edit ch-edit --bookmark main
    [ "$(jq -r .change_id <<<"$output")" = "$main" ]
    api GET /acme/ch-edit/changes/main
    [ "$(jq -r .commit_oid <<<"$output")" = "$(jq -r .current_commit_oid <<<"$body")" ]
    run -0 mesa change edit ch-edit --change "$ROOT_CHANGE"
    assert_output --regexp "^$ROOT_CHANGE [0-9a-f]{40}$"
    [ "$(change_count ch-edit)" -eq "$n" ]
    [ "$(bookmark_change ch-edit main)" = "$main" ]
    run -1 mesa change edit ch-edit --change kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk
    run -1 mesa change edit ch-edit --bookmark nope
}

@test "change current prints {change_id, commit_oid}" {
    mesa repo create ch-cur >/dev/null
    run -0 mesa --json change current ch-cur
    [ "$(jq -r .change_id <<<"$output")" = "$ROOT_CHANGE" ]
    put_str ch-cur:f x
    run -0 mesa --json change current ch-cur
    api GET /acme/ch-cur/changes/main
    [ "$(jq -r .change_id <<<"$output")" = "$(jq -r .id <<<"$body")" ]
    [ "$(jq -r .commit_oid <<<"$output")" = "$(jq -r .current_commit_oid <<<"$body")" ]
    run -0 mesa change current ch-cur
    assert_output "$(jq -r '"\(.id) \(.current_commit_oid) main"' <<<"$body")"
    run -1 mesa change current ch-cur-nosuch
}

@test "change list: newest first, --limit N, default 50, 0 = all" {
    mesa repo create ch-list >/dev/null
    local base=$ROOT_CHANGE i
    for i in $(seq 1 60); do
        base=$(new_change ch-list "$base" '[]' "msg $i")
    done
    run -0 mesa change list ch-list
    [ "${#lines[@]}" -eq 50 ]
    assert_line --index 0 --regexp "^${base:0:12} [0-9a-f]{12} .* msg 60$"
    run -0 mesa change list ch-list --limit 0
    [ "${#lines[@]}" -eq 61 ]
    assert_line --index 60 --regexp "^zzzzzzzzzzzz "
    run -0 mesa change list ch-list --limit 5
    [ "${#lines[@]}" -eq 5 ]
    assert_line --index 4 --partial "msg 56"
    run -0 mesa --json change list ch-list --limit 0
    [ "$(jq '.changes | length' <<<"$output")" -eq 61 ]
    [ "$(jq -r '.changes[0].id' <<<"$output")" = "$base" ]
    run -0 mesa --json change list ch-list
    [ "$(jq '.changes | length' <<<"$output")" -eq 50 ]
}

@test "change list --bookmark lists that bookmark's ancestry" {
    mesa repo create ch-list-bm >/dev/null
    put_str ch-list-bm:f x
    local a b
    a=$(bookmark_change ch-list-bm main)
    b=$(new_change ch-list-bm "$ROOT_CHANGE" '[]' side)
    jreq POST /acme/ch-list-bm/bookmarks "{\"name\":\"side\",\"change_id\":\"$b\"}"
    run -0 mesa --json change list ch-list-bm --bookmark side
    [ "$(jq -c '[.changes[].id]' <<<"$output")" = "[\"$b\",\"$ROOT_CHANGE\"]" ]
}

@test "change list of a missing repo: exit 1; unknown subcommand: 2" {
    run -1 mesa change list ch-list-nosuch
    run -2 --separate-stderr mesa change frob ch-list-nosuch
    [[ "$stderr" == *frob* ]]
}

@test "change checkpoint outside a mesarun session: exit 2 with the reason, nothing made" {
    mesa repo create ch-cp >/dev/null
    put_str ch-cp:f x
    local c n
    c=$(bookmark_change ch-cp main)
    n=$(mesa --json change list ch-cp --limit 0 | jq '.changes | length')
    run -2 --separate-stderr env -u MESA_MOUNT "$MESA" change checkpoint ch-cp -m "x"
    [ "$stderr" = "mesa change: checkpoint works inside a mesarun session only (MESA_MOUNT is not set): run it from COMMAND" ]
    [ -z "$output" ]
    run -2 --separate-stderr env -u MESA_MOUNT "$MESA" --json change checkpoint ch-cp
    [ "${#stderr_lines[@]}" = 1 ] && [ -z "$output" ]
    run -2 --separate-stderr env -u MESA_MOUNT "$MESA" change checkpoint ch-cp --change "$c"
    [ "$stderr" = "mesa change: checkpoint takes no --bookmark/--change: it acts on the mount's change" ]
    run -2 --separate-stderr env -u MESA_MOUNT "$MESA" change checkpoint
    [ "$stderr" = "mesa change: expects REPO" ]
    [ "$(bookmark_change ch-cp main)" = "$c" ]
    [ "$(mesa --json change list ch-cp --limit 0 | jq '.changes | length')" = "$n" ]
    run -0 mesa change --help
    assert_output --partial "mesa change checkpoint REPO [-m MESSAGE]"
    run -0 mesa --help
    assert_output --partial "change checkpoint REPO"
}

# ------------------------------------------------------------ bookmark

@test "bookmark move forward over a history longer than one page of changes (the walk pages and stops)" {
    mesa repo create bm-long >/dev/null
    put_str bm-long:f x
    local first c i
    first=$(bookmark_change bm-long main)
    c=$first
    for i in $(seq 1 130); do
        c=$(new_change bm-long "$c" '[]' "c$i") || return 1
    done
    run -0 --separate-stderr mesa bookmark move bm-long main --change "$c"
    [ "$output" = "moved main from $first to $c" ]
    [ "$(bookmark_change bm-long main)" = "$c" ]
    run -1 --separate-stderr mesa bookmark move bm-long main --change "$first"
    [[ "$stderr" == *"would move main backwards (or sideways)"* ]]
    [ "$(bookmark_change bm-long main)" = "$c" ]
}

@test "bookmark list (human and --json)" {
    mesa repo create bm-list >/dev/null
    put_str bm-list:f x
    local id
    id=$(bookmark_change bm-list main)
    mesa bookmark create bm-list feat >/dev/null
    run -0 --separate-stderr mesa bookmark list bm-list
    assert_line "main $id (default)"
    assert_line "feat $id"
    run -0 mesa --json bookmark list bm-list
    [ "$(jq -r '.bookmarks[] | select(.name == "main") | .is_default' <<<"$output")" = true ]
    [ "$(jq -r '.bookmarks[] | select(.name == "feat") | .change_id' <<<"$output")" = "$id" ]
    run -1 mesa bookmark list bm-list-nosuch
}

@test "bookmark create at the current change; an existing name fails with exists" {
    mesa repo create bm-create >/dev/null
    put_str bm-create:f x
    local id
    id=$(bookmark_change bm-create main)
    run -0 --separate-stderr mesa bookmark create bm-create feat
    assert_output --partial "$id"
    [ "$(bookmark_change bm-create feat)" = "$id" ]
    run -1 --separate-stderr mesa bookmark create bm-create feat
    [[ "$stderr" == *exists* ]]
    run -1 --separate-stderr mesa bookmark create bm-create main
    [[ "$stderr" == *exists* ]]
    # --change: at that change
    run -0 mesa --json bookmark create bm-create atroot --change "$ROOT_CHANGE"
    [ "$(jq -r .change_id <<<"$output")" = "$ROOT_CHANGE" ]
    # --bookmark: at that bookmark's change
    run -0 mesa bookmark create bm-create again --bookmark atroot
    [ "$(bookmark_change bm-create again)" = "$ROOT_CHANGE" ]
    run -1 mesa bookmark create bm-create bad --change kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk
    run -1 mesa bookmark create bm-create 'bad..name'
}

@test "bookmark move: forward ok, backwards refused unless --allow-backwards" {
    mesa repo create bm-move >/dev/null
    put_str bm-move:f x
    local a b
    a=$(bookmark_change bm-move main)
    b=$(new_change bm-move "$a" '[]' next)
    run -0 --separate-stderr mesa bookmark move bm-move main --change "$b"
    assert_output --partial "$b"
    [ "$(bookmark_change bm-move main)" = "$b" ]
    run -1 --separate-stderr mesa bookmark move bm-move main --change "$a"
    [ "$stderr" = "mesa bookmark move: moving main from $b to $a would move main backwards (or sideways): $a is not a descendant of $b; use --allow-backwards to move it anyway" ]
    [ -z "$output" ]
    [ "$(bookmark_change bm-move main)" = "$b" ]
    # sideways (not a descendant) is refused too
    local c
    c=$(new_change bm-move "$ROOT_CHANGE" '[]' side)
    run -1 --separate-stderr mesa bookmark move bm-move main --change "$c"
    [ "$stderr" = "mesa bookmark move: moving main from $b to $c would move main backwards (or sideways): $c is not a descendant of $b; use --allow-backwards to move it anyway" ]
    [ "$(bookmark_change bm-move main)" = "$b" ]
    run -0 mesa --json bookmark move bm-move main --change "$a" --allow-backwards
    [ "$(jq -r .from_change_id <<<"$output")" = "$b" ]
    [ "$(bookmark_change bm-move main)" = "$a" ]
    run -2 mesa bookmark move bm-move main
    run -1 mesa bookmark move bm-move nope --change "$a"
}

@test "bookmark delete; deleting a missing or the default bookmark fails" {
    mesa repo create bm-del >/dev/null
    mesa bookmark create bm-del gone >/dev/null
    run -0 --separate-stderr mesa bookmark delete bm-del gone
    assert_output "deleted gone"
    api GET /acme/bm-del/bookmarks/gone
    expect 404
    run -1 --separate-stderr mesa bookmark delete bm-del gone
    [[ "$stderr" == *"not found"* ]]
    run -1 mesa bookmark delete bm-del main
    [ "$(bookmark_change bm-del main)" = "$ROOT_CHANGE" ]
    mesa bookmark create bm-del j >/dev/null
    run -0 mesa --json bookmark delete bm-del j
    [ "$(jq -r .success <<<"$output")" = true ]
}

@test "bookmark merge: no_op when equal" {
    mesa repo create bm-noop >/dev/null
    put_str bm-noop:f x
    mesa bookmark create bm-noop feat >/dev/null
    local before
    before=$(change_count bm-noop)
    run -0 --separate-stderr mesa bookmark merge bm-noop main feat
    assert_output --regexp "^no_op: "
    [ "$(change_count bm-noop)" -eq "$before" ]
    run -0 mesa --json bookmark merge bm-noop main feat
    [ "$(jq -r .merge_type <<<"$output")" = no_op ]
}

@test "bookmark merge: a merge commit with both parents; --delete-source" {
    mesa repo create bm-merge >/dev/null
    put_str bm-merge:base b
    mesa bookmark create bm-merge feat >/dev/null
    mesa change new bm-merge >/dev/null
    put_str bm-merge:onmain m
    mesa change new bm-merge --bookmark feat >/dev/null
    put_str bm-merge:onfeat f --bookmark feat
    local m f
    m=$(bookmark_change bm-merge main)
    f=$(bookmark_change bm-merge feat)
    run -0 --separate-stderr mesa --json bookmark merge bm-merge main feat --delete-source -m "merge it"
    [ "$(jq -r .merge_type <<<"$output")" = merge_commit ]
    [ "$(jq -r .source_deleted <<<"$output")" = true ]
    local id
    id=$(jq -r .change_id <<<"$output")
    [ "$(bookmark_change bm-merge main)" = "$id" ]
    [ "$(change_parents bm-merge "$id")" = "$m $f" ]
    api GET /acme/bm-merge/bookmarks/feat
    expect 404
    run -0 mesa cat bm-merge:onfeat
    assert_output f
    run -0 mesa cat bm-merge:onmain
    assert_output m
}

@test "bookmark merge human output; a conflict fails with MERGE_CONFLICT" {
    mesa repo create bm-conf >/dev/null
    put_str bm-conf:f base
    mesa bookmark create bm-conf feat >/dev/null
    mesa change new bm-conf >/dev/null
    put_str bm-conf:f main-side
    mesa change new bm-conf --bookmark feat >/dev/null
    put_str bm-conf:f feat-side --bookmark feat
    local m
    m=$(bookmark_change bm-conf main)
    run -1 --separate-stderr mesa bookmark merge bm-conf main feat
    [[ "$stderr" == *MERGE_CONFLICT* || "$stderr" == *conflict* ]]
    [ "$(bookmark_change bm-conf main)" = "$m" ]
    run -0 mesa bookmark merge bm-conf main feat --allow-conflicted
    assert_output --regexp "^merge_commit: feat into main -> change [k-z]{32} .*with conflicts"
    run -1 mesa bookmark merge bm-conf main nope
}

# ------------------------------------------------------------ log

@test "log draws the history: @ at the bookmark, ◆ root, bookmark names, merges" {
    mesa repo create lg >/dev/null
    put_str lg:base b
    mesa bookmark create lg feat >/dev/null
    mesa change new lg -m "on main" >/dev/null
    put_str lg:m m
    mesa change new lg --bookmark feat -m "on feat" >/dev/null
    put_str lg:f f --bookmark feat
    mesa bookmark create lg keep --bookmark feat >/dev/null
    local main_id
    main_id=$(bookmark_change lg main)
    run -0 --separate-stderr mesa log lg
    assert_line --regexp "^@ +${main_id:0:12} [0-9a-f]{12} \(main\) on main$"
    assert_line --regexp "^◆ +zzzzzzzzzzzz [0-9a-f]{12} .*root"
    refute_line --partial "on feat"
    # the bookmark's change is the first line
    [[ "${lines[0]}" == @* ]]
    run -0 mesa log lg --bookmark feat
    assert_line --regexp "^@ +[k-z]{12} [0-9a-f]{12} \((feat keep|keep feat)\) on feat$"
    refute_line --partial "on main"
    mesa bookmark merge lg main feat -m "the merge" >/dev/null
    run -0 mesa log lg
    assert_line --regexp "^@ .*\(main\) the merge$"
    assert_line --partial "merge of"
    assert_output --partial "on feat"
    assert_output --partial "on main"
}

@test "log --json and --limit; a missing repo fails" {
    mesa repo create lg-json >/dev/null
    put_str lg-json:f x
    mesa change new lg-json >/dev/null
    run -0 mesa --json log lg-json
    [ "$(jq '.changes | length' <<<"$output")" -eq 3 ]
    [ "$(jq -r '.changes[-1].id' <<<"$output")" = "$ROOT_CHANGE" ]
    [ "$(jq -r '.bookmarks[0].name' <<<"$output")" = main ]
    run -0 mesa log lg-json --limit 1
    [ "$(grep -c '^[@○◆]' <<<"$output")" -eq 1 ]
    run -1 --separate-stderr mesa log lg-nosuch
    [[ "$stderr" == *"not found"* ]]
}

# ------------------------------------------------------------ watch

@test "watch --json sees another client's write; not writes elsewhere; SIGTERM exits 0" {
    mesa repo create wt-json >/dev/null
    put_str wt-json:dir/seed s
    local out=$BATS_TEST_TMPDIR/watch.out err=$BATS_TEST_TMPDIR/watch.err
    mesa_bg "$out" "$err" watch --json wt-json:dir
    local pid=$MESA_BG_PID
    put_until_seen "$out" '{"path": "/mesa/acme/wt-json/dir/x", "recursive": false}' wt-json:dir/x
    # outside the watched directory, then inside again: only the inside one
    put_str wt-json:other/y y
    put_str wt-json:dirx/z z
    put_str wt-json:dir/sub/z z
    wait_for_line "$out" '{"path": "/mesa/acme/wt-json/dir/sub/z", "recursive": false}'
    run grep -c other/y "$out"
    assert_output 0
    run grep -c dirx "$out"
    assert_output 0
    # every line is JSON with exactly path and recursive
    [ "$(jq -s 'map(keys == ["path","recursive"]) | all' "$out")" = true ]
    kill -TERM "$pid"
    local rc=0
    wait "$pid" || rc=$?
    [ "$rc" -eq 0 ]
    [ ! -s "$err" ]
}

@test "watch sees a raw API write (curl PATCH) by another client" {
    mesa repo create wt-curl >/dev/null
    put_str wt-curl:dir/seed s
    local out=$BATS_TEST_TMPDIR/watch.out i
    mesa_bg "$out" "$BATS_TEST_TMPDIR/watch.err" watch --json /mesa/acme/wt-curl/dir
    local line='{"path": "/mesa/acme/wt-curl/dir/x", "recursive": false}'
    for i in $(seq 1 10); do
        jreq PATCH /acme/wt-curl/changes/main "{\"files\":[$(file_json dir/x "v$i")]}"
        expect 200
        wait_for_line "$out" "$line" 1 2>/dev/null && break
    done
    wait_for_line "$out" "$line" 1
    # the new state is visible when the line is printed
    local want="v$i" # (bats' run clobbers $i)
    run -0 mesa cat wt-curl:dir/x
    assert_output "$want"
}

@test "watch: a bookmark move emits a recursive line; SIGINT exits 0" {
    mesa repo create wt-move >/dev/null
    put_str wt-move:dir/seed s
    local out=$BATS_TEST_TMPDIR/watch.out
    mesa_bg "$out" "$BATS_TEST_TMPDIR/watch.err" watch --json wt-move:dir
    local pid=$MESA_BG_PID
    put_until_seen "$out" '{"path": "/mesa/acme/wt-move/dir/x", "recursive": false}' wt-move:dir/x
    mesa change new wt-move >/dev/null
    wait_for_line "$out" '{"path": "/mesa/acme/wt-move/dir", "recursive": true}'
    # the watcher follows the bookmark to its new change
    put_str wt-move:dir/after a
    wait_for_line "$out" '{"path": "/mesa/acme/wt-move/dir/after", "recursive": false}'
    kill -INT "$pid"
    local rc=0
    wait "$pid" || rc=$?
    [ "$rc" -eq 0 ]
}

@test "watch without --json prints plain paths" {
    mesa repo create wt-plain >/dev/null
    put_str wt-plain:a/seed s
    local out=$BATS_TEST_TMPDIR/watch.out
    mesa_bg "$out" "$BATS_TEST_TMPDIR/watch.err" watch wt-plain:a wt-plain:b
    put_until_seen "$out" /mesa/acme/wt-plain/a/x wt-plain:a/x
    put_str wt-plain:b/y y
    wait_for_line "$out" /mesa/acme/wt-plain/b/y
    mesa change new wt-plain >/dev/null
    wait_for_line "$out" "/mesa/acme/wt-plain/a (recursive)"
    wait_for_line "$out" "/mesa/acme/wt-plain/b (recursive)"
}

@test "watch of a bad PATH is a usage error; of a missing repo fails" {
    run -2 --separate-stderr timeout 10 "$MESA" watch /mesa/other/r/x
    run -2 --separate-stderr timeout 10 "$MESA" watch nocolon
    run --separate-stderr timeout 10 "$MESA" watch wt-nosuch:x
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"not found"* ]]
}

# ------------------------------------------------------------ embedded default

@test "embedded: the first call starts a private server (org local, 0600 key, 0700 data)" {
    embedded_env
    run -0 --separate-stderr emb whoami
    assert_line "org:    local"
    [ -S "$EMB_DATA/mesad.sock" ]
    [ "$(stat -c %a "$EMB_CONF/credentials.json")" = 600 ]
    [ "$(stat -c %a "$EMB_DATA")" = 700 ]
    [ "$(stat -c %a "$EMB_CONF")" = 700 ]
    local pid
    pid=$(cat "$EMB_DATA/serve.lock")
    kill -0 "$pid"
    # the key in credentials.json is the one in use
    local key
    key=$(jq -r .api_key "$EMB_CONF/credentials.json")
    run -0 curl -sS --unix-socket "$EMB_DATA/mesad.sock" -H "Authorization: Bearer $key" \
        http://mesad/v1/whoami
    [ "$(jq -r .org.slug <<<"$output")" = local ]
    # and it works for everything else
    run -0 emb repo create embr
    printf data | emb put embr:f >/dev/null
    run -0 emb cat /mesa/local/embr/f
    assert_output data
}

@test "embedded: a second call reuses the running server" {
    embedded_env
    run -0 emb whoami
    local pid
    pid=$(cat "$EMB_DATA/serve.lock")
    run -0 emb repo list
    [ "$(cat "$EMB_DATA/serve.lock")" = "$pid" ]
    kill -0 "$pid"
    [ "$(pgrep -f "serve --data $EMB_DATA" | wc -l)" -eq 1 ]
}

@test "embedded: a server that went away is started again" {
    embedded_env
    run -0 emb repo create keepme
    local pid i
    pid=$(cat "$EMB_DATA/serve.lock")
    kill -TERM "$pid"
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    run -0 emb repo list
    assert_output --partial keepme
    [ "$(cat "$EMB_DATA/serve.lock")" != "$pid" ]
}

@test "embedded: 5 concurrent first starts all succeed with one server" {
    embedded_env
    local i pids=() rc
    for i in 1 2 3 4 5; do
        emb repo list >"$BATS_TEST_TMPDIR/out$i" 2>"$BATS_TEST_TMPDIR/err$i" &
        pids+=($!)
    done
    for i in 0 1 2 3 4; do
        rc=0
        wait "${pids[$i]}" || rc=$?
        [ "$rc" -eq 0 ] || {
            echo "start $((i + 1)) failed ($rc):" >&2
            cat "$BATS_TEST_TMPDIR/err$((i + 1))" >&2
            return 1
        }
    done
    [ "$(pgrep -f "serve --data $EMB_DATA" | wc -l)" -eq 1 ]
    [ "$(pgrep -f "serve --data $EMB_DATA")" = "$(cat "$EMB_DATA/serve.lock")" ]
    # one key: every caller used the same credentials
    [ "$(stat -c %a "$EMB_CONF/credentials.json")" = 600 ]
    run -0 emb whoami
    assert_line "org:    local"
}

@test "embedded: the server holds no descriptor of the tool that started it" {
    embedded_env
    emb whoami 7>"$BATS_TEST_TMPDIR/marker" >/dev/null
    local pid
    pid=$(cat "$EMB_DATA/serve.lock")
    run ls -l "/proc/$pid/fd"
    refute_output --partial "$BATS_TEST_TMPDIR/marker"
}

@test "embedded: no mesad to start fails with a clear message" {
    embedded_env
    run -1 --separate-stderr env -u MESA_URL -u MESA_API_KEY -u MESA_ORG \
        XDG_DATA_HOME="$EMB/data" XDG_CONFIG_HOME="$EMB/conf" MESAD=/nonexistent/mesad \
        "$MESA" whoami
    [[ "$stderr" == *mesad* ]]
}

# ------------------------------------------------------------ token

@test "mesa token signs a repo-scoped token: writes to its repos, 403 elsewhere, --ro is read-only" {
    mesa repo create tok-app >/dev/null
    mesa repo create tok-lib >/dev/null
    mesa repo create tok-other >/dev/null
    run mesa token --ttl 120 --ro tok-lib acme/tok-app
    assert_success
    local tok=$output
    local payload
    payload=$(cut -d. -f2 <<<"$tok" | tr '_-' '/+' | base64 -d 2>/dev/null || true)
    [ "$(jq -c '[.scopes, .repos, .ro_repos, .aud, (.exp - .iat)]' <<<"$payload")" = \
        '[["read","write"],["acme/tok-lib","acme/tok-app"],["acme/tok-lib"],"mesa-api",120]' ]
    run bash -c "printf hi | env -u MESA_API_KEY MESA_ACCESS_TOKEN='$tok' '$MESA' put tok-app:a.txt"
    assert_success
    run env -u MESA_API_KEY MESA_ACCESS_TOKEN="$tok" "$MESA" cat tok-app:a.txt
    assert_success
    assert_output hi
    run bash -c "printf hi | env -u MESA_API_KEY MESA_ACCESS_TOKEN='$tok' '$MESA' put tok-lib:a.txt"
    assert_failure 1
    assert_output --partial READ_ONLY
    run env -u MESA_API_KEY MESA_ACCESS_TOKEN="$tok" "$MESA" ls tok-other:
    assert_failure 1
    assert_output --partial FORBIDDEN
}

@test "mesa token with only read-only repos asks for the read scope alone" {
    mesa repo create tok-readonly-only >/dev/null
    run mesa token --ro tok-readonly-only
    assert_success
    [ "$(cut -d. -f2 <<<"$output" | tr '_-' '/+' | base64 -d 2>/dev/null | jq -c .scopes)" = '["read"]' ]
}

@test "mesa token refuses a ttl outside 1..86400, no repo, and a repo of another org (2)" {
    run mesa token --ttl 0 x
    assert_failure 2
    run mesa token --ttl 86401 x
    assert_failure 2
    run mesa token
    assert_failure 2
    run mesa token other/x
    assert_failure 2
    assert_output --partial "org 'acme'"
}

@test "mesa token under MESA_ACCESS_TOKEN says no ttl or scope can be chosen (2)" {
    local tok
    tok=$(mesa token --ttl 60 anything)
    run env -u MESA_API_KEY MESA_ACCESS_TOKEN="$tok" "$MESA" token --ttl 30 anything
    assert_failure 2
    assert_output --partial "already signed"
}

@test "a token with ttl 1 s is refused with a clear error once expired, not a hang" {
    mesa repo create tok-exp >/dev/null
    local tok
    tok=$(mesa token --ttl 1 tok-exp)
    sleep 63 # beyond the server's 60 s leeway
    run timeout 10 env -u MESA_API_KEY MESA_ACCESS_TOKEN="$tok" "$MESA" ls tok-exp:
    assert_failure 1
    assert_output --partial "expired"
}

# ------------------------------------------------------------ push-pending

: "${MKMOUNT:=${MESA_TOP_BUILDDIR:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}/tests/lib/mkmount}"

# mount_dir REPO: a runtime dir for REPO at its root change, bookmark main;
# echoes its path
mount_dir() {
    local d=$BATS_TEST_TMPDIR/run-$1 commit
    commit=$(curl -sS -H "Authorization: Bearer $ADMIN_KEY" \
        "$MESAD_URL/v1/acme/$1/changes/$ROOT_CHANGE" | jq -r .current_commit_oid)
    "$MKMOUNT" "$d" acme "$1" "$ROOT_CHANGE" "$commit" main >&2 || return 1
    echo "$d"
}

# stage DIR ID PATH CONTENT: a closed staging file and its W record
stage() {
    printf %s "$4" >"$1/staging/$2"
    printf 'W\t0\t%s\t%s\t%s\n' "$(date +%s%N)" "$2" "$3" >>"$1/journal"
}

@test "push-pending pushes what a mount left, and a second run pushes nothing twice" {
    mesa repo create pp >/dev/null
    local d
    d=$(mount_dir pp)
    stage "$d" s1 a.txt hello
    stage "$d" s2 dir/b.txt world
    printf 'D\t0\t1\t-\tnothing-there\n' >>"$d/journal"
    run mesa push-pending "$d"
    assert_success
    assert_output pushed
    run mesa cat pp:a.txt
    assert_output hello
    run mesa cat pp:dir/b.txt
    assert_output world
    # the bookmark followed the new change off the root
    [ "$(mesa change current pp --json | jq -r .change_id)" != "$ROOT_CHANGE" ]
    local before
    before=$(mesa change list pp --limit 0 --json | jq '.changes | length')
    run mesa push-pending "$d"
    assert_success
    assert_output "nothing to push"
    [ "$(mesa change list pp --limit 0 --json | jq '.changes | length')" = "$before" ]
}

@test "push-pending that cannot reach the server keeps the writes, lists them and exits 1" {
    mesa repo create pp-down >/dev/null
    local d
    d=$(mount_dir pp-down)
    stage "$d" s1 kept.txt "still here"
    run --separate-stderr env MESA_URL=http://127.0.0.1:1 "$MESA" push-pending "$d"
    assert_failure 1
    [[ "$stderr" == *"pending: acme/pp-down/kept.txt"* ]]
    # later, with the server reachable, the same directory goes up
    run mesa push-pending "$d"
    assert_success
    run mesa cat pp-down:kept.txt
    assert_output "still here"
}

@test "push-pending of a directory that is no mount exits 1; without DIR it is a usage error" {
    run mesa push-pending "$BATS_TEST_TMPDIR"
    assert_failure 1
    assert_output --partial "not a mount's runtime directory"
    run mesa push-pending
    assert_failure 2
}
