/* core/vfs_int.h - internals shared by core/vfs*.c (not a public header). */
#ifndef MESA_VFS_INT_H
#define MESA_VFS_INT_H

#include "blobcache.h"
#include "client.h"
#include "gitignore.h"
#include "journal.h"
#include "overlay.h"
#include "state.h"
#include "treecache.h"
#include "vfs.h"

#include <limits.h>

typedef struct vslot {
    mesa_state_repo_t r;      /* as last read from the state file */
    mesa_tree_t *tree;        /* listing of r.commit (NULL until loaded) */
    mesa_tree_t *base;        /* listing of r.base_commit */
    mesa_ignore_t *ig;        /* NULL: to rebuild */
    char local[PATH_MAX];     /* the local store of ignored files */
} vslot_t;

struct mesa_vfs {
    char prefix[256];
    size_t plen;
    char run[PATH_MAX - 64];
    char cache[PATH_MAX - 512];
    char url[1024];
    char *token;
    int push_ignored;
    int sandboxed; /* MESA_SANDBOX=1: the server is mesarun's proxy, the caches read-only */
    dev_t dev;
    int64_t t0; /* the mount's start: mtime of directories git has none for */
    mesa_state_t *st;
    uint64_t gen;
    int gen_valid;
    int jfd;           /* journal, O_WRONLY|O_APPEND */
    dev_t jdev;        /* the journal's identity, to notice a closed descriptor */
    ino_t jino;
    int lockfd;        /* journal, for flock: per process */
    pid_t lockpid;
    mesa_journal_reader_t *jr;
    mesa_overlay_t *ov;
    size_t nslots;
    vslot_t slot[MESA_STATE_MAX_REPOS];
    mesa_blobcache_t *bc;
    mesa_client_t *cl;
    int expired_said;
};

/* Bring the view up to date: state generation, journal records. */
int vfs_sync(mesa_vfs_t *v);
/* Take / release the mount's journal lock (namespace changes). */
int vfs_lock(mesa_vfs_t *v);
void vfs_unlock(mesa_vfs_t *v);
/* Append a record for slot and apply it to this process's overlay. */
int vfs_append(mesa_vfs_t *v, int slot, mesa_jtype_t type, int64_t mtime, const char *arg,
               const char *rel);
/* The listing of a slot's commit (or base), loaded on demand. */
mesa_tree_t *vfs_tree(mesa_vfs_t *v, int slot, int base);
/* Is rel (in slot) ignored (stays local)? */
int vfs_ignored(mesa_vfs_t *v, int slot, const char *rel, int is_dir);
/* The client (created on first use). NULL on failure. */
mesa_client_t *vfs_client(mesa_vfs_t *v);
/* The slot of a mount path inside a repo (*rel into path), or -1. */
int vfs_slot_of(const mesa_vfs_t *v, const char *path, const char **rel);
/* Fetch a directory's missing small blobs in one batch (best effort). */
void vfs_prefetch_dir(mesa_vfs_t *v, int slot, const char *dir);
/* Make the blob present in the cache; its path in out. */
int vfs_blob(mesa_vfs_t *v, int slot, const char *oid, char *out, size_t outlen);
/* The staging path of id. */
void vfs_staging_path(const mesa_vfs_t *v, const char *id, char *out, size_t outlen);
/* The local-store path of slot/rel. */
int vfs_local_path(const mesa_vfs_t *v, int slot, const char *rel, char *out, size_t outlen);
/* real, a path in the mirror $RUN<sub> of the mount tree (sub: "/cwd" for
 * the placeholders, "/lib" for libraries), as the mount path it mirrors.
 * 0, -ENOENT if real is not in it, -ENAMETOOLONG. */
int vfs_from_mirror(const mesa_vfs_t *v, const char *sub, const char *real, char *out,
                    size_t outlen);
/* Map an API error to errno, saying once per process when the token expired. */
int vfs_api_error(mesa_vfs_t *v, int rc, const mesa_error_t *e);
int64_t vfs_now_ns(void);

#endif
