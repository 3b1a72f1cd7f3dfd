/* core/vfs_lib.c - shared libraries stored in the mount: the mirror of
 * mount paths under $RUN/lib that the dynamic loader can open (see
 * vfs_lib.h, DESIGN §6).
 *
 * Invariant: a mirror entry is a symlink to a local file that has the
 * mount file's content as this process sees it now; it is replaced
 * atomically (symlink to a temp name, rename) whenever a resolution finds
 * another file, so a loader that opens it gets an old or a new version,
 * never a missing one. Objects already loaded keep what they mapped.
 * Called by the shim's dlopen wrapper (under the shim lock) and by the
 * LD_AUDIT module's resolver, tools/mesafs_ldhelper.c.
 */
#include "config.h"
#include "vfs_lib.h"
#include "fsutil.h"
#include "vfs_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* May a file on src's filesystem be mapped executable? */
static int exec_ok(const char *src)
{
    struct statvfs sv;
    return statvfs(src, &sv) < 0 || !(sv.f_flag & ST_NOEXEC);
}

/* The local file with n's content (a missing blob is fetched), on a
 * filesystem that allows executable mappings when possible: the copy that
 * exec of the file uses when the cache or $RUN is mounted noexec (a file
 * without an x bit has none, and fails to map as on a noexec disk). */
static int lib_content(mesa_vfs_t *v, const mesa_vnode_t *n, char *out, size_t len)
{
    char copy[PATH_MAX], arg[8];
    int script = 0, rc = 0;
    if (n->where == MESA_VW_TREE)
        rc = vfs_blob(v, n->slot, n->oid, out, len);
    else if (snprintf(out, len, "%s", n->real) >= (int)len)
        rc = -ENAMETOOLONG;
    if (rc < 0 || exec_ok(out))
        return rc;
    if (mesa_vfs_exec_plan(v, n->path, copy, sizeof copy, arg, sizeof arg, &script) == 0 &&
        !script && strlen(copy) < len)
        strcpy(out, copy);
    return 0;
}

/* Point the mirror of n's path at src; its path in out. */
static int mirror(const mesa_vfs_t *v, const mesa_vnode_t *n, const char *src, char *out,
                  size_t len)
{
    char cur[PATH_MAX], dir[PATH_MAX], tmp[PATH_MAX + 32];
    int k = snprintf(out, len, "%s/lib%s", v->run, n->path + v->plen);
    if (k < 0 || (size_t)k >= len || (size_t)k >= sizeof dir)
        return -ENAMETOOLONG;
    ssize_t l = readlink(out, cur, sizeof cur - 1);
    if (l >= 0) {
        cur[l] = '\0';
        if (strcmp(cur, src) == 0)
            return 0;
    }
    memcpy(dir, out, (size_t)k + 1);
    *strrchr(dir, '/') = '\0';
    int rc = mesa_mkdirs(dir, 0755);
    if (rc < 0)
        return rc;
    snprintf(tmp, sizeof tmp, "%s/.lib.%d.tmp", dir, (int)getpid());
    unlink(tmp);
    if (symlink(src, tmp) < 0)
        return -errno;
    if (rename(tmp, out) < 0) {
        rc = -errno;
        unlink(tmp);
    }
    return rc;
}

int mesa_vfs_lib_path(mesa_vfs_t *v, const char *path, char *out, size_t outlen)
{
    mesa_vnode_t *n = malloc(sizeof *n);
    char src[PATH_MAX];
    if (!n)
        return -ENOMEM;
    int rc = mesa_vfs_lookup(v, path, 1, n);
    if (rc == -EXDEV) /* a symlink that leads out of the mount */
        rc = snprintf(out, outlen, "%s", n->path) < (int)outlen ? 0 : -ENAMETOOLONG;
    else if (rc == 0 && S_ISDIR(n->mode))
        rc = -EISDIR;
    else if (rc == 0 && !S_ISREG(n->mode))
        rc = -ENOENT;
    else if (rc == 0 && (rc = lib_content(v, n, src, sizeof src)) == 0 &&
             mirror(v, n, src, out, outlen) < 0)
        rc = snprintf(out, outlen, "%s", src) < (int)outlen ? 0 : -ENAMETOOLONG;
    free(n);
    return rc;
}

int mesa_vfs_lib_origin(const mesa_vfs_t *v, const char *real, char *out, size_t outlen)
{
    return vfs_from_mirror(v, "/lib", real, out, outlen);
}
