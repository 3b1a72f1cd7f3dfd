/* core/fsutil.h - small file-system helpers shared by core, the tools and the
 * server: full writes, mkdir -p, and publishing a file atomically (temp file,
 * fsync, rename) so a reader sees all of it or none. Return 0 or -errno.
 */
#ifndef MESA_FSUTIL_H
#define MESA_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* write(2) until all len bytes are written (EINTR-safe). */
int mesa_write_all(int fd, const void *buf, size_t len);
/* mkdir -p: missing parents with 0755, the last component with mode. */
int mesa_mkdirs(const char *path, mode_t mode);
/* Write data to a new temp file "<tmpdir>/<tag>.<pid>.XXXXXX" (its name into
 * tmp, PATH_MAX bytes) with mode, and fsync it. 0, or -errno with nothing
 * left behind. */
int mesa_stage_file(const char *tmpdir, const char *tag, const void *data, size_t len,
                    mode_t mode, char *tmp);
/* Write data to a new temp file "<tmpdir>/<tag>.<pid>.XXXXXX", give it mode,
 * fsync it, and rename it to dst (whose directory must exist). The
 * directory is not fsync'ed: callers are caches, refetched after a crash. */
int mesa_publish(const char *tmpdir, const char *tag, const void *data, size_t len, mode_t mode,
                 const char *dst);

#endif
