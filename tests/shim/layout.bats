#!/usr/bin/env bats
# tests/shim/layout.bats - mesarun --layout FILE and mesa layout check FILE:
# the SDK's layout (a JSON path map of repo declarations) validated
# structurally before COMMAND starts (exit 2, "mesarun: --layout FILE:
# <rule> (at <key>)"), then mounted at its workspace paths: /workspace = app
# (rw), /workspace/vendor/lib = lib (ro) for unmodified programs; a nested
# mount point is a directory of its parent's listing; renames and hard links
# across repos fail with EXDEV; getcwd, $PWD and realpath say /workspace.
# Contract: issue 7 "Layouts", docs/DECISIONS.md "Layouts", mesarun --help.

bats_require_minimum_version 1.5.0
load ../lib/mount
load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

# setup_file, setup, teardown: the shim suites' defaults (tests/lib/mount.bash)

# layout TEXT: write TEXT to $T/layout.json
layout() {
    printf '%s\n' "$1" >"$T/layout.json"
}

# bad_layout TEXT RULE AT: mesarun --layout exits 2 with the rule and the
# key before COMMAND runs, and mesa layout check says the same.
bad_layout() {
    layout "$1"
    run -2 --separate-stderr "$MESARUN" --layout "$T/layout.json" -- touch "$T/ran"
    assert_equal "$stderr" "mesarun: --layout $T/layout.json: $2 (at $3)"
    [ ! -e "$T/ran" ]
    run -2 --separate-stderr "$MESA" layout check "$T/layout.json"
    assert_equal "$stderr" "mesa layout check: $T/layout.json: $2 (at $3)"
    assert_output ""
}

APP_LIB='{"/workspace": {"kind":"repo","name":"app","mode":"rw"},
 "/workspace/vendor/lib": {"kind":"repo","name":"lib","mode":"ro"}}'

# two_repos PREFIX: repos PREFIX-app (a.txt, src/m.c, Makefile) and
# PREFIX-lib (x.txt, inc/l.h); $T/layout.json mounts them as the issue's
# example does.
two_repos() {
    local a=$T/src-app l=$T/src-lib
    mkdir -p "$a/src" "$l/inc"
    printf 'hello\n' >"$a/a.txt"
    printf 'int m;\n' >"$a/src/m.c"
    printf 'all:\n\tcat a.txt vendor/lib/x.txt > out.txt\n' >"$a/Makefile"
    printf 'libx\n' >"$l/x.txt"
    printf '#define L 1\n' >"$l/inc/l.h"
    mkrepo "$1-app" "$a"
    mkrepo "$1-lib" "$l"
    layout "{\"/workspace\": {\"kind\":\"repo\",\"name\":\"$1-app\",\"mode\":\"rw\"},
 \"/workspace/vendor/lib\": {\"kind\":\"repo\",\"name\":\"$1-lib\",\"mode\":\"ro\"}}"
}

# ------------------------------------------------------------ validation

@test "a layout that is not JSON: exit 2, COMMAND not run" {
    bad_layout '{"/workspace": ' "not a JSON document: unexpected token near end of file" "line 2"
}

@test "a layout that is not an object of paths: exit 2" {
    bad_layout '[1]' "a layout must be a JSON object of mount paths" "top level"
    bad_layout '{}' "a layout must declare at least one mount path" "top level"
}

@test "a relative mount path: exit 2 naming it" {
    bad_layout '{"workspace": {"kind":"repo","name":"app","mode":"rw"}}' \
        "a mount path must be absolute" workspace
}

@test "a mount path that is not normalised, or /: exit 2" {
    local rule="a mount path must be normalised (no '.', '..', '//' or trailing '/')"
    bad_layout '{"/w/../x": {"kind":"repo","name":"app","mode":"rw"}}' "$rule" /w/../x
    bad_layout '{"/w//x": {"kind":"repo","name":"app","mode":"rw"}}' "$rule" /w//x
    bad_layout '{"/w/": {"kind":"repo","name":"app","mode":"rw"}}' "$rule" /w/
    bad_layout '{"/w/./x": {"kind":"repo","name":"app","mode":"rw"}}' "$rule" /w/./x
    bad_layout '{"/": {"kind":"repo","name":"app","mode":"rw"}}' "a mount path must not be / itself" /
}

@test "an unknown or missing kind: exit 2" {
    bad_layout '{"/w": {"kind":"bucket","name":"app","mode":"rw"}}' \
        'unknown kind (the only kind is "repo")' /w
    bad_layout '{"/w": {"name":"app","mode":"rw"}}' 'missing kind (the only kind is "repo")' /w
}

@test "a missing or invalid name: exit 2" {
    bad_layout '{"/w": {"kind":"repo","mode":"rw"}}' "missing name" /w
    bad_layout '{"/w": {"kind":"repo","name":"a/b","mode":"rw"}}' \
        "name must be a repository name (1..100 of [A-Za-z0-9._-])" /w
}

@test "a mode other than ro or rw, or none: exit 2" {
    bad_layout '{"/w": {"kind":"repo","name":"app","mode":"rx"}}' 'mode must be "ro" or "rw"' /w
    bad_layout '{"/w": {"kind":"repo","name":"app"}}' 'mode must be "ro" or "rw"' /w
}

@test "bookmark and changeId together: exit 2" {
    bad_layout '{"/w": {"kind":"repo","name":"app","mode":"rw","bookmark":"main","changeId":"zz"}}' \
        "bookmark and changeId are mutually exclusive" /w
    bad_layout '{"/w": {"kind":"repo","name":"app","mode":"rw","bookmark":""}}' \
        "bookmark must be a non-empty string" /w
}

@test "two declarations at one path, or one repo mounted two ways: exit 2" {
    local twice="a mount path is declared twice (two repos cannot both be mounted there)"
    bad_layout '{"/w": [{"kind":"repo","name":"a","mode":"rw"},{"kind":"repo","name":"b","mode":"rw"}]}' \
        "$twice" /w
    bad_layout '{"/w": {"kind":"repo","name":"a","mode":"rw","subPaths":{"x":{"kind":"repo","name":"b","mode":"ro"}}},
 "/w/x": {"kind":"repo","name":"c","mode":"ro"}}' "$twice" /w/x
    bad_layout '{"/w": {"kind":"repo","name":"a","mode":"rw"}, "/v": {"kind":"repo","name":"a","mode":"ro"}}' \
        "repo 'a' is also mounted at /w with another mode or revision (a mount has one state per repo)" /v
}

@test "unknown fields and malformed subPaths: exit 2" {
    bad_layout '{"/w": {"kind":"repo","name":"a","mode":"rw","changeid":"x"}}' \
        "unknown field 'changeid' in a repo declaration" /w
    bad_layout '{"/w": {"kind":"repo","name":"a","mode":"rw","subPaths":["x"]}}' \
        "subPaths must be an object of relative paths" /w
    bad_layout '{"/w": {"kind":"repo","name":"a","mode":"rw","subPaths":{"../x":{"kind":"repo","name":"b","mode":"ro"}}}}' \
        "a subPaths key must be a normalised relative path (no leading '/', '.', '..', '//' or trailing '/')" /w/../x
    bad_layout '{"/w": []}' "a list of declarations must not be empty" /w
    bad_layout '{"/w": "app"}' "a value must be a repo declaration (an object) or a list of them" /w
}

@test "--layout with --repo, twice, or a missing file: exit 2 before COMMAND" {
    layout "$APP_LIB"
    run -2 --separate-stderr "$MESARUN" --repo app --layout "$T/layout.json" -- touch "$T/ran"
    assert_equal "$stderr" "mesarun: --layout $T/layout.json: cannot be combined with --repo (the layout names the repos)"
    run -2 --separate-stderr "$MESARUN" --layout "$T/layout.json" --layout "$T/layout.json" -- touch "$T/ran"
    assert_equal "$stderr" "mesarun: --layout: given twice"
    layout '{"/mesa/w": {"kind":"repo","name":"app","mode":"rw"}}'
    run -2 --separate-stderr "$MESARUN" --layout "$T/layout.json" -- touch "$T/ran"
    assert_equal "$stderr" "mesarun: --layout $T/layout.json: a mount path must not overlap the mount prefix /mesa (at /mesa/w)"
    run -2 --separate-stderr "$MESARUN" --layout "$T/nope.json" -- touch "$T/ran"
    assert_equal "$stderr" "mesarun: --layout $T/nope.json: not a JSON document: unable to open $T/nope.json: No such file or directory (at line -1)"
    [ ! -e "$T/ran" ]
}

# ------------------------------------------------------------ mesa layout check

@test "mesa layout check prints one line per mount point, shortest first" {
    layout '{"/workspace/vendor/lib": {"kind":"repo","name":"lib","mode":"ro","bookmark":"v1"},
 "/workspace": {"kind":"repo","name":"app","mode":"rw",
   "subPaths": {"tools/gen": [{"kind":"repo","name":"gen","mode":"ro","changeId":"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz","alias":"g"}]}}}'
    run -0 --separate-stderr "$MESA" layout check "$T/layout.json"
    assert_output "$(printf '/workspace\tapp\trw\tdefault\n/workspace/tools/gen\tgen\tro\tchange:zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz\talias:g\n/workspace/vendor/lib\tlib\tro\tbookmark:v1')"
    run -0 --separate-stderr "$MESA" --json layout check "$T/layout.json"
    assert_line -n 0 '{"path":"/workspace","name":"app","mode":"rw"}'
    assert_line -n 2 '{"path":"/workspace/vendor/lib","name":"lib","mode":"ro","bookmark":"v1"}'
}

@test "mesa layout check without FILE is a usage error" {
    run -2 --separate-stderr "$MESA" layout check
    assert_equal "$stderr" "mesa layout check: takes one FILE"
    run -2 --separate-stderr "$MESA" layout lint x
    assert_equal "$stderr" "mesa layout: the only subcommand is 'check FILE'"
}

# ------------------------------------------------------------ the mount

@test "the issue's layout: COMMAND starts in /workspace, reads app and the nested lib" {
    two_repos ly-read
    run -0 --separate-stderr mr --layout "$T/layout.json" -- sh -c \
        'pwd; echo "$PWD"; cat a.txt vendor/lib/x.txt /workspace/vendor/lib/inc/l.h; ls; ls /workspace/vendor; ls vendor/lib'
    assert_output "/workspace
/workspace
hello
libx
#define L 1
Makefile
a.txt
src
vendor
lib
inc
x.txt"
}

@test "a made-up parent of a nested mount point has no extended attributes: ls -la works" {
    two_repos ly-xattr
    run -0 --separate-stderr mr --layout "$T/layout.json" -- sh -c \
        'ls -la /workspace/vendor | tail -n +2 | awk "{print \$NF}"; python3 -c "
import errno, os
print(os.listxattr(\"/workspace/vendor\"))
for call in (lambda: os.getxattr(\"/workspace/vendor\", \"user.x\"), lambda: os.setxattr(\"/workspace/vendor\", \"user.x\", b\"1\")):
    try:
        call()
    except OSError as e:
        print(errno.errorcode[e.errno])
"'
    assert_output ".
..
lib
[]
ENODATA
ENOTSUP"
    [ -z "$stderr" ]
}

@test "a nested mount point's parent is a directory even where app has none" {
    two_repos ly-stat
    run -0 --separate-stderr mr --layout "$T/layout.json" -- sh -c \
        'stat -c %F /workspace/vendor /workspace/vendor/lib; test -d vendor && cd vendor && pwd && ls -a && find /workspace/vendor | sort'
    assert_output "directory
directory
/workspace/vendor
.
..
lib
/workspace/vendor
/workspace/vendor/lib
/workspace/vendor/lib/inc
/workspace/vendor/lib/inc/l.h
/workspace/vendor/lib/x.txt"
    run -1 server_has ly-stat-app vendor
}

@test "getcwd, realpath and \$PWD show workspace paths, also in the nested repo" {
    two_repos ly-cwd
    run -0 --separate-stderr mr --layout "$T/layout.json" -- sh -c \
        'cd vendor/lib/inc && python3 -c "import os; print(os.getcwd()); print(os.path.realpath(\"l.h\"))" && /bin/pwd && cd .. && /bin/pwd && realpath ../../src/m.c && cd .. && pwd'
    assert_output "/workspace/vendor/lib/inc
/workspace/vendor/lib/inc/l.h
/workspace/vendor/lib/inc
/workspace/vendor/lib
/workspace/src/m.c
/workspace/vendor"
}

@test "--cwd names a workspace path" {
    two_repos ly-cwdopt
    run -0 --separate-stderr mr --layout "$T/layout.json" --cwd /workspace/vendor/lib -- sh -c 'pwd; cat x.txt'
    assert_output "/workspace/vendor/lib
libx"
}

@test "writes in /workspace are pushed to app; lib is read-only (EROFS)" {
    two_repos ly-write
    run -1 --separate-stderr mr --layout "$T/layout.json" -- sh -c \
        'echo new > new.txt && mkdir -p d && echo deep > d/f.txt && '"$P"' write vendor/lib/y.txt x -- mkdir vendor/lib/dd -- unlink vendor/lib/x.txt'
    assert_output "EROFS
EROFS
EROFS"
    server_is ly-write-app new.txt $'new\n'
    server_is ly-write-app d/f.txt $'deep\n'
    run -1 server_has ly-write-lib y.txt
    server_is ly-write-lib x.txt $'libx\n'
}

@test "rename and link from app into lib fail with EXDEV; mv does not move the file" {
    two_repos ly-xdev
    run -0 --separate-stderr mr --layout "$T/layout.json" -- sh -c \
        "$P rename a.txt vendor/lib/a.txt -- link a.txt vendor/lib/b.txt -- rename vendor/lib/x.txt x.txt;
         python3 -c 'import os
try:
    os.link(\"/workspace/a.txt\", \"/workspace/vendor/lib/a2.txt\")
except OSError as e:
    print(e.strerror)'
         mv a.txt vendor/lib/ 2>/dev/null; echo mv=\$?; cat a.txt"
    assert_output "EXDEV
EXDEV
EXDEV
Invalid cross-device link
mv=1
hello"
    server_is ly-xdev-app a.txt $'hello\n'
    run -1 server_has ly-xdev-lib a.txt
}

@test "make runs in /workspace and reads the nested repo" {
    two_repos ly-make
    run -0 --separate-stderr mr --layout "$T/layout.json" -- sh -c 'make -s && cat out.txt'
    assert_output "hello
libx"
    server_is ly-make-app out.txt $'hello\nlibx\n'
}

@test "bookmark and changeId of a declaration are honoured" {
    two_repos ly-rev
    mesa bookmark create ly-rev-lib b2 >/dev/null
    mesa change new ly-rev-lib --bookmark b2 >/dev/null
    printf 'v2\n' | mesa put --bookmark b2 ly-rev-lib:x.txt >/dev/null
    local change
    change=$(bookmark_change ly-rev-app main)
    layout "{\"/workspace\": {\"kind\":\"repo\",\"name\":\"ly-rev-app\",\"mode\":\"rw\",\"changeId\":\"$change\"},
 \"/workspace/vendor/lib\": {\"kind\":\"repo\",\"name\":\"ly-rev-lib\",\"mode\":\"ro\",\"bookmark\":\"b2\"}}"
    run -0 --separate-stderr mr --layout "$T/layout.json" -- sh -c 'cat a.txt vendor/lib/x.txt; echo w > w.txt'
    assert_output "hello
v2"
    [ "$(mesa cat --change "$change" ly-rev-app:w.txt)" = w ]
}

@test "a repo declared in subPaths mounts like a path key" {
    two_repos ly-sub
    layout '{"/ws": {"kind":"repo","name":"ly-sub-app","mode":"rw","subPaths":{"third/lib":[{"kind":"repo","name":"ly-sub-lib","mode":"ro"}]}}}'
    run -0 --separate-stderr mr --layout "$T/layout.json" -- sh -c 'pwd; ls third; cat third/lib/x.txt'
    assert_output "/ws
lib
libx"
}

@test "a script run from the workspace sees its workspace path as \$0; --prefix keeps the canonical tree" {
    mkdir -p "$T/s"
    printf '#!/bin/sh\necho "$0"; dirname "$0"\n' >"$T/s/s.sh"
    chmod +x "$T/s/s.sh"
    mkrepo ly-exec "$T/s"
    layout '{"/ws": {"kind":"repo","name":"ly-exec","mode":"rw"}}'
    run -0 --separate-stderr mr --layout "$T/layout.json" --prefix /mnt/m -- sh -c './s.sh; /ws/s.sh; ls /mnt/m/acme/ly-exec'
    assert_output "/ws/s.sh
/ws
/ws/s.sh
/ws
s.sh"
}

@test "creating in a directory on the way to a nested mount point puts it in the outer repo" {
    two_repos ly-mat
    run -0 --separate-stderr mr --layout "$T/layout.json" -- sh -c \
        'echo f > vendor/f.txt && mkdir vendor/d && ls vendor && cat vendor/lib/x.txt'
    assert_output "d
f.txt
lib
libx"
    server_is ly-mat-app vendor/f.txt $'f\n'
    [ "$(server_entry ly-mat-app vendor/d)" = "dir 040000" ]
    run -1 server_has ly-mat-app vendor/lib
}

@test "a program started with env -i still sees the layout" {
    two_repos ly-envi
    run -0 --separate-stderr mr --layout "$T/layout.json" -- sh -c \
        'env -i /bin/sh -c "cat /workspace/a.txt /workspace/vendor/lib/x.txt; cd /workspace/vendor && /bin/pwd"'
    assert_output "hello
libx
/workspace/vendor"
}

@test "paths outside the layout are untouched" {
    two_repos ly-out
    mkdir -p "$T/real"
    echo realfile >"$T/real/f"
    run -0 --separate-stderr mr --layout "$T/layout.json" -- sh -c "cat $T/real/f; ls /workspacex 2>&1 | grep -c 'No such file'"
    assert_output "realfile
1"
}

@test "MESA_ACCESS_TOKEN with a layout: the token is the only credential (MESA_ORG names the org); --ttl is exit 2" {
    two_repos ly-tok
    local tok
    tok=$(token ".scopes=[\"read\",\"write\"] | .repos=[\"$MESA_ORG/ly-tok-app\",\"$MESA_ORG/ly-tok-lib\"]")
    run -0 --separate-stderr env -u MESA_API_KEY MESA_ACCESS_TOKEN="$tok" "$MESARUN" \
        --cache-dir "$T/cache" --layout "$T/layout.json" -- sh -c 'cat a.txt vendor/lib/x.txt; echo t > t.txt'
    assert_output "hello
libx"
    server_is ly-tok-app t.txt $'t\n'
    run -2 --separate-stderr env -u MESA_API_KEY MESA_ACCESS_TOKEN="$tok" "$MESARUN" --ttl 60 \
        --cache-dir "$T/cache" --layout "$T/layout.json" -- touch "$T/ran"
    assert_equal "$stderr" "mesarun: --ttl: the lifetime of an existing access token cannot be changed"
    [ ! -e "$T/ran" ]
    # a token without the nested repo: the mount cannot be set up (exit 1), COMMAND not run
    tok=$(token ".scopes=[\"read\",\"write\"] | .repos=[\"$MESA_ORG/ly-tok-app\"]")
    run -1 --separate-stderr env -u MESA_API_KEY MESA_ACCESS_TOKEN="$tok" "$MESARUN" \
        --cache-dir "$T/cache" --layout "$T/layout.json" -- touch "$T/ran"
    [[ "$stderr" == "mesarun: "*"ly-tok-lib"* ]]
    [ ! -e "$T/ran" ]
}

@test "the layout replaces /mesa/ORG/REPO for the run; with --prefix given too, both trees are there" {
    two_repos ly-hide
    run -0 --separate-stderr mr --layout "$T/layout.json" -- sh -c \
        "cat a.txt; cat /mesa/$MESA_ORG/ly-hide-app/a.txt 2>/dev/null || echo hidden; test -e /mesa || echo no-mesa"
    assert_output "hello
hidden
no-mesa"
    run -0 --separate-stderr mr --prefix /mesa --layout "$T/layout.json" -- sh -c \
        "cat a.txt /mesa/$MESA_ORG/ly-hide-app/a.txt /mesa/$MESA_ORG/ly-hide-lib/x.txt"
    assert_output "hello
hello
libx"
}
