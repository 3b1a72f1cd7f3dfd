/* shim/xattr.c - extended attributes of mount paths and descriptors: the
 * get/set/list/remove families (path, l-, f-) call core/vfs_meta.c, which
 * serves user.* from the server's per-path metadata. Everything else falls
 * through to libc.
 */
#include "config.h"
#include "shim.h"

#include <errno.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/xattr.h>

/* A path wrapper; call passes follow: 1 for the plain name, 0 for the l- form. */
#define XATTR_PATH(ret, name, proto, args, call)                                                   \
    SHIM_API ret name proto                                                                        \
    {                                                                                              \
        char abs[MESA_PATH_MAX];                                                                   \
        shim_guard_t g;                                                                            \
        if (shim_begin(AT_FDCWD, p, abs, &g))                                                      \
            return (ret)shim_end(call, &g);                                                        \
        return REAL(name) args;                                                                    \
    }

/* A descriptor wrapper: the file the descriptor was opened as. */
#define XATTR_FD(ret, name, proto, args, call)                                                     \
    SHIM_API ret name proto                                                                        \
    {                                                                                              \
        const mesa_fdent_t *e;                                                                     \
        shim_guard_t g;                                                                            \
        if (shim_begin_fd(fd, &e, &g)) {                                                           \
            char abs[MESA_PATH_MAX];                                                               \
            snprintf(abs, sizeof abs, "%s", e->path);                                              \
            return (ret)shim_end(call, &g);                                                        \
        }                                                                                          \
        return REAL(name) args;                                                                    \
    }

/* A directory the shim makes up on the way to a nested --layout mount
 * point exists for stat and readdir: it has no attributes, and takes none. */
static long made_up(long rc, const char *abs, long instead)
{
    return rc == -ENOENT && shim_layout_below(abs, NULL, NULL) ? instead : rc;
}

#define GET(f) made_up(mesa_vfs_getxattr(shim_vfs, abs, f, n, v, s), abs, -ENODATA)
#define LIST(f) made_up(mesa_vfs_listxattr(shim_vfs, abs, f, l, s), abs, 0)
#define SET(f) made_up(mesa_vfs_setxattr(shim_vfs, abs, f, n, v, s, fl), abs, -ENOTSUP)
#define REMOVE(f) made_up(mesa_vfs_removexattr(shim_vfs, abs, f, n), abs, -ENODATA)

XATTR_PATH(ssize_t, getxattr, (const char *p, const char *n, void *v, size_t s), (p, n, v, s),
           GET(1))
XATTR_PATH(ssize_t, lgetxattr, (const char *p, const char *n, void *v, size_t s), (p, n, v, s),
           GET(0))
XATTR_FD(ssize_t, fgetxattr, (int fd, const char *n, void *v, size_t s), (fd, n, v, s), GET(1))

XATTR_PATH(ssize_t, listxattr, (const char *p, char *l, size_t s), (p, l, s), LIST(1))
XATTR_PATH(ssize_t, llistxattr, (const char *p, char *l, size_t s), (p, l, s), LIST(0))
XATTR_FD(ssize_t, flistxattr, (int fd, char *l, size_t s), (fd, l, s), LIST(1))

XATTR_PATH(int, setxattr, (const char *p, const char *n, const void *v, size_t s, int fl),
           (p, n, v, s, fl), SET(1))
XATTR_PATH(int, lsetxattr, (const char *p, const char *n, const void *v, size_t s, int fl),
           (p, n, v, s, fl), SET(0))
XATTR_FD(int, fsetxattr, (int fd, const char *n, const void *v, size_t s, int fl),
         (fd, n, v, s, fl), SET(1))

XATTR_PATH(int, removexattr, (const char *p, const char *n), (p, n), REMOVE(1))
XATTR_PATH(int, lremovexattr, (const char *p, const char *n), (p, n), REMOVE(0))
XATTR_FD(int, fremovexattr, (int fd, const char *n), (fd, n), REMOVE(1))
