/* core/vfs_lib.h - shared libraries stored in the mount (DESIGN §6).
 *
 * The dynamic loader opens and maps files with raw system calls, so a
 * library in the mount is loaded from a real path that mirrors its mount
 * path: $RUN/lib/<org>/<repo>/<path>, a symlink to the local file that
 * holds its content (a blob of the cache, a staging file, a file of the
 * local store, or an exec-able copy when those live on a noexec
 * filesystem). The loader keeps the path it opened: dladdr and
 * /proc/self/maps name the mirror, dlopen of the same mount path twice
 * finds the same object by name, and $ORIGIN of a library loaded through
 * the mirror is a mirror directory that maps back to the mount.
 * Callers: the shim's dlopen wrapper (shim/dl.c) and the LD_AUDIT
 * module's resolver (tools/mesafs_ldhelper.c).
 */
#ifndef MESA_VFS_LIB_H
#define MESA_VFS_LIB_H

#include <stddef.h>

#include "vfs.h"

/* The real path to load the mount file at path (absolute, normalised)
 * from, into out: its mirror (content fetched first if the blob is not
 * cached, mirror symlink created or updated), or the local file itself if
 * the mirror cannot be made. A symlink that leads out of the mount gives
 * the real target. 0, or -ENOENT, -ENOTDIR, -EISDIR, -EACCES, -EIO... */
int mesa_vfs_lib_path(mesa_vfs_t *v, const char *path, char *out, size_t outlen);

/* The mount path that a mirror path (a file or directory under $RUN/lib)
 * stands for, into out. -ENOENT if real is not under the mirror. */
int mesa_vfs_lib_origin(const mesa_vfs_t *v, const char *real, char *out, size_t outlen);

#endif
