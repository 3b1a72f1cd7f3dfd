#!/usr/bin/env bats
# tests/shim/identity.bats - identity and metadata details: st_ino per
# path (tar stores no hard links, find -samefile finds only the file
# itself), du and df (statfs/statvfs answer for the mount), utimensat with
# UTIME_NOW and UTIME_OMIT, nanosecond mtimes across a push and a fresh
# cache, and names: spaces, Unicode, 255-byte names, 4,000-byte paths and
# ENAMETOOLONG beyond.
# Contract: shared/DESIGN.md §3 (identity, timestamps), §5.

bats_require_minimum_version 1.5.0
load ../lib/mount
load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

# setup_file, setup, teardown: the shim suites' defaults (tests/lib/mount.bash)

# server_mtime_text REPO PATH: mtime_ns as the server wrote it (jq would
# round integers above 2^53)
server_mtime_text() {
    api GET "/$MESA_ORG/$1/tree"
    expect 200 || return 1
    python3 -c 'import json, sys
for e in json.loads(sys.stdin.read())["entries"]:
    if e["path"] == sys.argv[1]:
        print(e["mtime_ns"])' "$2" <<<"$body"
}

# eq_repo NAME: same1 and same2 with equal contents, sub/other
eq_repo() {
    local d=$T/src-$1
    mkdir -p "$d/sub"
    printf 'same\n' >"$d/same1"
    printf 'same\n' >"$d/same2"
    head -c 10000 /dev/zero >"$d/sub/other"
    mkrepo "$1" "$d"
}

@test "tar c of two files with equal contents stores two files, no hard link; find -samefile finds one" {
    eq_repo id-tar
    run -0 --separate-stderr in_repo id-tar "tar cf $T/x.tar same1 same2 sub && tar tvf $T/x.tar | awk '{print \$1, \$3, \$6, \$7, \$8}' && find . -samefile same1 && find . -samefile sub/other"
    assert_output "-rw-r--r-- 5 same1  
-rw-r--r-- 5 same2  
drwxr-xr-x 0 sub/  
-rw-r--r-- 10000 sub/other  
./same1
./sub/other"
    refute_output --partial "link to"
    mkdir "$T/x" && tar xf "$T/x.tar" -C "$T/x"
    [ "$(stat -c %h "$T/x/same1")" = 1 ]
    cmp "$T/x/same2" - <<<"same"
}

@test "du counts the mount's files; df and stat -f answer for the mount" {
    eq_repo id-df
    run -0 --separate-stderr in_repo id-df "du -b same1 sub/other && du -sb sub && du -s --apparent-size -B1 . >/dev/null && df . | tail -1 | awk '{print \$1, \$6}' && df -i same1 | tail -1 | awk '{print \$6}' && stat -f -c '%l' . && python3 -c 'import os; s = os.statvfs(\".\"); print(s.f_namemax, s.f_blocks > 0, s.f_bavail > 0)'"
    assert_output "5	same1
10000	sub/other
14096	sub
- /mesa/acme/id-df
/mesa/acme/id-df
255
255 True True"
    # a missing path fails as stat would
    run -1 --separate-stderr in_repo id-df "df nothing"
    [[ "$stderr" == *"nothing: No such file or directory"* ]]
    run -0 --separate-stderr in_repo id-df "python3 -c '
import os, errno
try:
    os.statvfs(\"nothing\")
except OSError as e:
    print(errno.errorcode[e.errno])
'"
    assert_output "ENOENT"
}

@test "utimensat with UTIME_NOW and UTIME_OMIT; nanosecond mtimes survive a push and a fresh cache" {
    mkrepo id-times
    cat >"$T/ut.c" <<'EOF'
/* ut PATH ATIME MTIME: each "now", "omit" or SEC.NSEC; then print mtime */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
static struct timespec ts(const char *s)
{
    struct timespec t = {0, 0};
    if (!strcmp(s, "now"))
        t.tv_nsec = UTIME_NOW;
    else if (!strcmp(s, "omit"))
        t.tv_nsec = UTIME_OMIT;
    else
        sscanf(s, "%ld.%ld", &t.tv_sec, &t.tv_nsec);
    return t;
}
int main(int argc, char **argv)
{
    struct timespec t[2] = {ts(argv[2]), ts(argv[3])};
    struct stat st;
    (void)argc;
    if (utimensat(AT_FDCWD, argv[1], t, 0) < 0 || stat(argv[1], &st) < 0) {
        perror("ut");
        return 1;
    }
    printf("%ld.%09ld\n", (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    return 0;
}
EOF
    cc -o "$T/ut" "$T/ut.c"
    run -0 --separate-stderr in_repo id-times "echo x > f && $T/ut f 1.5 1234567890.123456789 && $T/ut f now omit && $T/ut f omit omit && date +%s > $T/before && $T/ut f omit now"
    assert_line --index 0 "1234567890.123456789"
    assert_line --index 1 "1234567890.123456789"
    assert_line --index 2 "1234567890.123456789"
    local before now
    before=$(cat "$T/before")
    now=${lines[3]%.*}
    [ "$now" -ge "$before" ] && [ "$now" -le $((before + 60)) ]
    # the explicit value, then the server and a fresh cache
    run -0 --separate-stderr in_repo id-times "$T/ut f 0.0 1600000000.000000007 >/dev/null && touch -m -d @1500000000.987654321 g && stat -c %y g"
    assert_output "2017-07-14 02:40:00.987654321 +0000"
    run -0 server_mtime_text id-times f
    assert_output "1600000000000000007"
    run -0 server_mtime_text id-times g
    assert_output "1500000000987654321"
    MOUNT_CACHE=$T/fresh run -0 --separate-stderr in_repo id-times "stat -c '%n %.9Y' f g"
    assert_output "f 1600000000.000000007
g 1500000000.987654321"
    # utimensat on a missing file: ENOENT; a read-only mount: EROFS
    run -1 --separate-stderr in_repo id-times "$T/ut nothing now now"
    [[ "$stderr" == *"No such file or directory"* ]]
    run -1 --separate-stderr mr --repo id-times --read-only -- "$T/ut" f now now
    [[ "$stderr" == *"Read-only file system"* ]]
}

@test "names with spaces and Unicode, 255-byte names, 4,000-byte paths; ENAMETOOLONG beyond" {
    mkrepo id-names
    cat >"$T/names.py" <<'EOF'
import errno, os
def err(f):
    try:
        f()
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
os.makedirs("sp ace/ünï cødé ☃")
with open("sp ace/ünï cødé ☃/fïle 1.txt", "w") as f:
    f.write("uni\n")
with open("n" * 255, "w") as f:
    f.write("255\n")
print("256-byte name:", err(lambda: open("m" * 256, "w")), err(lambda: os.mkdir("m" * 256)),
      err(lambda: os.stat("m" * 256)))
base = os.getcwd()                      # /mesa/acme/id-names
d = "/".join(["d" * 200] * 19)          # 3,818 bytes
os.makedirs(d)
name = "f" * (4000 - len(base) - 1 - len(d) - 1)
full = base + "/" + d + "/" + name      # 4,000 bytes
with open(full, "w") as f:
    f.write("deep\n")
print(len(full), open(full).read().strip(), os.stat(d + "/" + name).st_size)
os.mkdir(d + "/" + "e" * 100)
longest = base + "/" + d + "/" + "e" * 100 + "/"
longest += "g" * (4095 - len(longest))
print(len(longest), err(lambda: open(longest, "w").close()))
print(len(longest) + 1, err(lambda: open(longest + "g", "w")), err(lambda: os.stat(longest + "g")))
print("component over 255:", err(lambda: os.stat(base + "/" + d + "/" + "h" * 256)))
EOF
    run -0 --separate-stderr in_repo id-names "python3 $T/names.py && ls 'sp ace'/* && cat 'sp ace/ünï cødé ☃/fïle 1.txt' && ls | grep -c nnnn"
    assert_output "256-byte name: ENAMETOOLONG ENAMETOOLONG ENAMETOOLONG
4000 deep 5
4095 ok
4096 ENAMETOOLONG ENAMETOOLONG
component over 255: ENAMETOOLONG
fïle 1.txt
uni
1"
    server_is id-names "sp ace/ünï cødé ☃/fïle 1.txt" $'uni\n'
    server_is id-names "$(printf 'n%.0s' $(seq 255))" $'255\n'
    local deep
    deep=$(python3 -c 'print("/".join(["d" * 200] * 19) + "/" + "f" * (4000 - len("/mesa/acme/id-names") - 1 - 3818 - 1))')
    server_is id-names "$deep" $'deep\n'
    # a fresh cache lists and reads them back
    MOUNT_CACHE=$T/fresh run -0 --separate-stderr in_repo id-names "cat 'sp ace/ünï cødé ☃/fïle 1.txt' $deep"
    assert_output "uni
deep"
}
