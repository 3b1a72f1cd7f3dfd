/* tests/core/test_state.c - the mount's shared state file.
 *
 * Checks the create/open/find/get/set round trip (file mode, no temp file
 * left), that the generation moves on set and set_acked and acked never
 * goes down, that a forked child with its own mapping is seen by the parent,
 * wait_acked (woken by another process, several waiters at once, timeout,
 * EINTR), a seqlock torture (two writer processes against 100000 reads that
 * must all be snapshots of one write) and the refusal of bad files and bad
 * arguments. Every test works in its own mkdtemp directory under
 * ${TMPDIR:-/tmp}.
 */
#include "core/state.h"
#include "tests/lib/ctest.h"
#include "tests/lib/tmpdir.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define TORTURE_READS 100000
#define TORTURE_MAX_WRITES 20000000u

/* ---- helpers ---- */

static mesa_state_repo_t repo(const char *org, const char *name, const char *bookmark,
                              const char *change, const char *commit, uint32_t flags)
{
    mesa_state_repo_t r;

    memset(&r, 0, sizeof r);
    snprintf(r.org, sizeof r.org, "%s", org);
    snprintf(r.repo, sizeof r.repo, "%s", name);
    snprintf(r.bookmark, sizeof r.bookmark, "%s", bookmark);
    snprintf(r.change_id, sizeof r.change_id, "%s", change);
    snprintf(r.commit, sizeof r.commit, "%s", commit);
    r.flags = flags;
    return r;
}

#define CHG_A "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
#define CHG_B "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"
#define OID_A "1111111111111111111111111111111111111111"
#define OID_B "2222222222222222222222222222222222222222"

/* A state file "state" in dir with three repos; its path in path. */
static int make_state(const char *dir, char *path, size_t cap)
{
    mesa_state_repo_t r[3] = {
        repo("acme", "app", "main", CHG_A, OID_A, 0),
        repo("acme", "lib", "", CHG_B, OID_B, MESA_STATE_RO),
        repo("other", "app", "dev", CHG_A, OID_B, 0),
    };

    snprintf(path, cap, "%s/state", dir);
    return mesa_state_create(path, r, 3);
}

static int count_entries(const char *dir)
{
    char cmd[PATH_MAX + 64];
    FILE *p;
    int n = -1;

    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
    p = popen(cmd, "r");
    if (p) {
        if (fscanf(p, "%d", &n) != 1)
            n = -1;
        pclose(p);
    }
    return n;
}

/* Exit status of child pid, or -1. */
static int child_status(pid_t pid)
{
    int st;

    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- round trip ---- */

static void test_round_trip(void)
{
    char *dir = ctest_tmpdir("state"), path[PATH_MAX];
    mesa_state_t *s = NULL;
    mesa_state_repo_t got;
    struct stat st;
    mode_t old = umask(0277);
    int rc;

    CHECK(dir != NULL, "round trip: tmpdir");
    rc = make_state(dir, path, sizeof path);
    umask(old);
    CHECK_EQ_INT(rc, 0, "create writes a state file");
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "the file has mode 0600");
    CHECK_EQ_INT(count_entries(dir), 1, "create leaves no temp file behind");
    CHECK_EQ_INT(mesa_state_open(path, &s), 0, "open maps it");
    if (!s)
        goto out;
    CHECK_EQ_INT(mesa_state_count(s), 3, "count is the number of repos");
    CHECK_EQ_INT(mesa_state_find(s, "acme", "app"), 0, "find acme/app");
    CHECK_EQ_INT(mesa_state_find(s, "acme", "lib"), 1, "find acme/lib");
    CHECK_EQ_INT(mesa_state_find(s, "other", "app"), 2, "find other/app (same repo name)");
    CHECK_EQ_INT(mesa_state_find(s, "acme", "ap"), -ENOENT, "find of a prefix is -ENOENT");
    CHECK_EQ_INT(mesa_state_find(s, "nobody", "app"), -ENOENT, "find of an unknown org");

    CHECK_EQ_INT(mesa_state_get(s, 1, &got), 0, "get slot 1");
    CHECK_EQ_STR(got.org, "acme", "get: org");
    CHECK_EQ_STR(got.repo, "lib", "get: repo");
    CHECK_EQ_STR(got.bookmark, "", "get: empty bookmark (pinned)");
    CHECK_EQ_STR(got.change_id, CHG_B, "get: change id");
    CHECK_EQ_STR(got.commit, OID_B, "get: commit");
    CHECK_EQ_INT(got.flags, MESA_STATE_RO, "get: read-only flag");
    CHECK_EQ_INT(mesa_state_get(s, 3, &got), -EINVAL, "get of a bad index is -EINVAL");

    CHECK_EQ_INT(mesa_state_set(s, 0, CHG_B, OID_B, "feature"), 0, "set slot 0");
    mesa_state_get(s, 0, &got);
    CHECK(strcmp(got.change_id, CHG_B) == 0 && strcmp(got.commit, OID_B) == 0 &&
              strcmp(got.bookmark, "feature") == 0 && got.flags == 0,
          "get sees the new change, commit and bookmark");
    CHECK_EQ_INT(mesa_state_set(s, 0, "c2", "o2", NULL), 0, "set without a bookmark");
    mesa_state_get(s, 0, &got);
    CHECK(strcmp(got.change_id, "c2") == 0 && strcmp(got.commit, "o2") == 0 &&
              strcmp(got.bookmark, "feature") == 0,
          "a NULL bookmark keeps the old one; shorter values leave no tail");
    CHECK_EQ_INT(mesa_state_set(s, 3, CHG_A, OID_A, NULL), -EINVAL, "set of a bad index");
    CHECK_EQ_INT(mesa_state_set(s, 0, CHG_A "x", OID_A, NULL), -EINVAL, "set: change id too long");
    CHECK_EQ_INT(mesa_state_set(s, 0, CHG_A, OID_A "x", NULL), -EINVAL, "set: commit too long");
    CHECK_EQ_INT(mesa_state_set(s, 0, NULL, OID_A, NULL), -EINVAL, "set: NULL change id");
    mesa_state_get(s, 0, &got);
    CHECK_EQ_STR(got.change_id, "c2", "a refused set changes nothing");
    mesa_state_close(s);
    s = NULL;
    CHECK_EQ_INT(mesa_state_open(path, &s), 0, "reopen");
    if (s && mesa_state_get(s, 0, &got) == 0)
        CHECK_EQ_STR(got.commit, "o2", "the set is in the file, not just the mapping");
out:
    mesa_state_close(s);
    ctest_rmtree(dir);
}

/* ---- generation and acked ---- */

static void test_generation_and_acked(void)
{
    char *dir = ctest_tmpdir("state"), path[PATH_MAX];
    mesa_state_t *s = NULL;
    uint64_t g0, g1, g2, g3;

    if (make_state(dir, path, sizeof path) != 0 || mesa_state_open(path, &s) != 0) {
        CHECK(0, "generation: setup");
        goto out;
    }
    CHECK_EQ_INT(mesa_state_acked(s), 0, "a new file has acked 0");
    g0 = mesa_state_generation(s);
    CHECK_EQ_INT(mesa_state_generation(s), g0, "generation is stable without changes");
    mesa_state_set(s, 2, CHG_B, OID_A, NULL);
    g1 = mesa_state_generation(s);
    CHECK(g1 != g0, "set changes the generation");
    mesa_state_set_acked(s, 100);
    g2 = mesa_state_generation(s);
    CHECK(g2 != g1, "set_acked changes the generation");
    CHECK_EQ_INT(mesa_state_acked(s), 100, "acked is raised");
    mesa_state_set_acked(s, 50);
    CHECK_EQ_INT(mesa_state_acked(s), 100, "acked never decreases");
    mesa_state_set_acked(s, 100);
    g3 = mesa_state_generation(s);
    CHECK_EQ_INT(g3, g2, "a set_acked that raises nothing leaves the generation");
    mesa_state_set_acked(s, UINT64_MAX);
    CHECK(mesa_state_acked(s) == UINT64_MAX, "acked holds a full 64-bit offset");
out:
    mesa_state_close(s);
    ctest_rmtree(dir);
}

/* ---- another process ---- */

static void child_sets(const char *path)
{
    mesa_state_t *s = NULL;
    int rc = mesa_state_open(path, &s);

    if (rc == 0)
        rc = mesa_state_set(s, 1, "fromchild", OID_A, "childbm");
    if (rc == 0)
        mesa_state_set_acked(s, 4242);
    mesa_state_close(s);
    _exit(rc == 0 ? 0 : 1);
}

static void test_other_process(void)
{
    char *dir = ctest_tmpdir("state"), path[PATH_MAX];
    mesa_state_t *s = NULL;
    mesa_state_repo_t got;
    uint64_t g0;
    pid_t pid;

    if (make_state(dir, path, sizeof path) != 0 || mesa_state_open(path, &s) != 0) {
        CHECK(0, "other process: setup");
        goto out;
    }
    g0 = mesa_state_generation(s);
    pid = fork();
    if (pid == 0)
        child_sets(path);
    CHECK_EQ_INT(child_status(pid), 0, "a child with its own mapping sets slot 1 and acked");
    mesa_state_get(s, 1, &got);
    CHECK_EQ_STR(got.change_id, "fromchild", "the parent sees the child's change id");
    CHECK_EQ_STR(got.bookmark, "childbm", "the parent sees the child's bookmark");
    CHECK_EQ_INT(mesa_state_acked(s), 4242, "the parent sees the child's acked offset");
    CHECK_EQ_INT(mesa_state_generation(s), g0 + 2, "the parent sees both generation bumps");
out:
    mesa_state_close(s);
    ctest_rmtree(dir);
}

/* ---- wait_acked ---- */

static void child_acks_later(const char *path, uint64_t off)
{
    mesa_state_t *s = NULL;

    usleep(100000);
    if (mesa_state_open(path, &s) != 0)
        _exit(1);
    mesa_state_set_acked(s, off);
    mesa_state_close(s);
    _exit(0);
}

static void child_waits(const char *path, uint64_t off)
{
    mesa_state_t *s = NULL;
    int rc = mesa_state_open(path, &s);

    if (rc == 0)
        rc = mesa_state_wait_acked(s, off, 20000);
    mesa_state_close(s);
    _exit(rc == 0 ? 0 : 1);
}

static void on_alarm(int sig)
{
}

static void test_wait_interrupted(mesa_state_t *s)
{
    struct sigaction sa, old;
    struct itimerval it = {.it_value = {.tv_usec = 50000}};
    int rc;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm; /* no SA_RESTART */
    sigaction(SIGALRM, &sa, &old);
    setitimer(ITIMER_REAL, &it, NULL);
    errno = EDOM;
    rc = mesa_state_wait_acked(s, 1u << 30, 5000);
    CHECK_EQ_INT(rc, -EINTR, "a signal interrupts wait_acked with -EINTR");
    CHECK_EQ_INT(errno, EDOM, "wait_acked leaves errno alone");
    sigaction(SIGALRM, &old, NULL);
}

static void test_wait_acked(void)
{
    char *dir = ctest_tmpdir("state"), path[PATH_MAX];
    mesa_state_t *s = NULL;
    pid_t pid, waiters[3];
    int ok = 1;

    if (make_state(dir, path, sizeof path) != 0 || mesa_state_open(path, &s) != 0) {
        CHECK(0, "wait_acked: setup");
        goto out;
    }
    CHECK_EQ_INT(mesa_state_wait_acked(s, 0, 0), 0, "wait for an offset already reached");
    CHECK_EQ_INT(mesa_state_wait_acked(s, 10, 50), -ETIMEDOUT, "wait times out");
    CHECK_EQ_INT(mesa_state_wait_acked(s, 10, 0), -ETIMEDOUT, "a zero timeout polls");
    pid = fork();
    if (pid == 0)
        child_acks_later(path, 500);
    CHECK_EQ_INT(mesa_state_wait_acked(s, 500, 20000), 0,
                 "wait wakes when another process raises acked");
    CHECK(mesa_state_acked(s) >= 500, "acked has reached the offset after the wait");
    CHECK_EQ_INT(child_status(pid), 0, "the acking child exited cleanly");
    CHECK_EQ_INT(mesa_state_wait_acked(s, 400, -1), 0, "no-limit wait for a reached offset");

    for (int i = 0; i < 3; i++) {
        waiters[i] = fork();
        if (waiters[i] == 0)
            child_waits(path, 1000);
    }
    usleep(50000);
    mesa_state_set_acked(s, 1000);
    for (int i = 0; i < 3; i++)
        ok &= child_status(waiters[i]) == 0;
    CHECK(ok, "one set_acked wakes waiters in three processes");
    test_wait_interrupted(s);
out:
    mesa_state_close(s);
    ctest_rmtree(dir);
}

/* ---- seqlock torture ---- */

struct torture {
    int stop;
    int started[2];
    uint64_t writes[2];
};

/* Slot values derived from k: change id = 4 copies of %08x, commit = 5,
 * bookmark = "b-" + 3 copies. */
static void torture_values(uint32_t k, char *chg, char *oid, char *bm)
{
    snprintf(chg, 33, "%08x%08x%08x%08x", k, k, k, k);
    snprintf(oid, 41, "%08x%08x%08x%08x%08x", k, k, k, k, k);
    snprintf(bm, 64, "b-%08x%08x%08x", k, k, k);
}

static int consistent(const mesa_state_repo_t *r)
{
    char chg[33], oid[41], bm[64];
    unsigned k;

    if (sscanf(r->change_id, "%8x", &k) != 1)
        return 0;
    torture_values(k, chg, oid, bm);
    return strcmp(r->change_id, chg) == 0 && strcmp(r->commit, oid) == 0 &&
           strcmp(r->bookmark, bm) == 0 && strcmp(r->org, "acme") == 0;
}

static void torture_writer(const char *path, struct torture *t, int w)
{
    mesa_state_t *s = NULL;
    char chg[33], oid[41], bm[64];
    uint32_t i;

    if (mesa_state_open(path, &s) != 0)
        _exit(1);
    for (i = 0; i < TORTURE_MAX_WRITES && !__atomic_load_n(&t->stop, __ATOMIC_RELAXED); i++) {
        torture_values(((uint32_t)(w + 1) << 28) | i, chg, oid, bm);
        if (mesa_state_set(s, 0, chg, oid, bm) != 0)
            _exit(1);
        if (i == 0)
            __atomic_store_n(&t->started[w], 1, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&t->writes[w], i, __ATOMIC_RELEASE);
    mesa_state_close(s);
    _exit(0);
}

static void test_seqlock_torture(void)
{
    char *dir = ctest_tmpdir("state"), path[PATH_MAX], chg[33], oid[41], bm[64];
    struct torture *t =
        mmap(NULL, sizeof *t, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    mesa_state_t *s = NULL;
    mesa_state_repo_t r, got;
    pid_t pids[2];
    uint64_t g0;
    int bad = 0, changes = 0, ok = 1;
    char last[33] = "";

    torture_values(0, chg, oid, bm);
    r = repo("acme", "app", bm, chg, oid, 0);
    snprintf(path, sizeof path, "%s/state", dir);
    if (t == MAP_FAILED || mesa_state_create(path, &r, 1) != 0 || mesa_state_open(path, &s) != 0) {
        CHECK(0, "torture: setup");
        goto out;
    }
    memset(t, 0, sizeof *t);
    g0 = mesa_state_generation(s);
    for (int w = 0; w < 2; w++) {
        pids[w] = fork();
        if (pids[w] == 0)
            torture_writer(path, t, w);
    }
    for (int w = 0; w < 2; w++)
        for (int spin = 0; spin < 20000 && !__atomic_load_n(&t->started[w], __ATOMIC_ACQUIRE);
             spin++)
            usleep(1000);
    for (int i = 0; i < TORTURE_READS; i++) {
        mesa_state_get(s, 0, &got);
        if (!consistent(&got))
            bad++;
        if (strcmp(got.change_id, last) != 0)
            changes++;
        memcpy(last, got.change_id, sizeof last);
    }
    __atomic_store_n(&t->stop, 1, __ATOMIC_RELEASE);
    for (int w = 0; w < 2; w++)
        ok &= child_status(pids[w]) == 0;
    CHECK(ok, "both writer processes ran without error");
    CHECK_EQ_INT(bad, 0, "every one of 100000 reads is a snapshot of a single write");
    printf("# reader saw %d changes; writers did %llu + %llu sets\n", changes,
           (unsigned long long)t->writes[0], (unsigned long long)t->writes[1]);
    mesa_state_get(s, 0, &got);
    CHECK(consistent(&got), "the final slot holds one whole write");
    CHECK_EQ_INT(mesa_state_generation(s) - g0, t->writes[0] + t->writes[1],
                 "the generation counts every set of both processes");
out:
    mesa_state_close(s);
    if (t != MAP_FAILED)
        munmap(t, sizeof *t);
    ctest_rmtree(dir);
}

/* ---- refusals ---- */

static int patch(const char *path, off_t at, const void *bytes, size_t len)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC), rc;

    if (fd < 0)
        return -1;
    rc = pwrite(fd, bytes, len, at) == (ssize_t)len ? 0 : -1;
    close(fd);
    return rc;
}

/* Recreate a good file, damage it with fn, and return open's result. */
static int open_damaged(const char *dir, int (*damage)(const char *path))
{
    char path[PATH_MAX];
    mesa_state_t *s = NULL;
    int rc;

    if (make_state(dir, path, sizeof path) != 0 || damage(path) != 0)
        return 1;
    rc = mesa_state_open(path, &s);
    mesa_state_close(s);
    return rc;
}

static int bad_magic(const char *p)
{
    return patch(p, 0, "XESASTA1", 8);
}

static int bad_version(const char *p)
{
    uint32_t v = 2;

    return patch(p, 8, &v, sizeof v);
}

static int zero_slots(const char *p)
{
    uint32_t v = 0;

    return patch(p, 12, &v, sizeof v);
}

static int more_slots(const char *p)
{
    uint32_t v = 4;

    return patch(p, 12, &v, sizeof v);
}

static int truncated(const char *p)
{
    struct stat st;

    return stat(p, &st) != 0 ? -1 : truncate(p, st.st_size - 1);
}

static int extended(const char *p)
{
    struct stat st;

    return stat(p, &st) != 0 ? -1 : truncate(p, st.st_size + 1);
}

static int header_only(const char *p)
{
    return truncate(p, 30);
}

static int emptied(const char *p)
{
    return truncate(p, 0);
}

static void test_bad_files(void)
{
    char *dir = ctest_tmpdir("state"), path[PATH_MAX];
    mesa_state_t *s = NULL;

    CHECK_EQ_INT(open_damaged(dir, bad_magic), -EBADMSG, "wrong magic is -EBADMSG");
    CHECK_EQ_INT(open_damaged(dir, bad_version), -EBADMSG, "another version is -EBADMSG");
    CHECK_EQ_INT(open_damaged(dir, zero_slots), -EBADMSG, "zero slots is -EBADMSG");
    CHECK_EQ_INT(open_damaged(dir, more_slots), -EBADMSG, "a slot count the size denies");
    CHECK_EQ_INT(open_damaged(dir, truncated), -EBADMSG, "a truncated file is -EBADMSG");
    CHECK_EQ_INT(open_damaged(dir, extended), -EBADMSG, "a file with a tail is -EBADMSG");
    CHECK_EQ_INT(open_damaged(dir, header_only), -EBADMSG, "a partial header is -EBADMSG");
    CHECK_EQ_INT(open_damaged(dir, emptied), -EBADMSG, "an empty file is -EBADMSG");
    snprintf(path, sizeof path, "%s/missing", dir);
    CHECK_EQ_INT(mesa_state_open(path, &s), -ENOENT, "a missing file is -ENOENT");
    ctest_rmtree(dir);
}

static void test_bad_create(void)
{
    char *dir = ctest_tmpdir("state"), path[PATH_MAX];
    mesa_state_repo_t *many = calloc(MESA_STATE_MAX_REPOS + 1, sizeof *many);
    mesa_state_t *s = NULL;
    int rc;

    for (int i = 0; i <= MESA_STATE_MAX_REPOS; i++) {
        snprintf(many[i].org, sizeof many[i].org, "acme");
        snprintf(many[i].repo, sizeof many[i].repo, "r%d", i);
    }
    snprintf(path, sizeof path, "%s/state", dir);
    CHECK_EQ_INT(mesa_state_create(path, many, MESA_STATE_MAX_REPOS + 1), -EINVAL,
                 "65 slots is -EINVAL");
    CHECK_EQ_INT(mesa_state_create(path, many, 0), -EINVAL, "zero slots is -EINVAL");
    CHECK(access(path, F_OK) != 0, "a refused create leaves no file");
    memset(many[3].org, 'x', sizeof many[3].org);
    CHECK_EQ_INT(mesa_state_create(path, many, 4), -EINVAL, "an unterminated org is -EINVAL");
    memset(many[3].org, 0, sizeof many[3].org);
    CHECK_EQ_INT(mesa_state_create(path, many, MESA_STATE_MAX_REPOS), 0, "64 slots is fine");
    rc = mesa_state_open(path, &s);
    CHECK_EQ_INT(rc, 0, "open of a 64-slot file");
    if (rc == 0) {
        CHECK_EQ_INT(mesa_state_find(s, "acme", "r63"), 63, "find the last of 64 slots");
        mesa_state_close(s);
    }
    CHECK_EQ_INT(count_entries(dir), 1, "no temp files after refusals");
    free(many);
    ctest_rmtree(dir);
}

int main(void)
{
    test_round_trip();
    test_generation_and_acked();
    test_other_process();
    test_wait_acked();
    test_seqlock_torture();
    test_bad_files();
    test_bad_create();
    return ctest_done();
}
