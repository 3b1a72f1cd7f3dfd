/* core/path.h - virtual paths of a mount: /<prefix>/<org>/<repo>/<path>.
 *
 * Lexical normalisation (".", "..", "//") against a (virtual) cwd, the
 * prefix test that every shim wrapper makes first (one string compare for
 * paths outside the mount), the org/repo split, and symlink resolution
 * inside the mount with a loop limit. Inside a repo, ".." never climbs
 * above /<prefix>/<org>/<repo> (the repo root is its own parent, as "/" is).
 * No allocation, no syscalls: callers pass buffers; safe in vfork children.
 */
#ifndef MESA_PATH_H
#define MESA_PATH_H

#include <stddef.h>

#define MESA_PATH_MAX 4096
#define MESA_NAME_MAX 255
#define MESA_SYMLOOP_MAX 40

/* Normalise path (absolute, or relative to cwd, which must be absolute and
 * normalised) into out (outlen bytes). The result is absolute, has no
 * ".", ".." or empty segments and no trailing '/', except "/" itself.
 * ".." at "/" stays at "/"; ".." at a repo root under prefix stays there.
 * prefix may be NULL (no repo clamping). Returns 0, -ENAMETOOLONG (path,
 * cwd or result with its NUL longer than MESA_PATH_MAX or outlen, or a
 * segment longer than MESA_NAME_MAX), -EINVAL (NULL path, relative or NULL
 * cwd for a relative path), -ENOENT (path is "", as the kernel). */
int mesa_path_normalize(const char *prefix, const char *cwd, const char *path, char *out,
                        size_t outlen);

/* Is a normalised absolute path under prefix ("/mesa")? 1 for prefix itself
 * and below ("/mesa", "/mesa/x"), 0 otherwise ("/mesax", "/"). */
int mesa_path_under(const char *prefix, const char *abs);

typedef enum {
    MESA_VP_OUTSIDE = 0, /* not under the prefix */
    MESA_VP_PREFIX,      /* the prefix itself: lists orgs */
    MESA_VP_ORG,         /* /<prefix>/<org>: lists repos */
    MESA_VP_REPO,        /* /<prefix>/<org>/<repo>[/<rel>] */
} mesa_vp_kind_t;

typedef struct mesa_vpath {
    mesa_vp_kind_t kind;
    char org[MESA_NAME_MAX + 1];
    char repo[MESA_NAME_MAX + 1];
    const char *rel; /* points into the input: "" for the repo root, else "a/b" */
} mesa_vpath_t;

/* Split a normalised absolute path. Returns the kind (also in out->kind). */
mesa_vp_kind_t mesa_path_split(const char *prefix, const char *abs, mesa_vpath_t *out);

/* Symlink lookup callback: for the mount path abs (normalised, under the
 * prefix), put the link target in target and return its length if abs is a
 * symlink; return 0 if it exists and is not a symlink; -ENOENT if missing;
 * -ENOTDIR if a parent is not a directory; other negative errno on error. */
typedef int (*mesa_readlink_fn)(void *ctx, const char *abs, char *target, size_t targetlen);

/* Resolve symlinks in a normalised absolute path under the prefix, at most
 * MESA_SYMLOOP_MAX of them (-ELOOP beyond). Every intermediate component is
 * resolved; the last one only if follow_last. Relative targets resolve from
 * the link's directory (clamped at the repo root); absolute targets restart
 * from "/" and may leave the mount (the result is then outside the prefix,
 * for the caller to hand to the real filesystem; resolution stops there).
 * A missing component stops resolution (the rest is appended unresolved):
 * callers that need existence check it on the result. Returns 0 or -errno. */
int mesa_path_resolve(const char *prefix, const char *abs, int follow_last, mesa_readlink_fn fn,
                      void *ctx, char *out, size_t outlen);

#endif
