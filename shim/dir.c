/* shim/dir.c - directory streams of mount directories: opendir and
 * fdopendir return a real DIR (on the placeholder directory's descriptor,
 * so dirfd() and the *at calls work), and a side table maps it to the
 * merged listing that readdir/readdir64/telldir/seekdir/rewinddir serve.
 */
#include "config.h"
#include "shim.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <uthash.h>

typedef struct vdir {
    DIR *d; /* key */
    char path[MESA_PATH_MAX];
    mesa_dirent_t *ents;
    size_t n, pos;
    struct dirent64 de;
    UT_hash_handle hh;
} vdir_t;

_Static_assert(sizeof(struct dirent) == sizeof(struct dirent64), "dirent and dirent64 differ");

static vdir_t *dirs;

/* fn of shim_layout_below: a directory name towards a nested --layout
 * mount point, added to the listing unless the repo has it already. */
static void add_layout_name(void *ctx, const char *name, size_t len)
{
    vdir_t *x = ctx;
    for (size_t i = 0; i < x->n; i++)
        if (strlen(x->ents[i].name) == len && memcmp(x->ents[i].name, name, len) == 0)
            return;
    mesa_dirent_t *ents = realloc(x->ents, (x->n + 1) * sizeof *ents);
    if (!ents)
        return;
    x->ents = ents;
    if (!(ents[x->n].name = strndup(name, len)))
        return;
    ents[x->n].type = DT_DIR;
    ents[x->n].ino = 0x9e3779b97f4a7c15ULL ^ (uint64_t)x->n ^ (uint64_t)len << 32;
    x->n++;
}

/* The listing of abs: the repo's, plus the names towards nested --layout
 * mount points (only those, with "." and "..", for a directory that the
 * repo does not have). */
static int vdir_list(vdir_t *x, const char *abs)
{
    int rc = mesa_vfs_list(shim_vfs, abs, &x->ents, &x->n);
    if (rc == -ENOENT && shim_layout_below(abs, NULL, NULL)) {
        x->ents = NULL;
        x->n = 0;
        add_layout_name(x, ".", 1);
        add_layout_name(x, "..", 2);
        rc = x->n == 2 ? 0 : -ENOMEM;
    }
    if (rc == 0)
        shim_layout_below(abs, add_layout_name, x);
    return rc;
}

/* Under the lock: wrap a real DIR on a placeholder as a listing of abs. */
static DIR *vdir_new(int fd, const char *abs)
{
    vdir_t *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    snprintf(x->path, sizeof x->path, "%s", abs);
    int rc = vdir_list(x, abs);
    if (rc < 0) {
        free(x);
        errno = -rc;
        return NULL;
    }
    x->d = REAL(fdopendir)(fd);
    if (!x->d) {
        mesa_vfs_list_free(x->ents, x->n);
        free(x);
        return NULL;
    }
    HASH_ADD_PTR(dirs, d, x);
    return x->d;
}

SHIM_API DIR *opendir(const char *p)
{
    char abs[MESA_PATH_MAX];
    shim_guard_t g;
    if (!shim_begin(AT_FDCWD, p, abs, &g))
        return REAL(opendir)(p);
    int is_dir = 0;
    int fd = mesa_vfs_open(shim_vfs, abs, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, &is_dir);
    if (fd == -ENOENT) /* on the way to a nested --layout mount point */
        fd = shim_layout_dirfd(abs);
    DIR *d = NULL;
    if (fd >= 0) {
        shim_track(fd, abs, 1);
        d = vdir_new(fd, abs);
        if (!d) {
            int e = errno;
            mesa_fdtab_del(fd);
            close(fd);
            errno = e;
        }
    }
    shim_end(fd < 0 ? fd : 0, &g);
    return d;
}

SHIM_API DIR *fdopendir(int fd)
{
    const mesa_fdent_t *e;
    shim_guard_t g;
    if (!shim_begin_fd(fd, &e, &g))
        return REAL(fdopendir)(fd);
    DIR *d = NULL;
    int rc = 0;
    if (!e->is_dir) {
        rc = -ENOTDIR;
    } else {
        char abs[MESA_PATH_MAX];
        snprintf(abs, sizeof abs, "%s", e->path);
        d = vdir_new(fd, abs);
        rc = d ? 0 : -errno;
    }
    shim_end(rc, &g);
    return d;
}

/* The listing behind d, under the lock (NULL: a real directory stream). */
static vdir_t *vdir_get(DIR *d, shim_guard_t *g)
{
    vdir_t *x;
    if (!dirs || !shim_on() || shim_lock(g) < 0)
        return NULL;
    HASH_FIND_PTR(dirs, &d, x);
    if (!x)
        shim_unlock(g);
    return x;
}

static struct dirent64 *vnext(vdir_t *x)
{
    if (x->pos >= x->n)
        return NULL;
    const mesa_dirent_t *m = &x->ents[x->pos++];
    memset(&x->de, 0, sizeof x->de);
    x->de.d_ino = m->ino;
    x->de.d_off = (off64_t)x->pos;
    x->de.d_reclen = sizeof x->de;
    x->de.d_type = m->type;
    snprintf(x->de.d_name, sizeof x->de.d_name, "%s", m->name);
    return &x->de;
}

SHIM_API struct dirent *readdir(DIR *d)
{
    shim_guard_t g;
    vdir_t *x = vdir_get(d, &g);
    if (!x)
        return REAL(readdir)(d);
    struct dirent64 *r = vnext(x);
    shim_unlock(&g);
    return (struct dirent *)r;
}

SHIM_API struct dirent64 *readdir64(DIR *d)
{
    shim_guard_t g;
    vdir_t *x = vdir_get(d, &g);
    if (!x)
        return REAL(readdir64)(d);
    struct dirent64 *r = vnext(x);
    shim_unlock(&g);
    return r;
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
SHIM_API int readdir_r(DIR *d, struct dirent *ent, struct dirent **res)
{
    shim_guard_t g;
    vdir_t *x = vdir_get(d, &g);
    if (!x)
        return REAL(readdir_r)(d, ent, res);
    struct dirent64 *r = vnext(x);
    if (r)
        memcpy(ent, r, sizeof *ent);
    *res = r ? ent : NULL;
    shim_unlock(&g);
    return 0;
}
#pragma GCC diagnostic pop

SHIM_API long telldir(DIR *d)
{
    shim_guard_t g;
    vdir_t *x = vdir_get(d, &g);
    if (!x)
        return REAL(telldir)(d);
    long pos = (long)x->pos;
    shim_unlock(&g);
    return pos;
}

SHIM_API void seekdir(DIR *d, long pos)
{
    shim_guard_t g;
    vdir_t *x = vdir_get(d, &g);
    if (!x) {
        REAL(seekdir)(d, pos);
        return;
    }
    x->pos = pos < 0 ? 0 : (size_t)pos;
    shim_unlock(&g);
}

SHIM_API void rewinddir(DIR *d)
{
    shim_guard_t g;
    vdir_t *x = vdir_get(d, &g);
    if (!x) {
        REAL(rewinddir)(d);
        return;
    }
    mesa_dirent_t *ents;
    size_t n;
    if (mesa_vfs_list(shim_vfs, x->path, &ents, &n) == 0) { /* see what changed */
        mesa_vfs_list_free(x->ents, x->n);
        x->ents = ents;
        x->n = n;
    }
    x->pos = 0;
    shim_unlock(&g);
}

SHIM_API int closedir(DIR *d)
{
    shim_guard_t g;
    vdir_t *x = vdir_get(d, &g);
    if (x) {
        HASH_DEL(dirs, x);
        mesa_fdtab_del(dirfd(d));
        mesa_vfs_list_free(x->ents, x->n);
        free(x);
        shim_unlock(&g);
    }
    return REAL(closedir)(d);
}
