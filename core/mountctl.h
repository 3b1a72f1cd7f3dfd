/* core/mountctl.h - acting on a running mount from outside its processes'
 * shim: `mesa change new|edit` inside a mesarun session switch a slot to
 * another change (DESIGN §3: "first drains the pusher, so no write lands
 * in the wrong change").
 */
#ifndef MESA_MOUNTCTL_H
#define MESA_MOUNTCTL_H

#include "client.h"
#include "state.h"

/* What mesa_mount_switch waits for, without switching: -EBUSY while a
 * process holds a file of the mount at run open for writing, else wait
 * until every journaled write is acknowledged (-ETIMEDOUT after
 * timeout_ms). 0 or -errno with e filled. */
int mesa_mount_drain(const char *run, int timeout_ms, mesa_error_t *e);

/* Switch slot of the mount at run to change/commit; bookmark becomes the
 * slot's bookmark ("" = pinned to the change). Under the mount's journal
 * lock (no namespace change can start meanwhile): wait until every
 * journaled write is acknowledged (at most timeout_ms; -ETIMEDOUT if some
 * stay pending, e.g. a file still open for writing: nothing is switched),
 * refuse (-EBUSY) while a process holds a staging file open for writing
 * (a write it closes later would belong to no change), put commit's
 * listing in cache/trees, start the new epoch in the state file, append
 * the E record. 0 or -errno with e filled. */
int mesa_mount_switch(const char *run, const char *cache, mesa_client_t *c, int slot,
                      const char *change, const char *commit, const char *bookmark,
                      int timeout_ms, mesa_error_t *e);

/* What mesa_mount_switch_with switches to: called once, under the lock,
 * after the quiesce, with the slot as it is then (its commit includes
 * every write of the mount). It fills change, commit and bookmark (the
 * slot's new bookmark, "" = pinned), e.g. after making that change on the
 * server, and returns 0, or -errno with e filled (nothing is switched). */
typedef int (*mesa_mount_target_fn)(void *ctx, const mesa_state_repo_t *now, char change[33],
                                    char commit[41], char bookmark[256], mesa_error_t *e);

/* mesa_mount_switch, with the target decided by fn while the mount is
 * quiet: no write of the mount can land in between (`mesa change
 * checkpoint`, `mesa bookmark move` of the mount's bookmark). */
int mesa_mount_switch_with(const char *run, const char *cache, mesa_client_t *c, int slot,
                           mesa_mount_target_fn fn, void *ctx, int timeout_ms, mesa_error_t *e);

#endif
