/* server/api_changes.c - changes: GET|POST /v1/{org}/{repo}/changes,
 * GET|PATCH /v1/{org}/{repo}/changes/{id}. Parses and validates `files`
 * (every entry checked and its content stored as a blob before anything
 * becomes visible), then hands the write to repo_write().
 */
#include "config.h"
#include "api.h"
#include "b64.h"
#include "pathcheck.h"
#include "repo.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct files {
    sg_op_t *ops;
    int64_t *mtimes;
    size_t n;
} files_t;

static void files_free(files_t *f)
{
    free(f->ops);
    free(f->mtimes);
}

static int parse_mode(json_t *m, unsigned *mode)
{
    const char *s = json_string_value(m);
    if (!m) {
        *mode = 0100644;
        return 0;
    }
    if (!s)
        return -EINVAL;
    if (strcmp(s, "100644") == 0)
        *mode = 0100644;
    else if (strcmp(s, "100755") == 0)
        *mode = 0100755;
    else if (strcmp(s, "120000") == 0)
        *mode = 0120000;
    else
        return -EINVAL;
    return 0;
}

/* Store the entry's content (base64 or an uploaded blob) and fill op->oid. */
static int entry_blob(req_t *r, sg_repo_t *g, json_t *e, size_t i, sg_op_t *op)
{
    json_t *content = json_object_get(e, "content"), *blob = json_object_get(e, "blob_oid");
    json_t *enc = json_object_get(e, "encoding");
    if (!!content == !!blob)
        return http_error(r, 400, "BAD_REQUEST", "files[%zu]: give exactly one of content, "
                                                 "blob_oid", i), -1;
    if (enc && !(json_is_string(enc) && strcmp(json_string_value(enc), "base64") == 0))
        return http_error(r, 400, "BAD_REQUEST", "files[%zu]: encoding must be base64", i), -1;
    if (blob) {
        const char *oid = json_string_value(blob);
        if (!oid || strlen(oid) != 40 || sg_blob_exists(g, oid) != 1)
            return http_error(r, 400, "BAD_REQUEST", "files[%zu]: unknown blob_oid", i), -1;
        snprintf(op->oid, sizeof op->oid, "%s", oid);
        return 0;
    }
    unsigned char *data = NULL;
    size_t len = 0;
    if (!json_is_string(content) ||
        mesa_b64_decode(json_string_value(content), json_string_length(content), &data, &len) < 0)
        return http_error(r, 400, "BAD_REQUEST", "files[%zu]: content is not valid base64", i),
               -1;
    int rc = sg_blob_write(g, data, len, op->oid);
    free(data);
    if (rc < 0)
        return http_errno(r, rc, "blob"), -1;
    return 0;
}

static int parse_entry(req_t *r, sg_repo_t *g, json_t *e, size_t i, sg_op_t *op, int64_t *mt)
{
    static const char *const allowed[] = {"path",     "content",  "encoding", "action",
                                          "mode",     "mtime_ns", "blob_oid", NULL};
    const char *bad = NULL, *why = NULL;
    if (!json_is_object(e))
        return http_error(r, 400, "BAD_REQUEST", "files[%zu] must be an object", i), -1;
    if (util_json_only_keys(e, allowed, &bad) < 0)
        return http_error(r, 400, "BAD_REQUEST", "files[%zu]: unknown field '%s'", i, bad), -1;
    json_t *path = json_object_get(e, "path"), *action = json_object_get(e, "action");
    json_t *mtime = json_object_get(e, "mtime_ns");
    if (!json_is_string(path) ||
        pathcheck_file(json_string_value(path), json_string_length(path), &why) < 0)
        return http_error(r, 400, "BAD_REQUEST", "files[%zu]: %s", i,
                          why ? why : "path must be a string"), -1;
    op->path = json_string_value(path);
    if (mtime && (!json_is_integer(mtime) || json_integer_value(mtime) < 0))
        return http_error(r, 400, "BAD_REQUEST", "files[%zu]: mtime_ns must be a non-negative "
                                                 "integer", i), -1;
    *mt = mtime ? json_integer_value(mtime) : -1;
    const char *act = action ? json_string_value(action) : "upsert";
    if (!act)
        return http_error(r, 400, "BAD_REQUEST", "files[%zu]: action must be a string", i), -1;
    if (strcmp(act, "delete") == 0 || strcmp(act, "mkdir") == 0) {
        op->kind = act[0] == 'd' ? SG_OP_DELETE : SG_OP_MKDIR;
        if (json_object_get(e, "content") || json_object_get(e, "blob_oid") ||
            json_object_get(e, "mode") || (op->kind == SG_OP_DELETE && mtime))
            return http_error(r, 400, "BAD_REQUEST", "files[%zu]: %s takes only a path", i,
                              act), -1;
        return 0;
    }
    if (strcmp(act, "upsert") != 0)
        return http_error(r, 400, "BAD_REQUEST", "files[%zu]: unknown action '%s'", i, act), -1;
    op->kind = SG_OP_UPSERT;
    if (parse_mode(json_object_get(e, "mode"), &op->mode) < 0)
        return http_error(r, 400, "BAD_REQUEST", "files[%zu]: mode must be 100644, 100755 or "
                                                 "120000", i), -1;
    return entry_blob(r, g, e, i, op);
}

/* Parse `files` (may be NULL). On failure the response is set; returns -1. */
static int parse_files(req_t *r, sg_repo_t *g, json_t *files, files_t *out)
{
    memset(out, 0, sizeof *out);
    if (!files)
        return 0;
    if (!json_is_array(files))
        return http_error(r, 400, "BAD_REQUEST", "files must be an array"), -1;
    size_t n = json_array_size(files);
    out->ops = calloc(n ? n : 1, sizeof *out->ops);
    out->mtimes = calloc(n ? n : 1, sizeof *out->mtimes);
    if (!out->ops || !out->mtimes)
        return http_errno(r, -ENOMEM, "files"), -1;
    for (size_t i = 0; i < n; i++)
        if (parse_entry(r, g, json_array_get(files, i), i, &out->ops[i], &out->mtimes[i]) < 0)
            return -1;
    out->n = n;
    return 0;
}

/* {name,email,date?} into s (strings borrowed from v). */
static int parse_sig(req_t *r, json_t *v, const char *what, sg_sig_t *s)
{
    json_t *name = json_object_get(v, "name"), *email = json_object_get(v, "email");
    json_t *date = json_object_get(v, "date");
    static const char *const allowed[] = {"name", "email", "date", NULL};
    const char *bad;
    memset(s, 0, sizeof *s);
    if (!json_is_object(v) || util_json_only_keys(v, allowed, &bad) < 0 ||
        !json_is_string(name) || !json_is_string(email) || (date && !json_is_string(date)))
        return http_error(r, 400, "BAD_REQUEST", "%s must be {name, email, date?}", what), -1;
    s->name = json_string_value(name);
    s->email = json_string_value(email);
    if (strpbrk(s->name, "<>\n") || strpbrk(s->email, "<>\n"))
        return http_error(r, 400, "BAD_REQUEST", "%s: name and email may not contain <, > or "
                                                 "newlines", what), -1;
    if (date && util_parse_time(json_string_value(date), &s->when, &s->offset_min) < 0)
        return http_error(r, 400, "BAD_REQUEST", "%s.date must be an RFC 3339 time", what), -1;
    return 0;
}

/* Shared by create and patch: body fields common to both. */
typedef struct change_body {
    json_t *json;
    files_t files;
    sg_sig_t author, committer;
    int has_author, has_committer;
    const char *message;
} change_body_t;

static int parse_change_body(req_t *r, sg_repo_t *g, const char *const *allowed,
                             change_body_t *cb)
{
    const char *bad = NULL;
    memset(cb, 0, sizeof *cb);
    if (!(cb->json = http_body_json(r)))
        return -1;
    json_t *b = cb->json, *msg = json_object_get(b, "message");
    if (util_json_only_keys(b, allowed, &bad) < 0)
        return http_error(r, 400, "BAD_REQUEST", "unknown field '%s'", bad), -1;
    if (msg && !json_is_string(msg))
        return http_error(r, 400, "BAD_REQUEST", "message must be a string"), -1;
    cb->message = msg ? json_string_value(msg) : NULL;
    if (json_object_get(b, "author")) {
        if (parse_sig(r, json_object_get(b, "author"), "author", &cb->author) < 0)
            return -1;
        cb->has_author = 1;
    }
    if (json_object_get(b, "committer")) {
        if (parse_sig(r, json_object_get(b, "committer"), "committer", &cb->committer) < 0)
            return -1;
        cb->has_committer = 1;
    }
    return parse_files(r, g, json_object_get(b, "files"), &cb->files);
}

static void change_body_free(change_body_t *cb)
{
    files_free(&cb->files);
    json_decref(cb->json);
}

static int write_change(req_t *r, sg_repo_t *g, change_body_t *cb, repo_write_t *w,
                        unsigned ok_status)
{
    w->ops = cb->files.ops;
    w->nops = cb->files.n;
    w->mtimes = cb->files.mtimes;
    w->message = cb->message;
    w->author = cb->has_author ? &cb->author : NULL;
    w->committer = cb->has_committer ? &cb->committer : NULL;
    /* no committer given: the key that writes ("<key name> <<key id>@<org>>") */
    char kemail[160];
    sg_sig_t key_sig = {.name = r->who.key.name[0] ? r->who.key.name : r->who.key.id,
                        .email = kemail};
    snprintf(kemail, sizeof kemail, "%s@%s", r->who.key.id, r->org.slug);
    if (!w->committer && r->who.key.id[0])
        w->committer = &key_sig;
    db_change_t out;
    char current[SG_OID_HEX] = "";
    int err = 0;
    switch (repo_write(&r->org, &r->repo, g, w, &out, current, &err)) {
    case REPO_W_OK:
        return http_json(r, ok_status, repo_change_json(g, &r->repo, &out));
    case REPO_W_STALE:
        return http_error_details(r, 409, "STALE_BASE",
                                  json_pack("{s:s}", "current_commit_oid", current),
                                  "base_commit_oid %s is not the change's current commit %s",
                                  w->expected_commit, current);
    case REPO_W_IMMUTABLE:
        return http_error(r, 400, "IMMUTABLE_CHANGE", "the root change cannot be rewritten");
    case REPO_W_NOBASE:
        return http_error(r, 404, "NOT_FOUND", "change '%s' not found",
                          w->change_id ? w->change_id : w->base_rev);
    default:
        if (err == -EEXIST || err == -ENOTDIR || err == -EISDIR)
            return http_error(r, 409, "CONFLICT", "a file and a directory collide at a path "
                                                  "of this write");
        return http_errno(r, err, "path");
    }
}

int api_changes_create(req_t *r)
{
    static const char *const allowed[] = {"base_change_id", "message", "author", "committer",
                                          "files", NULL};
    sg_repo_t *g;
    if (repo_open_git(&r->repo, &g) < 0)
        return http_errno(r, -EIO, "repository");
    change_body_t cb;
    if (parse_change_body(r, g, allowed, &cb) == 0) {
        json_t *base = json_object_get(cb.json, "base_change_id");
        if (!json_is_string(base))
            http_error(r, 400, "BAD_REQUEST", "base_change_id must be a string");
        else
            write_change(r, g, &cb, &(repo_write_t){.base_rev = json_string_value(base)}, 201);
    }
    change_body_free(&cb);
    sg_repo_close(g);
    return 0;
}

int api_change_patch(req_t *r)
{
    static const char *const allowed[] = {"message", "author", "committer", "files",
                                          "base_commit_oid", "resolutions", NULL};
    sg_repo_t *g;
    if (repo_open_git(&r->repo, &g) < 0)
        return http_errno(r, -EIO, "repository");
    change_body_t cb;
    char change_id[33], commit[SG_OID_HEX];
    if (parse_change_body(r, g, allowed, &cb) < 0)
        goto out;
    json_t *base = json_object_get(cb.json, "base_commit_oid");
    if (base && !json_is_string(base)) {
        http_error(r, 400, "BAD_REQUEST", "base_commit_oid must be a string");
        goto out;
    }
    if (json_object_get(cb.json, "resolutions")) {
        http_error(r, 400, "BAD_REQUEST", "resolutions on changes are not supported by mesad");
        goto out;
    }
    if (repo_resolve(g, &r->repo, r->seg[3], change_id, commit) < 0) {
        http_error(r, 404, "NOT_FOUND", "change '%s' not found", r->seg[3]);
        goto out;
    }
    write_change(r, g, &cb,
                 &(repo_write_t){.change_id = change_id,
                                 .expected_commit = base ? json_string_value(base) : NULL},
                 200);
out:
    change_body_free(&cb);
    sg_repo_close(g);
    return 0;
}

/* Paths changed against the first parent, and the conflict list. */
static void add_files_and_conflicts(sg_repo_t *g, const db_change_t *c, json_t *v)
{
    json_t *files = json_array();
    sg_commit_info_t ci, pi;
    if (sg_commit_read(g, c->commit_oid, &ci) == 0) {
        const char *ptree = NULL;
        int have_parent = ci.nparents > 0 && sg_commit_read(g, ci.parents[0], &pi) == 0;
        if (have_parent)
            ptree = pi.tree;
        sg_change_t *d = NULL;
        size_t n = 0;
        if (sg_tree_diff(g, ptree, ci.tree, &d, &n) == 0)
            for (size_t i = 0; i < n; i++)
                json_array_append_new(files, json_string(d[i].path));
        sg_changes_free(d, n);
        if (have_parent)
            sg_commit_info_free(&pi);
        sg_commit_info_free(&ci);
    }
    json_object_set_new(v, "files", files);
    json_t *conf = json_loads(c->conflicts, 0, NULL);
    json_object_set_new(v, "conflicts", json_is_array(conf) ? conf : json_array());
    if (conf && !json_is_array(conf))
        json_decref(conf);
}

int api_change_get(req_t *r)
{
    sg_repo_t *g;
    if (repo_open_git(&r->repo, &g) < 0)
        return http_errno(r, -EIO, "repository");
    char change_id[33], commit[SG_OID_HEX];
    db_change_t c;
    if (repo_resolve(g, &r->repo, r->seg[3], change_id, commit) < 0 ||
        db_change_get(r->repo.id, change_id, &c) < 0) {
        sg_repo_close(g);
        return http_error(r, 404, "NOT_FOUND", "change '%s' not found", r->seg[3]);
    }
    json_t *v = repo_change_json(g, &r->repo, &c);
    if (v)
        add_files_and_conflicts(g, &c, v);
    sg_repo_close(g);
    return v ? http_json(r, 200, v) : http_errno(r, -EIO, "change");
}

/* Ancestors of a bookmark, newest first, one entry per change id. */
static int list_from_bookmark(req_t *r, sg_repo_t *g, const char *bm, long off, int limit,
                              json_t *arr, int *more)
{
    char change_id[33], commit[SG_OID_HEX];
    if (!sg_bookmark_name_valid(bm) || repo_resolve(g, &r->repo, bm, change_id, commit) < 0)
        return -ENOENT;
    size_t cap = 256, head = 0, tail = 0;
    char(*queue)[SG_OID_HEX] = malloc(cap * SG_OID_HEX);
    json_t *seen = json_object(), *seen_commit = json_object();
    long idx = 0;
    snprintf(queue[tail++], SG_OID_HEX, "%s", commit);
    while (head < tail && !*more) {
        char cur[SG_OID_HEX];
        snprintf(cur, sizeof cur, "%s", queue[head++]);
        sg_commit_info_t ci;
        if (sg_commit_read(g, cur, &ci) < 0)
            continue;
        db_change_t c;
        if (ci.change_id[0] && !json_object_get(seen, ci.change_id) &&
            db_change_get(r->repo.id, ci.change_id, &c) == 0) {
            json_object_set_new(seen, ci.change_id, json_true());
            if (idx >= off && json_array_size(arr) == (size_t)limit)
                *more = 1;
            else if (idx++ >= off)
                json_array_append_new(arr, repo_change_json(g, &r->repo, &c));
        }
        for (size_t i = 0; i < ci.nparents; i++) {
            if (json_object_get(seen_commit, ci.parents[i]))
                continue;
            json_object_set_new(seen_commit, ci.parents[i], json_true());
            if (tail == cap)
                queue = realloc(queue, (cap *= 2) * SG_OID_HEX);
            snprintf(queue[tail++], SG_OID_HEX, "%s", ci.parents[i]);
        }
        sg_commit_info_free(&ci);
    }
    free(queue);
    json_decref(seen);
    json_decref(seen_commit);
    return 0;
}

static int list_all(req_t *r, sg_repo_t *g, long off, int limit, json_t *arr, int *more)
{
    db_change_t *cs = NULL;
    size_t n = 0;
    int rc = db_change_list(r->repo.id, off, limit, &cs, &n, more);
    for (size_t i = 0; rc == 0 && i < n; i++)
        json_array_append_new(arr, repo_change_json(g, &r->repo, &cs[i]));
    free(cs);
    return rc;
}

int api_changes_list(req_t *r)
{
    long off;
    int limit, more = 0;
    const char *bm = http_arg(r, "bookmark");
    if (http_page_args(r, &off, &limit) < 0)
        return 0;
    sg_repo_t *g;
    if (repo_open_git(&r->repo, &g) < 0)
        return http_errno(r, -EIO, "repository");
    json_t *arr = json_array();
    int rc = bm ? list_from_bookmark(r, g, bm, off, limit, arr, &more)
                : list_all(r, g, off, limit, arr, &more);
    sg_repo_close(g);
    if (rc < 0) {
        json_decref(arr);
        return http_errno(r, rc, bm ? "bookmark" : "changes");
    }
    return http_page(r, "changes", arr, off, more);
}
