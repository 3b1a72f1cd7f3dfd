/* core/pusher.h - group commit of a mount's local writes (docs/MOUNT.md
 * "pusher"; DESIGN §3).
 *
 * The pusher replays the mount's journal into its own overlay, learns from
 * the caller which staging files were closed (inotify IN_CLOSE_WRITE in
 * mesarun, or a rescan at drain), and sends each slot's pending paths as one
 * PATCH with base_commit_oid and per-file mtime_ns. On 200 the slot's state
 * moves to the new commit; on 409 STALE_BASE it re-reads the change and
 * sends the same pending set on top; on the root change it creates a change
 * on top of the root and moves the mounted bookmark there. Pending paths
 * are dropped only once a batch containing them is acknowledged.
 * Used by one thread (mesarun's pusher, or mesa push-pending).
 */
#ifndef MESA_PUSHER_H
#define MESA_PUSHER_H

#include <stddef.h>
#include <stdint.h>

#include "client.h"

typedef struct mesa_pusher mesa_pusher_t;

typedef struct mesa_pusher_opts {
    const char *run_dir;   /* the mount's runtime directory: state, journal, staging/ */
    const char *cache_dir; /* tree listings (<cache>/trees); NULL = run_dir */
    mesa_client_t *client; /* carries the mount's token */
    void (*log)(void *ctx, const char *line); /* one line per push (-v); may be NULL */
    void *log_ctx;
    /* the author of the commits the pushes make (NULL: the server's
     * default); the committer is the identity of the token's key */
    const char *author_name, *author_email;
} mesa_pusher_opts_t;

/* 0 or -errno (the state file and journal must exist). */
int mesa_pusher_new(const mesa_pusher_opts_t *o, mesa_pusher_t **out);
void mesa_pusher_free(mesa_pusher_t *p);

/* For a pusher started on a mount that pushed before (mesa push-pending):
 * replay the journal up to the acknowledged offset recorded in the state
 * file without marking anything pending. Call once, before the first poll. */
int mesa_pusher_resume(mesa_pusher_t *p);

/* Replay journal records appended since the last call. 0 or -errno. */
int mesa_pusher_poll(mesa_pusher_t *p);
/* A staging file was closed after writing (its content is due). */
void mesa_pusher_closed(mesa_pusher_t *p, const char *staging_id);
/* Treat every staging file as closed (drain: no writer is left). */
void mesa_pusher_all_closed(mesa_pusher_t *p);

/* Send one batch per slot that has due changes. Returns the number of
 * batches acknowledged, or a negative errno (the pending set is kept; e
 * says why). */
int mesa_pusher_push(mesa_pusher_t *p, mesa_error_t *e);

/* mesarun's pusher loop: watch staging/ for closed files (inotify
 * IN_CLOSE_WRITE), replay the journal, push what is due; wake at least
 * every interval_ms; retry failed pushes with backoff (nothing is dropped;
 * opts.log hears of each failure). Start it before the mount's processes:
 * a close before the watch exists is only caught by the drain. Returns 0
 * once *stop is non-zero, or a negative errno if the watch cannot be set up. */
int mesa_pusher_run(mesa_pusher_t *p, volatile int *stop, int interval_ms);

/* 1 while mesa_pusher_push runs (a commit of this mount may be on its way
 * to the state file): an event follower in the same process waits for it
 * only then. Thread-safe. */
int mesa_pusher_inflight(const mesa_pusher_t *p);

/* End mesa_pusher_run's current wait at once (after setting *stop, so
 * that mesarun does not wait out the interval). Thread-safe. */
void mesa_pusher_wake(mesa_pusher_t *p);

/* The final drain, once no process of the mount is left: replay the
 * journal, treat every staging file as closed, push until nothing is
 * pending (at most max_rounds batches per repo). 0, or a negative errno
 * with e filled; what is still pending stays listed by mesa_pusher_pending. */
int mesa_pusher_drain(mesa_pusher_t *p, int max_rounds, mesa_error_t *e);

/* Paths still pending ("org/repo/path"), via fn; the count is returned. */
size_t mesa_pusher_pending(const mesa_pusher_t *p, void (*fn)(void *ctx, const char *path),
                           void *ctx);

#endif
