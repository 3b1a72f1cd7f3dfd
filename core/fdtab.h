/* core/fdtab.h - which real descriptors of this process are mesa files or
 * directories (DESIGN §4): fd -> mount path, keyed by number, checked
 * against the descriptor's st_dev/st_ino before it is trusted (a number
 * closed behind our back, e.g. by fclose's internal close, may be reused).
 * Survives fork as is (plain memory) and exec through mesa_fdtab_export /
 * mesa_fdtab_import (an environment variable). Not thread-safe: the shim
 * serialises calls.
 */
#ifndef MESA_FDTAB_H
#define MESA_FDTAB_H

#include <stddef.h>
#include <sys/types.h>

typedef struct mesa_fdent {
    int fd;
    int is_dir;
    dev_t dev; /* the real descriptor's, at registration */
    ino_t ino;
    char *path; /* mount path */
} mesa_fdent_t;

/* Register fd (fstat'ed now) as path. 0 or -errno. */
int mesa_fdtab_add(int fd, const char *path, int is_dir);
/* The entry of fd if it still describes the same open file (fstat check),
 * else NULL (and a stale entry is dropped). */
const mesa_fdent_t *mesa_fdtab_get(int fd);
/* The entry without the fstat check (for close/dup bookkeeping). */
const mesa_fdent_t *mesa_fdtab_peek(int fd);
void mesa_fdtab_del(int fd);
/* fd `to` now refers to what `from` does (dup*, F_DUPFD). */
void mesa_fdtab_dup(int from, int to);
/* Path from was renamed to to: entries for it or under it follow. */
void mesa_fdtab_rename(const char *from, const char *to);
/* Is the table empty? (the fall-through fast path) */
int mesa_fdtab_empty(void);
/* "fd,dev,ino,d,path;..." of every entry whose descriptor survives exec
 * (no FD_CLOEXEC), into buf. Returns the length, or -ENAMETOOLONG. */
int mesa_fdtab_export(char *buf, size_t len);
/* Load entries exported by the process that exec'ed this one. */
void mesa_fdtab_import(const char *s);
/* Drop every entry (after exec when nothing was exported). */
void mesa_fdtab_clear(void);

#endif
