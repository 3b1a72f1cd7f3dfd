/* server/api_content.c - reading trees and blobs:
 * GET .../content (Mesa's file/dir/symlink JSON, or raw bytes), and the
 * extensions GET .../tree (flat listing with mtimes), GET .../blobs/{oid}
 * (ETag, If-None-Match, Range), POST .../blobs (raw upload) and
 * POST .../blobs/batch. Content entries carry their path's "metadata"
 * (server/api_meta.c), and ?metadata[key]=value filters a listing.
 */
#include "config.h"
#include "api.h"
#include "api_meta.h"
#include "b64.h"
#include "pathcheck.h"
#include "repo.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int wants_raw(req_t *r)
{
    const char *acc = http_header(r, "Accept");
    return acc && strstr(acc, "application/octet-stream");
}

static json_t *entry_json(const sg_entry_t *e)
{
    char mode[8];
    repo_mode_str(e->mode, mode);
    if (e->type == SG_TREE)
        return json_pack("{s:s, s:s, s:s, s:s}", "type", "dir", "name", base_name(e->path),
                         "path", e->path, "sha", e->oid);
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:s}", "type", repo_type_str(e->type), "name",
                     base_name(e->path), "path", e->path, "sha", e->oid, "size",
                     (json_int_t)e->size, "mode", mode);
}

/* The metadata object of path in all ({path: {..}}), as a new reference. */
static json_t *meta_of(json_t *all, const char *path)
{
    json_t *m = json_object_get(all, path);
    return m ? json_incref(m) : json_object();
}

/* With filters, child_count counts the children that pass them. */
static int content_dir(req_t *r, sg_repo_t *g, const char *tree, const sg_entry_t *d, int depth,
                       json_t *filters)
{
    if (wants_raw(r))
        return http_error(r, 406, "NOT_ACCEPTABLE", "'%s' is a directory", d->path);
    sg_entry_t *e = NULL;
    size_t n = 0;
    json_t *all = NULL;
    int rc = sg_tree_list_dir(g, tree, d->path, depth, &e, &n);
    if (rc < 0)
        return http_errno(r, rc, "directory");
    if ((rc = db_meta_tree(r->repo.id, d->path, &all)) < 0) {
        sg_entries_free(e, n);
        return http_errno(r, rc, "metadata");
    }
    json_t *entries = json_array();
    size_t children = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_object_get(all, e[i].path);
        if (filters && !api_meta_match(filters, m))
            continue;
        json_t *ej = entry_json(&e[i]);
        json_object_set_new(ej, "metadata", meta_of(all, e[i].path));
        json_array_append_new(entries, ej);
        const char *rel = e[i].path + (d->path[0] ? strlen(d->path) + 1 : 0);
        children += strchr(rel, '/') == NULL;
    }
    sg_entries_free(e, n);
    json_t *v = json_pack("{s:s, s:s, s:s, s:s, s:I, s:o, s:o}", "type", "dir", "name",
                          base_name(d->path), "path", d->path, "sha", d->oid, "child_count",
                          (json_int_t)children, "metadata", meta_of(all, d->path), "entries",
                          entries);
    json_decref(all);
    return http_json(r, 200, v);
}

static int content_file(req_t *r, sg_repo_t *g, const char *commit, const sg_entry_t *e)
{
    void *data = NULL;
    size_t len = 0;
    int rc = sg_blob_read(g, e->oid, &data, &len);
    if (rc < 0)
        return http_errno(r, rc, "blob");
    if (wants_raw(r)) {
        http_bytes(r, 200, data, len, "application/octet-stream");
        free(data);
        return 0;
    }
    char *b64 = malloc(mesa_b64_enclen(len) + 1);
    if (!b64) {
        free(data);
        return http_errno(r, -ENOMEM, "content");
    }
    mesa_b64_encode(data, len, b64);
    free(data);
    char mode[8];
    repo_mode_str(e->mode, mode);
    int64_t ns = 0;
    json_t *v = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:s}", "type",
                          repo_type_str(e->type), "name", base_name(e->path), "path", e->path,
                          "sha", e->oid, "size", (json_int_t)len, "encoding", "base64", "content",
                          b64, "mode", mode);
    free(b64);
    if (db_mtime_get(r->repo.id, commit, e->path, &ns) == 0)
        json_object_set_new(v, "mtime_ns", json_integer(ns));
    json_t *m = NULL;
    if (db_meta_get(r->repo.id, e->path, &m) == 0)
        json_object_set_new(v, "metadata", m);
    return http_json(r, 200, v);
}

int api_content_get(req_t *r)
{
    const char *rev = http_arg(r, "change_id"), *qpath = http_arg(r, "path");
    const char *dq = http_arg(r, "depth"), *why = NULL;
    char path[PATHCHECK_MAX_PATH + 2], change_id[33], commit[SG_OID_HEX];
    long depth = 1;
    if (dq) {
        char *end;
        depth = strtol(dq, &end, 10);
        if (!*dq || *end || depth < 1 || depth > 1000)
            return http_error(r, 400, "BAD_REQUEST", "depth must be 1..1000");
    }
    size_t qlen = 0;
    if (qpath)
        MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, "path", 4, &qpath, &qlen);
    if (qpath && qlen != strlen(qpath))
        return http_error(r, 400, "BAD_REQUEST", "path: NUL byte in path");
    if (qpath && (qlen > PATHCHECK_MAX_PATH || pathcheck_query(qpath, path, &why) < 0))
        return http_error(r, 400, "BAD_REQUEST", "path: %s", why ? why : "too long");
    if (!qpath)
        path[0] = '\0';
    json_t *filters = NULL;
    if (api_meta_filters(r, &filters) < 0)
        return 0;
    sg_repo_t *g;
    if (repo_open_git(&r->repo, &g) < 0) {
        json_decref(filters);
        return http_errno(r, -EIO, "repository");
    }
    sg_commit_info_t ci;
    sg_entry_t e = {0};
    if (repo_resolve(g, &r->repo, rev, change_id, commit) < 0) {
        http_error(r, 404, "NOT_FOUND", "change or bookmark '%s' not found", rev ? rev : "");
        goto out_repo;
    }
    if (sg_commit_read(g, commit, &ci) < 0) {
        http_errno(r, -EIO, "commit");
        goto out_repo;
    }
    int rc = sg_tree_lookup(g, ci.tree, path, &e);
    if (rc < 0)
        http_error(r, 404, "NOT_FOUND", "path '%s' not found", path);
    else if (e.type == SG_TREE)
        content_dir(r, g, ci.tree, &e, (int)depth, filters);
    else
        content_file(r, g, commit, &e);
    free(e.path);
    sg_commit_info_free(&ci);
out_repo:
    sg_repo_close(g);
    json_decref(filters);
    return 0;
}

int api_tree_get(req_t *r)
{
    const char *rev = http_arg(r, "change_id"), *commit_q = http_arg(r, "commit");
    char change_id[33], commit[SG_OID_HEX];
    sg_repo_t *g;
    if (repo_open_git(&r->repo, &g) < 0)
        return http_errno(r, -EIO, "repository");
    int rc = 0;
    if (commit_q) {
        /* only commits this repo's index knows: never an arbitrary object */
        if (strlen(commit_q) != 40 || db_commit_change(r->repo.id, commit_q, change_id) < 0)
            rc = -ENOENT;
        else
            snprintf(commit, sizeof commit, "%s", commit_q);
    } else {
        rc = repo_resolve(g, &r->repo, rev, change_id, commit);
    }
    json_t *v = rc == 0 ? repo_tree_json(g, &r->repo, commit) : NULL;
    sg_repo_close(g);
    if (rc < 0)
        return http_error(r, 404, "NOT_FOUND", "commit or change not found");
    return v ? http_json(r, 200, v) : http_errno(r, -EIO, "tree");
}

static int valid_oid(const char *s)
{
    if (strlen(s) != 40)
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

/* Parse "bytes=a-b" / "bytes=a-" / "bytes=-n" against len. 1 ok, 0 absent,
 * -1 unsatisfiable, -2 malformed (ignored as per RFC 9110). */
static int parse_range(const char *h, uint64_t len, uint64_t *from, uint64_t *to)
{
    unsigned long long a = 0, b = 0;
    int n = 0;
    if (!h)
        return 0;
    if (sscanf(h, "bytes=-%llu%n", &b, &n) == 1 && h[n] == '\0') {
        if (b == 0 || len == 0)
            return -1;
        *from = b >= len ? 0 : len - b;
        *to = len - 1;
        return 1;
    }
    if (sscanf(h, "bytes=%llu-%n", &a, &n) == 1 && h[n] == '\0') {
        b = len ? len - 1 : 0;
    } else if (!(sscanf(h, "bytes=%llu-%llu%n", &a, &b, &n) == 2 && h[n] == '\0' && a <= b)) {
        return -2;
    }
    if (a >= len)
        return -1;
    *from = a;
    *to = b >= len ? len - 1 : b;
    return 1;
}

int api_blob_get(req_t *r)
{
    const char *oid = r->seg[3];
    if (!valid_oid(oid))
        return http_error(r, 400, "BAD_REQUEST", "'%s' is not a blob id", oid);
    char etag[48];
    snprintf(etag, sizeof etag, "\"%s\"", oid);
    sg_repo_t *g;
    if (repo_open_git(&r->repo, &g) < 0)
        return http_errno(r, -EIO, "repository");
    void *data = NULL;
    size_t len = 0;
    int rc = sg_blob_read(g, oid, &data, &len);
    sg_repo_close(g);
    if (rc < 0)
        return http_error(r, rc == -EINVAL ? 400 : 404, rc == -EINVAL ? "BAD_REQUEST" : "NOT_FOUND",
                          "blob %s not found", oid);
    const char *inm = http_header(r, "If-None-Match");
    uint64_t from = 0, to = 0;
    int rg = parse_range(http_header(r, "Range"), len, &from, &to);
    if (inm && (strcmp(inm, etag) == 0 || strcmp(inm, "*") == 0)) {
        http_bytes(r, 304, "", 0, NULL);
    } else if (rg == -1) {
        char cr[64];
        snprintf(cr, sizeof cr, "bytes */%zu", len);
        http_error(r, 416, "RANGE_NOT_SATISFIABLE", "range outside the blob's %zu bytes", len);
        MHD_add_response_header(r->resp, "Content-Range", cr);
    } else if (rg == 1) {
        char cr[96];
        snprintf(cr, sizeof cr, "bytes %" PRIu64 "-%" PRIu64 "/%zu", from, to, len);
        http_bytes(r, 206, (char *)data + from, (size_t)(to - from + 1),
                   "application/octet-stream");
        MHD_add_response_header(r->resp, "Content-Range", cr);
    } else {
        http_bytes(r, 200, data, len, "application/octet-stream");
    }
    free(data);
    MHD_add_response_header(r->resp, "ETag", etag);
    MHD_add_response_header(r->resp, "Accept-Ranges", "bytes");
    MHD_add_response_header(r->resp, "Cache-Control", "public, max-age=31536000, immutable");
    return 0;
}

int api_blob_upload(req_t *r)
{
    sg_repo_t *g;
    if (repo_open_git(&r->repo, &g) < 0)
        return http_errno(r, -EIO, "repository");
    char oid[SG_OID_HEX];
    int rc = sg_blob_write(g, r->body ? r->body : "", r->body_len, oid);
    sg_repo_close(g);
    if (rc < 0)
        return http_errno(r, rc, "blob");
    return http_json(r, 201, json_pack("{s:s, s:I}", "oid", oid, "size", (json_int_t)r->body_len));
}

int api_blobs_batch(req_t *r)
{
    static const char *const allowed[] = {"oids", NULL};
    const char *bad;
    json_t *b = http_body_json(r);
    if (!b)
        return 0;
    json_t *oids = json_object_get(b, "oids");
    if (util_json_only_keys(b, allowed, &bad) < 0 || !json_is_array(oids) ||
        json_array_size(oids) > 1000) {
        json_decref(b);
        return http_error(r, 400, "BAD_REQUEST", "body must be {\"oids\":[...]} with at most "
                                                 "1000 blob ids");
    }
    sg_repo_t *g;
    if (repo_open_git(&r->repo, &g) < 0) {
        json_decref(b);
        return http_errno(r, -EIO, "repository");
    }
    json_t *blobs = json_array(), *missing = json_array();
    size_t i, total = 0;
    json_t *o;
    json_array_foreach(oids, i, o)
    {
        const char *oid = json_string_value(o);
        void *data = NULL;
        size_t len = 0;
        if (!oid || !valid_oid(oid) || total > http_cfg.max_body ||
            sg_blob_read(g, oid, &data, &len) < 0) {
            json_array_append_new(missing, o && json_is_string(o) ? json_copy(o) : json_null());
            continue;
        }
        total += len;
        char *b64 = malloc(mesa_b64_enclen(len) + 1);
        if (b64) {
            mesa_b64_encode(data, len, b64);
            json_array_append_new(blobs, json_pack("{s:s, s:I, s:s}", "oid", oid, "size",
                                                   (json_int_t)len, "content", b64));
        }
        free(b64);
        free(data);
    }
    sg_repo_close(g);
    json_decref(b);
    return http_json(r, 200, json_pack("{s:o, s:o}", "blobs", blobs, "missing", missing));
}
