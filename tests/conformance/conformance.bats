#!/usr/bin/env bats
# tests/conformance/conformance.bats - our POSIX conformance suite: the same
# table of checks (tests/conformance/conform.c: open flags, rename, rmdir and
# unlink, symlinks, "..", mkdir, truncate, links and special files, chmod and
# chown, times, readdir, lseek, access, the working directory, stat
# identity) runs once in a local temp directory and once in a writable
# mounted repo, and every line must be equal, except the rows listed in
# tests/conformance/expected-differences (the mount's deliberate limits,
# README "Limits"), which must show exactly the listed mount result.
# The two tables are printed side by side to the TAP output.
# Contract: shared/DESIGN.md §3 (semantics, deliberate limits), §4-§6.

bats_require_minimum_version 1.5.0
load ../lib/mount
load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

EXPECTED=${MESA_TOP_SRCDIR:-$BATS_TEST_DIRNAME/../..}/tests/conformance/expected-differences

# The conform program: $CONFORM, else the build's, else compiled once from
# the source (like probe_bin).
conform_bin() {
    if [ -n "${CONFORM:-}" ]; then
        echo "$CONFORM"
        return 0
    fi
    local p=$_mount_top/tests/conformance/conform
    if [ ! -x "$p" ]; then
        p=$BATS_FILE_TMPDIR/conform
        [ -x "$p" ] || ${CC:-cc} -O2 -o "$p" "$BATS_TEST_DIRNAME/conform.c" || return 1
    fi
    echo "$p"
}

# Both tables are made once per file, native.txt and mount.txt
# (NAME<TAB>RESULT): every check set up by itself (files written in the
# mount), then again as "clean:NAME" on a tree set up natively and imported
# as a repo (in the mount: files that come from the server).
setup_file() {
    mesad_start
    mesa_env unix
    export LC_ALL=C TZ=UTC
    local bin t=$BATS_FILE_TMPDIR
    bin=$(conform_bin)
    export TABLES=$t
    mkdir -p "$t/native" "$t/src"
    export MOUNT_CACHE=$t/cache
    {
        "$bin" "$t/native/work" >"$t/native.fresh" &&
            "$bin" --setup-only "$t/src/work" &&
            cp -a "$t/src" "$t/native-clean" &&
            "$bin" --no-setup "$t/native-clean/work" >"$t/native.clean"
    } 2>"$t/native.err"
    echo $? >"$t/native.rc"
    {
        mkrepo cf && mkrepo cf-clean "$t/src" &&
            mr --repo cf -- "$bin" /mesa/acme/cf/work >"$t/mount.fresh" &&
            mr --repo cf-clean -- "$bin" --no-setup /mesa/acme/cf-clean/work >"$t/mount.clean"
    } 2>"$t/mount.err"
    echo $? >"$t/mount.rc"
    local side
    for side in native mount; do
        { cat "$t/$side.fresh" && sed 's/^/clean:/' "$t/$side.clean"; } >"$t/$side.txt" 2>/dev/null
    done
}

# result FILE NAME: the RESULT column of NAME's row in a table
result() {
    awk -F '\t' -v n="$2" '$1 == n { sub(/^[^\t]*\t/, ""); print; found = 1 } END { exit !found }' "$1"
}

# listed NAME: NAME's entry in expected-differences, exactly (exit 1 if none)
listed() {
    awk -F ' [|] ' -v n="$1" '!/^#/ && NF >= 3 && $1 == n { print $2; found = 1 } END { exit !found }' "$EXPECTED"
}

# expected NAME: the listed mount result of NAME; an entry for NAME covers
# clean:NAME too, unless clean:NAME has its own (exit 1 if not listed)
expected() {
    listed "$1" || { [[ $1 == clean:* ]] && listed "${1#clean:}"; }
}

# compare_rows GROUP: every check NAME or clean:NAME whose NAME is GROUP or
# GROUP.something (GROUP may be an alternation) gives the same result
# natively and in the mount, or the listed one for a deliberate limit.
# Prints each mismatch.
compare_rows() {
    local re="^(clean:)?($1)(\.|$)" name nat mnt want bad=0 n=0
    while IFS=$'\t' read -r name nat; do
        [[ $name =~ $re ]] || continue
        n=$((n + 1))
        mnt=$(result "$TABLES/mount.txt" "$name") || mnt="(missing)"
        if [[ $nat != n/a* ]] && want=$(expected "$name"); then
            if [ "$mnt" != "$want" ]; then
                printf '%s: mount gave "%s", expected-differences lists "%s" (native "%s")\n' \
                    "$name" "$mnt" "$want" "$nat"
                bad=1
            fi
        elif [ "$mnt" != "$nat" ]; then
            printf '%s:\n  native: %s\n  mount:  %s\n' "$name" "$nat" "$mnt"
            bad=1
        fi
    done <"$TABLES/native.txt"
    [ "$n" -gt 0 ] || {
        echo "no check matches $re"
        return 1
    }
    return "$bad"
}

GROUPS_RE='^(clean:)?(open|rename|rmdir|unlink|symlink|dotdot|mkdir|truncate|ftruncate|link|mkfifo|mknod|chown|owner|chmod|utime|mtime|readdir|lseek|access|cwd|stat|names)(\.|$)'

@test "conform runs natively and in a mount, with the same checks in the same order" {
    [ "$(cat "$TABLES/native.rc")" = 0 ] || { cat "$TABLES/native.err"; false; }
    [ "$(cat "$TABLES/mount.rc")" = 0 ] || { cat "$TABLES/mount.err"; false; }
    run -0 diff <(cut -f1 "$TABLES/native.txt") <(cut -f1 "$TABLES/mount.txt")
    [ "$(wc -l <"$TABLES/native.txt")" -ge 100 ]
    # the side-by-side table, for the log
    {
        printf '# %-36s | %-44s | %s\n' CHECK NATIVE MOUNT
        local name nat mnt
        while IFS=$'\t' read -r name nat; do
            mnt=$(result "$TABLES/mount.txt" "$name")
            printf '# %-36s | %-44s | %s\n' "$name" "$nat" "$([ "$mnt" = "$nat" ] && echo = || echo "$mnt")"
        done <"$TABLES/native.txt"
    } >&3
    # the mount run said nothing on stderr
    [ ! -s "$TABLES/mount.err" ] || { cat "$TABLES/mount.err"; false; }
}

@test "every check belongs to one of the groups below" {
    run -0 awk -F '\t' -v re="$GROUPS_RE" '$1 !~ re { print "ungrouped: " $1; bad = 1 } END { exit bad }' "$TABLES/native.txt"
}

@test "open(2) flags: O_CREAT|O_EXCL, O_TRUNC, O_APPEND, O_DIRECTORY, O_NOFOLLOW and errno as on a local disk" {
    compare_rows open
}

@test "rename(2) over files and directories, into its own subdir, of a missing path, as on a local disk" {
    compare_rows rename
}

@test "rmdir and unlink (of non-empty dirs, files, dirs, open files) as on a local disk" {
    compare_rows 'rmdir|unlink'
}

@test "symlinks: loops (ELOOP), dangling (ENOENT, lstat ok), readlink of a non-link (EINVAL)" {
    compare_rows symlink
}

@test "..: ROOT/.. is ROOT's parent, sub/../x is x, .. after a file or a missing dir fails" {
    compare_rows dotdot
}

@test "mkdir of existing paths, under files and missing parents" {
    compare_rows mkdir
}

@test "truncate and ftruncate shrink, grow (zeroes) and fail as on a local disk" {
    compare_rows 'truncate|ftruncate'
}

@test "hard links, FIFOs and device files fail with EPERM; chown only to oneself (deliberate limits)" {
    compare_rows 'link|mkfifo|mknod|chown|owner'
}

@test "chmod keeps the executable bit" {
    compare_rows chmod
}

@test "utimensat with UTIME_NOW, UTIME_OMIT and nanoseconds; writes move mtime" {
    compare_rows 'utime|mtime'
}

@test "readdir lists the sorted names after creates and deletes" {
    compare_rows readdir
}

@test "lseek SEEK_END, SEEK_HOLE and SEEK_DATA, writes past the end" {
    compare_rows lseek
}

@test "access R_OK, W_OK, X_OK and errno" {
    compare_rows access
}

@test "getcwd after chdir into a subdir, relative paths, fchdir" {
    compare_rows cwd
}

@test "stat identity: fstat equals stat, st_ino stable and distinct, directory st_nlink, long names" {
    compare_rows 'stat|names'
}

@test "expected-differences has no stale entries: every listed check exists and differs as listed" {
    local name want reason v nat mnt bad=0 variants
    while IFS='|' read -r name want reason; do
        name=${name% }
        want=${want# }
        want=${want% }
        case $name in '#'* | '') continue ;; esac
        [ -n "${reason# }" ] || { echo "$name: no reason given"; bad=1; }
        variants=$name
        [[ $name == clean:* ]] || listed "clean:$name" >/dev/null || variants="$name clean:$name"
        for v in $variants; do
            nat=$(result "$TABLES/native.txt" "$v") || { echo "$v: no such check"; bad=1; continue; }
            mnt=$(result "$TABLES/mount.txt" "$v")
            # a check that needs privileges reports n/a without them
            [[ $nat != n/a* ]] || continue
            if [ "$nat" = "$mnt" ]; then
                echo "$v: no longer differs (both \"$nat\"): drop it from expected-differences and the README"
                bad=1
            elif [ "$mnt" != "$want" ]; then
                echo "$v: mount gives \"$mnt\", listed \"$want\""
                bad=1
            fi
        done
    done <"$EXPECTED"
    [ "$bad" = 0 ]
}
