/* shim/ns.c - namespace changes on mount paths: mkdir, rmdir, unlink,
 * rename (EXDEV across repos or out of the mount), symlink (target kept
 * verbatim), link (EPERM: git has no hard links), chmod, chown (only to
 * oneself), utimes, mknod/mkfifo (EPERM, but for regular files).
 */
#include "config.h"
#include "shim.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include <utime.h>

/* The common shape: one path, one core call. */
#define PATH_OP(d, p, call, real_call)                                                             \
    do {                                                                                           \
        char abs[MESA_PATH_MAX];                                                                   \
        shim_guard_t g;                                                                            \
        if (shim_begin(d, p, abs, &g))                                                             \
            return (int)shim_end(call, &g);                                                        \
        return real_call;                                                                          \
    } while (0)

/* mkdir, after the directories on the way to a nested --layout mount. */
static int vmkdir(const char *abs, mode_t m)
{
    shim_layout_prepare(abs);
    return mesa_vfs_mkdir(shim_vfs, abs, m);
}

SHIM_API int mkdir(const char *p, mode_t m)
{
    PATH_OP(AT_FDCWD, p, vmkdir(abs, m), REAL(mkdir)(p, m));
}

SHIM_API int mkdirat(int d, const char *p, mode_t m)
{
    PATH_OP(d, p, vmkdir(abs, m), REAL(mkdirat)(d, p, m));
}

/* rmdir of a path written with "." (EINVAL) or ".." (ENOTEMPTY) as its
 * last name fails as in a kernel, before anything is looked up. */
static int vrmdir(const char *abs, const char *raw)
{
    size_t l = strlen(raw), b;
    while (l > 1 && raw[l - 1] == '/')
        l--;
    for (b = l; b > 0 && raw[b - 1] != '/'; b--)
        ;
    if (l - b == 1 && raw[b] == '.')
        return -EINVAL;
    if (l - b == 2 && raw[b] == '.' && raw[b + 1] == '.')
        return -ENOTEMPTY;
    return mesa_vfs_rmdir(shim_vfs, abs);
}

/* unlink of "x/": ENOTDIR for a file, EISDIR for a directory. */
static int vunlink(const char *abs, const char *raw)
{
    int rc = mesa_vfs_slashed(raw) ? mesa_vfs_want_dir(shim_vfs, abs, 0) : 0;
    return rc < 0 ? rc : mesa_vfs_unlink(shim_vfs, abs);
}

SHIM_API int rmdir(const char *p)
{
    PATH_OP(AT_FDCWD, p, vrmdir(abs, p), REAL(rmdir)(p));
}

SHIM_API int unlink(const char *p)
{
    PATH_OP(AT_FDCWD, p, vunlink(abs, p), REAL(unlink)(p));
}

SHIM_API int unlinkat(int d, const char *p, int fl)
{
    PATH_OP(d, p, (fl & AT_REMOVEDIR) ? vrmdir(abs, p) : vunlink(abs, p), REAL(unlinkat)(d, p, fl));
}

/* remove(3): unlink, or rmdir for a directory (glibc calls both without
 * the PLT). */
static int vremove(const char *abs, const char *raw)
{
    int rc = vunlink(abs, raw);
    return rc == -EISDIR ? vrmdir(abs, raw) : rc;
}

SHIM_API int remove(const char *p)
{
    PATH_OP(AT_FDCWD, p, vremove(abs, p), REAL(remove)(p));
}

/* Two paths: both in the mount (core decides), one in and one out (EXDEV),
 * or neither (the real call). */
static int two_paths(int d1, const char *p1, int d2, const char *p2, char *a1, char *a2,
                     shim_guard_t *g, int *in1, int *in2)
{
    *in1 = *in2 = 0;
    if (!shim_maybe(d1, p1) && !shim_maybe(d2, p2))
        return 0;
    if (shim_lock(g) < 0)
        return 0;
    *in1 = shim_classify(d1, p1, a1) == 1;
    *in2 = shim_classify(d2, p2, a2) == 1;
    if (*in1 || *in2)
        return 1;
    shim_unlock(g);
    return 0;
}

/* Two mount paths in different repos (two mount points of a --layout):
 * EXDEV before anything else, as between two kernel mounts. */
static int cross_repo(const char *a1, const char *a2)
{
    mesa_vpath_t *v = malloc(2 * sizeof *v);
    int rc = v && mesa_path_split(shim_prefix, a1, &v[0]) == MESA_VP_REPO &&
             mesa_path_split(shim_prefix, a2, &v[1]) == MESA_VP_REPO &&
             (strcmp(v[0].org, v[1].org) != 0 || strcmp(v[0].repo, v[1].repo) != 0);
    free(v);
    return rc;
}

static int do_rename(int d1, const char *p1, int d2, const char *p2, unsigned flags)
{
    char a1[MESA_PATH_MAX], a2[MESA_PATH_MAX];
    shim_guard_t g;
    int in1, in2;
    if (!two_paths(d1, p1, d2, p2, a1, a2, &g, &in1, &in2))
        return REAL(renameat2)(d1, p1, d2, p2, flags);
    if (!in1 || !in2 || cross_repo(a1, a2))
        return (int)shim_end(-EXDEV, &g);
    if (flags & ~1u) /* RENAME_EXCHANGE, RENAME_WHITEOUT */
        return (int)shim_end(-EINVAL, &g);
    /* "x/" on either side: x must be a directory */
    int rc = mesa_vfs_slashed(p1) || mesa_vfs_slashed(p2) ? mesa_vfs_want_dir(shim_vfs, a1, 0) : 0;
    if (rc == 0 && (rc = mesa_vfs_rename(shim_vfs, a1, a2, flags)) == 0)
        mesa_fdtab_rename(a1, a2); /* this process's descriptors follow */
    return (int)shim_end(rc, &g);
}

SHIM_API int rename(const char *a, const char *b)
{
    return do_rename(AT_FDCWD, a, AT_FDCWD, b, 0);
}

SHIM_API int renameat(int d1, const char *a, int d2, const char *b)
{
    return do_rename(d1, a, d2, b, 0);
}

SHIM_API int renameat2(int d1, const char *a, int d2, const char *b, unsigned flags)
{
    return do_rename(d1, a, d2, b, flags);
}

/* A hard link in a mount: the kernel's ENOENT and EEXIST first, then
 * EPERM (git stores no hard links). */
static int vlink(const char *from, const char *to)
{
    int rc = mesa_vfs_access(shim_vfs, from, F_OK, 0);
    if (rc < 0)
        return rc;
    rc = mesa_vfs_access(shim_vfs, to, F_OK, 0);
    return rc == 0 ? -EEXIST : rc == -ENOENT ? -EPERM : rc;
}

static int do_link(int d1, const char *p1, int d2, const char *p2, int flags)
{
    char a1[MESA_PATH_MAX], a2[MESA_PATH_MAX];
    shim_guard_t g;
    int in1, in2;
    if (!two_paths(d1, p1, d2, p2, a1, a2, &g, &in1, &in2))
        return REAL(linkat)(d1, p1, d2, p2, flags);
    if (in1 && in2 && !cross_repo(a1, a2))
        return (int)shim_end(vlink(a1, a2), &g);
    return (int)shim_end(-EXDEV, &g);
}

SHIM_API int link(const char *a, const char *b)
{
    return do_link(AT_FDCWD, a, AT_FDCWD, b, 0);
}

SHIM_API int linkat(int d1, const char *a, int d2, const char *b, int flags)
{
    return do_link(d1, a, d2, b, flags);
}

SHIM_API int symlink(const char *t, const char *p)
{
    PATH_OP(AT_FDCWD, p, mesa_vfs_symlink(shim_vfs, t, abs), REAL(symlink)(t, p));
}

SHIM_API int symlinkat(const char *t, int d, const char *p)
{
    PATH_OP(d, p, mesa_vfs_symlink(shim_vfs, t, abs), REAL(symlinkat)(t, d, p));
}

SHIM_API int chmod(const char *p, mode_t m)
{
    PATH_OP(AT_FDCWD, p, mesa_vfs_chmod(shim_vfs, abs, m, 1), REAL(chmod)(p, m));
}

SHIM_API int lchmod(const char *p, mode_t m)
{
    PATH_OP(AT_FDCWD, p, mesa_vfs_chmod(shim_vfs, abs, m, 0), REAL(lchmod)(p, m));
}

SHIM_API int fchmodat(int d, const char *p, mode_t m, int fl)
{
    PATH_OP(d, p, mesa_vfs_chmod(shim_vfs, abs, m, !(fl & AT_SYMLINK_NOFOLLOW)),
            REAL(fchmodat)(d, p, m, fl));
}

/* chown in a mount: the owner is always the caller. */
static int vchown(const char *abs, uid_t u, gid_t g, int follow)
{
    int rc = mesa_vfs_access(shim_vfs, abs, F_OK, follow);
    if (rc < 0)
        return rc;
    return (u == (uid_t)-1 || u == getuid()) && (g == (gid_t)-1 || g == getgid()) ? 0 : -EPERM;
}

SHIM_API int chown(const char *p, uid_t u, gid_t gr)
{
    PATH_OP(AT_FDCWD, p, vchown(abs, u, gr, 1), REAL(chown)(p, u, gr));
}

SHIM_API int lchown(const char *p, uid_t u, gid_t gr)
{
    PATH_OP(AT_FDCWD, p, vchown(abs, u, gr, 0), REAL(lchown)(p, u, gr));
}

SHIM_API int fchownat(int d, const char *p, uid_t u, gid_t gr, int fl)
{
    PATH_OP(d, p, vchown(abs, u, gr, !(fl & AT_SYMLINK_NOFOLLOW)),
            REAL(fchownat)(d, p, u, gr, fl));
}

/* ------------------------------------------------------------ times */

static int tv_to_ts(const struct timeval tv[2], struct timespec ts[2])
{
    if (!tv)
        return 0;
    for (int i = 0; i < 2; i++) {
        ts[i].tv_sec = tv[i].tv_sec;
        ts[i].tv_nsec = tv[i].tv_usec * 1000;
    }
    return 1;
}

SHIM_API int utimensat(int d, const char *p, const struct timespec ts[2], int fl)
{
    const char *volatile pp = p; /* declared nonnull, but NULL means futimens(d) */
    if (!pp)
        return futimens(d, ts);
    PATH_OP(d, p, mesa_vfs_utimens(shim_vfs, abs, ts, !(fl & AT_SYMLINK_NOFOLLOW)),
            REAL(utimensat)(d, p, ts, fl));
}

SHIM_API int utimes(const char *p, const struct timeval tv[2])
{
    struct timespec ts[2];
    int have = tv_to_ts(tv, ts);
    PATH_OP(AT_FDCWD, p, mesa_vfs_utimens(shim_vfs, abs, have ? ts : NULL, 1),
            REAL(utimes)(p, tv));
}

SHIM_API int lutimes(const char *p, const struct timeval tv[2])
{
    struct timespec ts[2];
    int have = tv_to_ts(tv, ts);
    PATH_OP(AT_FDCWD, p, mesa_vfs_utimens(shim_vfs, abs, have ? ts : NULL, 0),
            REAL(lutimes)(p, tv));
}

SHIM_API int futimesat(int d, const char *p, const struct timeval tv[2])
{
    struct timespec ts[2];
    int have = tv_to_ts(tv, ts);
    PATH_OP(d, p, mesa_vfs_utimens(shim_vfs, abs, have ? ts : NULL, 1),
            REAL(futimesat)(d, p, tv));
}

SHIM_API int utime(const char *p, const struct utimbuf *b)
{
    struct timespec ts[2];
    if (b) {
        ts[0].tv_sec = b->actime, ts[0].tv_nsec = 0;
        ts[1].tv_sec = b->modtime, ts[1].tv_nsec = 0;
    }
    PATH_OP(AT_FDCWD, p, mesa_vfs_utimens(shim_vfs, abs, b ? ts : NULL, 1), REAL(utime)(p, b));
}

/* ------------------------------------------------------------ nodes */

/* Device nodes, FIFOs and sockets cannot live in git: EPERM. A regular
 * file (S_IFREG or no type) is created, empty, as a kernel does. */
static int vmknod(const char *abs, mode_t m)
{
    int is_dir, rc = mesa_vfs_access(shim_vfs, abs, F_OK, 0);
    if (rc == 0)
        return -EEXIST;
    if (rc != -ENOENT || ((m & S_IFMT) && !S_ISREG(m)))
        return rc == -ENOENT ? -EPERM : rc;
    rc = mesa_vfs_open(shim_vfs, abs, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, m & 07777, &is_dir);
    return rc < 0 ? rc : REAL(close)(rc);
}

SHIM_API int mknod(const char *p, mode_t m, dev_t dev)
{
    PATH_OP(AT_FDCWD, p, vmknod(abs, m), REAL(mknod)(p, m, dev));
}

SHIM_API int mknodat(int d, const char *p, mode_t m, dev_t dev)
{
    PATH_OP(d, p, vmknod(abs, m), REAL(mknodat)(d, p, m, dev));
}

SHIM_API int mkfifo(const char *p, mode_t m)
{
    PATH_OP(AT_FDCWD, p, vmknod(abs, S_IFIFO), REAL(mkfifo)(p, m));
}

SHIM_API int mkfifoat(int d, const char *p, mode_t m)
{
    PATH_OP(d, p, vmknod(abs, S_IFIFO), REAL(mkfifoat)(d, p, m));
}
