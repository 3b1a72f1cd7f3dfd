#!/usr/bin/env bats
# tests/server/repos.bats - GET/POST /v1/{org}/repos, GET/PATCH/DELETE
# /v1/{org}/{repo}, GET /v1/{org} (docs/PROTOCOL.md "Repos", "Identity").
# Every test makes repos with its own names, so tests do not depend on order.

load ../lib/mesad

setup_file() { mesad_start; }
teardown_file() { mesad_stop; }

# is_repo NAME [DEFAULT_BOOKMARK]: the last body is a complete Repo object
is_repo() {
    jcheck --arg n "$1" --arg db "${2:-main}" --arg ts "$TS_RE" '
        (["id","org","name","default_bookmark","head_change_id","upstream","created_at","tags"] - keys) == []
        and (.id | type == "string" and length > 0)
        and .org == "acme" and .name == $n and .default_bookmark == $db
        and (.head_change_id | type == "string" and length == 32)
        and .upstream == null
        and (.created_at | test($ts))
        and (.tags | type == "object")'
}

repo_dir() { printf '%s/repos/%s.git' "$MESAD_DATA" "$1"; }

@test "creating a repo answers 201 with every Repo field and the root change as head" {
    jreq POST /acme/repos '{"name":"alpha"}'
    expect 201
    is_repo alpha main
    jcheck --arg root "$ROOT_CHANGE" '.head_change_id == $root and .tags == {}'
    local id
    id=$(jq -r .id <<<"$body")
    [ -d "$(repo_dir "$id")" ]
    api GET /acme/alpha/bookmarks
    expect 200
    jcheck --arg root "$ROOT_CHANGE" '.bookmarks == [{"name":"main","change_id":$root,"is_default":true}]'
}

@test "creating a repo with default_bookmark trunk makes trunk the default and no main" {
    jreq POST /acme/repos '{"name":"with-trunk","default_bookmark":"trunk"}'
    expect 201
    is_repo with-trunk trunk
    api GET /acme/with-trunk/bookmarks
    expect 200
    jcheck --arg root "$ROOT_CHANGE" '.bookmarks == [{"name":"trunk","change_id":$root,"is_default":true}]'
}

@test "creating a repo with tags returns them" {
    jreq POST /acme/repos '{"name":"tagged0","tags":{"team":"core","tier":"1"}}'
    expect 201
    is_repo tagged0
    jcheck '.tags == {"team":"core","tier":"1"}'
}

@test "creating a repo whose name exists gets 409 ALREADY_EXISTS" {
    make_repo dup
    jreq POST /acme/repos '{"name":"dup"}'
    expect_error 409 ALREADY_EXISTS
}

@test "invalid repo names get 400 BAD_REQUEST" {
    local n long
    long=$(printf 'a%.0s' $(seq 1 101))
    for n in "" "../x" ".hidden" "a.git" "$long" "a/b" "-x" "a b" "x%y" "é"; do
        jreq POST /acme/repos "$(jq -cn --arg n "$n" '{name:$n}')"
        expect_error 400 BAD_REQUEST || { echo "name '$n'" >&2; false; }
    done
    api GET /acme/repos?limit=100
    expect 200
    jcheck '[.repos[].name | select(. == "a.git" or . == ".hidden" or . == "-x")] == []'
}

@test "valid edge-case repo names are accepted (100 chars, dots, dashes, underscores)" {
    local n
    n=$(printf 'b%.0s' $(seq 1 100))
    jreq POST /acme/repos "{\"name\":\"$n\"}"
    expect 201
    is_repo "$n"
    jreq POST /acme/repos '{"name":"A.b_c-9"}'
    expect 201
    is_repo A.b_c-9
}

@test "creating a repo with an upstream gets 400 (not supported by mesad)" {
    jreq POST /acme/repos '{"name":"up","upstream":{"url":"https://example.com/x.git"}}'
    expect_error 400 BAD_REQUEST
    api GET /acme/up
    expect_error 404 NOT_FOUND
}

@test "listing repos pages with limit and cursors, sorted by name, each repo exactly once" {
    local i cursor="" page=0 all="[]" url
    for i in 1 2 3 4 5; do make_repo "pg-$i"; done
    api GET "/acme/repos?limit=2"
    expect 200
    jcheck '(.repos | length) == 2 and .has_more == true and (.next_cursor | type == "string" and length > 0)'
    while :; do
        page=$((page + 1))
        [ "$page" -le 100 ] || { echo "more than 100 pages" >&2; false; }
        url="/acme/repos?limit=2"
        [ -n "$cursor" ] && url="$url&cursor=$(jq -rn --arg c "$cursor" '$c | @uri')"
        api GET "$url"
        expect 200
        jcheck '(.repos | length) <= 2 and (.has_more | type == "boolean")'
        all=$(jq -c --argjson all "$all" '$all + [.repos[].name]' <<<"$body")
        if [ "$(jq -r .has_more <<<"$body")" = true ]; then
            cursor=$(jq -r .next_cursor <<<"$body")
            [ -n "$cursor" ] && [ "$cursor" != null ]
        else
            break
        fi
    done
    jq -e '. == (. | unique) and (. | length) == (. | unique | length)' <<<"$all" >/dev/null || {
        echo "names not sorted or repeated: $all" >&2
        false
    }
    jq -e '[.[] | select(startswith("pg-"))] == ["pg-1","pg-2","pg-3","pg-4","pg-5"]' <<<"$all" >/dev/null
    # the unpaged list holds the same names
    api GET "/acme/repos?limit=100"
    expect 200
    jcheck --argjson all "$all" '[.repos[].name] == $all and .has_more == false'
}

@test "listing repos with limit 0, 101 or a non-number gets 400" {
    local l
    for l in 0 101 -1 abc; do
        api GET "/acme/repos?limit=$l"
        expect_error 400 BAD_REQUEST || { echo "limit=$l" >&2; false; }
    done
    api GET "/acme/repos?limit=100"
    expect 200
    api GET "/acme/repos?limit=1"
    expect 200
    jcheck '(.repos | length) <= 1'
}

@test "getting a repo returns the same object as its creation" {
    local created
    jreq POST /acme/repos '{"name":"getme","tags":{"k":"v"}}'
    expect 201
    created=$body
    api GET /acme/getme
    expect 200
    is_repo getme
    jcheck --argjson c "$created" '. == $c'
}

@test "getting a missing repo gets 404 NOT_FOUND" {
    api GET /acme/no-such-repo
    expect_error 404 NOT_FOUND
}

@test "renaming a repo keeps its id and content; the old name is 404 afterwards" {
    local id c
    make_repo old-name
    id=$(jq -r .id <<<"$body")
    c=$(new_change old-name "$ROOT_CHANGE" "[$(file_json keep.txt kept)]")
    jreq PATCH /acme/old-name '{"name":"new-name"}'
    expect 200
    is_repo new-name
    jcheck --arg id "$id" '.id == $id'
    api GET /acme/old-name
    expect_error 404 NOT_FOUND
    api GET /acme/new-name
    expect 200
    jcheck --arg id "$id" '.id == $id and .name == "new-name"'
    api GET "/acme/new-name/content?change_id=$c&path=keep.txt"
    expect 200
    [ "$(jq -r .content <<<"$body" | base64 -d)" = kept ]
    api GET /acme/new-name/changes/$c
    expect 200
}

@test "renaming a repo onto an existing name gets 409 ALREADY_EXISTS, onto a bad name 400" {
    make_repo ren-a
    make_repo ren-b
    jreq PATCH /acme/ren-a '{"name":"ren-b"}'
    expect_error 409 ALREADY_EXISTS
    jreq PATCH /acme/ren-a '{"name":"x.git"}'
    expect_error 400 BAD_REQUEST
    api GET /acme/ren-a
    expect 200
}

@test "patching tags merges them and null deletes a tag" {
    jreq POST /acme/repos '{"name":"tagged","tags":{"a":"1"}}'
    expect 201
    jreq PATCH /acme/tagged '{"tags":{"b":"2"}}'
    expect 200
    jcheck '.tags == {"a":"1","b":"2"}'
    jreq PATCH /acme/tagged '{"tags":{"a":null,"b":"3"}}'
    expect 200
    jcheck '.tags == {"b":"3"}'
    api GET /acme/tagged
    expect 200
    jcheck '.tags == {"b":"3"}'
}

@test "patching default_bookmark to an existing bookmark moves the head; to a missing one gets 400" {
    local c
    make_repo dflt
    c=$(new_change dflt "$ROOT_CHANGE" "[$(file_json f x)]")
    jreq POST /acme/dflt/bookmarks "{\"name\":\"dev\",\"change_id\":\"$c\"}"
    expect 201
    jreq PATCH /acme/dflt '{"default_bookmark":"nope"}'
    expect_error 400 BAD_REQUEST
    api GET /acme/dflt
    expect 200
    jcheck --arg root "$ROOT_CHANGE" '.default_bookmark == "main" and .head_change_id == $root'
    jreq PATCH /acme/dflt '{"default_bookmark":"dev"}'
    expect 200
    jcheck --arg c "$c" '.default_bookmark == "dev" and .head_change_id == $c'
    api GET /acme/dflt/bookmarks/dev
    expect 200
    jcheck '.is_default == true'
    api GET /acme/dflt/bookmarks/main
    expect 200
    jcheck '.is_default == false'
}

@test "head_change_id follows the default bookmark when it moves" {
    local c
    make_repo headmove
    c=$(new_change headmove "$ROOT_CHANGE" "[$(file_json f x)]")
    jreq PATCH /acme/headmove/bookmarks/main "{\"change_id\":\"$c\"}"
    expect 200
    api GET /acme/headmove
    expect 200
    jcheck --arg c "$c" '.head_change_id == $c'
}

@test "deleting a repo answers success, then 404, and removes its git directory" {
    local id
    make_repo doomed
    id=$(jq -r .id <<<"$body")
    [ -d "$(repo_dir "$id")" ]
    api DELETE /acme/doomed
    expect 200
    jcheck '. == {"success":true}'
    api GET /acme/doomed
    expect_error 404 NOT_FOUND
    [ ! -e "$(repo_dir "$id")" ]
    api DELETE /acme/doomed
    expect_error 404 NOT_FOUND
    # the name can be used again, for a new repo
    make_repo doomed
    jcheck --arg id "$id" '.id != $id'
}

@test "GET /v1/{org} reports created_at and num_repos, which counts creations and deletions" {
    local n
    api GET /acme
    expect 200
    jcheck --arg ts "$TS_RE" '(.created_at | test($ts)) and (.num_repos | type == "number")'
    n=$(jq .num_repos <<<"$body")
    api GET "/acme/repos?limit=100"
    expect 200
    [ "$(jq '.repos | length' <<<"$body")" -eq "$n" ]
    make_repo counted
    api GET /acme
    expect 200
    jcheck --argjson n "$n" '.num_repos == $n + 1'
    api DELETE /acme/counted
    expect 200
    api GET /acme
    expect 200
    jcheck --argjson n "$n" '.num_repos == $n'
}
