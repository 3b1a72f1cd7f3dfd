/* core/fsutil.c - full writes, mkdir -p, atomic publish (see fsutil.h).
 * Called by the caches (blobcache.c, treecache.c), embedded.c and mesad.
 */
#include "config.h"
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int mesa_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int mesa_mkdirs(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof buf)
        return -ENAMETOOLONG;
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, mode) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

int mesa_stage_file(const char *tmpdir, const char *tag, const void *data, size_t len,
                    mode_t mode, char *tmp)
{
    int n = snprintf(tmp, PATH_MAX, "%s/%s.%ld.XXXXXX", tmpdir, tag, (long)getpid());
    if (n < 0 || n >= PATH_MAX)
        return -ENAMETOOLONG;
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = mesa_write_all(fd, data, len);
    if (rc == 0 && fchmod(fd, mode) != 0)
        rc = -errno;
    while (rc == 0 && fsync(fd) != 0)
        rc = errno == EINTR ? 0 : -errno;
    if (close(fd) != 0 && errno != EINTR && rc == 0) /* EINTR still closed it */
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    return rc;
}

int mesa_publish(const char *tmpdir, const char *tag, const void *data, size_t len, mode_t mode,
                 const char *dst)
{
    char tmp[PATH_MAX];
    int rc = mesa_stage_file(tmpdir, tag, data, len, mode, tmp);
    if (rc == 0 && rename(tmp, dst) != 0) {
        rc = -errno;
        unlink(tmp);
    }
    return rc;
}
