/* tools/mesa_session.c - `mesa change new|edit|current` and `mesa bookmark
 * create` inside a mesarun session (DESIGN §3): they act on the mount
 * (MESA_MOUNT) rather than on a bookmark: `new` and `edit` first wait
 * until the mount's pusher has acknowledged every write, then switch every
 * process of the mount to the other change (core/mountctl.c).
 */
#include "config.h"
#include "mesa.h"
#include "mountctl.h"
#include "state.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DRAIN_MS 60000

int mesa_session_slot(mesa_ctx_t *ctx, const char *repo, mesa_state_repo_t *r)
{
    const char *run = getenv("MESA_MOUNT");
    char path[PATH_MAX];
    mesa_state_t *st = NULL;
    if (!run || !*run)
        return -1;
    snprintf(path, sizeof path, "%s/state", run);
    if (mesa_state_open(path, &st) < 0)
        return -1;
    int slot = mesa_state_find(st, ctx->org, repo);
    if (slot >= 0)
        mesa_state_get(st, (size_t)slot, r);
    mesa_state_close(st);
    return slot;
}

static int switch_to(mesa_ctx_t *ctx, const char *what, int slot, const char *change,
                     const char *commit, const char *bookmark)
{
    mesa_error_t e = {0};
    const char *cache = getenv("MESA_CACHE");
    if (mesa_mount_switch(getenv("MESA_MOUNT"), cache ? cache : getenv("MESA_MOUNT"),
                          ctx->client, slot, change, commit, bookmark, DRAIN_MS, &e) < 0)
        return mesa_fail(what, &e);
    if (ctx->json)
        mesa_print_json(json_pack("{s:s, s:s, s:s?}", "change_id", change, "commit_oid", commit,
                                  "bookmark", bookmark[0] ? bookmark : NULL));
    else
        printf("%s %s%s%s\n", change, commit, bookmark[0] ? " " : "", bookmark);
    return EXIT_OK;
}

int mesa_session_change(mesa_ctx_t *ctx, const char *sub, const char *repo, int slot,
                        const mesa_state_repo_t *r, const mesa_rev_t *rev, const char *message)
{
    char change[33], commit[41], bookmark[256];
    mesa_error_t e = {0};
    json_t *v = NULL;
    if (strcmp(sub, "current") == 0 && !rev->bookmark && !rev->change) {
        if (ctx->json)
            mesa_print_json(json_pack("{s:s, s:s, s:s?}", "change_id", r->change_id,
                                      "commit_oid", r->commit, "bookmark",
                                      r->bookmark[0] ? r->bookmark : NULL));
        else
            printf("%s %s%s%s\n", r->change_id, r->commit, r->bookmark[0] ? " " : "",
                   r->bookmark);
        return EXIT_OK;
    }
    if (!rev->bookmark && !rev->change) { /* new: on top of the mount's change */
        snprintf(change, sizeof change, "%s", r->change_id);
        snprintf(bookmark, sizeof bookmark, "%s", r->bookmark);
    } else if (mesa_rev_resolve(ctx, repo, rev, change, commit, bookmark, &e) < 0) {
        return mesa_fail(sub, &e);
    }
    if (strcmp(sub, "edit") == 0 || strcmp(sub, "current") == 0) {
        if (strcmp(sub, "current") == 0)
            return printf("%s %s%s%s\n", change, commit, bookmark[0] ? " " : "", bookmark),
                   EXIT_OK;
        return switch_to(ctx, "change edit", slot, change, commit, bookmark);
    }
    /* the writes so far go to the old change, before one is made on top */
    if (mesa_mount_drain(getenv("MESA_MOUNT"), DRAIN_MS, &e) < 0)
        return mesa_fail("change new", &e);
    if (mesa_call(ctx, "POST",
                  json_pack("{s:s, s:s}", "base_change_id", change, "message",
                            message ? message : ""),
                  &v, &e, "/%s/changes", repo) < 0)
        return mesa_fail("change new", &e);
    snprintf(change, sizeof change, "%s", json_string_value(json_object_get(v, "id")));
    snprintf(commit, sizeof commit, "%s",
             json_string_value(json_object_get(v, "current_commit_oid")));
    json_decref(v);
    if (bookmark[0] && mesa_call(ctx, "PATCH", json_pack("{s:s}", "change_id", change), NULL, &e,
                                 "/%s/bookmarks/%s", repo, bookmark) < 0)
        return mesa_fail("change new (moving the bookmark)", &e);
    return switch_to(ctx, "change new", slot, change, commit, bookmark);
}
