/* core/state.h - the mount's shared state file (docs/MOUNT.md "state").
 *
 * One fixed-size file, mapped MAP_SHARED by every process of a mount: a
 * header with a generation counter and the journal offset the pusher has
 * acknowledged, then one slot per mounted repo (org, repo, bookmark, change
 * id, commit oid, flags). Readers check for news with one atomic load of the
 * generation and read a slot consistently through its seqlock; writers (the
 * pusher, the event follower, `mesa change new|edit`) exclude each other per
 * slot with a compare-and-swap on the slot's sequence counter. No locks are
 * held across calls, nothing allocates after open: usable from the shim,
 * including in signal handlers and vfork children (read-only there).
 */
#ifndef MESA_STATE_H
#define MESA_STATE_H

#include <stddef.h>
#include <stdint.h>

#define MESA_STATE_MAX_REPOS 64
#define MESA_STATE_RO 1u /* the repo is mounted read-only */

typedef struct mesa_state mesa_state_t;

typedef struct mesa_state_repo {
    char org[101];
    char repo[101];
    char bookmark[256]; /* "" when the mount is pinned to a change */
    char change_id[33];
    char commit[41];
    char base_commit[41]; /* where the slot's epoch started: the overlay's tree
                           * references (renamed or chmod'ed tree objects) point
                           * into this commit's tree; "" at create = commit */
    uint32_t flags;       /* MESA_STATE_RO */
    char mount_key[258];  /* output: "b-<bookmark>" or "c-<change id>" as mounted at
                           * create (never changes): names the local store of
                           * ignored files, which survives change switches */
} mesa_state_repo_t;

/* The local-store key of a slot as mounted: "b-<bookmark>" or
 * "c-<change id>", '/' and '%' escaped as %2F and %25 (one path segment). */
void mesa_state_mount_key(const mesa_state_repo_t *r, char *out, size_t len);

/* Create the file at path (mode 0600, written to a temp file then renamed)
 * with n (1..MESA_STATE_MAX_REPOS) slots. 0 or -errno (-EINVAL for n). */
int mesa_state_create(const char *path, const mesa_state_repo_t *repos, size_t n);
/* Map an existing state file read-write; read-only if this process may not
 * write it (in `mesarun --sandbox`: then set and set_epoch fail with
 * -EROFS and set_acked does nothing). -EBADMSG if it is not one. */
int mesa_state_open(const char *path, mesa_state_t **out);
void mesa_state_close(mesa_state_t *s);

size_t mesa_state_count(const mesa_state_t *s);
/* Slot index of org/repo, or -ENOENT. */
int mesa_state_find(const mesa_state_t *s, const char *org, const char *repo);
/* A consistent copy of slot i (retries while a writer is active). 0 or
 * -EINVAL for a bad index. */
int mesa_state_get(const mesa_state_t *s, size_t i, mesa_state_repo_t *out);
/* Set slot i's change id and commit (and bookmark, unless NULL), then bump
 * the generation. 0 or -EINVAL. */
int mesa_state_set(mesa_state_t *s, size_t i, const char *change_id, const char *commit,
                   const char *bookmark);

/* Start a new epoch (the mount switched change, docs/MOUNT.md "E"): set
 * change id and commit, and make commit the epoch's base. 0 or -EINVAL. */
int mesa_state_set_epoch(mesa_state_t *s, size_t i, const char *change_id, const char *commit);

/* Every set and set_epoch made by this process calls fn(ctx, slot,
 * change_id, commit) afterwards (from the setting thread). mesarun's
 * sandbox proxy learns the commits the mount has been at this way, not
 * from the file, which the sandbox could write. NULL: none. Set before
 * threads start. */
typedef void (*mesa_state_observer_t)(void *ctx, size_t slot, const char *change_id,
                                      const char *commit);
void mesa_state_observe(mesa_state_observer_t fn, void *ctx);

/* Changes whenever any slot or the acknowledged offset changes. */
uint64_t mesa_state_generation(const mesa_state_t *s);
/* Journal offset up to which every operation is acknowledged by the server. */
uint64_t mesa_state_acked(const mesa_state_t *s);
/* Raise the acknowledged offset (never lowers it), bump the generation and
 * wake mesa_state_wait_acked() callers in every process (futex). */
void mesa_state_set_acked(mesa_state_t *s, uint64_t off);
/* Wait until the acknowledged offset is >= off or timeout_ms passes (-1:
 * no limit). 0 when reached, -ETIMEDOUT, -EINTR. */
int mesa_state_wait_acked(mesa_state_t *s, uint64_t off, int timeout_ms);

#endif
