/* core/treecache.h - flat listings of commits, cached on disk per commit oid.
 *
 * A listing is every path of a commit (files, symlinks, directories) with
 * type, mode, size, blob oid and mtime in ns, sorted by path bytes with '/'
 * ordered before every other byte (so "a/x" < "a-b": a subtree is contiguous,
 * right after its directory; plain strcmp order would break that). It is
 * immutable per commit, so it is written once to <dir>/trees/<commit>
 * (temp + rename, 0444) and shared by every process; readers mmap it and
 * look paths up by binary search without allocating. Directories carry the
 * index just past their subtree, so listing a directory's children costs
 * O(children). A new commit's listing is derived from its predecessor's plus
 * the delta the caller knows (what it pushed, what an event named), not
 * fetched again.
 */
#ifndef MESA_TREECACHE_H
#define MESA_TREECACHE_H

#include <stddef.h>
#include <stdint.h>

enum mesa_ent_type { MESA_ENT_FILE = 1, MESA_ENT_DIR = 2, MESA_ENT_LINK = 3 };

typedef struct mesa_tree_ent {
    const char *path; /* into the mapping, NUL-terminated; "" never appears */
    uint32_t path_len;
    uint8_t type;     /* enum mesa_ent_type */
    uint32_t mode;    /* 0100644, 0100755, 0120000, 040000 */
    uint64_t size;
    char oid[41];     /* hex; the tree oid for directories when known, else "" */
    int64_t mtime_ns;
    uint32_t index;   /* position in the listing */
    uint32_t end;     /* directories: index just past the subtree; others index+1 */
} mesa_tree_ent_t;

typedef struct mesa_tree mesa_tree_t;

/* An entry to build a listing from (input). */
typedef struct mesa_tree_input {
    const char *path;
    uint8_t type;
    uint32_t mode;
    uint64_t size;
    const char *oid; /* hex or "" */
    int64_t mtime_ns;
} mesa_tree_input_t;

/* Open the cached listing of commit under dir: 0, -ENOENT if not cached,
 * -EBADMSG if the file is corrupt. The mapping stays valid until close. */
int mesa_tree_open(const char *dir, const char *commit, mesa_tree_t **out);
/* Write the listing of commit from n entries (any order; sorted here;
 * missing parent directories are added) and open it. 0 or -errno. */
int mesa_tree_build(const char *dir, const char *commit, const mesa_tree_input_t *in, size_t n,
                    mesa_tree_t **out);
void mesa_tree_close(mesa_tree_t *t);

const char *mesa_tree_commit(const mesa_tree_t *t);
uint32_t mesa_tree_count(const mesa_tree_t *t);
/* Entry i (0..count-1). */
void mesa_tree_at(const mesa_tree_t *t, uint32_t i, mesa_tree_ent_t *out);
/* Look up a repo-relative path ("" = the root, answered as a directory
 * with index UINT32_MAX and end = count). 0 or -ENOENT. */
int mesa_tree_lookup(const mesa_tree_t *t, const char *path, mesa_tree_ent_t *out);
/* Iterate the children of directory dir ("" = root): call fn for each in
 * order until it returns non-zero (which is returned). -ENOENT if dir is
 * missing, -ENOTDIR if it is not a directory. */
int mesa_tree_children(const mesa_tree_t *t, const char *dir,
                       int (*fn)(void *ctx, const mesa_tree_ent_t *e), void *ctx);

/* A change to apply to a listing. */
typedef struct mesa_tree_delta {
    enum { MESA_DELTA_UPSERT = 1, MESA_DELTA_DELETE = 2, MESA_DELTA_MKDIR = 3 } kind;
    mesa_tree_input_t ent; /* UPSERT: the new entry; DELETE/MKDIR: path (+mtime for MKDIR) */
} mesa_tree_delta_t;
/* Derive new_commit's listing from base plus n deltas applied in order
 * (DELETE removes a whole subtree; UPSERT creates missing parents), write
 * it and open it. 0 or -errno. */
int mesa_tree_derive(const char *dir, const mesa_tree_t *base, const char *new_commit,
                     const mesa_tree_delta_t *d, size_t n, mesa_tree_t **out);

#endif
