/* tools/mesa_files.c - `mesa ls|cat|put|rm PATH` over the API.
 *
 * PATH is /<prefix>/<org>/<repo>/<path> or <repo>:<path>. put and rm write
 * into the selected change exactly as a mount's write does: a PATCH with
 * base_commit_oid (bookmarks at the change follow it), or, on the root
 * change, a new change on top of it with the bookmark moved there.
 */
#include "config.h"
#include "mesa.h"
#include "b64.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct target {
    char repo[256];
    char path[4097]; /* repo-relative, "" = root */
    mesa_rev_t rev;
    int longfmt, recursive;
    const char *arg; /* PATH as given, for messages */
} target_t;

int mesa_parse_path(mesa_ctx_t *ctx, const char *cmd, const char *arg, char repo[256],
                    char path[4097])
{
    const char *colon = strchr(arg, ':');
    size_t pl = strlen(ctx->prefix);
    if (arg[0] == '/') {
        if (strncmp(arg, ctx->prefix, pl) != 0 || arg[pl] != '/')
            return mesa_usage(cmd, "'%s' is not under %s", arg, ctx->prefix);
        const char *org = arg + pl + 1, *slash = strchr(org, '/');
        if (!slash || (size_t)(slash - org) != strlen(ctx->org) ||
            strncmp(org, ctx->org, strlen(ctx->org)) != 0)
            return mesa_usage(cmd, "'%s' is not in org '%s'", arg, ctx->org);
        const char *r = slash + 1, *rest = strchr(r, '/');
        size_t rl = rest ? (size_t)(rest - r) : strlen(r);
        if (rl == 0 || rl >= 256)
            return mesa_usage(cmd, "'%s' names no repository", arg);
        memcpy(repo, r, rl);
        repo[rl] = '\0';
        snprintf(path, 4097, "%s", rest ? rest + 1 : "");
    } else if (colon && colon != arg && (size_t)(colon - arg) < 256) {
        memcpy(repo, arg, (size_t)(colon - arg));
        repo[colon - arg] = '\0';
        snprintf(path, 4097, "%s", colon[1] == '/' ? colon + 2 : colon + 1);
    } else {
        return mesa_usage(cmd, "PATH must be %s/ORG/REPO/... or REPO:PATH (got '%s')",
                          ctx->prefix, arg);
    }
    size_t n = strlen(path);
    while (n > 0 && path[n - 1] == '/')
        path[--n] = '\0';
    return 0;
}

/* Common option parsing: --bookmark, --change, -l, -r; one PATH. */
static int parse_args(mesa_ctx_t *ctx, int argc, char **argv, const char *help, target_t *t)
{
    static const struct option opts[] = {{"bookmark", required_argument, NULL, 'b'},
                                         {"change", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    memset(t, 0, sizeof *t);
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "lrh", opts, NULL)) != -1) {
        switch (c) {
        case 'b': t->rev.bookmark = optarg; break;
        case 'c': t->rev.change = optarg; break;
        case 'l': t->longfmt = 1; break;
        case 'r': t->recursive = 1; break;
        case 'h': fputs(help, stdout); return -1;
        default: return mesa_usage(argv[0], "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (t->rev.bookmark && t->rev.change)
        return mesa_usage(argv[0], "--bookmark and --change are mutually exclusive");
    if (optind != argc - 1)
        return mesa_usage(argv[0], "takes exactly one PATH");
    int rc = mesa_connect(ctx);
    if (rc != EXIT_OK)
        return rc;
    t->arg = argv[optind];
    return mesa_parse_path(ctx, argv[0], argv[optind], t->repo, t->path);
}

/* "?change_id=...&path=..." for the target. */
static void query(const target_t *t, char *out, size_t n)
{
    char p[13000], rev[600] = "";
    mesa_client_escape(t->path, p, sizeof p);
    const char *r = t->rev.change ? t->rev.change : t->rev.bookmark;
    if (r)
        mesa_client_escape(r, rev, sizeof rev);
    snprintf(out, n, "?path=%s%s%s", p, r ? "&change_id=" : "", rev);
}

static const char ls_help[] = "usage: mesa ls [-l] [--bookmark B | --change ID] PATH\n";

static void print_entry(json_t *e, json_t *tree, int longfmt)
{
    const char *path = json_string_value(json_object_get(e, "path"));
    const char *name = json_string_value(json_object_get(e, "name"));
    const char *type = json_string_value(json_object_get(e, "type"));
    if (!longfmt) {
        printf("%s%s\n", name, strcmp(type, "dir") == 0 ? "/" : "");
        return;
    }
    json_int_t mt = 0, size = json_integer_value(json_object_get(e, "size"));
    size_t i;
    json_t *te;
    json_array_foreach(json_object_get(tree, "entries"), i, te)
    {
        if (strcmp(json_string_value(json_object_get(te, "path")), path) == 0) {
            mt = json_integer_value(json_object_get(te, "mtime_ns"));
            break;
        }
    }
    time_t s = (time_t)(mt / 1000000000);
    struct tm tm;
    char when[32];
    localtime_r(&s, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    const char *mode = json_string_value(json_object_get(e, "mode"));
    printf("%-6s %-7s %10lld %s %s%s\n", mode ? mode : "040000", type, (long long)size, when,
           name, strcmp(type, "dir") == 0 ? "/" : "");
}

int cmd_ls(mesa_ctx_t *ctx, int argc, char **argv)
{
    target_t t;
    int rc = parse_args(ctx, argc, argv, ls_help, &t);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    char q[14000];
    query(&t, q, sizeof q);
    json_t *v = NULL, *tree = NULL;
    mesa_error_t e = {0};
    if (mesa_call(ctx, "GET", NULL, &v, &e, "/%s/content%s", t.repo, q) < 0)
        return mesa_fail(t.arg, &e);
    const char *r = t.rev.change ? t.rev.change : t.rev.bookmark;
    if (t.longfmt && mesa_call(ctx, "GET", NULL, &tree, &e, "/%s/tree%s%s", t.repo,
                               r ? "?change_id=" : "", r ? r : "") < 0) {
        json_decref(v);
        return mesa_fail(t.arg, &e);
    }
    if (ctx->json) {
        mesa_print_json(v);
        json_decref(tree);
        return EXIT_OK;
    }
    if (strcmp(json_string_value(json_object_get(v, "type")), "dir") != 0) {
        print_entry(v, tree, t.longfmt);
    } else {
        size_t i;
        json_t *ent;
        json_array_foreach(json_object_get(v, "entries"), i, ent) print_entry(ent, tree,
                                                                                t.longfmt);
    }
    json_decref(v);
    json_decref(tree);
    return EXIT_OK;
}

static const char cat_help[] = "usage: mesa cat [--bookmark B | --change ID] PATH\n";

int cmd_cat(mesa_ctx_t *ctx, int argc, char **argv)
{
    target_t t;
    int rc = parse_args(ctx, argc, argv, cat_help, &t);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    char q[14000], path[15000];
    query(&t, q, sizeof q);
    snprintf(path, sizeof path, "/%s/%s/content%s", ctx->org, t.repo, q);
    static const char *const h[] = {"Accept: application/octet-stream", NULL};
    mesa_resp_t r;
    mesa_error_t e = {0};
    if (mesa_client_request(ctx->client, "GET", path, h, NULL, 0, &r, &e) < 0)
        return mesa_fail(t.arg, &e);
    if (r.status != 200) {
        json_t *v = json_loadb(r.body, r.len, 0, NULL);
        const char *msg = json_string_value(json_object_get(json_object_get(v, "error"),
                                                            "message"));
        fprintf(stderr, "mesa: %s: %s (HTTP %ld)\n", t.arg, msg ? msg : "failed",
                r.status);
        json_decref(v);
        mesa_resp_free(&r);
        return EXIT_FAIL;
    }
    size_t off = 0, len = r.len;
    while (off < len) {
        ssize_t n = write(1, r.body + off, len - off);
        if (n < 0 && errno != EINTR)
            break;
        if (n > 0)
            off += (size_t)n;
    }
    mesa_resp_free(&r);
    if (off != len) {
        perror("mesa cat: writing standard output");
        return EXIT_FAIL;
    }
    return EXIT_OK;
}

/* Write files[] (stolen) into the target's change as a mount would. */
static int write_change(mesa_ctx_t *ctx, const target_t *t, json_t *files, const char *what)
{
    char change[33], commit[41], bookmark[256];
    mesa_error_t e = {0};
    json_t *v = NULL;
    if (mesa_rev_resolve(ctx, t->repo, &t->rev, change, commit, bookmark, &e) < 0) {
        json_decref(files);
        return mesa_fail(what, &e);
    }
    if (strcmp(change, ROOT_CHANGE) == 0) {
        /* the root cannot be rewritten: a new change on top, bookmark follows */
        if (mesa_call(ctx, "POST",
                      json_pack("{s:s, s:o}", "base_change_id", ROOT_CHANGE, "files", files), &v,
                      &e, "/%s/changes", t->repo) < 0)
            return mesa_fail(what, &e);
        snprintf(change, sizeof change, "%s", json_string_value(json_object_get(v, "id")));
        if (bookmark[0] &&
            mesa_call(ctx, "PATCH", json_pack("{s:s}", "change_id", change), NULL, &e,
                      "/%s/bookmarks/%s", t->repo, bookmark) < 0) {
            json_decref(v);
            return mesa_fail(what, &e);
        }
    } else if (mesa_call(ctx, "PATCH",
                         json_pack("{s:s, s:o}", "base_commit_oid", commit, "files", files), &v,
                         &e, "/%s/changes/%s", t->repo, change) < 0) {
        return mesa_fail(what, &e);
    }
    if (ctx->json)
        mesa_print_json(v);
    else
        json_decref(v);
    return EXIT_OK;
}

static const char put_help[] =
    "usage: mesa put [--bookmark B | --change ID] PATH < DATA\n"
    "Write standard input to PATH in the change (a new change on top of the root).\n";

int cmd_put(mesa_ctx_t *ctx, int argc, char **argv)
{
    target_t t;
    int rc = parse_args(ctx, argc, argv, put_help, &t);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    if (!t.path[0])
        return mesa_usage("put", "PATH must name a file in the repository");
    char *data = NULL;
    size_t len = 0;
    int err = mesa_read_fd(0, &data, &len);
    if (err < 0) {
        fprintf(stderr, "mesa put: reading standard input: %s\n", strerror(-err));
        return EXIT_FAIL;
    }
    char *b64 = malloc(mesa_b64_enclen(len) + 1);
    if (!b64) {
        free(data);
        fputs("mesa put: out of memory\n", stderr);
        return EXIT_FAIL;
    }
    mesa_b64_encode(data, len, b64);
    free(data);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    json_t *files = json_pack("[{s:s, s:s, s:I}]", "path", t.path, "content", b64, "mtime_ns",
                              (json_int_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
    free(b64);
    return write_change(ctx, &t, files, t.arg);
}

static const char rm_help[] =
    "usage: mesa rm [-r] [--bookmark B | --change ID] PATH\n"
    "Remove PATH from the change (-r for a directory).\n";

int cmd_rm(mesa_ctx_t *ctx, int argc, char **argv)
{
    target_t t;
    int rc = parse_args(ctx, argc, argv, rm_help, &t);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    if (!t.path[0])
        return mesa_usage("rm", "refusing to remove the repository root");
    char q[14000];
    query(&t, q, sizeof q);
    json_t *v = NULL;
    mesa_error_t e = {0};
    if (mesa_call(ctx, "GET", NULL, &v, &e, "/%s/content%s", t.repo, q) < 0)
        return mesa_fail(t.arg, &e);
    int is_dir = strcmp(json_string_value(json_object_get(v, "type")), "dir") == 0;
    json_decref(v);
    if (is_dir && !t.recursive) {
        fprintf(stderr, "mesa rm: %s: is a directory (use -r)\n", t.arg);
        return EXIT_FAIL;
    }
    return write_change(ctx, &t, json_pack("[{s:s, s:s}]", "path", t.path, "action", "delete"),
                        t.arg);
}
