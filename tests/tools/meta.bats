#!/usr/bin/env bats
# tests/tools/meta.bats - `mesa meta get|set|clear PATH` (tools/mesa_meta.c)
# against a private mesad: output, --json, both PATH forms, exit codes
# (0 ok, 1 the server refused, with its message; 2 usage).

bats_require_minimum_version 1.5.0
load ../lib/mesa

setup_file() {
    mesad_start
    mesa_env
}
teardown_file() { mesad_stop; }

setup() {
    mesa_env
    R="mt$BATS_TEST_NUMBER"
    "$MESA" repo create "$R" >/dev/null
}

@test "set then get prints KEY=VALUE lines sorted, with org and repo" {
    run -0 "$MESA" meta set "$R:src/f.c" owner=team-a tier=1 "note=a b=c"
    [ -z "$output" ]
    run -0 "$MESA" meta get "$R:src/f.c"
    [ "$output" = "$(printf 'note=a b=c\norg=acme\nowner=team-a\nrepo=%s\ntier=1' "$R")" ]
}

@test "get KEY prints the value alone; a missing key exits 1 with a message" {
    "$MESA" meta set "$R:f" owner=team-a empty=
    run -0 "$MESA" meta get "$R:f" owner
    [ "$output" = "team-a" ]
    run -0 "$MESA" meta get "$R:f" empty
    [ "$output" = "" ]
    run -0 "$MESA" meta get "$R:f" repo
    [ "$output" = "$R" ]
    run -1 --separate-stderr "$MESA" meta get "$R:f" nope
    [ "$stderr" = "mesa: meta get: 'f' has no key 'nope'" ]
}

@test "--json prints the server's answer" {
    "$MESA" meta set "$R:f" owner=team-a
    run -0 "$MESA" --json meta get "/mesa/acme/$R/f"
    jq -e --arg r "$R" '.path == "f" and .metadata == {"owner":"team-a","org":"acme","repo":$r}
        and .read_only_keys == ["org","repo"]' <<<"$output"
}

@test "set merges; clear KEY... removes those keys; clear alone removes every key" {
    "$MESA" meta set "$R:f" a=1 b=2 c=3
    "$MESA" meta set "$R:f" b=20
    run -0 "$MESA" meta clear "$R:f" a c
    run -0 "$MESA" meta get "$R:f"
    [ "$output" = "$(printf 'b=20\norg=acme\nrepo=%s' "$R")" ]
    "$MESA" meta set "$R:f" d=4
    run -0 "$MESA" meta clear "$R:f"
    run -0 "$MESA" meta get "$R:f"
    [ "$output" = "$(printf 'org=acme\nrepo=%s' "$R")" ]
}

@test "the read-only keys and bad keys exit 1 with the API's message" {
    run -1 --separate-stderr "$MESA" meta set "$R:f" org=x
    [[ "$stderr" == *"'org' and 'repo' are read-only"*"HTTP 403, READ_ONLY_KEY"* ]]
    run -1 --separate-stderr "$MESA" meta clear "$R:f" repo
    [[ "$stderr" == *"READ_ONLY_KEY"* ]]
    run -1 --separate-stderr "$MESA" meta set "$R:f" "$(printf 'k\001')=v"
    [[ "$stderr" == *"control characters"*"HTTP 400"* ]]
    run -1 --separate-stderr "$MESA" meta get "nosuchrepo:f"
    [[ "$stderr" == *"HTTP 404"* ]]
}

@test "usage errors exit 2" {
    run -2 --separate-stderr "$MESA" meta
    run -2 --separate-stderr "$MESA" meta frob "$R:f"
    [[ "$stderr" == *"unknown subcommand 'frob'"* ]]
    run -2 --separate-stderr "$MESA" meta get
    run -2 --separate-stderr "$MESA" meta set "$R:f"
    [[ "$stderr" == *"KEY=VALUE"* ]]
    run -2 --separate-stderr "$MESA" meta set "$R:f" novalue
    [[ "$stderr" == "mesa meta set: 'novalue' is not KEY=VALUE" ]]
    run -2 --separate-stderr "$MESA" meta set "$R:f" =v
    run -2 --separate-stderr "$MESA" meta get "$R:f" a b
    run -2 --separate-stderr "$MESA" meta get just-a-name
    [[ "$stderr" == *"PATH must be"* ]]
    run -2 --separate-stderr "$MESA" meta get /elsewhere/acme/r/f
    run -0 "$MESA" meta --help
    [[ "$output" == *"mesa meta set PATH KEY=VALUE"* ]]
}

@test "a read-only token can get but not set (exit 1, HTTP 403)" {
    "$MESA" meta set "$R:f" owner=team-a
    tok=$("$MESA" token --ro "$R" "$R")
    run -0 env -u MESA_API_KEY MESA_ACCESS_TOKEN="$tok" "$MESA" meta get "$R:f" owner
    [ "$output" = "team-a" ]
    run -1 --separate-stderr env -u MESA_API_KEY MESA_ACCESS_TOKEN="$tok" "$MESA" meta set "$R:f" owner=x
    [[ "$stderr" == *"HTTP 403"* ]]
}
