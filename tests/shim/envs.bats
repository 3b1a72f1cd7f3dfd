#!/usr/bin/env bats
# tests/shim/envs.bats - processes and environments in the mount: a child
# that changes directory after vfork (python subprocess cwd=), os.chdir and
# os.walk, multiprocessing (fork, spawn, forkserver), programs that exec
# with an environment of their own (env -i, a hand-made envp), background
# jobs, nohup and daemons that outlive the command (--grace), and make
# interrupted by SIGINT twenty times in a row.
# Contract: shared/DESIGN.md §3 (subreaper, grace, drain), §6 (vfork,
# exec environments).

bats_require_minimum_version 1.5.0
load ../lib/mount
load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

# setup_file, setup, teardown: the shim suites' defaults (tests/lib/mount.bash)

# tree_repo NAME: a.txt, src/m.c, src/sub/b.txt, src/sub/deep/c.txt
tree_repo() {
    local d=$T/src-$1
    mkdir -p "$d/src/sub/deep"
    printf 'hello\n' >"$d/a.txt"
    printf 'int main(void) { return 0; }\n' >"$d/src/m.c"
    printf 'bee\n' >"$d/src/sub/b.txt"
    printf 'sea\n' >"$d/src/sub/deep/c.txt"
    mkrepo "$1" "$d"
}

# ------------------------------------------------------------ python

@test "python subprocess cwd= in the mount: the child lists it, the parent's cwd does not move" {
    tree_repo ev-cwd
    run -0 --separate-stderr in_repo ev-cwd "python3 -c '
import os, subprocess
kernel = os.readlink(\"/proc/self/cwd\")
def ls(cwd):
    r = subprocess.run([\"ls\"], cwd=cwd, capture_output=True, text=True)
    return r.returncode, r.stdout.split()
print(ls(\"/mesa/acme/ev-cwd/src\"), os.getcwd())
print(ls(\"src/sub\"), os.getcwd())
r = subprocess.run([\"pwd\"], cwd=\"src/sub/deep\", capture_output=True, text=True)
print(r.stdout.strip(), os.getcwd(), sorted(os.listdir(\".\")))
r = subprocess.run([\"pwd\"], cwd=\"/tmp\", capture_output=True, text=True)
print(r.stdout.strip(), os.getcwd())
try:
    subprocess.run([\"ls\"], cwd=\"src/nothing\")
except FileNotFoundError as e:
    print(\"missing:\", e.errno == 2, os.getcwd())
print(\"kernel cwd kept:\", os.readlink(\"/proc/self/cwd\") == kernel)
'"
    assert_output "(0, ['m.c', 'sub']) /mesa/acme/ev-cwd
(0, ['b.txt', 'deep']) /mesa/acme/ev-cwd
/mesa/acme/ev-cwd/src/sub/deep /mesa/acme/ev-cwd ['a.txt', 'src']
/tmp /mesa/acme/ev-cwd
missing: True /mesa/acme/ev-cwd
kernel cwd kept: True"
}

@test "python os.chdir, os.listdir and os.walk in the mount" {
    tree_repo ev-walk
    run -0 --separate-stderr in_repo ev-walk "python3 -c '
import os
os.chdir(\"src\")
print(os.getcwd(), sorted(os.listdir(\".\")), sorted(os.listdir(\"..\")))
os.chdir(\"sub/deep\")
print(os.getcwd(), open(\"c.txt\").read().strip(), open(\"../b.txt\").read().strip())
os.chdir(\"/mesa/acme/ev-walk\")
for root, dirs, files in os.walk(\".\"):
    dirs.sort()
    print(root, dirs, sorted(files))
for root, dirs, files in os.walk(\"/mesa/acme/ev-walk/src\", topdown=False):
    print(root, sorted(dirs), sorted(files))
'"
    assert_output "/mesa/acme/ev-walk/src ['m.c', 'sub'] ['a.txt', 'src']
/mesa/acme/ev-walk/src/sub/deep sea bee
. ['src'] ['a.txt']
./src ['sub'] ['m.c']
./src/sub ['deep'] ['b.txt']
./src/sub/deep [] ['c.txt']
/mesa/acme/ev-walk/src/sub/deep [] ['c.txt']
/mesa/acme/ev-walk/src/sub ['deep'] ['b.txt']
/mesa/acme/ev-walk/src ['sub'] ['m.c']"
}

@test "python multiprocessing with fork, spawn and forkserver: workers read and write the mount" {
    tree_repo ev-mp
    cat >"$T/mp.py" <<'EOF'
import multiprocessing as mp, os

def work(arg):
    method, n = arg
    with open(f"out/{method}-{n}.txt", "w") as f:
        f.write(f"{method} {n} {os.getcwd()}\n")
    with open("src/sub/b.txt") as f:
        return f.read().strip() + str(n)

if __name__ == "__main__":
    os.makedirs("out", exist_ok=True)
    for method in ("fork", "spawn", "forkserver"):
        with mp.get_context(method).Pool(2) as pool:
            print(method, pool.map(work, [(method, n) for n in range(3)]))
    print(len(os.listdir("out")))
EOF
    # the script itself lives in the mount: spawn's children import it from there
    run -0 --separate-stderr in_repo ev-mp "cp $T/mp.py mp.py && python3 mp.py"
    assert_output "fork ['bee0', 'bee1', 'bee2']
spawn ['bee0', 'bee1', 'bee2']
forkserver ['bee0', 'bee1', 'bee2']
9"
    server_is ev-mp out/spawn-2.txt $'spawn 2 /mesa/acme/ev-mp\n'
    server_is ev-mp out/forkserver-0.txt $'forkserver 0 /mesa/acme/ev-mp\n'
    server_is ev-mp out/fork-1.txt $'fork 1 /mesa/acme/ev-mp\n'
}

# ------------------------------------------------------------ environments

@test "env -i PATH=\$PATH cat and a program that execs with its own small environment see the mount" {
    tree_repo ev-env
    cat >"$T/myenv.c" <<'EOF'
/* exec argv[1..] with an environment of two variables */
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv)
{
    char *envp[] = {"PATH=/usr/bin:/bin", "ONLY=me", NULL};
    (void)argc;
    execve(argv[1], argv + 1, envp);
    perror("execve");
    return 127;
}
EOF
    cc -o "$T/myenv" "$T/myenv.c"
    run -0 --separate-stderr in_repo ev-env "cd src && env -i PATH=\$PATH cat /mesa/acme/ev-env/a.txt sub/b.txt && $T/myenv /bin/cat sub/deep/c.txt ../a.txt && $T/myenv /bin/sh -c 'pwd; echo \$ONLY; cat sub/b.txt; echo made > made.txt'"
    assert_output "hello
bee
sea
hello
/mesa/acme/ev-env/src
me
bee"
    server_is ev-env src/made.txt $'made\n'
    # the small environment reaches a grandchild without the mount's
    # credential in the command's own view (only the mount's variables come back)
    run -0 --separate-stderr in_repo ev-env "$T/myenv /usr/bin/env | cut -d= -f1 | sort | tr '\n' ' '"
    assert_output --partial "ONLY PATH"
    refute_output --partial "MESA_API_KEY"
}

# ------------------------------------------------------------ stragglers

@test "background jobs and nohup: writes made before the command exits are pushed" {
    mkrepo ev-bg
    run -0 --separate-stderr mr --repo ev-bg --grace 2 -- sh -c '
        (echo bg > bg.txt) &
        nohup sh -c "echo nohup > nohup.txt" >/dev/null 2>&1 &
        wait
        echo fg > fg.txt'
    server_is ev-bg bg.txt $'bg\n'
    server_is ev-bg nohup.txt $'nohup\n'
    server_is ev-bg fg.txt $'fg\n'
}

@test "a daemon that outlives the command: its writes in the grace are pushed, it is stopped after --grace, mesarun exits" {
    mkrepo ev-daemon
    local marker=$$$RANDOM
    # d1 ignores SIGTERM and writes during the grace: SIGKILL after it;
    # d2 writes a last file when SIGTERM arrives and exits
    run -0 --separate-stderr timeout 60 "$MESARUN" --cache-dir "$T/cache" --repo ev-daemon --grace 2 -- sh -c "
        setsid sh -c '(trap \"\" TERM; sleep 0.5; echo during > during.txt; exec sleep 300.$marker) &' </dev/null >/dev/null 2>&1
        setsid sh -c '(trap \"echo bye > bye.txt; exit 0\" TERM; echo up > up.txt; while :; do sleep 0.1; done) &' </dev/null >/dev/null 2>&1
        sleep 0.3
        echo cmd done"
    assert_output "cmd done"
    server_is ev-daemon during.txt $'during\n'
    server_is ev-daemon up.txt $'up\n'
    server_is ev-daemon bye.txt $'bye\n'
    # stopped: nothing of it is left
    run ! pgrep -f "sleep 300.$marker"
}

# ------------------------------------------------------------ signals

@test "make interrupted by SIGINT mid-build deletes its partial targets and exits 130, 20 times in a row" {
    local d=$T/mk
    mkdir -p "$d"
    cat >"$d/Makefile" <<EOF
all: \$(patsubst %,t%.txt,1 2 3 4)
t%.txt:
	echo partial > \$@; touch $T/started; sleep 30; echo done >> \$@
EOF
    mkrepo ev-int "$d"
    local i rc
    for i in $(seq 1 20); do
        rm -f "$T/started"
        # a background job of a non-interactive shell ignores SIGINT:
        # give make the default disposition back, as a terminal would
        mr_bg "$T/out.$i" "$T/err.$i" --repo ev-int -- env --default-signal=INT make -j2
        local n=0
        while [ ! -e "$T/started" ] && [ $n -lt 200 ]; do
            sleep 0.05
            n=$((n + 1))
        done
        [ -e "$T/started" ] || { echo "round $i: make never started a recipe" >&2; cat "$T/err.$i" >&2; return 1; }
        sleep 0.$((RANDOM % 5))
        kill -INT -- "-$MR_BG_PID"
        rc=0
        timeout 60 tail --pid="$MR_BG_PID" -f /dev/null || { echo "round $i: mesarun did not exit" >&2; return 1; }
        wait "$MR_BG_PID" || rc=$?
        [ "$rc" -eq 130 ] || { echo "round $i: exit $rc" >&2; cat "$T/err.$i" >&2; return 1; }
        grep -q "Deleting file 't[0-9].txt'" "$T/err.$i" || { echo "round $i: make deleted nothing" >&2; cat "$T/err.$i" >&2; return 1; }
    done
    : >"$BATS_TEST_TMPDIR/mr-pids"
    # no partial target on the server or in a new mount
    run -0 server_paths ev-int
    assert_output "Makefile"
    run -0 --separate-stderr in_repo ev-int 'ls'
    assert_output "Makefile"
}

# ------------------------------------------------------------ posix_spawn

@test "posix_spawn file actions on mount paths: addchdir_np, addopen in and out, errors from the spawn" {
    tree_repo ev-spawn
    cat >"$T/sp.c" <<'EOF2'
/* sp DIR IN OUT: posix_spawnp "sh -c 'pwd; cat'" in DIR ("-": none),
 * stdin opened from IN, stdout to OUT (O_CREAT|O_TRUNC) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
extern char **environ;
int main(int argc, char **argv)
{
    posix_spawn_file_actions_t fa;
    char *av[] = {"sh", "-c", "pwd; cat", NULL};
    pid_t pid;
    int st, rc;
    (void)argc;
    posix_spawn_file_actions_init(&fa);
    if (strcmp(argv[1], "-"))
        posix_spawn_file_actions_addchdir_np(&fa, argv[1]);
    posix_spawn_file_actions_addopen(&fa, 0, argv[2], O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    rc = posix_spawnp(&pid, "sh", &fa, NULL, av, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc) {
        printf("spawn: %s\n", strerror(rc));
        return 1;
    }
    waitpid(pid, &st, 0);
    return WEXITSTATUS(st);
}
EOF2
    cc -o "$T/sp" "$T/sp.c"
    # relative paths after the chdir action are relative to its directory
    run -0 --separate-stderr in_repo ev-spawn "$T/sp src/sub deep/c.txt out.txt && cat src/sub/out.txt && $T/sp - a.txt $T/native.txt && cat $T/native.txt && $T/sp /tmp /mesa/acme/ev-spawn/src/sub/b.txt $T/tmp.txt && cat $T/tmp.txt"
    assert_output "/mesa/acme/ev-spawn/src/sub
sea
/mesa/acme/ev-spawn
hello
/tmp
bee"
    server_is ev-spawn src/sub/out.txt $'/mesa/acme/ev-spawn/src/sub\nsea\n'
    run -1 --separate-stderr in_repo ev-spawn "$T/sp nothing a.txt x"
    assert_output "spawn: No such file or directory"
    run -1 --separate-stderr in_repo ev-spawn "$T/sp a.txt a.txt x"
    assert_output "spawn: Not a directory"
    run -1 --separate-stderr in_repo ev-spawn "$T/sp src nothing x"
    assert_output "spawn: No such file or directory"
    run -1 --separate-stderr mr --repo ev-spawn --read-only -- "$T/sp" - a.txt out2.txt
    assert_output "spawn: Read-only file system"
    # python's os.posix_spawn hands its file actions to the same calls
    run -0 --separate-stderr in_repo ev-spawn "python3 -c '
import os
fa = [(os.POSIX_SPAWN_OPEN, 0, \"src/sub/b.txt\", os.O_RDONLY, 0),
      (os.POSIX_SPAWN_OPEN, 1, \"py.txt\", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)]
pid = os.posix_spawn(\"/bin/cat\", [\"cat\"], os.environ, file_actions=fa)
print(os.waitpid(pid, 0)[1], open(\"py.txt\").read().strip())
'"
    assert_output "0 bee"
    server_is ev-spawn py.txt $'bee\n'
}

@test "the cwd removed under a process: getcwd fails with ENOENT, chdir .. goes to the old parent" {
    tree_repo ev-gone
    run -0 --separate-stderr in_repo ev-gone "python3 -c '
import os
os.chdir(\"src/sub\")
os.mkdir(\"gone\"); os.chdir(\"gone\"); os.rmdir(\"/mesa/acme/ev-gone/src/sub/gone\")
for f in (os.getcwd, lambda: open(\"x\", \"w\"), lambda: os.stat(\"../nothing/..\")):
    try:
        f()
        print(\"ok\")
    except OSError as e:
        print(e.strerror)
os.chdir(\"..\")
print(os.getcwd(), sorted(os.listdir(\".\")))
'"
    assert_output "No such file or directory
No such file or directory
No such file or directory
/mesa/acme/ev-gone/src/sub ['b.txt', 'deep']"
}
