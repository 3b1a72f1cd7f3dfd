/* tools/mesa_repo.c - `mesa repo list|create|delete|import`, and resolving
 * --bookmark/--change to a change and commit (used by every subcommand).
 *
 * Import invariant: files go up as raw blobs, then into ONE new change
 * (created by the first batch, extended by PATCHes with base_commit_oid);
 * the default bookmark moves only after the last batch, so an interrupted
 * import leaves the bookmark where it was.
 */
#include "config.h"
#include "mesa.h"
#include "gitignore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int mesa_rev_resolve(mesa_ctx_t *ctx, const char *repo, const mesa_rev_t *rev,
                     char change_id[33], char commit[41], char bookmark[256], mesa_error_t *e)
{
    json_t *v = NULL;
    bookmark[0] = '\0';
    if (rev->change) {
        snprintf(change_id, 33, "%s", rev->change);
    } else {
        if (rev->bookmark) {
            snprintf(bookmark, 256, "%s", rev->bookmark);
        } else {
            if (mesa_call(ctx, "GET", NULL, &v, e, "/%s", repo) < 0)
                return -1;
            snprintf(bookmark, 256, "%s",
                     json_string_value(json_object_get(v, "default_bookmark")));
            json_decref(v);
        }
        char esc[1024];
        if (mesa_client_escape(bookmark, esc, sizeof esc) < 0 ||
            mesa_call(ctx, "GET", NULL, &v, e, "/%s/bookmarks/%s", repo, esc) < 0)
            return -1;
        snprintf(change_id, 33, "%s", json_string_value(json_object_get(v, "change_id")));
        json_decref(v);
    }
    if (mesa_call(ctx, "GET", NULL, &v, e, "/%s/changes/%s", repo, change_id) < 0)
        return -1;
    snprintf(commit, 41, "%s", json_string_value(json_object_get(v, "current_commit_oid")));
    json_decref(v);
    return 0;
}

static int repo_list(mesa_ctx_t *ctx)
{
    json_t *all = json_array();
    char cursor[128] = "";
    mesa_error_t e = {0};
    for (;;) {
        json_t *page = NULL;
        if (mesa_call(ctx, "GET", NULL, &page, &e, "/repos?limit=100%s%s",
                      cursor[0] ? "&cursor=" : "", cursor) < 0) {
            json_decref(all);
            return mesa_fail("repo list", &e);
        }
        json_array_extend(all, json_object_get(page, "repos"));
        const char *next = json_string_value(json_object_get(page, "next_cursor"));
        snprintf(cursor, sizeof cursor, "%s", next ? next : "");
        json_decref(page);
        if (!next)
            break;
    }
    if (ctx->json) {
        mesa_print_json(json_pack("{s:o}", "repos", all));
        return EXIT_OK;
    }
    size_t i;
    json_t *r;
    json_array_foreach(all, i, r)
    {
        printf("%-30s %-12s %s\n", json_string_value(json_object_get(r, "name")),
               json_string_value(json_object_get(r, "default_bookmark")),
               json_string_value(json_object_get(r, "head_change_id")));
    }
    json_decref(all);
    return EXIT_OK;
}

static int repo_create(mesa_ctx_t *ctx, const char *name)
{
    json_t *v = NULL;
    mesa_error_t e = {0};
    if (mesa_call(ctx, "POST", json_pack("{s:s}", "name", name), &v, &e, "/repos") < 0)
        return mesa_fail("repo create", &e);
    if (ctx->json)
        mesa_print_json(v);
    else {
        printf("created %s/%s\n", ctx->org, name);
        json_decref(v);
    }
    return EXIT_OK;
}

static int repo_delete(mesa_ctx_t *ctx, const char *name)
{
    mesa_error_t e = {0};
    if (mesa_call(ctx, "DELETE", NULL, NULL, &e, "/%s", name) < 0)
        return mesa_fail("repo delete", &e);
    if (ctx->json)
        mesa_print_json(json_pack("{s:b, s:s}", "success", 1, "name", name));
    else
        printf("deleted %s/%s\n", ctx->org, name);
    return EXIT_OK;
}

/* ------------------------------------------------------------ import */

typedef struct import {
    mesa_ctx_t *ctx;
    const char *repo, *root;
    int all, tty;
    json_t *batch;    /* files[] of the current batch */
    size_t batch_bytes;
    char change[33];  /* created by the first batch */
    char commit[41];
    char base[33];    /* the change the import goes on */
    size_t files, bytes, total_files;
    struct timespec t0;
    mesa_error_t e;
} import_t;

#define BATCH_FILES 500
#define BATCH_BYTES (16u << 20)

static double since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static void progress(import_t *im, int done)
{
    if (!im->tty)
        return;
    double s = since(&im->t0);
    fprintf(stderr, "\rimport: %zu/%zu files, %.1f MiB, %.1f MiB/s%s", im->files,
            im->total_files, (double)im->bytes / 1048576.0,
            s > 0 ? (double)im->bytes / 1048576.0 / s : 0.0, done ? "\n" : "   ");
}

/* Send the current batch: create the change or PATCH it. */
static int flush_batch(import_t *im)
{
    if (json_array_size(im->batch) == 0 && im->change[0])
        return 0;
    json_t *v = NULL, *body;
    int rc;
    if (!im->change[0]) {
        char msg[300];
        const char *base = strrchr(im->root, '/');
        snprintf(msg, sizeof msg, "Import %s", base && base[1] ? base + 1 : im->root);
        body = json_pack("{s:s, s:s, s:O}", "base_change_id", im->base, "message", msg, "files",
                         im->batch);
        rc = mesa_call(im->ctx, "POST", body, &v, &im->e, "/%s/changes", im->repo);
    } else {
        body = json_pack("{s:s, s:O}", "base_commit_oid", im->commit, "files", im->batch);
        rc = mesa_call(im->ctx, "PATCH", body, &v, &im->e, "/%s/changes/%s", im->repo,
                       im->change);
    }
    if (rc < 0)
        return -1;
    snprintf(im->change, sizeof im->change, "%s", json_string_value(json_object_get(v, "id")));
    snprintf(im->commit, sizeof im->commit, "%s",
             json_string_value(json_object_get(v, "current_commit_oid")));
    json_decref(v);
    json_array_clear(im->batch);
    im->batch_bytes = 0;
    return 0;
}

/* The whole content of the file at path (malloc'd). 0 or -errno. */
static int read_all(const char *path, char **data, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = mesa_read_fd(fd, data, len);
    close(fd);
    return rc;
}

/* Upload one file (or symlink) as a blob and add it to the batch. */
static int add_file(import_t *im, const char *rel, const char *abs, const struct stat *st)
{
    char *data = NULL;
    size_t len = 0;
    const char *mode = "100644";
    if (S_ISLNK(st->st_mode)) {
        data = malloc(4097);
        ssize_t n = data ? readlink(abs, data, 4096) : -1;
        if (n < 0) {
            free(data);
            return -errno;
        }
        len = (size_t)n;
        mode = "120000";
    } else {
        int rc = read_all(abs, &data, &len);
        if (rc < 0)
            return rc;
        if (st->st_mode & 0111)
            mode = "100755";
    }
    static const char *const h[] = {"Content-Type: application/octet-stream", NULL};
    char path[600];
    snprintf(path, sizeof path, "/%s/%s/blobs", im->ctx->org, im->repo);
    mesa_resp_t r;
    int rc = mesa_client_request(im->ctx->client, "POST", path, h, data, len, &r, &im->e);
    free(data);
    if (rc < 0)
        return -1;
    json_t *v = json_loadb(r.body, r.len, 0, NULL);
    const char *oid = json_string_value(json_object_get(v, "oid"));
    if (r.status != 201 || !oid) {
        char why[sizeof im->e.message];
        mesa_client_error_from(&r, &im->e);
        snprintf(why, sizeof why, "%s", im->e.message);
        snprintf(im->e.message, sizeof im->e.message, "blob upload of %.200s failed: %.200s", rel,
                 why);
        json_decref(v);
        mesa_resp_free(&r);
        return -1;
    }
    /* the file's own mtime travels with it, so make sees what it saw locally */
    json_int_t mtime = (json_int_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
    json_array_append_new(im->batch, json_pack("{s:s, s:s, s:s, s:I}", "path", rel, "blob_oid",
                                               oid, "mode", mode, "mtime_ns", mtime));
    json_decref(v);
    mesa_resp_free(&r);
    im->files++;
    im->bytes += len;
    im->batch_bytes += len;
    progress(im, 0);
    if (json_array_size(im->batch) >= BATCH_FILES || im->batch_bytes >= BATCH_BYTES)
        return flush_batch(im);
    return 0;
}

/* Load dir's .gitignore (rel = "" for the root) into ig. */
static void load_ignore(mesa_ignore_t *ig, const char *abs, const char *rel)
{
    char p[4200], *data = NULL;
    size_t len;
    snprintf(p, sizeof p, "%s/.gitignore", abs);
    if (read_all(p, &data, &len) == 0)
        mesa_ignore_add(ig, rel, data, len);
    free(data);
}

/* Walk abs (repo-relative rel). count_only: just count files. */
static int walk(import_t *im, mesa_ignore_t *ig, const char *abs, const char *rel, int count_only)
{
    DIR *d = opendir(abs);
    if (!d) {
        snprintf(im->e.message, sizeof im->e.message, "cannot read %s: %s", abs, strerror(errno));
        return -1;
    }
    if (!im->all)
        load_ignore(ig, abs, rel);
    struct dirent *de;
    int rc = 0, entries = 0;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (strcmp(de->d_name, ".git") == 0)
            continue; /* never imported, even with --all */
        char cabs[4200], crel[4200];
        snprintf(cabs, sizeof cabs, "%s/%s", abs, de->d_name);
        snprintf(crel, sizeof crel, "%s%s%s", rel, rel[0] ? "/" : "", de->d_name);
        struct stat st;
        if (lstat(cabs, &st) < 0)
            continue;
        int is_dir = S_ISDIR(st.st_mode);
        if (!im->all && mesa_ignore_match(ig, crel, is_dir))
            continue;
        entries++;
        if (is_dir)
            rc = walk(im, ig, cabs, crel, count_only);
        else if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode))
            rc = count_only ? (im->total_files++, 0) : add_file(im, crel, cabs, &st);
    }
    closedir(d);
    if (rc == 0 && entries == 0 && rel[0] && !count_only) /* keep empty directories */
        json_array_append_new(im->batch, json_pack("{s:s, s:s}", "path", rel, "action", "mkdir"));
    return rc;
}

static int repo_import(mesa_ctx_t *ctx, const char *name, const char *dir, int all)
{
    import_t im = {.ctx = ctx, .repo = name, .root = dir, .all = all, .tty = isatty(2)};
    struct stat st;
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "mesa repo import: %s is not a directory\n", dir);
        return EXIT_FAIL;
    }
    json_t *v = NULL;
    if (mesa_call(ctx, "GET", NULL, &v, &im.e, "/%s", name) < 0) {
        if (im.e.err != ENOENT)
            return mesa_fail("repo import", &im.e);
        if (mesa_call(ctx, "POST", json_pack("{s:s}", "name", name), &v, &im.e, "/repos") < 0)
            return mesa_fail("repo import", &im.e);
    }
    char bookmark[256], commit[41], dflt[256];
    snprintf(dflt, sizeof dflt, "%s", json_string_value(json_object_get(v, "default_bookmark")));
    json_decref(v);
    mesa_rev_t rev = {.bookmark = dflt};
    if (mesa_rev_resolve(ctx, name, &rev, im.base, commit, bookmark, &im.e) < 0)
        return mesa_fail("repo import", &im.e);
    clock_gettime(CLOCK_MONOTONIC, &im.t0);
    im.batch = json_array();
    mesa_ignore_t *ig = mesa_ignore_new(), *ig2 = mesa_ignore_new();
    int rc = walk(&im, ig, dir, "", 1);
    if (rc == 0)
        rc = walk(&im, ig2, dir, "", 0);
    if (rc == 0)
        rc = flush_batch(&im);
    mesa_ignore_free(ig);
    mesa_ignore_free(ig2);
    json_decref(im.batch);
    progress(&im, 1);
    if (rc == 0) {
        char esc[1024];
        mesa_client_escape(bookmark, esc, sizeof esc);
        rc = mesa_call(ctx, "PATCH", json_pack("{s:s}", "change_id", im.change), NULL, &im.e,
                       "/%s/bookmarks/%s", name, esc);
    }
    if (rc < 0)
        return mesa_fail("repo import (the bookmark did not move)", &im.e);
    double s = since(&im.t0);
    if (ctx->json)
        mesa_print_json(json_pack("{s:s, s:s, s:s, s:I, s:I, s:f}", "repo", name, "change_id",
                                  im.change, "bookmark", bookmark, "files", (json_int_t)im.files,
                                  "bytes", (json_int_t)im.bytes, "seconds", s));
    else
        printf("imported %zu files (%.1f MiB) into %s/%s as change %s; %s moved to it\n",
               im.files, (double)im.bytes / 1048576.0, ctx->org, name, im.change, bookmark);
    return EXIT_OK;
}

static const char repo_help[] =
    "usage: mesa repo list\n"
    "       mesa repo create NAME\n"
    "       mesa repo delete NAME\n"
    "       mesa repo import NAME DIR [--all]\n"
    "import: creates NAME if needed, uploads DIR (skipping .git and what .gitignore files\n"
    "ignore, unless --all) as one new change on the default bookmark, then moves the\n"
    "bookmark to it.\n";

int cmd_repo(mesa_ctx_t *ctx, int argc, char **argv)
{
    if (argc < 2 || mesa_is_help(argv[1])) {
        fputs(repo_help, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    const char *sub = argv[1];
    int all = 0, n = 0;
    char *args[4];
    for (int i = 2; i < argc; i++) {
        if (mesa_is_help(argv[i])) {
            fputs(repo_help, stdout);
            return EXIT_OK;
        }
        if (strcmp(argv[i], "--all") == 0 && strcmp(sub, "import") == 0)
            all = 1;
        else if (argv[i][0] == '-' || n == 4)
            return mesa_usage("repo", "unexpected argument '%s'", argv[i]);
        else
            args[n++] = argv[i];
    }
    int want = strcmp(sub, "list") == 0     ? 0
               : strcmp(sub, "import") == 0 ? 2
               : strcmp(sub, "create") == 0 || strcmp(sub, "delete") == 0 ? 1
                                                                          : -1;
    if (want < 0)
        return mesa_usage("repo", "unknown subcommand '%s' (list, create, delete, import)", sub);
    if (n != want)
        return mesa_usage("repo", "%s takes %d argument(s)", sub, want);
    int rc = mesa_connect(ctx);
    if (rc != EXIT_OK)
        return rc;
    switch (sub[0]) {
    case 'l':
        return repo_list(ctx);
    case 'c':
        return repo_create(ctx, args[0]);
    case 'd':
        return repo_delete(ctx, args[0]);
    default:
        return repo_import(ctx, args[0], args[1], all);
    }
}
