/* shim/cwd.c - the virtual working directory (DESIGN §5): chdir into a
 * mount directory moves the kernel cwd to its placeholder (so calls the
 * shim cannot see find an empty directory, and children inherit it) and
 * remembers the mount path, which getcwd returns.
 */
#include "config.h"
#include "shim.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* Lock held: enter mount directory abs. */
static int vchdir(const char *abs)
{
    mesa_vnode_t *n = malloc(sizeof *n);
    char real[PATH_MAX];
    if (!n)
        return -ENOMEM;
    int rc = mesa_vfs_lookup(shim_vfs, abs, 1, n);
    if (rc == -ENOENT && shim_layout_below(abs, NULL, NULL)) { /* towards a nested mount */
        snprintf(n->path, sizeof n->path, "%s", abs);
        n->mode = S_IFDIR | 0755;
        rc = 0;
    }
    if (rc == -EXDEV) { /* a symlink out of the mount */
        rc = REAL(chdir)(n->path) < 0 ? -errno : 0;
        if (rc == 0)
            shim_set_vcwd(NULL);
    } else if (rc == 0 && !S_ISDIR(n->mode)) {
        rc = -ENOTDIR;
    } else if (rc == 0 && (rc = mesa_vfs_placeholder(shim_vfs, n->path, real, sizeof real)) == 0) {
        rc = REAL(chdir)(real) < 0 ? -errno : 0;
        if (rc == 0)
            shim_set_vcwd(n->path);
    }
    free(n);
    return rc;
}

SHIM_API int chdir(const char *p)
{
    char abs[MESA_PATH_MAX];
    shim_guard_t g;
    if (shim_begin(AT_FDCWD, p, abs, &g))
        return (int)shim_end(vchdir(abs), &g);
    int rc = REAL(chdir)(p);
    if (rc == 0 && shim_vcwd && shim_state == SHIM_ON)
        shim_set_vcwd(NULL);
    return rc;
}

SHIM_API int fchdir(int fd)
{
    const mesa_fdent_t *e;
    shim_guard_t g;
    if (shim_begin_fd(fd, &e, &g)) {
        char abs[MESA_PATH_MAX];
        snprintf(abs, sizeof abs, "%s", e->path);
        return (int)shim_end(e->is_dir ? vchdir(abs) : -ENOTDIR, &g);
    }
    int rc = REAL(fchdir)(fd);
    if (rc == 0 && shim_vcwd && shim_state == SHIM_ON)
        shim_set_vcwd(NULL);
    return rc;
}

static char *vgetcwd(const char *cwd, char *buf, size_t size)
{
    char ws[MESA_PATH_MAX];
    cwd = shim_unmap(cwd, ws, sizeof ws); /* the layout's workspace path */
    size_t len = strlen(cwd) + 1;
    if (!buf) {
        buf = malloc(size > len ? size : len);
        if (!buf)
            return NULL;
    } else if (size < len) {
        errno = size ? ERANGE : EINVAL;
        return NULL;
    }
    memcpy(buf, cwd, len);
    return buf;
}

/* Is the virtual cwd still a directory? (getcwd in a removed directory
 * fails with ENOENT, as the kernel's does.) 0 or -errno. */
static int vcwd_check(const char *cwd)
{
    shim_guard_t g;
    if (shim_lock(&g) < 0)
        return 0; /* cannot look: answer the name */
    mesa_vnode_t *n = malloc(sizeof *n);
    int rc = n ? mesa_vfs_lookup(shim_vfs, cwd, 1, n) : 0;
    if (rc == 0 && n && !S_ISDIR(n->mode))
        rc = -ENOENT;
    if (rc == -ENOENT && shim_layout_below(cwd, NULL, NULL))
        rc = 0; /* on the way to a nested --layout mount point */
    free(n);
    shim_unlock(&g);
    return rc == -ENOENT || rc == -ENOTDIR ? -ENOENT : 0;
}

SHIM_API char *getcwd(char *buf, size_t size)
{
    const char *cwd = shim_on() ? shim_vcwd : NULL;
    if (cwd && vcwd_check(cwd) < 0) {
        errno = ENOENT;
        return NULL;
    }
    if (cwd)
        return vgetcwd(cwd, buf, size);
    return REAL(getcwd)(buf, size);
}

char *__getcwd_chk(char *buf, size_t size, size_t buflen);
SHIM_API char *__getcwd_chk(char *buf, size_t size, size_t buflen)
{
    (void)buflen;
    return getcwd(buf, size);
}

SHIM_API char *get_current_dir_name(void)
{
    const char *cwd = shim_on() ? shim_vcwd : NULL;
    if (cwd && vcwd_check(cwd) < 0) {
        errno = ENOENT;
        return NULL;
    }
    if (cwd)
        return vgetcwd(cwd, NULL, 0);
    return REAL(get_current_dir_name)();
}
