/* core/layout.h - the SDK's layout document (a JSON path map) for
 * `mesarun --layout FILE` and `mesa layout check FILE`.
 *
 * A layout maps absolute workspace paths to repo declarations
 * {"kind":"repo","name","mode":"ro"|"rw","bookmark"?,"changeId"?,"alias"?,
 *  "subPaths"?}; a value may be a list of declarations; subPaths is an
 * object of relative paths (below the declaring mount point) to values of
 * the same shape (docs/DECISIONS.md "Layouts"). mesa_layout_load checks
 * the structure and flattens it into one mount point per path, sorted
 * shortest path first. Nothing here talks to a server.
 */
#ifndef MESA_LAYOUT_H
#define MESA_LAYOUT_H

#include <stddef.h>

#include "path.h"

typedef struct mesa_layout_mount {
    char path[MESA_PATH_MAX]; /* absolute, normalised workspace path */
    char name[101];           /* repo name (the org comes from the client) */
    char alias[101];          /* "alias", or "" */
    int read_only;            /* mode "ro" */
    char bookmark[256];       /* "" when not given */
    char change[101];         /* "changeId", "" when not given */
} mesa_layout_mount_t;

typedef struct mesa_layout {
    mesa_layout_mount_t *m; /* sorted by path length, then path */
    size_t n;
} mesa_layout_t;

/* Read and validate the layout file at file into *out (caller frees with
 * mesa_layout_free). 0, or -1 with err set to "<rule broken> (at <key>)"
 * (errlen bytes). */
int mesa_layout_load(const char *file, mesa_layout_t *out, char *err, size_t errlen);

/* The mount point that path (absolute, normalised) lies in: the longest
 * mount path that equals path or is a parent of it, or NULL. */
const mesa_layout_mount_t *mesa_layout_find(const mesa_layout_t *l, const char *path);

/* The canonical path (<prefix>/<org>/<name>/...) of the workspace path
 * (absolute, normalised) into out: 1, 0 when no mount point holds path,
 * or -ENAMETOOLONG. */
int mesa_layout_canonical(const mesa_layout_t *l, const char *prefix, const char *org,
                          const char *path, char *out, size_t outlen);

/* The workspace path of a canonical path (the first mount point of its
 * repo) into out: 1, 0 when the repo is not in the layout, or
 * -ENAMETOOLONG. */
int mesa_layout_workspace(const mesa_layout_t *l, const char *prefix, const char *org,
                          const char *canon, char *out, size_t outlen);

/* The layout as the shim reads it (MESA_LAYOUT): "<path> TAB
 * <prefix>/<org>/<name> LF" per mount point, after a first line "!hide"
 * when the canonical tree is not shown to programs (mesarun without
 * --prefix). malloc'd; NULL on ENOMEM. */
char *mesa_layout_export(const mesa_layout_t *l, const char *prefix, const char *org,
                         int hide_canonical);

void mesa_layout_free(mesa_layout_t *l);

#endif
