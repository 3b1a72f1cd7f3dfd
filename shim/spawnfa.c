/* shim/spawnfa.c - posix_spawn file actions that name mesa paths (DESIGN
 * §6: every preparation of posix_spawn is done in the parent). glibc runs
 * the actions in the child with raw system calls, where the shim cannot
 * see them, so they are rewritten when they are added:
 *   addopen of a mesa path: the file is opened here, now, close-on-exec,
 *     and the action becomes a dup2 of that descriptor; the list keeps it
 *     until posix_spawn_file_actions_destroy. An open that fails is kept
 *     too, and posix_spawn* returns its errno (as glibc's child would).
 *   addchdir_np to a mesa directory: a chdir to its placeholder, from
 *     which the child's shim takes its virtual cwd (addfchdir_np of a mesa
 *     directory descriptor needs nothing: it is open on that placeholder).
 * Difference from glibc, documented in the README: the open happens at
 * addopen time, once, so every spawn with the same list shares one open
 * file (offset, O_TRUNC once).
 */
#include "config.h"
#include "shim.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <spawn.h>
#include <stdlib.h>
#include <unistd.h>

/* What the shim added to one action list. */
typedef struct fa_rec {
    const posix_spawn_file_actions_t *fa;
    int err;     /* first failed open (errno), or 0 */
    int nfds;
    int fds[16]; /* descriptors opened for dup2 actions */
    char *cwd;   /* the last chdir action's directory (absolute), or NULL */
    struct fa_rec *next;
} fa_rec_t;

static fa_rec_t *recs;
static pthread_mutex_t recs_lock = PTHREAD_MUTEX_INITIALIZER;

/* Is path in the mount (for a path error too: the open reports it)? */
static int is_mesa(const char *path)
{
    char abs[MESA_PATH_MAX];
    shim_guard_t g;
    if (!shim_begin(AT_FDCWD, path, abs, &g))
        return 0;
    shim_end(0, &g);
    return 1;
}

/* Lock held: the record of fa, created if make. */
static fa_rec_t *rec_of(const posix_spawn_file_actions_t *fa, int make)
{
    for (fa_rec_t *r = recs; r; r = r->next)
        if (r->fa == fa)
            return r;
    fa_rec_t *r = make ? calloc(1, sizeof *r) : NULL;
    if (r) {
        r->fa = fa;
        r->next = recs;
        recs = r;
    }
    return r;
}

/* Remember a descriptor (fd >= 0) or an open's errno: 0 or ENOMEM. */
static int remember(const posix_spawn_file_actions_t *fa, int fd, int err)
{
    pthread_mutex_lock(&recs_lock);
    fa_rec_t *r = rec_of(fa, 1);
    int rc = r ? 0 : ENOMEM;
    if (r && fd >= 0 && r->nfds < (int)(sizeof r->fds / sizeof r->fds[0]))
        r->fds[r->nfds++] = fd;
    else if (r && fd >= 0)
        rc = ENOMEM;
    if (r && err && !r->err)
        r->err = err;
    pthread_mutex_unlock(&recs_lock);
    return rc;
}

/* Drop fa's record, closing its descriptors. */
static void forget(const posix_spawn_file_actions_t *fa)
{
    fa_rec_t *r = NULL;
    pthread_mutex_lock(&recs_lock);
    for (fa_rec_t **p = &recs; *p; p = &(*p)->next) {
        if ((*p)->fa == fa) {
            r = *p;
            *p = r->next;
            break;
        }
    }
    pthread_mutex_unlock(&recs_lock);
    for (int i = 0; r && i < r->nfds; i++)
        close(r->fds[i]);
    if (r)
        free(r->cwd);
    free(r);
}

/* path as the child will see it: relative paths after a chdir action
 * are relative to its directory (into buf); else path itself. */
static const char *child_path(const posix_spawn_file_actions_t *fa, const char *path, char *buf,
                              size_t len)
{
    const char *out = path;
    if (path[0] == '/' || !recs)
        return path;
    pthread_mutex_lock(&recs_lock);
    fa_rec_t *r = rec_of(fa, 0);
    if (r && r->cwd) {
        int n = snprintf(buf, len, "%s/%s", r->cwd, path);
        out = n > 0 && (size_t)n < len ? buf : path;
    }
    pthread_mutex_unlock(&recs_lock);
    return out;
}

/* Remember dir (absolute) as the list's directory for later actions. */
static void remember_cwd(const posix_spawn_file_actions_t *fa, const char *dir)
{
    char *d = strdup(dir);
    pthread_mutex_lock(&recs_lock);
    fa_rec_t *r = d ? rec_of(fa, 1) : NULL;
    if (r) {
        free(r->cwd);
        r->cwd = d;
        d = NULL;
    }
    pthread_mutex_unlock(&recs_lock);
    free(d);
}

int shim_spawn_fa_error(const posix_spawn_file_actions_t *fa)
{
    int err = 0;
    if (!fa || !recs)
        return 0;
    pthread_mutex_lock(&recs_lock);
    fa_rec_t *r = rec_of(fa, 0);
    if (r)
        err = r->err;
    pthread_mutex_unlock(&recs_lock);
    return err;
}

SHIM_API int posix_spawn_file_actions_init(posix_spawn_file_actions_t *fa)
{
    if (recs)
        forget(fa); /* a list at this address that was never destroyed */
    return REAL(posix_spawn_file_actions_init)(fa);
}

SHIM_API int posix_spawn_file_actions_destroy(posix_spawn_file_actions_t *fa)
{
    if (recs)
        forget(fa);
    return REAL(posix_spawn_file_actions_destroy)(fa);
}

SHIM_API int posix_spawn_file_actions_addopen(posix_spawn_file_actions_t *fa, int fd,
                                              const char *path, int oflag, mode_t mode)
{
    char buf[PATH_MAX];
    if (fd < 0 || !shim_on())
        return REAL(posix_spawn_file_actions_addopen)(fa, fd, path, oflag, mode);
    path = child_path(fa, path, buf, sizeof buf);
    if (!is_mesa(path))
        return REAL(posix_spawn_file_actions_addopen)(fa, fd, path, oflag, mode);
    int tmp = open(path, oflag | O_CLOEXEC, mode);
    if (tmp == fd) { /* dup2 onto itself would be a no-op */
        int t2 = fcntl(tmp, F_DUPFD_CLOEXEC, fd + 1);
        close(tmp);
        tmp = t2;
    }
    if (tmp < 0)
        return remember(fa, -1, errno);
    int rc = REAL(posix_spawn_file_actions_adddup2)(fa, tmp, fd);
    if (rc == 0)
        rc = remember(fa, tmp, 0);
    if (rc != 0)
        close(tmp);
    return rc;
}

SHIM_API int posix_spawn_file_actions_addchdir_np(posix_spawn_file_actions_t *fa,
                                                  const char *path)
{
    char abs[MESA_PATH_MAX], real[PATH_MAX], buf[PATH_MAX];
    shim_guard_t g;
    if (!shim_on())
        return REAL(posix_spawn_file_actions_addchdir_np)(fa, path);
    path = child_path(fa, path, buf, sizeof buf);
    if (!shim_begin(AT_FDCWD, path, abs, &g)) {
        char *dir = path[0] == '/' ? NULL : realpath(".", NULL);
        if (dir && snprintf(real, sizeof real, "%s/%s", dir, path) < (int)sizeof real)
            remember_cwd(fa, real);
        else if (path[0] == '/')
            remember_cwd(fa, path);
        free(dir);
        return REAL(posix_spawn_file_actions_addchdir_np)(fa, path);
    }
    mesa_vnode_t *n = malloc(sizeof *n);
    int rc = n ? mesa_vfs_lookup(shim_vfs, abs, 1, n) : -ENOMEM;
    if (rc == -EXDEV) /* a symlink out of the mount: its real target */
        rc = snprintf(real, sizeof real, "%s", n->path) < (int)sizeof real ? 1 : -ENAMETOOLONG;
    else if (rc == 0 && !S_ISDIR(n->mode))
        rc = -ENOTDIR;
    if (rc == 0)
        rc = mesa_vfs_placeholder(shim_vfs, n->path, real, sizeof real);
    if (rc >= 0)
        remember_cwd(fa, n->path);
    free(n);
    shim_end(0, &g);
    if (rc < 0)
        return remember(fa, -1, -rc);
    return REAL(posix_spawn_file_actions_addchdir_np)(fa, real);
}
