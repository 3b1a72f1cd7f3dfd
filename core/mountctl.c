/* core/mountctl.c - switching a running mount's change (see mountctl.h).
 * Invariant: the E record is appended only after the pusher acknowledged
 * every record before it, and while the journal lock keeps the shim from
 * adding new ones; processes then see the new change on their next call
 * (state generation) and drop the old epoch's overlay (E).
 * Called by `mesa change new|edit|checkpoint` and `mesa bookmark move`
 * (tools/mesa_session.c).
 */
#include "config.h"
#include "mountctl.h"
#include "fetch.h"
#include "journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(mesa_error_t *e, int err, const char *msg)
{
    return mesa_error_set(e, err, "%s", msg);
}

/* Wait for the pusher to acknowledge everything journaled so far. */
static int drain(mesa_state_t *st, int jfd, int timeout_ms, mesa_error_t *e)
{
    struct stat sb;
    if (fstat(jfd, &sb) < 0)
        return fail(e, errno, "cannot read the mount's journal");
    int rc = mesa_state_wait_acked(st, (uint64_t)sb.st_size, timeout_ms);
    if (rc == -ETIMEDOUT)
        return fail(e, ETIMEDOUT, "writes of the mount are still pending (a file open for "
                                  "writing, or the server unreachable); nothing switched");
    return rc < 0 ? fail(e, -rc, "waiting for the mount's pusher failed") : 0;
}

/* A process holding a staging file of the mount open for writing (whose
 * close would come after the switch and belong to no epoch): its pid, or 0.
 * Found through /proc/<pid>/fd and fdinfo's flags. */
static pid_t open_writer(const char *run)
{
    char staging[PATH_MAX];
    size_t sl = (size_t)snprintf(staging, sizeof staging, "%s/staging/", run);
    DIR *proc = opendir("/proc");
    struct dirent *p;
    pid_t found = 0;
    while (proc && !found && (p = readdir(proc)) != NULL) {
        char dir[300];
        if (p->d_name[0] < '0' || p->d_name[0] > '9')
            continue;
        snprintf(dir, sizeof dir, "/proc/%s/fd", p->d_name);
        DIR *fds = opendir(dir);
        struct dirent *f;
        while (fds && !found && (f = readdir(fds)) != NULL) {
            char link[600], target[PATH_MAX], info[600], line[128];
            snprintf(link, sizeof link, "%s/%s", dir, f->d_name);
            ssize_t n = readlink(link, target, sizeof target - 1);
            if (n <= 0 || (size_t)n <= sl || strncmp(target, staging, sl) != 0)
                continue;
            snprintf(info, sizeof info, "/proc/%s/fdinfo/%s", p->d_name, f->d_name);
            FILE *fi = fopen(info, "re");
            while (fi && fgets(line, sizeof line, fi))
                if (strncmp(line, "flags:", 6) == 0 && (strtoul(line + 6, NULL, 8) & O_ACCMODE))
                    found = (pid_t)atoi(p->d_name);
            if (fi)
                fclose(fi);
        }
        if (fds)
            closedir(fds);
    }
    if (proc)
        closedir(proc);
    return found;
}

/* No process holds a file of the mount open for writing (checked before
 * and after the wait: fail fast, and catch a writer that came meanwhile),
 * and the pusher acknowledged everything journaled. */
static int quiesce(const char *run, mesa_state_t *st, int jfd, int timeout_ms, mesa_error_t *e)
{
    pid_t w = open_writer(run);
    int rc;
    if (!w && (rc = drain(st, jfd, timeout_ms, e)) < 0)
        return rc;
    if (w || (w = open_writer(run)) != 0)
        return mesa_error_set(e, EBUSY,
                              "process %d has a file of the mount open for writing; close it "
                              "first (nothing switched)",
                              (int)w);
    return 0;
}

int mesa_mount_drain(const char *run, int timeout_ms, mesa_error_t *e)
{
    char path[PATH_MAX];
    mesa_state_t *st = NULL;
    int rc, jfd;
    snprintf(path, sizeof path, "%s/state", run);
    if ((rc = mesa_state_open(path, &st)) < 0)
        return fail(e, -rc, "cannot open the mount's state file");
    snprintf(path, sizeof path, "%s/journal", run);
    if ((jfd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        rc = fail(e, errno, "cannot read the mount's journal");
    else
        rc = quiesce(run, st, jfd, timeout_ms, e);
    if (jfd >= 0)
        close(jfd);
    mesa_state_close(st);
    return rc;
}

int mesa_mount_switch_with(const char *run, const char *cache, mesa_client_t *c, int slot,
                           mesa_mount_target_fn fn, void *ctx, int timeout_ms, mesa_error_t *e)
{
    char path[PATH_MAX], change[33] = "", commit[41] = "", bookmark[256] = "";
    mesa_state_t *st = NULL;
    mesa_state_repo_t r;
    int jfd = -1, rc;
    snprintf(path, sizeof path, "%s/state", run);
    if ((rc = mesa_state_open(path, &st)) < 0)
        return fail(e, -rc, "cannot open the mount's state file");
    if ((rc = mesa_state_get(st, (size_t)slot, &r)) < 0) {
        fail(e, EINVAL, "no such repo in the mount");
        goto out;
    }
    snprintf(path, sizeof path, "%s/journal", run);
    if ((jfd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)) < 0 || flock(jfd, LOCK_EX) < 0) {
        rc = fail(e, errno, "cannot lock the mount's journal");
        goto out;
    }
    if ((rc = quiesce(run, st, jfd, timeout_ms, e)) < 0)
        goto out;
    mesa_state_get(st, (size_t)slot, &r); /* with the pusher's last commit */
    if ((rc = fn(ctx, &r, change, commit, bookmark, e)) < 0)
        goto out;
    mesa_tree_t *t = NULL;
    if ((rc = mesa_fetch_tree(c, cache, r.org, r.repo, commit, &t, e)) < 0)
        goto out;
    mesa_tree_close(t);
    mesa_state_set_epoch(st, (size_t)slot, change, commit);
    mesa_state_set(st, (size_t)slot, change, commit, bookmark);
    mesa_jrec_t rec = {.type = MESA_J_EPOCH, .slot = (unsigned)slot, .arg = change, .path = ""};
    if ((rc = mesa_journal_append(jfd, &rec)) < 0)
        fail(e, -rc, "cannot append to the mount's journal");
out:
    if (jfd >= 0)
        close(jfd); /* releases the lock */
    mesa_state_close(st);
    return rc;
}

typedef struct fixed_target {
    const char *change, *commit, *bookmark;
} fixed_target_t;

static int fixed(void *ctx, const mesa_state_repo_t *now, char change[33], char commit[41],
                 char bookmark[256], mesa_error_t *e)
{
    const fixed_target_t *t = ctx;
    (void)now;
    (void)e;
    snprintf(change, 33, "%s", t->change);
    snprintf(commit, 41, "%s", t->commit);
    snprintf(bookmark, 256, "%s", t->bookmark);
    return 0;
}

int mesa_mount_switch(const char *run, const char *cache, mesa_client_t *c, int slot,
                      const char *change, const char *commit, const char *bookmark,
                      int timeout_ms, mesa_error_t *e)
{
    fixed_target_t t = {change, commit, bookmark};
    return mesa_mount_switch_with(run, cache, c, slot, fixed, &t, timeout_ms, e);
}
