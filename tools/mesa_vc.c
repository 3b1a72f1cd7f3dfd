/* tools/mesa_vc.c - version control from the command line: `mesa change
 * new|edit|list|current`, `mesa bookmark list|create|move|delete|merge`,
 * `mesa log`. Outside a mesarun session these act through the API on the
 * state chosen with --bookmark/--change (default: the repo's default
 * bookmark); `change new` on a bookmark moves that bookmark to the new
 * change, so later writes through it land there.
 */
#include "config.h"
#include "mesa.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct vc_args {
    mesa_rev_t rev;
    const char *message;
    long limit;
    int allow_backwards, delete_source, allow_conflicted;
    char *pos[4];
    int npos;
} vc_args_t;

/* Parse options common to the vc subcommands; positional args to a->pos. */
static int vc_parse(const char *cmd, int argc, char **argv, const char *help, vc_args_t *a)
{
    static const struct option opts[] = {
        {"bookmark", required_argument, NULL, 'b'}, {"change", required_argument, NULL, 'c'},
        {"message", required_argument, NULL, 'm'},  {"limit", required_argument, NULL, 'n'},
        {"allow-backwards", no_argument, NULL, 'B'}, {"delete-source", no_argument, NULL, 'D'},
        {"allow-conflicted", no_argument, NULL, 'C'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof *a);
    a->limit = 50;
    optind = 1;
    opterr = 0;
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "m:h", opts, NULL)) != -1) {
        switch (c) {
        case 'b': a->rev.bookmark = optarg; break;
        case 'c': a->rev.change = optarg; break;
        case 'm': a->message = optarg; break;
        case 'B': a->allow_backwards = 1; break;
        case 'D': a->delete_source = 1; break;
        case 'C': a->allow_conflicted = 1; break;
        case 'n':
            a->limit = strtol(optarg, &end, 10);
            if (*end || a->limit < 0)
                return mesa_usage(cmd, "--limit takes a number >= 0 (0 = all)");
            break;
        case 'h': fputs(help, stdout); return -1;
        default: return mesa_usage(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (a->rev.bookmark && a->rev.change)
        return mesa_usage(cmd, "--bookmark and --change are mutually exclusive");
    for (; optind < argc; optind++) {
        if (a->npos == 4)
            return mesa_usage(cmd, "too many arguments");
        a->pos[a->npos++] = argv[optind];
    }
    return 0;
}

static int need(const char *cmd, const vc_args_t *a, int n, const char *what)
{
    return a->npos == n ? 0 : mesa_usage(cmd, "expects %s", what);
}

/* {change_id, commit_oid} of the selected state. */
static int print_state(mesa_ctx_t *ctx, const char *change, const char *commit,
                       const char *bookmark)
{
    if (ctx->json)
        mesa_print_json(json_pack("{s:s, s:s, s:s?}", "change_id", change, "commit_oid", commit,
                                  "bookmark", bookmark[0] ? bookmark : NULL));
    else
        printf("%s %s%s%s\n", change, commit, bookmark[0] ? " " : "", bookmark);
    return EXIT_OK;
}

static int change_new(mesa_ctx_t *ctx, const char *repo, const vc_args_t *a)
{
    char change[33], commit[41], bookmark[256];
    mesa_error_t e = {0};
    json_t *v = NULL;
    if (mesa_rev_resolve(ctx, repo, &a->rev, change, commit, bookmark, &e) < 0)
        return mesa_fail("change new", &e);
    if (mesa_call(ctx, "POST",
                  json_pack("{s:s, s:s}", "base_change_id", change, "message",
                            a->message ? a->message : ""),
                  &v, &e, "/%s/changes", repo) < 0)
        return mesa_fail("change new", &e);
    const char *id = json_string_value(json_object_get(v, "id"));
    char nc[41];
    snprintf(nc, sizeof nc, "%s", json_string_value(json_object_get(v, "current_commit_oid")));
    snprintf(change, sizeof change, "%s", id);
    json_decref(v);
    if (bookmark[0] && mesa_call(ctx, "PATCH", json_pack("{s:s}", "change_id", change), NULL, &e,
                                 "/%s/bookmarks/%s", repo, bookmark) < 0)
        return mesa_fail("change new (moving the bookmark)", &e);
    return print_state(ctx, change, nc, bookmark);
}

static void print_change_line(json_t *c)
{
    const char *msg = json_string_value(json_object_get(c, "message"));
    size_t ml = msg ? strcspn(msg, "\n") : 0;
    printf("%.12s %.12s %s %.*s\n", json_string_value(json_object_get(c, "id")),
           json_string_value(json_object_get(c, "current_commit_oid")),
           json_string_value(json_object_get(c, "updated_at")), (int)ml,
           ml ? msg : "(no description)");
}

/* Every change (or a bookmark's ancestors), newest first, up to limit (0=all). */
static int fetch_changes(mesa_ctx_t *ctx, const char *repo, const char *from, long limit,
                         json_t **out, mesa_error_t *e)
{
    json_t *all = json_array();
    char cursor[128] = "";
    while (limit == 0 || (long)json_array_size(all) < limit) {
        json_t *page = NULL;
        long want = limit == 0 ? 100 : limit - (long)json_array_size(all);
        if (mesa_call(ctx, "GET", NULL, &page, e, "/%s/changes?limit=%ld%s%s%s%s", repo,
                      want > 100 ? 100 : want, from ? "&bookmark=" : "", from ? from : "",
                      cursor[0] ? "&cursor=" : "", cursor) < 0) {
            json_decref(all);
            return -1;
        }
        json_array_extend(all, json_object_get(page, "changes"));
        const char *next = json_string_value(json_object_get(page, "next_cursor"));
        snprintf(cursor, sizeof cursor, "%s", next ? next : "");
        json_decref(page);
        if (!next)
            break;
    }
    *out = all;
    return 0;
}

static int change_list(mesa_ctx_t *ctx, const char *repo, const vc_args_t *a)
{
    json_t *all = NULL;
    mesa_error_t e = {0};
    const char *from = a->rev.change ? a->rev.change : a->rev.bookmark;
    if (fetch_changes(ctx, repo, from, a->limit, &all, &e) < 0)
        return mesa_fail("change list", &e);
    if (ctx->json) {
        mesa_print_json(json_pack("{s:o}", "changes", all));
        return EXIT_OK;
    }
    size_t i;
    json_t *c;
    json_array_foreach(all, i, c) print_change_line(c);
    json_decref(all);
    return EXIT_OK;
}

/* Inside a session only (exit 2 outside, before connecting). */
static int change_checkpoint(mesa_ctx_t *ctx, const char *repo, const vc_args_t *a)
{
    const char *run = getenv("MESA_MOUNT");
    if (a->rev.bookmark || a->rev.change)
        return mesa_usage("change", "checkpoint takes no --bookmark/--change: it acts on the "
                                    "mount's change");
    if (!run || !*run)
        return mesa_usage("change", "checkpoint works inside a mesarun session only "
                                    "(MESA_MOUNT is not set): run it from COMMAND");
    int rc = mesa_connect(ctx);
    return rc != EXIT_OK ? rc : mesa_session_checkpoint(ctx, repo, a->message);
}

static const char change_help[] =
    "usage: mesa change new REPO [--bookmark B | --change ID] [-m MESSAGE]\n"
    "       mesa change edit REPO (--bookmark B | --change ID)\n"
    "       mesa change list REPO [--bookmark B] [--limit N]   (default 50, 0 = all)\n"
    "       mesa change current REPO [--bookmark B | --change ID]\n"
    "       mesa change checkpoint REPO [-m MESSAGE]   (inside a session)\n"
    "Outside a mesarun session: 'new' creates an empty change on top of the selected\n"
    "one and moves the bookmark (if one was selected, or the default) to it; 'edit'\n"
    "and 'current' print the selected change and its commit; nothing else changes.\n"
    "Inside a session on REPO: 'new' (default: on top of the mount's change, moving\n"
    "the mounted bookmark) and 'edit' wait until every write of the mount is pushed,\n"
    "then switch every process of the mount to that change; 'current' prints the\n"
    "mount's change. 'checkpoint' (a session on a bookmark only) pushes every write,\n"
    "sets the change's description to MESSAGE (kept without -m; -m '' clears it),\n"
    "makes an empty change on top, moves the mount's bookmark there and switches\n"
    "the mount to it; it prints the saved and the active change (--json:\n"
    "saved_change_id, saved_commit_oid, active_change_id, active_commit_oid).\n";

int cmd_change(mesa_ctx_t *ctx, int argc, char **argv)
{
    vc_args_t a;
    if (argc < 2 || mesa_is_help(argv[1])) {
        fputs(change_help, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    const char *sub = argv[1];
    int rc = vc_parse("change", argc - 1, argv + 1, change_help, &a);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    if (strcmp(sub, "new") && strcmp(sub, "edit") && strcmp(sub, "list") &&
        strcmp(sub, "current") && strcmp(sub, "checkpoint"))
        return mesa_usage("change",
                          "unknown subcommand '%s' (new, edit, list, current, checkpoint)", sub);
    if ((rc = need("change", &a, 1, "REPO")) != 0)
        return rc;
    if (strcmp(sub, "checkpoint") == 0)
        return change_checkpoint(ctx, a.pos[0], &a);
    if (strcmp(sub, "edit") == 0 && !a.rev.bookmark && !a.rev.change)
        return mesa_usage("change", "edit needs --bookmark B or --change ID");
    if ((rc = mesa_connect(ctx)) != EXIT_OK)
        return rc;
    mesa_state_repo_t mounted;
    int slot = strcmp(sub, "list") ? mesa_session_slot(ctx, a.pos[0], &mounted) : -1;
    if (slot >= 0)
        return mesa_session_change(ctx, sub, a.pos[0], slot, &mounted, &a.rev, a.message);
    if (strcmp(sub, "new") == 0)
        return change_new(ctx, a.pos[0], &a);
    if (strcmp(sub, "list") == 0)
        return change_list(ctx, a.pos[0], &a);
    char change[33], commit[41], bookmark[256];
    mesa_error_t e = {0};
    if (mesa_rev_resolve(ctx, a.pos[0], &a.rev, change, commit, bookmark, &e) < 0)
        return mesa_fail(sub, &e);
    return print_state(ctx, change, commit, bookmark);
}

/* ------------------------------------------------------------ bookmarks */

static int bookmark_list(mesa_ctx_t *ctx, const char *repo)
{
    json_t *v = NULL;
    mesa_error_t e = {0};
    if (mesa_call(ctx, "GET", NULL, &v, &e, "/%s/bookmarks?limit=100", repo) < 0)
        return mesa_fail("bookmark list", &e);
    if (ctx->json) {
        mesa_print_json(v);
        return EXIT_OK;
    }
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(v, "bookmarks"), i, b)
    {
        printf("%s %s%s\n", json_string_value(json_object_get(b, "name")),
               json_string_value(json_object_get(b, "change_id")),
               json_is_true(json_object_get(b, "is_default")) ? " (default)" : "");
    }
    json_decref(v);
    return EXIT_OK;
}

/* Is change `anc` an ancestor of (or equal to) change `desc`? 1, 0, or -1
 * with e filled. Pages through desc's ancestors (newest first, 100 a
 * call) and stops at anc: a forward move costs one call or two. */
static int is_ancestor(mesa_ctx_t *ctx, const char *repo, const char *anc, const char *desc,
                       mesa_error_t *e)
{
    char esc[1024], cursor[128] = "";
    int found = 0;
    if (mesa_client_escape(desc, esc, sizeof esc) < 0)
        return mesa_error_set(e, ENAMETOOLONG, "change id too long"), -1;
    do {
        json_t *page = NULL, *c;
        size_t i;
        if (mesa_call(ctx, "GET", NULL, &page, e, "/%s/changes?limit=100&bookmark=%s%s%s", repo,
                      esc, cursor[0] ? "&cursor=" : "", cursor) < 0)
            return -1;
        json_array_foreach(json_object_get(page, "changes"), i, c) found |=
            strcmp(json_string_value(json_object_get(c, "id")) ?: "", anc) == 0;
        const char *next = json_string_value(json_object_get(page, "next_cursor"));
        snprintf(cursor, sizeof cursor, "%s", next && !found ? next : "");
        json_decref(page);
    } while (cursor[0]);
    return found;
}

int mesa_bookmark_forward(mesa_ctx_t *ctx, const char *repo, const char *name, const char *from,
                          const char *to, mesa_error_t *e)
{
    int fwd = is_ancestor(ctx, repo, from, to, e);
    if (fwd == 0)
        mesa_error_set(e, EXDEV,
                       "moving %s from %s to %s would move %s backwards (or sideways): %s is "
                       "not a descendant of %s; use --allow-backwards to move it anyway",
                       name, from, to, name, to, from);
    return fwd;
}

/* The answer of a move: `moved NAME from A to B`, or the PATCH's JSON. */
void mesa_bookmark_moved(mesa_ctx_t *ctx, const char *name, const char *from, const char *to,
                         json_t *v)
{
    if (ctx->json) {
        mesa_print_json(v);
        return;
    }
    printf("moved %s from %s to %s\n", name, from, to);
    json_decref(v);
}

static int bookmark_move(mesa_ctx_t *ctx, const char *repo, const char *name, const vc_args_t *a)
{
    mesa_error_t e = {0};
    json_t *v = NULL;
    mesa_state_repo_t mounted;
    if (!a->rev.change)
        return mesa_usage("bookmark", "move needs --change ID");
    int slot = mesa_session_slot(ctx, repo, &mounted);
    if (slot >= 0 && strcmp(mounted.bookmark, name) == 0) /* the mount follows its bookmark */
        return mesa_session_bookmark_move(ctx, repo, slot, name, a->rev.change,
                                          a->allow_backwards);
    if (mesa_call(ctx, "GET", NULL, &v, &e, "/%s/bookmarks/%s", repo, name) < 0)
        return mesa_fail("bookmark move", &e);
    char from[33];
    snprintf(from, sizeof from, "%s", json_string_value(json_object_get(v, "change_id")));
    json_decref(v);
    if (!a->allow_backwards) {
        int fwd = mesa_bookmark_forward(ctx, repo, name, from, a->rev.change, &e);
        if (fwd < 0)
            return mesa_fail("bookmark move", &e);
        if (!fwd) {
            fprintf(stderr, "mesa bookmark move: %s\n", e.message);
            return EXIT_FAIL;
        }
    }
    if (mesa_call(ctx, "PATCH", json_pack("{s:s}", "change_id", a->rev.change), &v, &e,
                  "/%s/bookmarks/%s", repo, name) < 0)
        return mesa_fail("bookmark move", &e);
    mesa_bookmark_moved(ctx, name, from, a->rev.change, v);
    return EXIT_OK;
}

static int bookmark_create(mesa_ctx_t *ctx, const char *repo, const char *name, vc_args_t *a)
{
    char change[33], commit[41], bookmark[256];
    mesa_error_t e = {0};
    json_t *v = NULL;
    mesa_state_repo_t mounted;
    if (!a->rev.bookmark && !a->rev.change && mesa_session_slot(ctx, repo, &mounted) >= 0)
        snprintf(change, sizeof change, "%s", mounted.change_id); /* the mount's change */
    else if (mesa_rev_resolve(ctx, repo, &a->rev, change, commit, bookmark, &e) < 0)
        return mesa_fail("bookmark create", &e);
    if (mesa_call(ctx, "POST", json_pack("{s:s, s:s}", "name", name, "change_id", change), &v,
                  &e, "/%s/bookmarks", repo) < 0) {
        if (e.err == EEXIST) {
            fprintf(stderr, "mesa bookmark create: %s: File exists (bookmark already exists)\n",
                    name);
            return EXIT_FAIL;
        }
        return mesa_fail("bookmark create", &e);
    }
    if (ctx->json)
        mesa_print_json(v);
    else {
        printf("created %s at %s\n", name, change);
        json_decref(v);
    }
    return EXIT_OK;
}

static int bookmark_merge(mesa_ctx_t *ctx, const char *repo, const vc_args_t *a)
{
    mesa_error_t e = {0};
    json_t *v = NULL;
    json_t *body = json_pack("{s:s, s:s, s:b, s:b}", "target", a->pos[1], "source", a->pos[2],
                             "delete_source", a->delete_source, "allow_conflicted",
                             a->allow_conflicted);
    if (a->message)
        json_object_set_new(body, "message", json_string(a->message));
    if (mesa_call(ctx, "POST", body, &v, &e, "/%s/bookmarks/merge", repo) < 0)
        return mesa_fail("bookmark merge", &e);
    if (ctx->json) {
        mesa_print_json(v);
        return EXIT_OK;
    }
    printf("%s: %s into %s -> change %s (commit %.12s)%s\n",
           json_string_value(json_object_get(v, "merge_type")), a->pos[2], a->pos[1],
           json_string_value(json_object_get(v, "change_id")),
           json_string_value(json_object_get(v, "commit_oid")),
           json_is_true(json_object_get(v, "is_conflicted")) ? " with conflicts" : "");
    json_decref(v);
    return EXIT_OK;
}

static const char bookmark_help[] =
    "usage: mesa bookmark list REPO\n"
    "       mesa bookmark create REPO NAME [--bookmark B | --change ID]\n"
    "       mesa bookmark move REPO NAME --change ID [--allow-backwards]\n"
    "       mesa bookmark delete REPO NAME\n"
    "       mesa bookmark merge REPO TARGET SOURCE [--delete-source] [--allow-conflicted] "
    "[-m MSG]\n"
    "create: at the selected change (default: the default bookmark's); an existing\n"
    "name fails. move: forward only (to a descendant) unless --allow-backwards;\n"
    "inside a session, a move of the mount's own bookmark first pushes every write\n"
    "of the mount, and the mount follows the bookmark to the new change.\n";

int cmd_bookmark(mesa_ctx_t *ctx, int argc, char **argv)
{
    vc_args_t a;
    if (argc < 2 || mesa_is_help(argv[1])) {
        fputs(bookmark_help, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    const char *sub = argv[1];
    int rc = vc_parse("bookmark", argc - 1, argv + 1, bookmark_help, &a);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    int want = strcmp(sub, "list") == 0                                  ? 1
               : strcmp(sub, "merge") == 0                               ? 3
               : strcmp(sub, "create") == 0 || strcmp(sub, "move") == 0 ||
                       strcmp(sub, "delete") == 0                        ? 2
                                                                         : -1;
    if (want < 0)
        return mesa_usage("bookmark", "unknown subcommand '%s'", sub);
    if ((rc = need("bookmark", &a, want, want == 1   ? "REPO"
                                         : want == 2 ? "REPO NAME"
                                                     : "REPO TARGET SOURCE")) != 0)
        return rc;
    if ((rc = mesa_connect(ctx)) != EXIT_OK)
        return rc;
    mesa_error_t e = {0};
    switch (sub[0] == 'm' ? sub[1] : sub[0]) {
    case 'l':
        return bookmark_list(ctx, a.pos[0]);
    case 'c':
        return bookmark_create(ctx, a.pos[0], a.pos[1], &a);
    case 'o':
        return bookmark_move(ctx, a.pos[0], a.pos[1], &a);
    case 'e':
        return bookmark_merge(ctx, a.pos[0], &a);
    default:
        if (mesa_call(ctx, "DELETE", NULL, NULL, &e, "/%s/bookmarks/%s", a.pos[0], a.pos[1]) < 0)
            return mesa_fail("bookmark delete", &e);
        if (!ctx->json)
            printf("deleted %s\n", a.pos[1]);
        else
            mesa_print_json(json_pack("{s:b}", "success", 1));
        return EXIT_OK;
    }
}

/* ------------------------------------------------------------ log */

static const char log_help[] =
    "usage: mesa log REPO [--bookmark B] [--limit N]\n"
    "The history of a bookmark (default: the default bookmark) as a graph, newest\n"
    "first: '@' marks the bookmark's change, bookmarks are shown beside changes.\n";

/* "name1 name2" of the bookmarks at change id. */
static void bookmarks_at(json_t *bms, const char *id, char *out, size_t n)
{
    size_t i, len = 0;
    json_t *b;
    out[0] = '\0';
    json_array_foreach(bms, i, b)
    {
        if (strcmp(json_string_value(json_object_get(b, "change_id")), id) == 0 && len < n)
            len += (size_t)snprintf(out + len, n - len, "%s%s", len ? " " : "",
                                    json_string_value(json_object_get(b, "name")));
    }
}

int cmd_log(mesa_ctx_t *ctx, int argc, char **argv)
{
    vc_args_t a;
    int rc = vc_parse("log", argc, argv, log_help, &a);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    if ((rc = need("log", &a, 1, "REPO")) != 0)
        return rc;
    if ((rc = mesa_connect(ctx)) != EXIT_OK)
        return rc;
    char change[33], commit[41], bookmark[256];
    mesa_error_t e = {0};
    json_t *all = NULL, *bms = NULL;
    if (mesa_rev_resolve(ctx, a.pos[0], &a.rev, change, commit, bookmark, &e) < 0 ||
        fetch_changes(ctx, a.pos[0], change, a.limit, &all, &e) < 0 ||
        mesa_call(ctx, "GET", NULL, &bms, &e, "/%s/bookmarks?limit=100", a.pos[0]) < 0) {
        json_decref(all);
        return mesa_fail("log", &e);
    }
    if (ctx->json) {
        mesa_print_json(json_pack("{s:o, s:o}", "changes", all, "bookmarks",
                                  json_incref(json_object_get(bms, "bookmarks"))));
        json_decref(bms);
        return EXIT_OK;
    }
    size_t i, n = json_array_size(all);
    json_t *c;
    json_array_foreach(all, i, c)
    {
        const char *id = json_string_value(json_object_get(c, "id"));
        const char *msg = json_string_value(json_object_get(c, "message"));
        json_t *parents = json_object_get(c, "parents");
        char names[512];
        bookmarks_at(json_object_get(bms, "bookmarks"), id, names, sizeof names);
        int root = strcmp(id, ROOT_CHANGE) == 0;
        size_t ml = msg ? strcspn(msg, "\n") : 0;
        printf("%s  %.12s %.12s%s%s%s %.*s\n", strcmp(id, change) == 0 ? "@" : root ? "◆" : "○",
               id, json_string_value(json_object_get(c, "current_commit_oid")),
               names[0] ? " (" : "", names, names[0] ? ")" : "", (int)(ml ? ml : root ? 6 : 16),
               ml ? msg : root ? "(root)" : "(no description)");
        if (json_array_size(parents) > 1) {
            printf("├─╮  merge of");
            size_t j;
            json_t *p;
            json_array_foreach(parents, j, p) printf(" %.12s", json_string_value(p));
            putchar('\n');
        } else if (i + 1 < n) {
            puts("│");
        }
    }
    json_decref(all);
    json_decref(bms);
    return EXIT_OK;
}
