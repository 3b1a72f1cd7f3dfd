/* shim/open.c - opening mesa files: open/openat and their 64-bit and
 * fortified names, creat, fopen/freopen, the mkstemp family (glibc's
 * __gen_tempname opens without the PLT) and truncate.
 * Each gets a real descriptor from core (mesa_vfs_open) and registers it.
 */
#include "config.h"
#include "shim.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <unistd.h>

/* The mesa side of every open: lock held, abs classified. raw: the path
 * as written ("x/" must be a directory), or NULL. */
static int vopen(const char *abs, const char *raw, int flags, mode_t mode, shim_guard_t *g)
{
    int is_dir = 0;
    int creat = (flags & O_CREAT) && raw && *raw && raw[strlen(raw) - 1] == '/';
    int fd = raw && mesa_vfs_slashed(raw) ? mesa_vfs_want_dir(shim_vfs, abs, creat) : 0;
    if (fd == 0 && (flags & O_CREAT))
        shim_layout_prepare(abs);
    if (fd == 0)
        fd = mesa_vfs_open(shim_vfs, abs, flags, mode, &is_dir);
    if (fd == -ENOENT && !(flags & (O_WRONLY | O_RDWR | O_CREAT)) &&
        (fd = shim_layout_dirfd(abs)) >= 0) /* on the way to a nested --layout mount */
        is_dir = 1;
    if (fd >= 0)
        shim_track(fd, abs, is_dir);
    return (int)shim_end(fd, g);
}

/* The real side: a reused number must not keep a stale entry. */
static int forget(int fd)
{
    if (fd >= 0)
        WITH_TABLE(mesa_fdtab_del(fd));
    return fd;
}

static int do_openat(int dirfd, const char *path, int flags, mode_t mode,
                     int (*real)(int, const char *, int, ...))
{
    char abs[MESA_PATH_MAX];
    shim_guard_t g;
    if (shim_begin(dirfd, path, abs, &g))
        return vopen(abs, path, flags, mode, &g);
    int saved = errno, fd = real(dirfd, path, flags, mode);
    if (fd >= 0)
        errno = saved;
    return forget(fd);
}

#define MODE_ARG(flags)                                                                            \
    mode_t mode = 0;                                                                               \
    if ((flags) & (O_CREAT | O_TMPFILE)) {                                                         \
        va_list ap;                                                                                \
        va_start(ap, flags);                                                                       \
        mode = (mode_t)va_arg(ap, int);                                                            \
        va_end(ap);                                                                                \
    }

SHIM_API int open(const char *path, int flags, ...)
{
    MODE_ARG(flags);
    return do_openat(AT_FDCWD, path, flags, mode, REAL(openat));
}

SHIM_API int open64(const char *path, int flags, ...)
{
    MODE_ARG(flags);
    return do_openat(AT_FDCWD, path, flags, mode, REAL(openat64));
}

SHIM_API int openat(int dirfd, const char *path, int flags, ...)
{
    MODE_ARG(flags);
    return do_openat(dirfd, path, flags, mode, REAL(openat));
}

SHIM_API int openat64(int dirfd, const char *path, int flags, ...)
{
    MODE_ARG(flags);
    return do_openat(dirfd, path, flags, mode, REAL(openat64));
}

int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);

SHIM_API int __open_2(const char *path, int flags)
{
    return do_openat(AT_FDCWD, path, flags, 0, REAL(openat));
}

SHIM_API int __open64_2(const char *path, int flags)
{
    return do_openat(AT_FDCWD, path, flags, 0, REAL(openat64));
}

SHIM_API int __openat_2(int dirfd, const char *path, int flags)
{
    return do_openat(dirfd, path, flags, 0, REAL(openat));
}

SHIM_API int __openat64_2(int dirfd, const char *path, int flags)
{
    return do_openat(dirfd, path, flags, 0, REAL(openat64));
}

SHIM_API int creat(const char *path, mode_t mode)
{
    return do_openat(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, mode, REAL(openat));
}

SHIM_API int creat64(const char *path, mode_t mode)
{
    return do_openat(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, mode, REAL(openat64));
}

/* ------------------------------------------------------------ stdio */

/* fopen's mode string as open flags; -1 if invalid. */
static int mode_flags(const char *m)
{
    int f;
    switch (*m) {
    case 'r':
        f = O_RDONLY;
        break;
    case 'w':
        f = O_WRONLY | O_CREAT | O_TRUNC;
        break;
    case 'a':
        f = O_WRONLY | O_CREAT | O_APPEND;
        break;
    default:
        return -1;
    }
    for (m++; *m && *m != ','; m++) {
        if (*m == '+')
            f = (f & ~O_ACCMODE) | O_RDWR;
        else if (*m == 'x')
            f |= O_EXCL;
        else if (*m == 'e')
            f |= O_CLOEXEC;
    }
    return f;
}

static FILE *vfopen(const char *abs, const char *raw, const char *mode, shim_guard_t *g)
{
    int flags = mode_flags(mode);
    if (flags < 0) {
        shim_end(-EINVAL, g);
        return NULL;
    }
    int fd = vopen(abs, raw, flags, 0666, g);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, mode);
    if (!f) {
        int e = errno;
        close(fd);
        errno = e;
    }
    return f;
}

static FILE *do_fopen(const char *path, const char *mode,
                      FILE *(*real)(const char *, const char *))
{
    char abs[MESA_PATH_MAX];
    shim_guard_t g;
    if (shim_begin(AT_FDCWD, path, abs, &g))
        return vfopen(abs, path, mode, &g);
    FILE *f = real(path, mode);
    if (f)
        forget(fileno(f));
    return f;
}

SHIM_API FILE *fopen(const char *path, const char *mode)
{
    return do_fopen(path, mode, REAL(fopen));
}

SHIM_API FILE *fopen64(const char *path, const char *mode)
{
    return do_fopen(path, mode, REAL(fopen64));
}

/* freopen of a mesa path: let core open it (copy-up, creation), then have
 * libc reopen the stream on the backing file, which keeps its mode. */
static FILE *vfreopen(const char *abs, const char *mode, FILE *stream, shim_guard_t *g,
                      FILE *(*real)(const char *, const char *, FILE *))
{
    int flags = mode_flags(mode);
    char link[64], real_path[PATH_MAX];
    if (flags < 0) {
        shim_end(-EINVAL, g);
        return NULL;
    }
    int is_dir = 0, fd = mesa_vfs_open(shim_vfs, abs, flags, 0666, &is_dir);
    if (fd < 0) {
        shim_end(fd, g);
        return NULL;
    }
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, real_path, sizeof real_path - 1);
    close(fd);
    if (n < 0) {
        shim_end(-EIO, g);
        return NULL;
    }
    real_path[n] = '\0';
    FILE *f = real(real_path, mode, stream);
    if (f)
        shim_track(fileno(f), abs, 0);
    shim_end(0, g);
    return f;
}

SHIM_API FILE *freopen(const char *path, const char *mode, FILE *stream)
{
    char abs[MESA_PATH_MAX];
    shim_guard_t g;
    if (path && shim_begin(AT_FDCWD, path, abs, &g))
        return vfreopen(abs, mode, stream, &g, REAL(freopen));
    return REAL(freopen)(path, mode, stream);
}

SHIM_API FILE *freopen64(const char *path, const char *mode, FILE *stream)
{
    char abs[MESA_PATH_MAX];
    shim_guard_t g;
    if (path && shim_begin(AT_FDCWD, path, abs, &g))
        return vfreopen(abs, mode, stream, &g, REAL(freopen64));
    return REAL(freopen64)(path, mode, stream);
}

/* ------------------------------------------------------------ temp files */

/* Fill the XXXXXX before suffixlen bytes and create the file (or dir). */
static int vtemp(char *tmpl, int suffixlen, int flags, int dir)
{
    char abs[MESA_PATH_MAX];
    shim_guard_t g;
    size_t len = strlen(tmpl);
    static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    if (suffixlen < 0 || len < 6 + (size_t)suffixlen ||
        memcmp(tmpl + len - suffixlen - 6, "XXXXXX", 6) != 0) {
        errno = EINVAL;
        return -1;
    }
    char *x = tmpl + len - suffixlen - 6;
    for (int attempt = 0; attempt < 1000; attempt++) {
        unsigned char r[6];
        if (getrandom(r, sizeof r, 0) != sizeof r)
            return -1;
        for (int i = 0; i < 6; i++)
            x[i] = chars[r[i] % 62];
        if (!shim_begin(AT_FDCWD, tmpl, abs, &g))
            return -2; /* not a mesa path after all */
        int rc;
        if (dir) {
            rc = (int)shim_end(mesa_vfs_mkdir(shim_vfs, abs, 0700), &g);
        } else {
            rc = vopen(abs, NULL, O_RDWR | O_CREAT | O_EXCL | (flags & ~O_ACCMODE), 0600, &g);
        }
        if (rc >= 0 || errno != EEXIST)
            return rc;
    }
    errno = EEXIST;
    return -1;
}

#define TEMP_WRAPPER(name, proto, args, tmpl, suffix, flags)                                       \
    SHIM_API int name proto                                                                        \
    {                                                                                              \
        if (shim_maybe(AT_FDCWD, tmpl)) {                                                          \
            int rc = vtemp(tmpl, suffix, flags, 0);                                                \
            if (rc != -2)                                                                          \
                return rc;                                                                         \
        }                                                                                          \
        return forget(REAL(name) args);                                                            \
    }

TEMP_WRAPPER(mkstemp, (char *t), (t), t, 0, 0)
TEMP_WRAPPER(mkstemp64, (char *t), (t), t, 0, 0)
TEMP_WRAPPER(mkostemp, (char *t, int f), (t, f), t, 0, f)
TEMP_WRAPPER(mkostemp64, (char *t, int f), (t, f), t, 0, f)
TEMP_WRAPPER(mkstemps, (char *t, int s), (t, s), t, s, 0)
TEMP_WRAPPER(mkstemps64, (char *t, int s), (t, s), t, s, 0)
TEMP_WRAPPER(mkostemps, (char *t, int s, int f), (t, s, f), t, s, f)
TEMP_WRAPPER(mkostemps64, (char *t, int s, int f), (t, s, f), t, s, f)

SHIM_API char *mkdtemp(char *tmpl)
{
    if (shim_maybe(AT_FDCWD, tmpl)) {
        int rc = vtemp(tmpl, 0, 0, 1);
        if (rc != -2)
            return rc < 0 ? NULL : tmpl;
    }
    return REAL(mkdtemp)(tmpl);
}

/* ------------------------------------------------------------ truncate */

static int vtruncate(const char *abs, const char *raw, off_t len)
{
    int rc = mesa_vfs_slashed(raw) ? mesa_vfs_want_dir(shim_vfs, abs, 0) : 0;
    return rc < 0 ? rc : mesa_vfs_truncate(shim_vfs, abs, len);
}

SHIM_API int truncate(const char *path, off_t len)
{
    char abs[MESA_PATH_MAX];
    shim_guard_t g;
    if (shim_begin(AT_FDCWD, path, abs, &g))
        return (int)shim_end(vtruncate(abs, path, len), &g);
    return REAL(truncate)(path, len);
}

SHIM_API int truncate64(const char *path, off64_t len)
{
    char abs[MESA_PATH_MAX];
    shim_guard_t g;
    if (shim_begin(AT_FDCWD, path, abs, &g))
        return (int)shim_end(vtruncate(abs, path, (off_t)len), &g);
    return REAL(truncate64)(path, len);
}
