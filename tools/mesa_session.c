/* tools/mesa_session.c - `mesa change new|edit|current|checkpoint` and
 * `mesa bookmark create|move` inside a mesarun session (DESIGN §3): they
 * act on the mount (MESA_MOUNT) rather than on a bookmark: `new`, `edit`
 * and `checkpoint` first wait until the mount's pusher has acknowledged
 * every write, then switch every process of the mount to the other change
 * (core/mountctl.c); `checkpoint` (and a move of the mount's bookmark)
 * make their server calls while the mount is held quiet, so no write
 * lands between them.
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

/* The mount's target of a switch from a change object v: its id and
 * commit, the mount's bookmark kept. 0, or -EPROTO when v is malformed. */
static int change_of(json_t *v, const mesa_state_repo_t *now, char change[33], char commit[41],
                     char bookmark[256], mesa_error_t *e)
{
    const char *id = json_string_value(json_object_get(v, "id"));
    const char *oid = json_string_value(json_object_get(v, "current_commit_oid"));
    if (!id || !oid)
        return mesa_error_set(e, EPROTO, "malformed change object");
    snprintf(change, 33, "%s", id);
    snprintf(commit, 41, "%s", oid);
    snprintf(bookmark, 256, "%s", now->bookmark);
    return 0;
}

/* ------------------------------------------------------------ checkpoint */

typedef struct checkpoint {
    mesa_ctx_t *ctx;
    const char *repo, *message;
    char saved[33], saved_commit[41];
    char active[33], active_commit[41], bookmark[256];
} checkpoint_t;

/* Under the mount's lock, every write pushed: describe the current change
 * (only with -m), make an empty change on top, move the mount's bookmark
 * to it; the mount then switches there. */
static int checkpoint_target(void *arg, const mesa_state_repo_t *now, char change[33],
                             char commit[41], char bookmark[256], mesa_error_t *e)
{
    checkpoint_t *cp = arg;
    json_t *v = NULL;
    int rc;
    snprintf(cp->saved, sizeof cp->saved, "%s", now->change_id);
    snprintf(cp->saved_commit, sizeof cp->saved_commit, "%s", now->commit);
    if (cp->message)
        rc = mesa_call(cp->ctx, "PATCH", json_pack("{s:s}", "message", cp->message), &v, e,
                       "/%s/changes/%s", cp->repo, cp->saved);
    else /* the description is kept: only the commit is needed */
        rc = mesa_call(cp->ctx, "GET", NULL, &v, e, "/%s/changes/%s", cp->repo, cp->saved);
    if (rc < 0)
        return rc;
    snprintf(cp->saved_commit, sizeof cp->saved_commit, "%s",
             json_string_value(json_object_get(v, "current_commit_oid")) ?: "");
    json_decref(v);
    v = NULL;
    if ((rc = mesa_call(cp->ctx, "POST",
                        json_pack("{s:s, s:s, s:[]}", "base_change_id", cp->saved, "message", "",
                                  "files"),
                        &v, e, "/%s/changes", cp->repo)) < 0)
        return rc;
    rc = change_of(v, now, change, commit, bookmark, e);
    if (rc == 0) {
        snprintf(cp->active, sizeof cp->active, "%s", change);
        snprintf(cp->active_commit, sizeof cp->active_commit, "%s", commit);
        snprintf(cp->bookmark, sizeof cp->bookmark, "%s", now->bookmark);
    }
    json_decref(v);
    if (rc == 0 && (rc = mesa_call(cp->ctx, "PATCH", json_pack("{s:s}", "change_id", change),
                                   NULL, e, "/%s/bookmarks/%s", cp->repo, now->bookmark)) < 0) {
        char msg[sizeof e->message + 128];
        snprintf(msg, sizeof msg, "%s (the new change %s was made; the mount stays on %s)",
                 e->message, change, cp->saved);
        snprintf(e->message, sizeof e->message, "%.*s", (int)sizeof e->message - 1, msg);
    }
    return rc;
}

int mesa_session_checkpoint(mesa_ctx_t *ctx, const char *repo, const char *message)
{
    const char *run = getenv("MESA_MOUNT"), *cache = getenv("MESA_CACHE");
    mesa_state_repo_t r;
    mesa_error_t e = {0};
    int slot;
    if (!run || !*run)
        return mesa_usage("change", "checkpoint works inside a mesarun session only "
                                    "(MESA_MOUNT is not set): run it from COMMAND");
    if ((slot = mesa_session_slot(ctx, repo, &r)) < 0)
        return mesa_usage("change", "checkpoint: %s is not mounted in this session", repo);
    if (getenv("MESA_SANDBOX") && strcmp(getenv("MESA_SANDBOX"), "1") == 0) {
        fprintf(stderr, "mesa change checkpoint: not available under mesarun --sandbox (its proxy "
                        "lets no new change or bookmark move through); nothing done\n");
        return EXIT_FAIL;
    }
    if (r.flags & MESA_STATE_RO) {
        fprintf(stderr, "mesa change checkpoint: %s is mounted read-only; nothing done\n", repo);
        return EXIT_FAIL;
    }
    if (!r.bookmark[0]) {
        fprintf(stderr, "mesa change checkpoint: checkpoint needs the mount to be on a bookmark "
                        "(mounted at change %s); nothing done\n", r.change_id);
        return EXIT_FAIL;
    }
    checkpoint_t cp = {.ctx = ctx, .repo = repo, .message = message};
    if (mesa_mount_switch_with(run, cache ? cache : run, ctx->client, slot, checkpoint_target,
                               &cp, DRAIN_MS, &e) < 0)
        return mesa_fail("change checkpoint", &e);
    if (ctx->json)
        mesa_print_json(json_pack("{s:s, s:s, s:s, s:s}", "saved_change_id", cp.saved,
                                  "saved_commit_oid", cp.saved_commit, "active_change_id",
                                  cp.active, "active_commit_oid", cp.active_commit));
    else
        printf("saved  %s %s\nactive %s %s %s\n", cp.saved, cp.saved_commit, cp.active,
               cp.active_commit, cp.bookmark);
    return EXIT_OK;
}

/* ------------------------------------------------------------ bookmark move */

typedef struct bmove {
    mesa_ctx_t *ctx;
    const char *repo, *name, *to;
    int allow_backwards, refused;
    char from[33];
    json_t *answer;
} bmove_t;

/* Under the mount's lock, every write pushed to the bookmark's change:
 * check and move the bookmark; the mount then switches to its change. */
static int bmove_target(void *arg, const mesa_state_repo_t *now, char change[33],
                        char commit[41], char bookmark[256], mesa_error_t *e)
{
    bmove_t *b = arg;
    json_t *v = NULL;
    int rc;
    char esc[1024];
    if ((rc = mesa_call(b->ctx, "GET", NULL, &v, e, "/%s/bookmarks/%s", b->repo, b->name)) < 0)
        return rc;
    snprintf(b->from, sizeof b->from, "%s",
             json_string_value(json_object_get(v, "change_id")) ?: "");
    json_decref(v);
    v = NULL;
    if (!b->allow_backwards &&
        (rc = mesa_bookmark_forward(b->ctx, b->repo, b->name, b->from, b->to, e)) <= 0) {
        b->refused = rc == 0;
        return -(e->err ? e->err : EIO);
    }
    /* the change and its commit before the move: the switch needs both */
    if (mesa_client_escape(b->to, esc, sizeof esc) < 0)
        return mesa_error_set(e, ENAMETOOLONG, "change id too long");
    if ((rc = mesa_call(b->ctx, "GET", NULL, &v, e, "/%s/changes/%s", b->repo, esc)) < 0)
        return rc;
    rc = change_of(v, now, change, commit, bookmark, e);
    json_decref(v);
    if (rc == 0)
        rc = mesa_call(b->ctx, "PATCH", json_pack("{s:s}", "change_id", change), &b->answer, e,
                       "/%s/bookmarks/%s", b->repo, b->name);
    return rc;
}

int mesa_session_bookmark_move(mesa_ctx_t *ctx, const char *repo, int slot, const char *name,
                               const char *to, int allow_backwards)
{
    const char *run = getenv("MESA_MOUNT"), *cache = getenv("MESA_CACHE");
    mesa_error_t e = {0};
    bmove_t b = {.ctx = ctx, .repo = repo, .name = name, .to = to,
                 .allow_backwards = allow_backwards};
    if (mesa_mount_switch_with(run, cache ? cache : run, ctx->client, slot, bmove_target, &b,
                               DRAIN_MS, &e) < 0) {
        json_decref(b.answer);
        if (b.refused) {
            fprintf(stderr, "mesa bookmark move: %s\n", e.message);
            return EXIT_FAIL;
        }
        return mesa_fail("bookmark move", &e);
    }
    mesa_bookmark_moved(ctx, name, b.from, to, b.answer);
    return EXIT_OK;
}
