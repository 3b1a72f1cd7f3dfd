/* tools/mesa_watch.c - `mesa watch PATH...`: the subscription API on the
 * command line. One line per invalidation, {"path": ..., "recursive": ...}
 * with --json, the path (plus " (recursive)") otherwise, printed once the
 * new state is readable. Follows each repo's event log by long poll, one
 * thread per repo; SIGINT/SIGTERM end it with status 0. Inside a mesarun
 * session, a mounted repo is followed through the mount's state file
 * instead: a line is printed once the mount has moved to the commit that
 * changed the path, so a read in the mount right after it sees the change.
 */
#include "config.h"
#include "mesa.h"
#include "state.h"
#include "treecache.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_WATCH 64

typedef struct watch_repo {
    mesa_ctx_t *ctx;
    mesa_client_t *client; /* one per thread: handles are not shared */
    char repo[256];
    const char *rels[MAX_WATCH]; /* repo-relative watched paths ("" = all) */
    int nrels;
    mesa_rev_t rev;
    char change[33], bookmark[256];
    int failed;
    int slot; /* the mount's slot of repo, -1 outside a session */
} watch_repo_t;

static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;

static void emit(watch_repo_t *w, const char *rel, int recursive)
{
    char abs[8192];
    snprintf(abs, sizeof abs, "%s/%s/%s%s%s", w->ctx->prefix, w->ctx->org, w->repo,
             rel[0] ? "/" : "", rel);
    pthread_mutex_lock(&out_mu);
    if (w->ctx->json) {
        json_t *s = json_string(abs);
        char *q = json_dumps(s, JSON_ENCODE_ANY);
        printf("{\"path\": %s, \"recursive\": %s}\n", q ? q : "\"\"",
               recursive ? "true" : "false");
        free(q);
        json_decref(s);
    } else {
        printf("%s%s\n", abs, recursive ? " (recursive)" : "");
    }
    fflush(stdout);
    pthread_mutex_unlock(&out_mu);
}

static int under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return n == 0 || (strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/'));
}

static void everything(watch_repo_t *w)
{
    for (int i = 0; i < w->nrels; i++)
        emit(w, w->rels[i], 1);
}

/* One event: emit what it invalidates for this watch. */
static void on_event(watch_repo_t *w, json_t *ev)
{
    const char *type = json_string_value(json_object_get(ev, "type"));
    json_t *d = json_object_get(ev, "data");
    const char *cid = json_string_value(json_object_get(d, "change_id"));
    if (!type)
        return;
    if (strncmp(type, "change.", 7) == 0) {
        if (!cid || strcmp(cid, w->change) != 0)
            return;
        if (json_is_true(json_object_get(d, "paths_truncated"))) {
            everything(w);
            return;
        }
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(d, "paths"), i, p)
        {
            for (int k = 0; k < w->nrels; k++)
                if (under(json_string_value(p), w->rels[k])) {
                    emit(w, json_string_value(p), 0);
                    break;
                }
        }
        return;
    }
    const char *bm = json_string_value(json_object_get(d, "bookmark"));
    const char *target = json_string_value(json_object_get(d, "target"));
    if (w->bookmark[0] && ((bm && strcmp(bm, w->bookmark) == 0 &&
                            strcmp(type, "bookmark.moved") == 0) ||
                           (target && strcmp(target, w->bookmark) == 0))) {
        snprintf(w->change, sizeof w->change, "%s", cid ? cid : w->change);
        everything(w);
    }
}

static void *watch_thread(void *arg)
{
    watch_repo_t *w = arg;
    char after[32] = "now";
    mesa_error_t e = {0};
    for (;;) {
        json_t *v = NULL;
        char path[600];
        snprintf(path, sizeof path, "/%s/%s/events?after=%s&wait=25", w->ctx->org, w->repo,
                 after);
        if (mesa_client_json(w->client, "GET", path, NULL, &v, &e) < 0) {
            mesa_fail(w->repo, &e);
            w->failed = 1;
            return NULL;
        }
        size_t i;
        json_t *ev;
        json_array_foreach(json_object_get(v, "events"), i, ev) on_event(w, ev);
        snprintf(after, sizeof after, "%lld",
                 (long long)json_integer_value(json_object_get(v, "last_event_id")));
        json_decref(v);
    }
}

/* Paths whose entry differs between listings a and b, as seen from a. */
static void diff_one_way(watch_repo_t *w, const mesa_tree_t *a, const mesa_tree_t *b,
                         int only_missing)
{
    for (uint32_t i = 0; i < mesa_tree_count(a); i++) {
        mesa_tree_ent_t x, y;
        mesa_tree_at(a, i, &x);
        if (x.type == MESA_ENT_DIR)
            continue;
        if (mesa_tree_lookup(b, x.path, &y) == 0 &&
            (only_missing || (y.mode == x.mode && strcmp(y.oid, x.oid) == 0)))
            continue;
        for (int k = 0; k < w->nrels; k++)
            if (under(x.path, w->rels[k])) {
                emit(w, x.path, 0);
                break;
            }
    }
}

/* Inside a session: follow the slot's commit in the mount's state file. */
static void *session_thread(void *arg)
{
    watch_repo_t *w = arg;
    char path[4200];
    const char *cache = getenv("MESA_CACHE");
    mesa_state_t *st = NULL;
    mesa_state_repo_t cur, next;
    snprintf(path, sizeof path, "%s/state", getenv("MESA_MOUNT"));
    if (mesa_state_open(path, &st) < 0 || mesa_state_get(st, (size_t)w->slot, &cur) < 0) {
        fprintf(stderr, "mesa watch: cannot read the mount's state file %s\n", path);
        w->failed = 1;
        return NULL;
    }
    for (uint64_t gen = mesa_state_generation(st);; gen = mesa_state_generation(st)) {
        while (mesa_state_generation(st) == gen)
            usleep(20000);
        mesa_state_get(st, (size_t)w->slot, &next);
        if (strcmp(next.commit, cur.commit) == 0)
            continue;
        mesa_tree_t *a = NULL, *b = NULL;
        if (strcmp(next.change_id, cur.change_id) != 0 || !cache ||
            mesa_tree_open(cache, cur.commit, &a) < 0 ||
            mesa_tree_open(cache, next.commit, &b) < 0) {
            everything(w);
        } else {
            diff_one_way(w, b, a, 0); /* new or changed */
            diff_one_way(w, a, b, 1); /* removed */
        }
        mesa_tree_close(a);
        mesa_tree_close(b);
        cur = next;
    }
}

static void on_signal(int sig)
{
    (void)sig;
    _exit(0);
}

static const char watch_help[] =
    "usage: mesa watch [--json] [--bookmark B | --change ID] PATH...\n"
    "Print one line per invalidation under each PATH until interrupted:\n"
    "  {\"path\": \"/mesa/ORG/REPO/p\", \"recursive\": false}   (with --json)\n";

/* Find or add the watch of t's repo. */
static watch_repo_t *watch_for(watch_repo_t *ws, int *n, const char *repo)
{
    for (int i = 0; i < *n; i++)
        if (strcmp(ws[i].repo, repo) == 0)
            return &ws[i];
    if (*n == MAX_WATCH)
        return NULL;
    watch_repo_t *w = &ws[(*n)++];
    snprintf(w->repo, sizeof w->repo, "%s", repo);
    return w;
}

/* Split PATH into repo and rel (pointer into arg) like mesa ls does. */
static int split(mesa_ctx_t *ctx, const char *arg, char repo[256], const char **rel)
{
    size_t pl = strlen(ctx->prefix), ol = strlen(ctx->org);
    const char *colon = strchr(arg, ':');
    if (arg[0] == '/') {
        if (strncmp(arg, ctx->prefix, pl) || arg[pl] != '/' || strncmp(arg + pl + 1, ctx->org, ol) ||
            arg[pl + 1 + ol] != '/')
            return -1;
        const char *r = arg + pl + ol + 2, *s = strchr(r, '/');
        size_t rl = s ? (size_t)(s - r) : strlen(r);
        if (!rl || rl >= 256)
            return -1;
        snprintf(repo, 256, "%.*s", (int)rl, r);
        *rel = s ? s + 1 : "";
    } else if (colon && colon != arg && colon - arg < 256) {
        snprintf(repo, 256, "%.*s", (int)(colon - arg), arg);
        *rel = colon[1] == '/' ? colon + 2 : colon + 1;
    } else {
        return -1;
    }
    return 0;
}

int cmd_watch(mesa_ctx_t *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"bookmark", required_argument, NULL, 'b'},
                                         {"change", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    static watch_repo_t ws[MAX_WATCH];
    mesa_rev_t rev = {0};
    int c, n = 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'b')
            rev.bookmark = optarg;
        else if (c == 'c')
            rev.change = optarg;
        else if (c == 'h')
            return fputs(watch_help, stdout), EXIT_OK;
        else
            return mesa_usage("watch", "unknown option '%s'", argv[optind - 1]);
    }
    if (optind >= argc)
        return mesa_usage("watch", "give at least one PATH");
    int rc = mesa_connect(ctx);
    if (rc != EXIT_OK)
        return rc;
    for (int i = optind; i < argc; i++) {
        char repo[256];
        const char *rel;
        watch_repo_t *w;
        if (split(ctx, argv[i], repo, &rel) < 0)
            return mesa_usage("watch", "PATH must be %s/%s/REPO/... or REPO:PATH (got '%s')",
                              ctx->prefix, ctx->org, argv[i]);
        if (!(w = watch_for(ws, &n, repo)) || w->nrels == MAX_WATCH)
            return mesa_usage("watch", "too many paths");
        w->rels[w->nrels++] = rel;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    pthread_t th[MAX_WATCH];
    for (int i = 0; i < n; i++) {
        mesa_error_t e = {0};
        char commit[41];
        mesa_state_repo_t mounted;
        ws[i].ctx = ctx;
        ws[i].rev = rev;
        ws[i].slot = rev.bookmark || rev.change ? -1 : mesa_session_slot(ctx, ws[i].repo, &mounted);
        if (ws[i].slot >= 0) {
            pthread_create(&th[i], NULL, session_thread, &ws[i]);
            continue;
        }
        if (mesa_rev_resolve(ctx, ws[i].repo, &rev, ws[i].change, commit, ws[i].bookmark, &e) < 0)
            return mesa_fail(ws[i].repo, &e);
        if (mesa_client_clone(ctx->client, &ws[i].client) < 0)
            return EXIT_FAIL;
        pthread_create(&th[i], NULL, watch_thread, &ws[i]);
    }
    int failed = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        failed |= ws[i].failed;
    }
    return failed ? EXIT_FAIL : EXIT_OK;
}
