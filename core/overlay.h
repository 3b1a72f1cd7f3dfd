/* core/overlay.h - the mount's local view of namespace changes, computed by
 * replaying the journal (docs/MOUNT.md "overlay").
 *
 * Per slot, path -> entry. Lookup answers from the nearest entry for the
 * path or an ancestor: a file (content in a staging file, or a tree blob it
 * was renamed or chmod'ed from), a directory (opaque, or merged with a tree
 * directory it came from: `origin`), a symlink, or a whiteout (deleted);
 * with no entry the tree answers, possibly at another path when an ancestor
 * directory was renamed. Records are assumed valid: the shim checks a call
 * against the current view (EEXIST, ENOTEMPTY...) before it journals it.
 *
 * The overlay also tracks which paths became dirty since a mark, so the
 * pusher can turn them into one batch of file operations.
 * Not thread-safe: one overlay per process, used under the caller's lock.
 */
#ifndef MESA_OVERLAY_H
#define MESA_OVERLAY_H

#include <stddef.h>
#include <stdint.h>

#include "journal.h"

typedef struct mesa_overlay mesa_overlay_t;

typedef enum {
    MESA_OV_NONE = 0, /* no entry: look the path up in the tree (at tree_path) */
    MESA_OV_FILE,     /* regular file */
    MESA_OV_DIR,      /* directory */
    MESA_OV_LINK,     /* symlink */
    MESA_OV_DELETED,  /* whiteout: does not exist */
} mesa_ov_kind_t;

typedef struct mesa_ov_ent {
    mesa_ov_kind_t kind;
    const char *staging_id; /* FILE: local content in staging/<id>; NULL: content is
                             * the tree's at `origin` */
    const char *origin;     /* FILE without staging, or DIR merged with a tree dir:
                             * the tree path it comes from; NULL for an opaque DIR.
                             * FILE with staging: the tree path whose exec bit
                             * applies while exec is -1 (NULL: a new file).
                             * NONE: the tree path of a renamed, chmod'ed or touched
                             * tree object whose type the journal does not say
                             * (NULL: no entry, the path is untouched) */
    const char *target;     /* LINK */
    int exec;               /* FILE: 1/0, or -1 = as at origin; NONE: a chmod's
                             * override for a tree file, -1 if none */
    int64_t mtime_ns;       /* 0 = as at origin (or unknown); NONE: an mtime
                             * override from utimes, 0 if none */
} mesa_ov_ent_t;

mesa_overlay_t *mesa_overlay_new(void);
void mesa_overlay_free(mesa_overlay_t *ov);

/* Apply one journal record. 0, -ENOMEM, -EINVAL (unknown type). An EPOCH
 * record clears the slot's entries and dirty set. */
int mesa_overlay_apply(mesa_overlay_t *ov, const mesa_jrec_t *r);

/* The view of slot/path ("" = the repo root). Strings in *out are valid
 * until the next apply. For MESA_OV_NONE, tree_path (n bytes) receives the
 * path to look up in the commit's tree (path itself unless an ancestor was
 * renamed). 0, or -ENAMETOOLONG. */
int mesa_overlay_lookup(const mesa_overlay_t *ov, unsigned slot, const char *path,
                        mesa_ov_ent_t *out, char *tree_path, size_t n);

/* The overlay's direct children of directory dir in slot (including
 * whiteouts, which hide tree children), in no particular order, until fn
 * returns non-zero. *origin (may be NULL) receives the tree directory whose
 * children are merged in (NULL: opaque or absent; the tree path of dir
 * itself when no entry exists for it or an ancestor; valid until the next
 * call on ov). Children of kind NONE exist as in the tree at e->origin. */
int mesa_overlay_children(const mesa_overlay_t *ov, unsigned slot, const char *dir,
                          int (*fn)(void *ctx, const char *name, const mesa_ov_ent_t *e),
                          void *ctx, const char **origin);

/* Dirty tracking for the pusher: every path whose view changed since the
 * last mesa_overlay_clear_dirty (a renamed directory makes its old and new
 * path dirty; the pusher expands them with the tree). Calls fn(ctx, path)
 * for each dirty path of slot in sorted order. */
int mesa_overlay_dirty(const mesa_overlay_t *ov, unsigned slot,
                       int (*fn)(void *ctx, const char *path), void *ctx);
void mesa_overlay_clear_dirty(mesa_overlay_t *ov, unsigned slot);

#endif
