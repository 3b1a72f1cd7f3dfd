#!/usr/bin/env bats
# tests/server/auth.bats - credentials (raw API key, HS256 access tokens) and
# the 401/403 rules of docs/PROTOCOL.md "Authentication".
#
# The fixture: org acme (admin key), a second org "other", a read-only key and
# a key to revoke, repos r1 (with a.txt) and r2. The second org and the extra
# keys are made while the server is stopped, so the fixture does not depend on
# init being allowed on a data dir that is being served.

load ../lib/mesad

setup_file() {
    mesad_start
    pause_server
    local out
    out=$("$MESAD" init --data "$MESAD_DATA" --org other --json)
    OTHER_KEY=$(jq -r .api_key <<<"$out")
    OTHER_KEY_ID=$(jq -r .key_id <<<"$out")
    out=$("$MESAD" key create --data "$MESAD_DATA" --org acme --scopes read --name ro --json)
    RO_KEY=$(jq -r .api_key <<<"$out")
    RO_KEY_ID=$(jq -r .key_id <<<"$out")
    RO_S=$(mesa_secret "$RO_KEY")
    out=$("$MESAD" key create --data "$MESAD_DATA" --org acme --name victim --json)
    REV_KEY=$(jq -r .api_key <<<"$out")
    REV_KEY_ID=$(jq -r .key_id <<<"$out")
    REV_S=$(mesa_secret "$REV_KEY")
    export OTHER_KEY OTHER_KEY_ID RO_KEY RO_KEY_ID RO_S REV_KEY REV_KEY_ID REV_S
    mesad_serve
    make_repo r1
    make_repo r2
    jreq POST /acme/r1/changes "{\"base_change_id\":\"$ROOT_CHANGE\",\"files\":[$(file_json a.txt hello)]}"
    expect 201
    R1_CHANGE=$(jq -r .id <<<"$body")
    export R1_CHANGE
}
teardown_file() { mesad_stop; }

# pause_server: SIGTERM the running serve and wait for it (data dir kept).
pause_server() {
    kill -TERM "$MESAD_PID"
    local i
    for i in $(seq 1 200); do
        kill -0 "$MESAD_PID" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$MESAD_PID" 2>/dev/null || true
    wait "$MESAD_PID" 2>/dev/null || true
}

# hdr KEY_ID [ALG]: a token header
hdr() { printf '{"alg":"%s","typ":"mesa-at+jwt","kid":"%s.v1"}' "${2:-HS256}" "$1"; }

# payload KEY_ID [jq filter]: a valid payload (all scopes, 1 h), edited by the filter
payload() {
    local now
    now=$(date +%s)
    jq -cn --arg kid "$1" --argjson now "$now" \
        '{scopes:["read","write","admin"],iss:$kid,aud:"mesa-api",iat:$now,exp:($now+3600),jti:"t"}' |
        jq -c "${2:-.}"
}

# ktoken KEY_ID S [jq filter]: a token of another key than the admin key
ktoken() { jwt "$(hdr "$1")" "$(payload "$1" "${3:-.}")" "$2"; }

# hs512 HEADER PAYLOAD SECRET: like jwt but HMAC-SHA512
hs512() {
    local h p sig
    h=$(printf %s "$1" | b64url)
    p=$(printf %s "$2" | b64url)
    sig=$(printf %s "$h.$p" | openssl dgst -sha512 -mac HMAC -macopt "key:$3" -binary | b64url)
    printf '%s.%s.%s' "$h" "$p" "$sig"
}

# change_body FILE CONTENT: a POST changes body on the root change
change_body() {
    printf '{"base_change_id":"%s","files":[%s]}' "$ROOT_CHANGE" "$(file_json "$1" "$2")"
}

@test "whoami with the raw api key names the org, the key and its scopes" {
    api GET /whoami
    expect 200
    jcheck --arg kid "$ADMIN_KEY_ID" '.org.slug == "acme" and (.org.id | type == "string" and length > 0)
        and (.org.name | type == "string") and .key_id == $kid and (.scopes | sort) == ["admin","read","write"]'
}

@test "whoami with an access token names the org, the key and the token's scopes" {
    AUTH=$(token) api GET /whoami
    expect 200
    jcheck --arg kid "$ADMIN_KEY_ID" '.org.slug == "acme" and .key_id == $kid
        and (.scopes | sort) == ["admin","read","write"]'
    AUTH=$(token '.scopes=["read"]') api GET /whoami
    expect 200
    jcheck '.org.slug == "acme" and .scopes == ["read"]'
}

@test "healthz answers without any credential" {
    run curl -sS "$MESAD_URL/healthz"
    [ "$status" -eq 0 ]
    [ "$(jq -c . <<<"$output")" = '{"ok":true}' ]
}

@test "a valid access token reads and writes" {
    AUTH=$(token) api GET /acme/r1
    expect 200
    jcheck '.name == "r1"'
    AUTH=$(token) jreq POST /acme/r2/changes "$(change_body t.txt x)"
    expect 201
}

@test "a token expired more than 60 s ago gets 401" {
    AUTH=$(token '.exp = (.iat - 120) | .iat = (.iat - 3600)') api GET /whoami
    expect_error 401 UNAUTHORIZED
}

@test "a token expired less than 60 s ago is still accepted (leeway)" {
    AUTH=$(token '.exp = (.iat - 20) | .iat = (.iat - 3600)') api GET /whoami
    expect 200
}

@test "a token issued more than 60 s in the future gets 401" {
    AUTH=$(token '.iat = (.iat + 300) | .exp = (.iat + 3600)') api GET /whoami
    expect_error 401 UNAUTHORIZED
}

@test "a token issued less than 60 s in the future is accepted (leeway)" {
    AUTH=$(token '.iat = (.iat + 20) | .exp = (.iat + 3600)') api GET /whoami
    expect 200
}

@test "a token living longer than 86400 s gets 401, exactly 86400 s is accepted" {
    AUTH=$(token '.exp = (.iat + 86401)') api GET /whoami
    expect_error 401 UNAUTHORIZED
    AUTH=$(token '.exp = (.iat + 90000)') api GET /whoami
    expect_error 401 UNAUTHORIZED
    AUTH=$(token '.exp = (.iat + 86400)') api GET /whoami
    expect 200
}

@test "a token with a tampered payload gets 401" {
    local t h s p2
    t=$(token '.scopes=["read"]')
    IFS=. read -r h _ s <<<"$t"
    p2=$(payload "$ADMIN_KEY_ID" '.scopes=["read","write","admin"]' | b64url)
    AUTH="$h.$p2.$s" api GET /whoami
    expect_error 401 UNAUTHORIZED
}

@test "a token with a tampered signature gets 401" {
    local t h p s first
    t=$(token)
    IFS=. read -r h p s <<<"$t"
    first=${s:0:1}
    if [ "$first" = A ]; then first=B; else first=A; fi
    AUTH="$h.$p.$first${s:1}" api GET /whoami
    expect_error 401 UNAUTHORIZED
}

@test "a token with alg none gets 401, with an empty or a valid HS256 signature" {
    local h p sig
    h=$(hdr "$ADMIN_KEY_ID" none | b64url)
    p=$(payload "$ADMIN_KEY_ID" | b64url)
    AUTH="$h.$p." api GET /whoami
    expect_error 401 UNAUTHORIZED
    sig=$(printf %s "$h.$p" | openssl dgst -sha256 -mac HMAC -macopt "key:$ADMIN_S" -binary | b64url)
    AUTH="$h.$p.$sig" api GET /whoami
    expect_error 401 UNAUTHORIZED
}

@test "a token with alg HS512 gets 401, signed with HS512 or with HS256" {
    AUTH=$(hs512 "$(hdr "$ADMIN_KEY_ID" HS512)" "$(payload "$ADMIN_KEY_ID")" "$ADMIN_S") api GET /whoami
    expect_error 401 UNAUTHORIZED
    AUTH=$(jwt "$(hdr "$ADMIN_KEY_ID" HS512)" "$(payload "$ADMIN_KEY_ID")" "$ADMIN_S") api GET /whoami
    expect_error 401 UNAUTHORIZED
}

@test "a token for another audience or without one gets 401" {
    AUTH=$(token '.aud = "other-api"') api GET /whoami
    expect_error 401 UNAUTHORIZED
    AUTH=$(token 'del(.aud)') api GET /whoami
    expect_error 401 UNAUTHORIZED
}

@test "a token naming an unknown key id gets 401" {
    AUTH=$(jwt "$(hdr nosuchkey)" "$(payload nosuchkey)" "$ADMIN_S") api GET /whoami
    expect_error 401 UNAUTHORIZED
}

@test "after key revoke, the key and tokens signed by it get 401" {
    local t
    t=$(ktoken "$REV_KEY_ID" "$REV_S")
    AUTH=$t api GET /whoami
    expect 200
    AUTH=$REV_KEY api GET /whoami
    expect 200
    run "$MESAD" key revoke --data "$MESAD_DATA" --org acme "$REV_KEY_ID"
    [ "$status" -eq 0 ]
    AUTH=$t api GET /whoami
    expect_error 401 UNAUTHORIZED
    AUTH=$(ktoken "$REV_KEY_ID" "$REV_S") api GET /acme/r1
    expect_error 401 UNAUTHORIZED
    AUTH=$REV_KEY api GET /whoami
    expect_error 401 UNAUTHORIZED
}

@test "a token with non-canonical base64url (padding, stray bits) gets 401" {
    local t h p s alpha last idx
    t=$(token)
    IFS=. read -r h p s <<<"$t"
    AUTH="$h=.$p.$s" api GET /whoami
    expect_error 401 UNAUTHORIZED
    AUTH="$h.$p=.$s" api GET /whoami
    expect_error 401 UNAUTHORIZED
    AUTH="$h.$p.$s=" api GET /whoami
    expect_error 401 UNAUTHORIZED
    # 32-byte signature = 43 characters: the last one carries 4 bits and two
    # zero bits; setting a zero bit decodes to the same bytes in a lax decoder.
    alpha=ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_
    last=${s: -1}
    idx=${alpha%%"$last"*}
    idx=${#idx}
    [ $((idx % 4)) -eq 0 ]
    AUTH="$h.$p.${s:0:42}${alpha:idx+1:1}" api GET /whoami
    expect_error 401 UNAUTHORIZED
    # the unmodified token is fine
    AUTH=$t api GET /whoami
    expect 200
}

@test "a request without Authorization gets 401" {
    AUTH= api GET /whoami
    expect_error 401 UNAUTHORIZED
    AUTH= api GET /acme/repos
    expect_error 401 UNAUTHORIZED
}

@test "garbage, an unknown raw key, another scheme or a two-part token gets 401" {
    local t h p
    AUTH=garbage api GET /whoami
    expect_error 401 UNAUTHORIZED
    AUTH="mesa_$(printf 'A%.0s' $(seq 1 40))" api GET /whoami
    expect_error 401 UNAUTHORIZED
    AUTH="a.b.c" api GET /whoami
    expect_error 401 UNAUTHORIZED
    t=$(token)
    IFS=. read -r h p _ <<<"$t"
    AUTH="$h.$p" api GET /whoami
    expect_error 401 UNAUTHORIZED
    AUTH= api GET /whoami -H "Authorization: Basic $(printf 'u:%s' "$ADMIN_KEY" | base64 -w0)"
    expect_error 401 UNAUTHORIZED
    AUTH= api GET /whoami -H "Authorization: $ADMIN_KEY"
    expect_error 401 UNAUTHORIZED
}

@test "a path naming another org than the key's gets 403" {
    api GET /other/repos
    expect_error 403 FORBIDDEN
    api GET /other
    expect_error 403 FORBIDDEN
    AUTH=$(token) jreq POST /other/repos '{"name":"x"}'
    expect_error 403 FORBIDDEN
    AUTH=$OTHER_KEY api GET /acme/r1
    expect_error 403 FORBIDDEN
    AUTH=$OTHER_KEY api GET /acme/repos
    expect_error 403 FORBIDDEN
    # each key works on its own org
    AUTH=$OTHER_KEY api GET /other/repos
    expect 200
    AUTH=$OTHER_KEY api GET /whoami
    expect 200
    jcheck '.org.slug == "other"'
}

@test "a repo outside the token's repos claim gets 403 on GET and on writes" {
    local t
    t=$(token '.repos = ["acme/r1"]')
    AUTH=$t api GET /acme/r1
    expect 200
    AUTH=$t api GET /acme/r2
    expect_error 403 FORBIDDEN
    AUTH=$t api GET "/acme/r2/content"
    expect_error 403 FORBIDDEN
    AUTH=$t api GET /acme/r2/bookmarks
    expect_error 403 FORBIDDEN
    AUTH=$t jreq POST /acme/r2/changes "$(change_body n.txt no)"
    expect_error 403 FORBIDDEN
    # a bare repo name is not a full org/repo name: it grants nothing
    AUTH=$(token '.repos = ["r2"]') api GET /acme/r2
    expect_error 403 FORBIDDEN
}

@test "a repo in ro_repos is readable but writes to it get 403 READ_ONLY and change nothing" {
    local t before
    api GET /acme/r1/bookmarks/main
    expect 200
    before=$(jq -r .change_id <<<"$body")
    t=$(token '.repos = ["acme/r1"] | .ro_repos = ["acme/r1"]')
    AUTH=$t api GET /acme/r1
    expect 200
    AUTH=$t api GET "/acme/r1/content?change_id=$R1_CHANGE&path=a.txt"
    expect 200
    AUTH=$t jreq POST /acme/r1/changes "$(change_body n.txt no)"
    expect_error 403 READ_ONLY
    AUTH=$t jreq PATCH "/acme/r1/changes/$R1_CHANGE" "{\"files\":[$(file_json a.txt changed)]}"
    expect_error 403 READ_ONLY
    AUTH=$t jreq POST /acme/r1/bookmarks "{\"name\":\"ro-b\",\"change_id\":\"$R1_CHANGE\"}"
    expect_error 403 READ_ONLY
    AUTH=$t jreq PATCH /acme/r1/bookmarks/main "{\"change_id\":\"$R1_CHANGE\"}"
    expect_error 403 READ_ONLY
    api GET /acme/r1/bookmarks/main
    expect 200
    jcheck --arg c "$before" '.change_id == $c'
    api GET /acme/r1/bookmarks/ro-b
    expect 404
    api GET "/acme/r1/content?change_id=$R1_CHANGE&path=a.txt"
    expect 200
    [ "$(jq -r .content <<<"$body" | base64 -d)" = hello ]
}

@test "ro_repos without a repos claim only takes rights away on the named repo" {
    local t
    t=$(token '.ro_repos = ["acme/r1"]')
    AUTH=$t jreq POST /acme/r1/changes "$(change_body n.txt no)"
    expect_error 403 READ_ONLY
    AUTH=$t jreq POST /acme/r2/changes "$(change_body n.txt yes)"
    expect 201    # ro_repos grants nothing outside repos
    t=$(token '.repos = ["acme/r1"] | .ro_repos = ["acme/r2"]')
    AUTH=$t api GET /acme/r2
    expect_error 403 FORBIDDEN
}

@test "a token with scopes [read] reads but its writes get 403 READ_ONLY" {
    local t
    t=$(token '.scopes = ["read"]')
    AUTH=$t api GET /acme/r1/changes
    expect 200
    AUTH=$t jreq POST /acme/r2/changes "$(change_body n.txt no)"
    expect_error 403 READ_ONLY
    AUTH=$t jreq POST /acme/r2/bookmarks "{\"name\":\"rd\",\"change_id\":\"$ROOT_CHANGE\"}"
    expect_error 403 READ_ONLY
    AUTH=$t api DELETE /acme/r2/bookmarks/main
    expect_error 403 READ_ONLY
}

@test "a token without the admin scope cannot create, rename or delete a repo" {
    local t
    t=$(token '.scopes = ["read","write"]')
    AUTH=$t jreq POST /acme/repos '{"name":"noadmin"}'
    expect_error 403 FORBIDDEN
    api GET /acme/noadmin
    expect 404
    AUTH=$t jreq PATCH /acme/r2 '{"name":"r2-renamed"}'
    expect_error 403 FORBIDDEN
    AUTH=$t api DELETE /acme/r2
    expect_error 403 FORBIDDEN
    api GET /acme/r2
    expect 200
    # but it may write changes
    AUTH=$t jreq POST /acme/r2/changes "$(change_body w.txt ok)"
    expect 201
}

@test "a token signed by a read-only key but claiming write scope is refused on writes" {
    local t
    t=$(ktoken "$RO_KEY_ID" "$RO_S")
    AUTH=$t api GET /whoami
    expect 200
    jcheck --arg kid "$RO_KEY_ID" '.key_id == $kid and .scopes == ["read"]'
    AUTH=$t api GET /acme/r1
    expect 200
    AUTH=$t jreq POST /acme/r2/changes "$(change_body n.txt no)"
    expect_error 403 READ_ONLY
    AUTH=$t jreq POST /acme/repos '{"name":"ro-made"}'
    expect_error 403 FORBIDDEN
    AUTH=$RO_KEY jreq POST /acme/r2/changes "$(change_body n.txt no)"
    expect_error 403 READ_ONLY
}
