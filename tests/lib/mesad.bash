# tests/lib/mesad.bash - shared helpers for the bats suites: a private mesad
# per test file (temp data dir, a free loopback port and a Unix socket),
# credentials, curl wrappers and JWT crafting.
#
#   load ../lib/mesad
#   setup_file()    { mesad_start; }
#   teardown_file() { mesad_stop; }
#
# After mesad_start: MESAD_DATA, MESAD_URL (http://127.0.0.1:PORT),
# MESAD_SOCK (unix socket path), MESA_ORG, ADMIN_KEY, ADMIN_KEY_ID, ADMIN_S
# (the key's derived secret) are exported.

: "${MESAD:=${MESA_TOP_BUILDDIR:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}/server/mesad}"
export MESAD

# mesad_start [extra serve args...]
mesad_start() {
    MESAD_TMP=$(mktemp -d "${TMPDIR:-/tmp}/mesad-test.XXXXXX")
    export MESAD_TMP
    export MESAD_DATA="$MESAD_TMP/data"
    export MESA_ORG=acme
    local init
    init=$("$MESAD" init --data "$MESAD_DATA" --org "$MESA_ORG" --json) || {
        echo "mesad init failed" >&2
        return 1
    }
    ADMIN_KEY=$(jq -r .api_key <<<"$init")
    ADMIN_KEY_ID=$(jq -r .key_id <<<"$init")
    ADMIN_S=$(mesa_secret "$ADMIN_KEY")
    export ADMIN_KEY ADMIN_KEY_ID ADMIN_S
    mesad_serve "$@"
}

# mesad_serve [extra args]: (re)start serve on the existing data dir.
mesad_serve() {
    export MESAD_SOCK="$MESAD_TMP/mesad.sock"
    rm -f "$MESAD_TMP/ready"
    "$MESAD" serve --data "$MESAD_DATA" --listen 127.0.0.1:0 --listen "unix:$MESAD_SOCK" \
        --ready-file "$MESAD_TMP/ready" "$@" >>"$MESAD_TMP/mesad.log" 2>&1 &
    MESAD_PID=$!
    export MESAD_PID
    local i
    for i in $(seq 1 200); do
        [ -s "$MESAD_TMP/ready" ] && break
        kill -0 "$MESAD_PID" 2>/dev/null || {
            echo "mesad exited early:" >&2
            cat "$MESAD_TMP/mesad.log" >&2
            return 1
        }
        sleep 0.05
    done
    [ -s "$MESAD_TMP/ready" ] || {
        echo "mesad did not become ready" >&2
        return 1
    }
    local port
    port=$(grep -o '127\.0\.0\.1:[0-9]*' "$MESAD_TMP/ready" | head -1 | cut -d: -f2)
    export MESAD_URL="http://127.0.0.1:$port"
}

mesad_stop() {
    if [ -n "${MESAD_PID:-}" ] && kill -0 "$MESAD_PID" 2>/dev/null; then
        kill -TERM "$MESAD_PID"
        local i
        for i in $(seq 1 100); do
            kill -0 "$MESAD_PID" 2>/dev/null || break
            sleep 0.05
        done
        kill -KILL "$MESAD_PID" 2>/dev/null || true
        wait "$MESAD_PID" 2>/dev/null || true
    fi
    [ -n "${MESAD_TMP:-}" ] && rm -rf "$MESAD_TMP"
}

# S = base64url_nopad(SHA-256(key))
mesa_secret() {
    printf %s "$1" | openssl dgst -sha256 -binary | b64url
}

b64url() {
    basenc --base64url -w0 | tr -d '='
}

# jwt HEADER_JSON PAYLOAD_JSON SECRET -> compact JWS signed with HMAC-SHA256
jwt() {
    local h p sig
    h=$(printf %s "$1" | b64url)
    p=$(printf %s "$2" | b64url)
    sig=$(printf %s "$h.$p" | openssl dgst -sha256 -mac HMAC -macopt "key:$3" -binary | b64url)
    printf '%s.%s.%s' "$h" "$p" "$sig"
}

# token [jq-args for the payload] : a valid token for the admin key, with the
# payload transformed by a jq filter, e.g. token '.scopes=["read"]'
token() {
    local filter=${1:-.} now
    now=$(date +%s)
    local payload
    payload=$(jq -cn --arg kid "$ADMIN_KEY_ID" --argjson now "$now" \
        '{scopes:["read","write","admin"],iss:$kid,aud:"mesa-api",iat:$now,exp:($now+3600),jti:"t"}' |
        jq -c "$filter")
    jwt "{\"alg\":\"HS256\",\"typ\":\"mesa-at+jwt\",\"kid\":\"$ADMIN_KEY_ID.v1\"}" "$payload" "$ADMIN_S"
}

# api METHOD PATH [curl args...]: request with the admin key; sets $status_code
# and $body (bats `run` friendly: prints "CODE\nBODY").
# Use AUTH=... to override the credential (AUTH="" sends none).
api() {
    local method=$1 path=$2
    shift 2
    local auth=("-H" "Authorization: Bearer ${AUTH-$ADMIN_KEY}")
    [ -z "${AUTH-x}" ] && auth=()
    curl -sS -o "$MESAD_TMP/body" -w '%{http_code}' -X "$method" "${auth[@]}" \
        "$MESAD_URL/v1$path" "$@" >"$MESAD_TMP/code"
    status_code=$(cat "$MESAD_TMP/code")
    body=$(cat "$MESAD_TMP/body")
}

# jpost METHOD PATH JSON: api with a JSON body
jreq() {
    api "$1" "$2" -H 'Content-Type: application/json' --data-binary "$3"
}

# expect CODE [ERROR_CODE]: assert the last api call's status (and error code).
expect() {
    if [ "$status_code" != "$1" ]; then
        echo "expected HTTP $1, got $status_code: $body" >&2
        return 1
    fi
    if [ -n "${2:-}" ]; then
        local c
        c=$(jq -r '.error.code' <<<"$body")
        if [ "$c" != "$2" ]; then
            echo "expected error code $2, got $c: $body" >&2
            return 1
        fi
    fi
}

# make_repo NAME: create a repo (admin key), echo nothing.
make_repo() {
    jreq POST "/$MESA_ORG/repos" "{\"name\":\"$1\"}"
    expect 201
}

# put_files REPO BASE_CHANGE JSON_FILES_ARRAY [message] -> echoes the new change id
new_change() {
    jreq POST "/$MESA_ORG/$1/changes" \
        "{\"base_change_id\":\"$2\",\"message\":\"${4:-test}\",\"files\":$3}"
    expect 201 || return 1
    jq -r .id <<<"$body"
}

# file_json PATH CONTENT [MODE] -> one files[] entry with base64 content
file_json() {
    local c
    c=$(printf %s "$2" | base64 -w0)
    printf '{"path":"%s","content":"%s","mode":"%s"}' "$1" "$c" "${3:-100644}"
}

ROOT_CHANGE=zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz

# RFC 3339 UTC with milliseconds, the API's time format
TS_RE='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$'

# expect_error CODE ERROR_CODE: expect, and the body is a complete error object
expect_error() {
    expect "$1" "$2" || return 1
    jq -e '(.error | type == "object") and (.error.code | type == "string")
           and (.error.message | type == "string" and length > 0)' <<<"$body" >/dev/null || {
        echo "not an error body: $body" >&2
        return 1
    }
}

# jcheck [jq args] FILTER: the last body satisfies a jq filter
jcheck() {
    jq -e "$@" <<<"$body" >/dev/null || {
        echo "check failed: ${*: -1}" >&2
        echo "body: $body" >&2
        return 1
    }
}
