#!/usr/bin/env bats
# tests/server/compat.bats - mesad driven by Mesa's published REST client,
# @mesadev/rest 0.38.0 (tests/server/compat/compat.mjs), once with the raw
# API key and once with an access token signed from it.
# The package is installed with npm into a copy of tests/server/compat under
# $BATS_FILE_TMPDIR (never into the source tree). Without node/npm, or when
# the npm registry cannot be reached, the tests are skipped with the reason.
# MESADEV_REST_TGZ=/path/to/mesadev-rest-0.38.0.tgz installs from a local
# tarball instead of the registry.

bats_require_minimum_version 1.5.0
load ../lib/mesad
load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

setup_file() {
    mesad_start
    export COMPAT_DIR="$BATS_FILE_TMPDIR/compat"
    local state="$BATS_FILE_TMPDIR/npm-state" log="$BATS_FILE_TMPDIR/npm.log"
    rm -f "$state"
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        echo "skip node or npm is not installed" >"$state"
        return 0
    fi
    rm -rf "$COMPAT_DIR"
    cp -R "$BATS_TEST_DIRNAME/compat" "$COMPAT_DIR"
    rm -rf "$COMPAT_DIR/node_modules" "$COMPAT_DIR/package-lock.json"
    local what=()
    [ -n "${MESADEV_REST_TGZ:-}" ] && what=("$MESADEV_REST_TGZ")
    if (cd "$COMPAT_DIR" && timeout 300 npm install --no-audit --no-fund --no-save \
        --fetch-timeout=30000 --fetch-retries=1 "${what[@]}") >"$log" 2>&1 3>&-; then
        echo ok >"$state"
    elif grep -qE 'ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|network|socket hang up' "$log"; then
        echo "skip npm registry unreachable: $(grep -m1 -E 'ENOTFOUND|EAI_AGAIN|ECONN|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|network|socket' "$log")" >"$state"
    else
        echo "fail npm install failed: $(tail -5 "$log" | tr '\n' ' ')" >"$state"
    fi
}

teardown_file() { mesad_stop; }

setup() {
    local state
    state=$(cat "$BATS_FILE_TMPDIR/npm-state")
    case "$state" in
    ok) ;;
    skip\ *) skip "${state#skip }" ;;
    *)
        echo "${state#fail }" >&2
        return 1
        ;;
    esac
}

STEPS=(
    "whoami"
    "createRepo"
    "createRepo again is ALREADY_EXISTS"
    "getRepo and listRepos"
    "createChange with base64 files"
    "getContent of a file"
    "getContent of a directory"
    "getContent raw bytes with Accept: application/octet-stream"
    "updateChange with base_commit_oid"
    "updateChange with a stale base is 409 STALE_BASE"
    "getChange"
    "createBookmark and listBookmarks"
    "moveBookmark"
    "mergeBookmark of two bookmarks on one commit is no_op"
    "listChanges"
    "deleteBookmark"
    "deleteRepo"
)

# run_compat MODE REPO [extra env...]: run compat.mjs and check every step line
run_compat() {
    local mode=$1 repo=$2 i
    run env MESAD_URL="$MESAD_URL" MESA_ORG="$MESA_ORG" MESA_REPO="$repo" \
        MESA_API_KEY="$ADMIN_KEY" MESA_KEY_ID="$ADMIN_KEY_ID" MESA_TOKEN="$(token)" \
        node "$COMPAT_DIR/compat.mjs" "$mode"
    assert_success
    for i in "${!STEPS[@]}"; do
        assert_line --index "$i" "ok $((i + 1)) ${STEPS[$i]}"
    done
    assert_equal "${#lines[@]}" "${#STEPS[@]}"
}

@test "Mesa's REST client (@mesadev/rest 0.38.0) runs the whole scenario against mesad with the raw API key" {
    run_compat key compat-key
}

@test "Mesa's REST client (@mesadev/rest 0.38.0) runs the whole scenario against mesad with a signed access token" {
    run_compat token compat-token
}

@test "the installed client is @mesadev/rest 0.38.0" {
    assert_equal "$(jq -r .version "$COMPAT_DIR/node_modules/@mesadev/rest/package.json")" 0.38.0
}
