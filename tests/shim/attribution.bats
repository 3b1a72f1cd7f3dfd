#!/usr/bin/env bats
# tests/shim/attribution.bats - who the mount's commits are by (issue 7,
# "Least privilege and attribution"): --author "Name <email>", else
# MESA_AUTHOR_NAME/MESA_AUTHOR_EMAIL, else git's user.name/user.email, is
# the author of the commits the pushes make; the committer is the key's
# identity ("<key name> <<key id>@<org>>"); a push without an author keeps
# the change's (as jj does); a bad --author is exit 2.

bats_require_minimum_version 1.5.0
load ../lib/mount
load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

# setup_file, setup, teardown: the shim suites' defaults (tests/lib/mount.bash)

# sig REPO: "author: NAME <EMAIL> / committer: NAME <EMAIL>" of the change
# the default bookmark points to
sig() {
    api GET "/$MESA_ORG/$1/bookmarks/main"
    expect 200 || return 1
    api GET "/$MESA_ORG/$1/changes/$(jq -r .change_id <<<"$body")"
    expect 200 || return 1
    jq -r '"author: \(.author.name) <\(.author.email)> / committer: \(.committer.name) <\(.committer.email)>"' <<<"$body"
}

# the key's identity as the committer
key_sig() {
    api GET /whoami
    jq -r '"\(.key_name) <\(.key_id)@\(.org.slug)>"' <<<"$body"
}

@test "--author is the author of the mount's commits; the committer is the key" {
    mkrepo at-flag
    run -0 --separate-stderr mr --author "Ann Agent <ann@example.com>" --repo at-flag -- sh -c 'echo one > a.txt'
    run -0 sig at-flag
    assert_output "author: Ann Agent <ann@example.com> / committer: $(key_sig)"
    # a second push to the same change keeps both
    run -0 --separate-stderr mr --author "Bo Bot <bo@example.com>" --repo at-flag -- sh -c 'echo two > b.txt'
    run -0 sig at-flag
    assert_output "author: Bo Bot <bo@example.com> / committer: $(key_sig)"
}

@test "MESA_AUTHOR_NAME/MESA_AUTHOR_EMAIL, else git's user, else the server's default" {
    mkrepo at-env
    MESA_AUTHOR_NAME="Env Person" MESA_AUTHOR_EMAIL=env@example.com \
        run -0 --separate-stderr mr --repo at-env -- sh -c 'echo e > e.txt'
    run -0 sig at-env
    assert_output "author: Env Person <env@example.com> / committer: $(key_sig)"
    printf '[user]\n\tname = Git User\n\temail = git@example.com\n' >"$T/gitconfig"
    GIT_CONFIG_GLOBAL=$T/gitconfig GIT_CONFIG_NOSYSTEM=1 \
        run -0 --separate-stderr mr --repo at-env -- sh -c 'echo g > g.txt'
    run -0 sig at-env
    assert_output "author: Git User <git@example.com> / committer: $(key_sig)"
    # --author wins over both
    GIT_CONFIG_GLOBAL=$T/gitconfig MESA_AUTHOR_NAME=x MESA_AUTHOR_EMAIL=x@y \
        run -0 --separate-stderr mr --author "Flag <flag@example.com>" --repo at-env -- sh -c 'echo f > f.txt'
    run -0 sig at-env
    assert_output "author: Flag <flag@example.com> / committer: $(key_sig)"
    # none of them: a push keeps the change's author (as jj does) ...
    GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 \
        run -0 --separate-stderr mr --repo at-env -- sh -c 'echo d > d.txt'
    run -0 sig at-env
    assert_output "author: Flag <flag@example.com> / committer: $(key_sig)"
    # ... and a new change gets the server's default
    mkrepo at-none
    GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 \
        run -0 --separate-stderr mr --repo at-none -- sh -c 'echo d > d.txt'
    run -0 sig at-none
    assert_output "author: Mesa <mesa@localhost> / committer: $(key_sig)"
}

@test "a malformed --author is exit 2 before COMMAND starts" {
    mkrepo at-bad
    local a
    for a in "no email" "<only@mail>" "Name <no-at>" "Name <a@b> trailing" ""; do
        run -2 --separate-stderr mr --author "$a" --repo at-bad -- touch "$T/ran"
        assert_equal "$stderr" "mesarun: --author: must be \"Name <email>\" (got '$a')"
        [ ! -e "$T/ran" ]
    done
}

@test "a fork made at mount (--branched-from) has the mount's author from the start" {
    mkdir -p "$T/src" && echo s >"$T/src/s.txt"
    mkrepo at-fork "$T/src"
    run -0 --separate-stderr mr --author "Forker <fork@example.com>" --repo at-fork --branched-from main --as agent-1 -- true
    api GET "/$MESA_ORG/at-fork/bookmarks/agent-1"
    api GET "/$MESA_ORG/at-fork/changes/$(jq -r .change_id <<<"$body")"
    assert_equal "$(jq -r '"\(.author.name) <\(.author.email)>"' <<<"$body")" "Forker <fork@example.com>"
}
