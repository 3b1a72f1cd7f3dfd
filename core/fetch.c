/* core/fetch.c - batched blob fetch into the cache (fetch.h).
 * Invariant: only bytes that hash to their blob id reach the cache
 * (mesa_blobcache_put verifies). Under `mesarun --sandbox` the cache is
 * read-only to the shim: the client delegates, and mesarun's proxy
 * (tools/mesarun_proxy.c) fetches, verifies and writes instead. Called by the shim's core and the tools;
 * every use of jansson here follows the creation of a client (which loads
 * it in the shim's build, core/jsondl.h).
 */
#include "config.h"
#include "fetch.h"
#include "b64.h"
#include "jsondl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_MAX 1000
#define BATCH_BYTES (8u << 20)
#define SINGLE_OVER (1u << 20)

static int fail(mesa_error_t *e, int err, const char *what, const char *oid)
{
    return mesa_error_set(e, err, "%s %s", what, oid);
}

static int put(mesa_blobcache_t *bc, const char *oid, const void *data, size_t len,
               mesa_error_t *e)
{
    char path[4096];
    int rc = mesa_blobcache_put(bc, oid, data, len, path, sizeof path);
    return rc < 0 ? fail(e, -rc, "cannot cache blob", oid) : 0;
}

/* One blob by GET .../blobs/{oid}. */
static int fetch_one(mesa_client_t *c, mesa_blobcache_t *bc, const char *org, const char *repo,
                     const char *oid, mesa_error_t *e)
{
    char path[700];
    mesa_resp_t r;
    snprintf(path, sizeof path, "/%s/%s/blobs/%s", org, repo, oid);
    int rc = mesa_client_request(c, "GET", path, NULL, NULL, 0, &r, e);
    if (rc < 0)
        return rc;
    if (r.status == 200)
        rc = put(bc, oid, r.body, r.len, e);
    else if (r.status == 404)
        rc = fail(e, ENOENT, "cannot fetch blob", oid);
    else /* 401/403 (an expired token), 5xx...: the API's own error */
        rc = mesa_client_error_from(&r, e);
    mesa_resp_free(&r);
    return rc;
}

/* Cache the blobs of a batch answer, published together. 0 or -errno. */
static int put_answer(mesa_blobcache_t *bc, json_t *blobs, mesa_error_t *e)
{
    size_t n = json_array_size(blobs), i, k = 0;
    const char **oids = calloc(n ? n : 1, sizeof *oids);
    unsigned char **data = calloc(n ? n : 1, sizeof *data);
    size_t *lens = calloc(n ? n : 1, sizeof *lens);
    int rc = oids && data && lens ? 0 : fail(e, ENOMEM, "out of memory caching", "blobs");
    json_t *b;
    json_array_foreach(blobs, i, b)
    {
        const char *oid = json_string_value(json_object_get(b, "oid"));
        const char *content = json_string_value(json_object_get(b, "content"));
        if (rc < 0)
            break;
        if (!oid || !content || mesa_b64_decode(content, strlen(content), &data[k], &lens[k]) < 0) {
            rc = fail(e, EIO, "malformed batch answer for", oid ? oid : "?");
            break;
        }
        oids[k++] = oid;
    }
    if (rc == 0 && k) {
        rc = mesa_blobcache_put_many(bc, k, oids, (const void *const *)data, lens);
        if (rc < 0)
            rc = fail(e, -rc, "cannot cache blob", rc == -EBADMSG ? "(bad content)" : oids[0]);
    }
    for (i = 0; data && i < k; i++)
        free(data[i]);
    free(oids);
    free(data);
    free(lens);
    return rc;
}

/* One POST .../blobs/batch for oids[0..n). */
static int fetch_batch(mesa_client_t *c, mesa_blobcache_t *bc, const char *org,
                       const char *repo, const char *const *oids, size_t n, mesa_error_t *e)
{
    char path[700];
    json_t *req = json_array(), *v = NULL;
    for (size_t i = 0; i < n; i++)
        json_array_append_new(req, json_string(oids[i]));
    snprintf(path, sizeof path, "/%s/%s/blobs/batch", org, repo);
    json_t *body = json_pack("{s:o}", "oids", req);
    int rc = mesa_client_json(c, "POST", path, body, &v, e);
    json_decref(body);
    if (rc < 0)
        return rc;
    rc = put_answer(bc, json_object_get(v, "blobs"), e);
    /* the server leaves out what it does not have, or what did not fit */
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(v, "missing"), i, b)
    {
        if (rc == 0 && json_is_string(b))
            rc = fetch_one(c, bc, org, repo, json_string_value(b), e);
    }
    json_decref(v);
    return rc;
}

/* A client of mesarun's proxy (--sandbox) asks it to fill the cache, which
 * is read-only here: POST /_mesarun/<what> with body (stolen). */
static int ask_proxy(mesa_client_t *c, const char *what, json_t *body, mesa_error_t *e)
{
    char path[64];
    json_t *v = NULL;
    snprintf(path, sizeof path, "/_mesarun/%s", what);
    int rc = body ? mesa_client_json(c, "POST", path, body, &v, e)
                  : mesa_error_set(e, ENOMEM, "out of memory asking for %s", what);
    json_decref(body);
    json_decref(v);
    return rc;
}

static int proxy_blobs(mesa_client_t *c, mesa_blobcache_t *bc, const char *org, const char *repo,
                       const char *const *oids, const uint64_t *sizes, size_t n, mesa_error_t *e)
{
    json_t *want = json_array(), *sz = json_array();
    size_t nw = 0;
    for (size_t i = 0; i < n && want && sz; i++) {
        char path[4096];
        if (mesa_blobcache_lookup(bc, oids[i], path, sizeof path) == 0)
            continue;
        json_array_append_new(want, json_string(oids[i]));
        json_array_append_new(sz, json_pack("I", sizes ? (json_int_t)sizes[i] : 0));
        nw++;
    }
    if (want && sz && nw == 0) {
        json_decref(want);
        json_decref(sz);
        return 0;
    }
    return ask_proxy(c, "blobs",
                     want && sz ? json_pack("{s:s,s:s,s:o,s:o}", "org", org, "repo", repo, "oids",
                                            want, "sizes", sz)
                                : NULL,
                     e);
}

int mesa_fetch_blobs(mesa_client_t *c, mesa_blobcache_t *bc, const char *org, const char *repo,
                     const char *const *oids, const uint64_t *sizes, size_t n, mesa_error_t *e)
{
    if (mesa_client_delegates(c))
        return proxy_blobs(c, bc, org, repo, oids, sizes, n, e);

    const char **want = calloc(n ? n : 1, sizeof *want);
    size_t nw = 0, bytes = 0;
    int rc = 0;
    if (!want)
        return fail(e, ENOMEM, "out of memory fetching", "blobs");
    for (size_t i = 0; i < n && rc == 0; i++) {
        char path[4096];
        if (mesa_blobcache_lookup(bc, oids[i], path, sizeof path) == 0)
            continue;
        uint64_t size = sizes ? sizes[i] : 0;
        if (size > SINGLE_OVER || n == 1) { /* one blob: raw bytes, no base64 in JSON */
            rc = fetch_one(c, bc, org, repo, oids[i], e);
            continue;
        }
        if (nw == BATCH_MAX || (nw && bytes + size > BATCH_BYTES)) {
            rc = fetch_batch(c, bc, org, repo, want, nw, e);
            nw = bytes = 0;
        }
        want[nw++] = oids[i];
        bytes += size;
    }
    if (rc == 0 && nw)
        rc = fetch_batch(c, bc, org, repo, want, nw, e);
    free(want);
    return rc;
}

int mesa_fetch_tree(mesa_client_t *c, const char *dir, const char *org, const char *repo,
                    const char *commit, mesa_tree_t **t, mesa_error_t *e)
{
    if (mesa_tree_open(dir, commit, t) == 0)
        return 0;
    if (mesa_client_delegates(c)) {
        int rc = ask_proxy(c, "tree",
                           json_pack("{s:s,s:s,s:s}", "org", org, "repo", repo, "commit", commit),
                           e);
        return rc < 0 ? rc : mesa_tree_open(dir, commit, t);
    }
    char path[600];
    json_t *v = NULL;
    snprintf(path, sizeof path, "/%s/%s/tree?commit=%s", org, repo, commit);
    int rc = mesa_client_json(c, "GET", path, NULL, &v, e);
    if (rc < 0)
        return rc;
    json_t *ents = json_object_get(v, "entries");
    size_t n = json_array_size(ents), i;
    mesa_tree_input_t *in = calloc(n ? n : 1, sizeof *in);
    json_t *x;
    if (!in) {
        json_decref(v);
        return -ENOMEM;
    }
    json_array_foreach(ents, i, x)
    {
        const char *type = json_string_value(json_object_get(x, "type"));
        in[i] = (mesa_tree_input_t){
            .path = json_string_value(json_object_get(x, "path")),
            .type = !type                      ? 0
                    : strcmp(type, "dir") == 0 ? MESA_ENT_DIR
                    : strcmp(type, "symlink") == 0 ? MESA_ENT_LINK
                                                   : MESA_ENT_FILE,
            .mode = (uint32_t)strtoul(json_string_value(json_object_get(x, "mode")) ?: "0", NULL,
                                      8),
            .size = (uint64_t)json_integer_value(json_object_get(x, "size")),
            .oid = json_string_value(json_object_get(x, "oid")) ?: "",
            .mtime_ns = json_integer_value(json_object_get(x, "mtime_ns"))};
    }
    rc = mesa_tree_build(dir, commit, in, n, t);
    free(in);
    json_decref(v);
    return rc;
}

