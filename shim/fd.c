/* shim/fd.c - descriptor bookkeeping (close, fclose, close_range,
 * closefrom, dup*, fcntl F_DUPFD*) and the calls that act on a mesa
 * descriptor's path: fsync and friends (the durability point, DESIGN §3),
 * fchmod, fchown, futimens.
 * The data calls (read, write, mmap, lseek...) are not wrapped: the
 * descriptors are real.
 */
#include "config.h"
#include "shim.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define SYNC_TIMEOUT_MS 60000

SHIM_API int close(int fd)
{
    WITH_TABLE(mesa_fdtab_del(fd));
    return REAL(close)(fd);
}

SHIM_API int fclose(FILE *f)
{
    if (f) {
        int fd = fileno(f);
        WITH_TABLE(mesa_fdtab_del(fd));
    }
    return REAL(fclose)(f);
}

int close_range(unsigned lo, unsigned hi, int flags);
SHIM_API int close_range(unsigned lo, unsigned hi, int flags)
{
    if (!(flags & 4 /* CLOSE_RANGE_CLOEXEC */))
        WITH_TABLE(for (unsigned i = lo; i <= hi && i < 65536; i++) mesa_fdtab_del((int)i));
    return REAL(close_range)(lo, hi, flags);
}

void closefrom(int lo);
SHIM_API void closefrom(int lo)
{
    WITH_TABLE(for (int i = lo < 0 ? 0 : lo; i < 65536; i++) mesa_fdtab_del(i));
    REAL(closefrom)(lo);
}

SHIM_API int dup(int fd)
{
    int r = REAL(dup)(fd);
    if (r >= 0)
        WITH_TABLE(mesa_fdtab_dup(fd, r));
    return r;
}

SHIM_API int dup2(int fd, int to)
{
    int r = REAL(dup2)(fd, to);
    if (r >= 0)
        WITH_TABLE(mesa_fdtab_dup(fd, r));
    return r;
}

SHIM_API int dup3(int fd, int to, int flags)
{
    int r = REAL(dup3)(fd, to, flags);
    if (r >= 0)
        WITH_TABLE(mesa_fdtab_dup(fd, r));
    return r;
}

static int do_fcntl(int (*real)(int, int, ...), int fd, int cmd, va_list ap)
{
    unsigned long arg = va_arg(ap, unsigned long);
    int r = real(fd, cmd, arg);
    if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))
        WITH_TABLE(mesa_fdtab_dup(fd, r));
    return r;
}

SHIM_API int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    int r = do_fcntl(REAL(fcntl), fd, cmd, ap);
    va_end(ap);
    return r;
}

int fcntl64(int fd, int cmd, ...);
SHIM_API int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    int r = do_fcntl(REAL(fcntl64), fd, cmd, ap);
    va_end(ap);
    return r;
}

/* ------------------------------------------------------------ sync */

/* Wait until a mesa descriptor's file is acknowledged by the server. */
static int vsync(int fd)
{
    const mesa_fdent_t *e;
    shim_guard_t g;
    char link[64], real[PATH_MAX];
    if (!shim_begin_fd(fd, &e, &g))
        return 0;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, real, sizeof real - 1);
    real[n > 0 ? n : 0] = '\0';
    char staging[PATH_MAX];
    snprintf(staging, sizeof staging, "%s/staging/", mesa_vfs_run(shim_vfs));
    if (n <= 0 || strncmp(real, staging, strlen(staging)) != 0)
        return (int)shim_end(0, &g); /* not a staged file: nothing to push */
    shim_unlock(&g); /* the wait must not hold the lock */
    int rc = 0;
    if (shim_lock(&g) == 0) {
        rc = mesa_vfs_sync(shim_vfs, real, SYNC_TIMEOUT_MS);
        shim_unlock(&g);
    }
    if (rc < 0) {
        errno = rc == -ETIMEDOUT ? EIO : -rc;
        return -1;
    }
    return 0;
}

SHIM_API int fsync(int fd)
{
    int r = REAL(fsync)(fd);
    return r < 0 ? r : vsync(fd);
}

SHIM_API int fdatasync(int fd)
{
    int r = REAL(fdatasync)(fd);
    return r < 0 ? r : vsync(fd);
}

static void sync_all(void)
{
    shim_guard_t g;
    if (shim_on() && shim_lock(&g) == 0) {
        mesa_vfs_sync(shim_vfs, NULL, SYNC_TIMEOUT_MS);
        shim_unlock(&g);
    }
}

SHIM_API void sync(void)
{
    REAL(sync)();
    sync_all();
}

SHIM_API int syncfs(int fd)
{
    int r = REAL(syncfs)(fd);
    const mesa_fdent_t *e;
    shim_guard_t g;
    if (r == 0 && shim_begin_fd(fd, &e, &g)) {
        shim_unlock(&g);
        sync_all();
    }
    return r;
}

/* ------------------------------------------------------------ by path */

/* Copy the entry's path out and run fn on it under the lock. */
#define FD_PATH_CALL(fd, call, real_call)                                                          \
    do {                                                                                           \
        const mesa_fdent_t *e;                                                                     \
        shim_guard_t g;                                                                            \
        if (shim_begin_fd(fd, &e, &g)) {                                                           \
            char abs[MESA_PATH_MAX];                                                               \
            snprintf(abs, sizeof abs, "%s", e->path);                                              \
            return (int)shim_end(call, &g);                                                        \
        }                                                                                          \
        return real_call;                                                                          \
    } while (0)

SHIM_API int fchmod(int fd, mode_t mode)
{
    FD_PATH_CALL(fd, mesa_vfs_chmod(shim_vfs, abs, mode, 1), REAL(fchmod)(fd, mode));
}

static int own_ids(uid_t u, gid_t g)
{
    return (u == (uid_t)-1 || u == getuid()) && (g == (gid_t)-1 || g == getgid()) ? 0 : -EPERM;
}

SHIM_API int fchown(int fd, uid_t u, gid_t gr)
{
    FD_PATH_CALL(fd, ((void)abs, own_ids(u, gr)), REAL(fchown)(fd, u, gr));
}

SHIM_API int futimens(int fd, const struct timespec ts[2])
{
    FD_PATH_CALL(fd, mesa_vfs_utimens(shim_vfs, abs, ts, 1), REAL(futimens)(fd, ts));
}

SHIM_API int futimes(int fd, const struct timeval tv[2])
{
    struct timespec ts[2];
    if (tv) {
        ts[0].tv_sec = tv[0].tv_sec, ts[0].tv_nsec = tv[0].tv_usec * 1000;
        ts[1].tv_sec = tv[1].tv_sec, ts[1].tv_nsec = tv[1].tv_usec * 1000;
    }
    FD_PATH_CALL(fd, mesa_vfs_utimens(shim_vfs, abs, tv ? ts : NULL, 1), REAL(futimes)(fd, tv));
}
