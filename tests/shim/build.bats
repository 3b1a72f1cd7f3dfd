#!/usr/bin/env bats
# tests/shim/build.bats - the main job (DESIGN §3, §9): `mesarun --repo R --
# make -j2` on a generated multi-directory C project (tests/shim/gen-project.py:
# 120 modules in nested directories, headers, a static library, a Makefile
# with -MMD -MP, a .gitignore that ignores every output, and gen/table.c, a
# tracked source that the build generates with ./tools/mktable.sh).
#
# Checked against a native build of the same sources in a temp directory:
# - the build succeeds; the outputs are usable in the mount (the binary runs
#   and prints what the native one prints; `make check` passes) and are
#   byte-identical to the native ones (the generator avoids -g and __FILE__);
# - the outputs are not on the server (API tree, `mesa cat`, a `git clone` of
#   the bare repo) but in the mount's local store in the cache directory;
#   the generated source is, with the native bytes, when mesarun returns;
# - a second run with the same cache directory rebuilds nothing; after a
#   source file changes through the API, the next run rebuilds exactly its
#   object, the archive and the link (repeated right after each run, so an
#   mtime compared in whole seconds would miss it); after a header changes,
#   exactly the objects whose -MMD dependency files name it;
# - a fresh cache directory starts without the outputs;
# - with --push-ignored the outputs are on the server too, with their modes,
#   bytes and mtimes (a run with a fresh cache then rebuilds nothing).
#
# The tests run in order and share the repo "proj" and one cache directory:
# each step builds on the previous one. One private mesad for the file.

# shellcheck disable=SC2016,SC2154 # sh -c scripts take their args; $body is set by api
bats_require_minimum_version 1.5.0
load ../lib/mount
load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

MOD=mod_007 # the module changed through the API

setup_file() {
    export BATS_NO_PARALLELIZE_WITHIN_FILE=true
    mesad_start
    mesa_env unix
    export W=$BATS_FILE_TMPDIR
    python3 "$BATS_TEST_DIRNAME/gen-project.py" "$W/src" --modules 120 --seed 7
    # The native reference: same sources, built in another directory.
    cp -a "$W/src" "$W/native"
    make -C "$W/native" -j2 >"$W/native.log" 2>&1 || {
        cat "$W/native.log" >&2
        return 1
    }
    "$W/native/bin/genproj" >"$W/native.out"
    (cd "$W/native" && find . | LC_ALL=C sort) >"$W/native.all"
    (cd "$W/native" && find . -type f | LC_ALL=C sort) >"$W/native.files"
    # What the repo holds after the build: the sources plus gen/table.c.
    { (cd "$W/src" && find . -type f | sed 's|^\./||') && echo gen/table.c; } |
        LC_ALL=C sort >"$W/tracked.files"
    MODPATH=$(cd "$W/src" && find src -name "$MOD.c")
    export MODPATH
    # Two variants of one module, built natively on top of the reference
    # (one recompilation each): what the mount must match after an API edit.
    local v
    for v in 1 2; do
        cp -a "$W/native" "$W/native$v"
        variant "$v" >"$W/native$v/$MODPATH"
        make -C "$W/native$v" -j2 >"$W/native$v.log" 2>&1 || return 1
        "$W/native$v/bin/genproj" >"$W/native$v.out"
    done
    mkrepo proj "$W/src"
    mkrepo projp "$W/src"
    IMPORT_CHANGE=$(bookmark_change proj main)
    export IMPORT_CHANGE
    # shared by the tests of repo proj: runs 1, 2, 3 reuse the local store
    export MOUNT_CACHE=$W/cache
}

teardown_file() { mesad_stop; }

# ------------------------------------------------------------ helpers

# mrt ARGS... -- CMD...: mr with a time limit, so a hang fails one test
# instead of eating the whole file's budget.
mrt() {
    mount_cache
    timeout -k 10 "${MR_TIMEOUT:-300}" "$MESARUN" --cache-dir "$MOUNT_CACHE" "$@"
}

# the objects that a make log compiled, sorted, one per line
compiled() {
    grep -oE -- '-c -o [^ ]+\.o' | cut -d' ' -f3 | LC_ALL=C sort
}

# repo_id NAME
repo_id() {
    api GET "/$MESA_ORG/$1"
    expect 200 || return 1
    jq -r .id <<<"$body"
}

# tree_files REPO: sorted paths of the files in the repo's tree at main
tree_files() {
    api GET "/$MESA_ORG/$1/tree?change_id=main"
    expect 200 || return 1
    jq -r '.entries[] | select(.type == "file") | .path' <<<"$body" | LC_ALL=C sort
}

# variant N: the module's source with its input perturbed by N (0 = original)
variant() {
    if [ "$1" -eq 0 ]; then
        cat "$W/src/$MODPATH"
    else
        sed "s/gp_mix(MOD_007_SEED, x)/gp_mix(MOD_007_SEED, x ^ $1u)/" "$W/src/$MODPATH"
    fi
}

# ------------------------------------------------------------ native

@test "generator: the generated project builds with make -j2, passes make check, ignores every output" {
    grep -q "^gcc .* -c -o src/main.o src/main.c$" "$W/native.log"
    [ "$(compiled <"$W/native.log" | wc -l)" -eq 122 ]
    diff "$W/src/expected.txt" "$W/native.out"
    run make -C "$W/native" check
    assert_success
    assert_line "check: ok"
    [ -x "$W/src/tools/mktable.sh" ]
    [ "$(wc -l <"$W/tracked.files")" -ge 200 ]
    # .gitignore: after a build, the only new file git sees is gen/table.c
    cp -a "$W/src" "$BATS_TEST_TMPDIR/g"
    cd "$BATS_TEST_TMPDIR/g"
    git init -q
    git add -A
    git -c user.name=t -c user.email=t@example.com commit -qm sources
    make -j2 >/dev/null 2>&1
    run git status --porcelain --untracked-files=all
    assert_success
    assert_output "?? gen/table.c"
}

# ------------------------------------------------------------ the main job

@test "run 1: mesarun --repo proj -- make -j2 builds the project in the mount" {
    run mrt --repo proj -- make -j2
    assert_success
    printf '%s\n' "$output" >"$W/run1.log"
    # the same compilations as natively, the generator ran once
    diff <(compiled <"$W/native.log") <(compiled <<<"$output")
    [ "$(grep -c '^\./tools/mktable\.sh gen/table\.in gen/table\.c$' <<<"$output")" -eq 1 ]
    assert_line --regexp '^ar rcsD out/libmods\.a '
    assert_line "gcc  -o bin/genproj src/main.o gen/table.o out/libmods.a"
}

@test "the outputs are usable in the mount: bin/genproj prints what the native binary prints" {
    run mrt --repo proj -- ./bin/genproj
    assert_success
    assert_output "$(cat "$W/native.out")"
    run mrt --repo proj -- make check
    assert_success
    assert_line "check: ok"
    refute_output --partial " -c -o "
}

@test "the mount holds the same files as the native build, byte for byte" {
    run mrt --repo proj -- sh -c 'find . | LC_ALL=C sort'
    assert_success
    diff "$W/native.all" <(printf '%s\n' "$output")
    # cmp every file (sources, generated source, .o, .d, archive, binary)
    # inside the mount against the native tree (outside it)
    run mrt --repo proj -- sh -c 'n=0
        while read -r f; do cmp "$f" "$1/$f" || exit 1; n=$((n + 1)); done <"$2"
        echo "$n files equal"' sh "$W/native" "$W/native.files"
    assert_success
    assert_output "$(wc -l <"$W/native.files") files equal"
    run mrt --repo proj -- sh -c 'test -x bin/genproj && test -x tools/mktable.sh && test ! -x Makefile'
    assert_success
}

@test "the outputs are not on the server; they are in the mount's local store" {
    local p
    for p in src/main.o src/main.d gen/table.o gen/table.d "${MODPATH%.c}.o" "${MODPATH%.c}.d" \
        out/libmods.a bin/genproj; do
        run server_has proj "$p"
        assert_failure
        # where DESIGN §3 / docs/MOUNT.md put them: the cache's local store
        [ -f "$MOUNT_CACHE/local/$MESA_ORG/proj/b-main/$p" ]
        cmp "$MOUNT_CACHE/local/$MESA_ORG/proj/b-main/$p" "$W/native/$p"
    done
    [ ! -e "$MOUNT_CACHE/local/$MESA_ORG/proj/b-main/gen/table.c" ]
    # the tree at main: exactly the sources plus the generated gen/table.c
    run tree_files proj
    assert_success
    diff "$W/tracked.files" <(printf '%s\n' "$output")
    run repo_tree proj
    assert_success
    refute_output --regexp '(^| )(bin|out)(/| )'
    assert_line "tools/mktable.sh file 100755"
    assert_line "gen/table.c file 100644"
}

@test "the generated source is in the repo's current change when mesarun returns" {
    # the mount wrote into the change that main points at (the import's),
    # rewriting it: same change id, main follows (DESIGN §3)
    assert_equal "$(bookmark_change proj main)" "$IMPORT_CHANGE"
    "$MESA" cat --change "$IMPORT_CHANGE" proj:gen/table.c >"$BATS_TEST_TMPDIR/table.c"
    cmp "$BATS_TEST_TMPDIR/table.c" "$W/native/gen/table.c"
    run "$MESA" log proj
    assert_success
    assert_line --index 0 --regexp "^@ +${IMPORT_CHANGE:0:12} .*\(main\)"
    # no scratch file of the generator reached the server
    run server_has proj gen/table.c.tmp
    assert_failure
}

@test "a git clone of the bare repo has the generated source and no outputs" {
    local id bare c=$BATS_TEST_TMPDIR/clone
    id=$(repo_id proj)
    bare=$MESAD_DATA/repos/$id.git
    [ -d "$bare" ]
    run git clone -q --branch main "$bare" "$c"
    assert_success
    cmp "$c/gen/table.c" "$W/native/gen/table.c"
    run find "$c" -path "$c/.git" -prune -o \( -name '*.o' -o -name '*.d' -o -name '*.a' \
        -o -name '*.tmp' -o -name genproj -o -name bin -o -name out \) -print
    assert_success
    assert_output ""
    diff "$W/tracked.files" <(git -C "$c" ls-files | LC_ALL=C sort)
    [ "$(git -C "$c" ls-files -s tools/mktable.sh | cut -d' ' -f1)" = 100755 ]
    # and the clone builds natively into the same program
    make -C "$c" -j2 >/dev/null 2>&1
    diff "$W/native.out" <("$c/bin/genproj")
}

@test "run 2 with the same cache directory rebuilds nothing" {
    run mrt --repo proj -- make -q
    assert_success
    run mrt --repo proj -- make -j2
    assert_success
    assert_line "make: Nothing to be done for 'all'."
    refute_output --partial " -c -o "
    refute_output --partial "mktable"
    refute_output --partial "ar rcsD"
}

@test "a source changed through the API: the next run rebuilds exactly its object, the archive and the link" {
    local k v obj=${MODPATH%.c}.o
    # the native references: one recompilation each, and a different output
    for v in 1 2; do
        [ "$(compiled <"$W/native$v.log")" = "$obj" ]
        run cmp -s "$W/native$v.out" "$W/native.out"
        assert_failure
    done
    # Each change lands right after the previous run, usually in the same
    # second as the object it invalidates: only sub-second mtimes catch it.
    for k in 1 2 3; do
        v=$(((k - 1) % 2 + 1))
        variant "$v" | "$MESA" put "proj:$MODPATH"
        run mrt --repo proj -- make -j2
        assert_success
        printf '%s\n' "$output" >"$W/run3.$k.log"
        assert_equal "$(compiled <<<"$output")" "$obj"
        refute_output --partial "mktable"
        assert_line --regexp '^ar rcsD out/libmods\.a '
        assert_line "gcc  -o bin/genproj src/main.o gen/table.o out/libmods.a"
        run mrt --repo proj -- sh -c './bin/genproj && cmp "$1" '"$obj"' && cmp "$2" out/libmods.a &&
            cmp "$3" bin/genproj' sh "$W/native$v/$obj" "$W/native$v/out/libmods.a" \
            "$W/native$v/bin/genproj"
        assert_success
        assert_output "$(cat "$W/native$v.out")"
        run server_has proj "$obj"
        assert_failure
    done
    server_cat proj "$MODPATH" | cmp - <(variant 1)
    run mrt --repo proj -- make -q
    assert_success
}

@test "a header changed through the API: the next run rebuilds exactly the objects whose .d files name it" {
    local h="" c want
    # a module header that other modules include too (own module + main.c + others)
    for c in $(cd "$W/native" && find include -name 'mod_*.h' | LC_ALL=C sort); do
        if [ "$(cd "$W/native" && grep -rlF --include='*.d' "$c" src gen | wc -l)" -ge 3 ]; then
            h=$c
            break
        fi
    done
    [ -n "$h" ]
    want=$(cd "$W/native" && grep -rlF --include='*.d' "$h" src gen | sed 's/\.d$/.o/' | LC_ALL=C sort)
    { cat "$W/src/$h" && echo "/* changed through the API */"; } | "$MESA" put "proj:$h"
    run mrt --repo proj -- make -j2
    assert_success
    assert_equal "$(compiled <<<"$output")" "$want"
    refute_output --partial "mktable"
    assert_line "gcc  -o bin/genproj src/main.o gen/table.o out/libmods.a"
    # a comment changes no code: the objects and the program are the native
    # ones (module $MOD is at variant 1, as the previous test left it)
    run mrt --repo proj -- sh -c 'for o in $2; do cmp "$o" "$1/$o" || exit 1; done
        cmp bin/genproj "$1/bin/genproj"' sh "$W/native1" "$want"
    assert_success
}

@test "a fresh cache directory starts without the outputs (they lived in the old one)" {
    local MOUNT_CACHE=$BATS_TEST_TMPDIR/cache
    run mrt --repo proj -- sh -c 'test -e bin/genproj || test -e out || test -e src/main.o'
    assert_failure
    run mrt --repo proj -- make -q
    assert_failure
    # the sources are all there: a full build works and matches native
    run mrt --repo proj -- make -j2
    assert_success
    [ "$(compiled <<<"$output" | wc -l)" -eq 122 ]
    refute_output --partial "mktable" # gen/table.c came from the server, newer than its inputs
    # the module as the server has it (variant 1 after the previous test)
    local v ref=""
    for v in 0 1 2; do
        server_cat proj "$MODPATH" | cmp -s - <(variant "$v") && ref=$W/native$v.out
    done
    [ "$ref" = "$W/native0.out" ] && ref=$W/native.out
    [ -n "$ref" ]
    run mrt --repo proj -- ./bin/genproj
    assert_success
    assert_output "$(cat "$ref")"
}

@test "--push-ignored: the outputs are on the server too" {
    local MOUNT_CACHE=$BATS_TEST_TMPDIR/cache p
    run mrt --push-ignored --repo projp -- make -j2
    assert_success
    diff <(compiled <"$W/native.log") <(compiled <<<"$output")
    # the tree at main is exactly the native build's files
    run tree_files projp
    assert_success
    diff <(sed 's|^\./||' "$W/native.files") <(printf '%s\n' "$output")
    for p in "${MODPATH%.c}.o" src/main.d out/libmods.a bin/genproj gen/table.c; do
        server_cat projp "$p" | cmp - "$W/native/$p"
    done
    run repo_tree projp
    assert_success
    assert_line "bin/genproj file 100755"
    assert_line "out/libmods.a file 100644"
    # nothing of them in the local store
    [ ! -e "$MOUNT_CACHE/local/$MESA_ORG/projp/b-main/bin/genproj" ]
}

@test "--push-ignored: a run with a fresh cache finds the outputs up to date" {
    local MOUNT_CACHE=$BATS_TEST_TMPDIR/cache
    run mrt --push-ignored --repo projp -- make -q
    assert_success
    run mrt --push-ignored --repo projp -- ./bin/genproj
    assert_success
    assert_output "$(cat "$W/native.out")"
}
