/* shim/stat.c - metadata answered in-process (DESIGN §5): the stat family
 * (current names, the 64-bit names, the legacy __xstat ABI that make
 * imports, statx), access, readlink, realpath, statfs and pathconf (the
 * xattr calls are in shim/xattr.c).
 * On x86-64 and aarch64 struct stat and struct stat64 are one layout.
 */
#include "config.h"
#include "shim.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

_Static_assert(sizeof(struct stat) == sizeof(struct stat64), "stat and stat64 differ");

/* stat of a mount path (lock held); raw: the path as the caller wrote it
 * ("l/" is the directory a symlink l names, or ENOTDIR). */
static int vstat(const char *abs, const char *raw, int follow, struct stat *st)
{
    int slashed = mesa_vfs_slashed(raw);
    int rc = slashed ? mesa_vfs_want_dir(shim_vfs, abs, 0) : 0;
    if (rc == -ENOENT) /* "dir/." on the way to a nested --layout mount point */
        return shim_layout_stat(abs, st);
    mesa_vnode_t *n = rc < 0 ? NULL : malloc(sizeof *n);
    if (!n)
        return rc < 0 ? rc : -ENOMEM;
    rc = mesa_vfs_lookup(shim_vfs, abs, follow || slashed, n);
    if (rc == -EXDEV) /* a symlink out of the mount */
        rc = stat(n->path, st) < 0 ? -errno : 0;
    else if (rc == 0)
        rc = mesa_vfs_stat(shim_vfs, n, st);
    free(n);
    if (rc == -ENOENT) /* on the way to a nested --layout mount point */
        rc = shim_layout_stat(abs, st);
    return rc;
}

/* fstat of a mesa descriptor (lock held): what stat of its path says
 * while the path names the descriptor's file (core decides). */
static int vfstat(int fd, const mesa_fdent_t *e, struct stat *st)
{
    char abs[MESA_PATH_MAX];
    snprintf(abs, sizeof abs, "%s", e->path);
    return mesa_vfs_fstat(shim_vfs, abs, fd, st);
}

static int do_fstatat(int dirfd, const char *path, struct stat *st, int flags,
                      int (*real)(int, const char *, struct stat *, int))
{
    char abs[MESA_PATH_MAX];
    shim_guard_t g;
    const mesa_fdent_t *e;
    if ((flags & AT_EMPTY_PATH) && path && !*path && shim_begin_fd(dirfd, &e, &g))
        return (int)shim_end(vfstat(dirfd, e, st), &g);
    if (shim_begin(dirfd, path, abs, &g))
        return (int)shim_end(vstat(abs, path, !(flags & AT_SYMLINK_NOFOLLOW), st), &g);
    return real(dirfd, path, st, flags);
}

static int do_fstat(int fd, struct stat *st, int (*real)(int, struct stat *))
{
    const mesa_fdent_t *e;
    shim_guard_t g;
    if (shim_begin_fd(fd, &e, &g))
        return (int)shim_end(vfstat(fd, e, st), &g);
    return real(fd, st);
}

typedef int (*fstatat_fn)(int, const char *, struct stat *, int);
typedef int (*fstat_fn)(int, struct stat *);

SHIM_API int stat(const char *p, struct stat *st)
{
    return do_fstatat(AT_FDCWD, p, st, 0, REAL(fstatat));
}
SHIM_API int stat64(const char *p, struct stat64 *st)
{
    return do_fstatat(AT_FDCWD, p, (struct stat *)st, 0, REAL(fstatat));
}
SHIM_API int lstat(const char *p, struct stat *st)
{
    return do_fstatat(AT_FDCWD, p, st, AT_SYMLINK_NOFOLLOW, REAL(fstatat));
}
SHIM_API int lstat64(const char *p, struct stat64 *st)
{
    return do_fstatat(AT_FDCWD, p, (struct stat *)st, AT_SYMLINK_NOFOLLOW, REAL(fstatat));
}
SHIM_API int fstatat(int d, const char *p, struct stat *st, int fl)
{
    return do_fstatat(d, p, st, fl, REAL(fstatat));
}
SHIM_API int fstatat64(int d, const char *p, struct stat64 *st, int fl)
{
    return do_fstatat(d, p, (struct stat *)st, fl, REAL(fstatat));
}
SHIM_API int fstat(int fd, struct stat *st)
{
    return do_fstat(fd, st, REAL(fstat));
}
SHIM_API int fstat64(int fd, struct stat64 *st)
{
    return do_fstat(fd, (struct stat *)st, REAL(fstat));
}

/* The legacy ABI: glibc 2.36 still exports these for old binaries (make). */
int __xstat(int ver, const char *p, struct stat *st);
int __xstat64(int ver, const char *p, struct stat64 *st);
int __lxstat(int ver, const char *p, struct stat *st);
int __lxstat64(int ver, const char *p, struct stat64 *st);
int __fxstat(int ver, int fd, struct stat *st);
int __fxstat64(int ver, int fd, struct stat64 *st);
int __fxstatat(int ver, int d, const char *p, struct stat *st, int fl);
int __fxstatat64(int ver, int d, const char *p, struct stat64 *st, int fl);

SHIM_API int __xstat(int ver, const char *p, struct stat *st)
{
    (void)ver;
    return do_fstatat(AT_FDCWD, p, st, 0, REAL(fstatat));
}
SHIM_API int __xstat64(int ver, const char *p, struct stat64 *st)
{
    (void)ver;
    return do_fstatat(AT_FDCWD, p, (struct stat *)st, 0, REAL(fstatat));
}
SHIM_API int __lxstat(int ver, const char *p, struct stat *st)
{
    (void)ver;
    return do_fstatat(AT_FDCWD, p, st, AT_SYMLINK_NOFOLLOW, REAL(fstatat));
}
SHIM_API int __lxstat64(int ver, const char *p, struct stat64 *st)
{
    (void)ver;
    return do_fstatat(AT_FDCWD, p, (struct stat *)st, AT_SYMLINK_NOFOLLOW, REAL(fstatat));
}
SHIM_API int __fxstat(int ver, int fd, struct stat *st)
{
    (void)ver;
    return do_fstat(fd, st, REAL(fstat));
}
SHIM_API int __fxstat64(int ver, int fd, struct stat64 *st)
{
    (void)ver;
    return do_fstat(fd, (struct stat *)st, REAL(fstat));
}
SHIM_API int __fxstatat(int ver, int d, const char *p, struct stat *st, int fl)
{
    (void)ver;
    return do_fstatat(d, p, st, fl, REAL(fstatat));
}
SHIM_API int __fxstatat64(int ver, int d, const char *p, struct stat64 *st, int fl)
{
    (void)ver;
    return do_fstatat(d, p, (struct stat *)st, fl, REAL(fstatat));
}

static void to_statx(const struct stat *st, struct statx *x)
{
    memset(x, 0, sizeof *x);
    x->stx_mask = STATX_BASIC_STATS;
    x->stx_blksize = (uint32_t)st->st_blksize;
    x->stx_nlink = (uint32_t)st->st_nlink;
    x->stx_uid = st->st_uid;
    x->stx_gid = st->st_gid;
    x->stx_mode = (uint16_t)st->st_mode;
    x->stx_ino = st->st_ino;
    x->stx_size = (uint64_t)st->st_size;
    x->stx_blocks = (uint64_t)st->st_blocks;
    x->stx_atime.tv_sec = st->st_atim.tv_sec;
    x->stx_atime.tv_nsec = (uint32_t)st->st_atim.tv_nsec;
    x->stx_mtime.tv_sec = st->st_mtim.tv_sec;
    x->stx_mtime.tv_nsec = (uint32_t)st->st_mtim.tv_nsec;
    x->stx_ctime.tv_sec = st->st_ctim.tv_sec;
    x->stx_ctime.tv_nsec = (uint32_t)st->st_ctim.tv_nsec;
    x->stx_dev_major = major(st->st_dev);
    x->stx_dev_minor = minor(st->st_dev);
}

SHIM_API int statx(int d, const char *p, int fl, unsigned mask, struct statx *x)
{
    char abs[MESA_PATH_MAX];
    shim_guard_t g;
    const mesa_fdent_t *e;
    struct stat st;
    int rc;
    if ((fl & AT_EMPTY_PATH) && !*p && shim_begin_fd(d, &e, &g))
        rc = (int)shim_end(vfstat(d, e, &st), &g);
    else if (shim_begin(d, p, abs, &g))
        rc = (int)shim_end(vstat(abs, p, !(fl & AT_SYMLINK_NOFOLLOW), &st), &g);
    else
        return REAL(statx)(d, p, fl, mask, x);
    if (rc == 0)
        to_statx(&st, x);
    return rc;
}

/* ------------------------------------------------------------ access */

static int do_access(int d, const char *p, int mode, int flags,
                     int (*real)(int, const char *, int, int))
{
    char abs[MESA_PATH_MAX];
    shim_guard_t g;
    if (shim_begin(d, p, abs, &g)) {
        int slashed = mesa_vfs_slashed(p); /* "f/" is ENOTDIR */
        int rc = slashed ? mesa_vfs_want_dir(shim_vfs, abs, 0) : 0;
        if (rc == 0)
            rc = mesa_vfs_access(shim_vfs, abs, mode, slashed || !(flags & AT_SYMLINK_NOFOLLOW));
        if (rc == -ENOENT && shim_layout_below(abs, NULL, NULL)) /* a nested --layout mount's way */
            rc = 0;
        return (int)shim_end(rc, &g);
    }
    return real(d, p, mode, flags);
}

SHIM_API int access(const char *p, int mode)
{
    return do_access(AT_FDCWD, p, mode, 0, REAL(faccessat));
}
SHIM_API int faccessat(int d, const char *p, int mode, int flags)
{
    return do_access(d, p, mode, flags, REAL(faccessat));
}
SHIM_API int eaccess(const char *p, int mode)
{
    return do_access(AT_FDCWD, p, mode, AT_EACCESS, REAL(faccessat));
}
SHIM_API int euidaccess(const char *p, int mode)
{
    return do_access(AT_FDCWD, p, mode, AT_EACCESS, REAL(faccessat));
}

/* ------------------------------------------------------------ links */

static ssize_t do_readlinkat(int d, const char *p, char *buf, size_t len)
{
    char abs[MESA_PATH_MAX];
    shim_guard_t g;
    if (shim_begin(d, p, abs, &g))
        return shim_end(mesa_vfs_readlink(shim_vfs, abs, buf, len), &g);
    return REAL(readlinkat)(d, p, buf, len);
}

SHIM_API ssize_t readlink(const char *p, char *buf, size_t len)
{
    return do_readlinkat(AT_FDCWD, p, buf, len);
}
SHIM_API ssize_t readlinkat(int d, const char *p, char *buf, size_t len)
{
    return do_readlinkat(d, p, buf, len);
}
ssize_t __readlink_chk(const char *p, char *buf, size_t len, size_t buflen);
SHIM_API ssize_t __readlink_chk(const char *p, char *buf, size_t len, size_t buflen)
{
    (void)buflen;
    return do_readlinkat(AT_FDCWD, p, buf, len);
}
ssize_t __readlinkat_chk(int d, const char *p, char *buf, size_t len, size_t buflen);
SHIM_API ssize_t __readlinkat_chk(int d, const char *p, char *buf, size_t len, size_t buflen)
{
    (void)buflen;
    return do_readlinkat(d, p, buf, len);
}

/* realpath of a mount path: the resolved path, which must exist (and be
 * a directory if raw ends with a slash). */
static char *vrealpath(const char *abs, const char *raw, char *out, shim_guard_t *g)
{
    mesa_vnode_t *n = malloc(sizeof *n);
    char *res = NULL;
    int rc = n ? mesa_vfs_lookup(shim_vfs, abs, 1, n) : -ENOMEM;
    if (rc == 0 && !S_ISDIR(n->mode) && mesa_vfs_slashed(raw))
        rc = -ENOTDIR;
    if (rc == 0 || rc == -EXDEV) {
        if (rc == -EXDEV) { /* left the mount: the real one finishes */
            char tmp[PATH_MAX];
            snprintf(tmp, sizeof tmp, "%s", n->path);
            free(n);
            shim_end(0, g);
            return REAL(realpath)(tmp, out);
        }
        res = out ? out : malloc(PATH_MAX);
        if (!res)
            rc = -ENOMEM;
        else {
            char ws[MESA_PATH_MAX];
            const char *path = shim_unmap(n->path, ws, sizeof ws); /* layout view */
            if (strlen(path) >= PATH_MAX)
                rc = -ENAMETOOLONG;
            else
                strcpy(res, path);
        }
    }
    free(n);
    if (rc < 0 && res != out)
        free(res);
    shim_end(rc, g);
    return rc < 0 ? NULL : res;
}

SHIM_API char *realpath(const char *p, char *out)
{
    char abs[MESA_PATH_MAX];
    shim_guard_t g;
    if (shim_begin(AT_FDCWD, p, abs, &g))
        return vrealpath(abs, p, out, &g);
    return REAL(realpath)(p, out);
}

char *__realpath_chk(const char *p, char *out, size_t outlen);
SHIM_API char *__realpath_chk(const char *p, char *out, size_t outlen)
{
    (void)outlen;
    return realpath(p, out);
}

SHIM_API char *canonicalize_file_name(const char *p)
{
    return realpath(p, NULL);
}

/* ------------------------------------------------------------ the rest */

/* statfs of a mount path: the runtime directory's filesystem, as a
 * stand-in with the mount's limits. */
static int vstatfs(struct statfs *s)
{
    int rc = statfs(mesa_vfs_run(shim_vfs), s) < 0 ? -errno : 0;
    if (rc == 0)
        s->f_namelen = MESA_NAME_MAX;
    return rc;
}

SHIM_API int statfs(const char *p, struct statfs *s)
{
    char abs[MESA_PATH_MAX];
    shim_guard_t g;
    if (shim_begin(AT_FDCWD, p, abs, &g)) {
        struct stat st;
        int rc = vstat(abs, p, 1, &st);
        return (int)shim_end(rc < 0 ? rc : vstatfs(s), &g);
    }
    return REAL(statfs)(p, s);
}

SHIM_API int statfs64(const char *p, struct statfs64 *s)
{
    return statfs(p, (struct statfs *)s);
}

SHIM_API int fstatfs(int fd, struct statfs *s)
{
    const mesa_fdent_t *e;
    shim_guard_t g;
    if (shim_begin_fd(fd, &e, &g))
        return (int)shim_end(vstatfs(s), &g);
    return REAL(fstatfs)(fd, s);
}

SHIM_API int fstatfs64(int fd, struct statfs64 *s)
{
    return fstatfs(fd, (struct statfs *)s);
}

/* glibc's statvfs calls the kernel's statfs without the PLT (df uses it):
 * wrapped on its own, answering for the same stand-in as statfs. */
static int vstatvfs(struct statvfs *s)
{
    int rc = REAL(statvfs)(mesa_vfs_run(shim_vfs), s) < 0 ? -errno : 0;
    if (rc == 0)
        s->f_namemax = MESA_NAME_MAX;
    return rc;
}

SHIM_API int statvfs(const char *p, struct statvfs *s)
{
    char abs[MESA_PATH_MAX];
    shim_guard_t g;
    if (shim_begin(AT_FDCWD, p, abs, &g)) {
        struct stat st;
        int rc = vstat(abs, p, 1, &st);
        return (int)shim_end(rc < 0 ? rc : vstatvfs(s), &g);
    }
    return REAL(statvfs)(p, s);
}

SHIM_API int statvfs64(const char *p, struct statvfs64 *s)
{
    return statvfs(p, (struct statvfs *)s);
}

SHIM_API int fstatvfs(int fd, struct statvfs *s)
{
    const mesa_fdent_t *e;
    shim_guard_t g;
    if (shim_begin_fd(fd, &e, &g))
        return (int)shim_end(vstatvfs(s), &g);
    return REAL(fstatvfs)(fd, s);
}

SHIM_API int fstatvfs64(int fd, struct statvfs64 *s)
{
    return fstatvfs(fd, (struct statvfs *)s);
}

SHIM_API long pathconf(const char *p, int name)
{
    char abs[MESA_PATH_MAX];
    shim_guard_t g;
    if (shim_begin(AT_FDCWD, p, abs, &g)) {
        struct stat st;
        int rc = vstat(abs, p, 1, &st);
        if (rc < 0)
            return shim_end(rc, &g);
        shim_end(0, &g);
        return name == _PC_NAME_MAX ? MESA_NAME_MAX
               : name == _PC_PATH_MAX ? MESA_PATH_MAX
                                      : REAL(pathconf)("/", name);
    }
    return REAL(pathconf)(p, name);
}
