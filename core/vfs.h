/* core/vfs.h - one process's view of its mount (DESIGN §3-§5, docs/MOUNT.md).
 *
 * The shim's wrappers call these functions for paths under the prefix: a
 * path becomes a vnode (what it is and which real file backs it) from the
 * shared state file, the journal replayed into an overlay, the commit's tree
 * listing, and the local store of ignored files; namespace changes are
 * checked against that view and appended to the journal under the mount's
 * journal lock. Data never goes through here: open returns a real
 * descriptor (blob cache file, staging file, local file, or a placeholder
 * directory). All functions take absolute, normalised mount paths and
 * return 0 (or a descriptor) or a negative errno.
 * Not thread-safe and not reentrant: the shim serialises calls.
 */
#ifndef MESA_VFS_H
#define MESA_VFS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "path.h"

typedef struct mesa_vfs mesa_vfs_t;

/* Where a vnode's content lives. */
typedef enum {
    MESA_VW_VIRT = 1, /* the prefix, an org, a repo root without a listing */
    MESA_VW_TREE,     /* a clean blob (or a tree directory) of the commit */
    MESA_VW_STAGE,    /* a staging file of the mount */
    MESA_VW_OVL,      /* a directory or symlink that exists in the overlay only */
    MESA_VW_LOCAL,    /* the local store (ignored paths) */
} mesa_vwhere_t;

typedef struct mesa_vnode {
    char path[MESA_PATH_MAX]; /* the mount path (after resolving symlinks) */
    int slot;                 /* -1 for the prefix and org directories */
    const char *rel;          /* into path: repo-relative, "" for the root */
    mesa_vwhere_t where;
    mode_t mode;      /* S_IFREG|0644/0755, S_IFDIR|0755, S_IFLNK|0777 */
    uint64_t size;
    int64_t mtime_ns;
    char oid[41];     /* TREE files: the blob id */
    char real[MESA_PATH_MAX]; /* STAGE/LOCAL: the backing path */
    char target[MESA_PATH_MAX]; /* symlinks: the target */
} mesa_vnode_t;

/* From the mount's variables (MESA_MOUNT, MESA_CACHE, MESA_PREFIX,
 * MESA_URL, MESA_ACCESS_TOKEN, MESA_PUSH_IGNORED), read with get (getenv,
 * or the shim's copy from start-up: a program may have cleared its
 * environment since). NULL if this process is not in a mount, or on
 * failure. No network, no threads, no output. */
mesa_vfs_t *mesa_vfs_open_env(const char *(*get)(const char *name));
void mesa_vfs_close(mesa_vfs_t *v);
/* After fork in the child: descriptors that must not be shared (the
 * journal lock) are reopened on next use. */
void mesa_vfs_atfork_child(mesa_vfs_t *v);

const char *mesa_vfs_prefix(const mesa_vfs_t *v);
const char *mesa_vfs_run(const mesa_vfs_t *v);

/* mesa_path_normalize, except that ".." is resolved the way the kernel
 * does: after a symlink it climbs from the link's target, after a file it
 * is ENOTDIR (paths without ".." cost nothing more). */
int mesa_vfs_normalize(mesa_vfs_t *v, const char *cwd, const char *path, char *out, size_t len);

/* Look path up. follow: resolve a final symlink. */
int mesa_vfs_lookup(mesa_vfs_t *v, const char *path, int follow, mesa_vnode_t *out);
/* stat of a vnode, as a kernel filesystem would answer. */
int mesa_vfs_stat(mesa_vfs_t *v, const mesa_vnode_t *n, struct stat *st);
/* access(2) mode check on path (F_OK, R_OK, W_OK, X_OK). */
int mesa_vfs_access(mesa_vfs_t *v, const char *path, int mode, int follow);

/* fstat(2) of descriptor fd, opened as path: what stat of path answers
 * while path still names fd's file; else (path unlinked, or replaced)
 * fd's own file in the mount's terms, with no links if path is gone. */
int mesa_vfs_fstat(mesa_vfs_t *v, const char *path, int fd, struct stat *st);
/* Was path written with a trailing slash (or "/.")? Then, as in a kernel,
 * it must name a directory: mesa_vfs_want_dir is 0 if it does (a final
 * symlink followed), -ENOTDIR if it names something else, and if nothing
 * -EISDIR for a caller that would create a file (creat), else -ENOENT. */
int mesa_vfs_slashed(const char *path);
int mesa_vfs_want_dir(mesa_vfs_t *v, const char *path, int creat);

/* open(2): a real descriptor for path with the caller's flags. *is_dir set
 * when it is a directory (a placeholder). */
int mesa_vfs_open(mesa_vfs_t *v, const char *path, int flags, mode_t mode, int *is_dir);
/* The placeholder directory that mirrors mount directory path (created). */
int mesa_vfs_placeholder(mesa_vfs_t *v, const char *path, char *out, size_t outlen);
/* The mount path a placeholder path mirrors, or -ENOENT if real is not one. */
int mesa_vfs_from_placeholder(const mesa_vfs_t *v, const char *real, char *out, size_t outlen);

int mesa_vfs_mkdir(mesa_vfs_t *v, const char *path, mode_t mode);
int mesa_vfs_rmdir(mesa_vfs_t *v, const char *path);
int mesa_vfs_unlink(mesa_vfs_t *v, const char *path);
int mesa_vfs_rename(mesa_vfs_t *v, const char *from, const char *to, unsigned flags);
int mesa_vfs_symlink(mesa_vfs_t *v, const char *target, const char *path);
int mesa_vfs_readlink(mesa_vfs_t *v, const char *path, char *buf, size_t len);
int mesa_vfs_chmod(mesa_vfs_t *v, const char *path, mode_t mode, int follow);
/* times as utimensat(2) (NULL = now; UTIME_NOW/UTIME_OMIT honoured). */
int mesa_vfs_utimens(mesa_vfs_t *v, const char *path, const struct timespec times[2],
                     int follow);
int mesa_vfs_truncate(mesa_vfs_t *v, const char *path, off_t len);

/* A directory listing: names with d_type and inode. */
typedef struct mesa_dirent {
    char *name;
    unsigned char type; /* DT_REG, DT_DIR, DT_LNK */
    uint64_t ino;
} mesa_dirent_t;
/* The merged listing of directory path ("." and ".." first). *out is
 * malloc'd (free with mesa_vfs_list_free). */
int mesa_vfs_list(mesa_vfs_t *v, const char *path, mesa_dirent_t **out, size_t *n);
void mesa_vfs_list_free(mesa_dirent_t *d, size_t n);

/* fsync of a staging file: make it due, wait until the mount's pusher has
 * acknowledged it (at most timeout_ms). */
int mesa_vfs_sync(mesa_vfs_t *v, const char *staging_real, int timeout_ms);

/* exec of a mount file: how to run it. A binary: *real = a copy with mode
 * 0755 on an exec-able filesystem, argv unchanged (*script = 0). A "#!"
 * script: *real = its interpreter (a real path), interp_arg = the optional
 * argument or "", *script = 1: run real [interp_arg] path argv[1..]. */
int mesa_vfs_exec_plan(mesa_vfs_t *v, const char *path, char *real, size_t reallen,
                       char *interp_arg, size_t arglen, int *script);

/* Extended attributes (core/vfs_meta.c): user.* names are the server's
 * per-path metadata (user.org, user.repo read-only: -EPERM to change);
 * other namespaces -ENOTSUP. follow: resolve a final symlink. get and
 * list answer the size (copied into buf when size > 0, -ERANGE when it
 * does not fit); set takes XATTR_CREATE (-EEXIST) / XATTR_REPLACE
 * (-ENODATA); remove of a missing name is -ENODATA. */
ssize_t mesa_vfs_getxattr(mesa_vfs_t *v, const char *path, int follow, const char *name,
                          void *buf, size_t size);
ssize_t mesa_vfs_listxattr(mesa_vfs_t *v, const char *path, int follow, char *buf, size_t size);
int mesa_vfs_setxattr(mesa_vfs_t *v, const char *path, int follow, const char *name,
                      const void *val, size_t size, int flags);
int mesa_vfs_removexattr(mesa_vfs_t *v, const char *path, int follow, const char *name);
/* After a rename in the mount: the server moves from's metadata (and its
 * subtree's) to to. Best effort: a failure leaves it where it was. */
void mesa_vfs_meta_moved(mesa_vfs_t *v, const char *from, const char *to);

/* The inode number the mount reports for path (stable hash). */
uint64_t mesa_vfs_ino(const char *path);
dev_t mesa_vfs_dev(const mesa_vfs_t *v);

#endif
