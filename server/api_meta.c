/* server/api_meta.c - per-path file metadata (an extension; docs/PROTOCOL.md
 * "File metadata"): GET .../metadata?path= and PATCH .../metadata?path=
 * {"set","remove","clear","rename_from"}, plus the helpers api_content.c
 * uses to put "metadata" on content entries and filter listings with
 * ?metadata[key]=value.
 *
 * Invariant: metadata is keyed by (repo, path), holds current values only
 * (never versioned with changes), and a PATCH applies atomically in one
 * transaction. The synthetic keys "org" and "repo" are answered, never
 * stored, and cannot be set.
 */
#include "config.h"
#include "api.h"
#include "api_meta.h"
#include "pathcheck.h"
#include "utf8.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int synthetic(const char *key)
{
    return strcmp(key, "org") == 0 || strcmp(key, "repo") == 0;
}

/* NULL if key is a valid metadata key, else why not. */
static const char *key_bad(const char *key, size_t len)
{
    if (len == 0)
        return "a metadata key must not be empty";
    if (len > META_KEY_MAX)
        return "a metadata key is at most " META_STR(META_KEY_MAX) " bytes";
    if (strlen(key) != len)
        return "a metadata key must not contain NUL";
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return "a metadata key must not contain control characters";
    return NULL;
}

/* The ?path= argument (absent = the repo root) into path; sets a 400
 * response and returns -1 when it is not a valid path. */
static int meta_path(req_t *r, const char *name, char *path)
{
    const char *q = http_arg(r, name), *why = NULL;
    size_t qlen = 0;
    if (!q) {
        path[0] = '\0';
        return 0;
    }
    MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name), &q, &qlen);
    if (qlen != strlen(q))
        return http_error(r, 400, "BAD_REQUEST", "%s: NUL byte in path", name), -1;
    if (qlen > PATHCHECK_MAX_PATH || pathcheck_query(q, path, &why) < 0)
        return http_error(r, 400, "BAD_REQUEST", "%s: %s", name, why ? why : "too long"), -1;
    if (!mesa_utf8_valid(path))
        return http_error(r, 400, "BAD_REQUEST", "%s: not valid UTF-8", name), -1;
    return 0;
}

static int answer(req_t *r, const char *path)
{
    json_t *m = NULL;
    int rc = db_meta_get(r->repo.id, path, &m);
    if (rc < 0)
        return http_errno(r, rc, "metadata");
    json_object_set_new(m, "org", json_string(r->org.slug));
    json_object_set_new(m, "repo", json_string(r->repo.name));
    return http_json(r, 200,
                     json_pack("{s:s, s:o, s:[s,s]}", "path", path, "metadata", m, "read_only_keys",
                               "org", "repo"));
}

int api_meta_get(req_t *r)
{
    char path[PATHCHECK_MAX_PATH + 2];
    if (meta_path(r, "path", path) < 0)
        return 0;
    return answer(r, path);
}

/* Check the body of a PATCH before anything is written: NULL or why not
 * (*code set to the error code, *status to 400 or 403). */
static const char *patch_bad(json_t *b, const char **code, unsigned *status)
{
    static const char *const allowed[] = {"set", "remove", "clear", "rename_from", NULL};
    static char msg[512];
    const char *bad, *k;
    json_t *set = json_object_get(b, "set"), *rm = json_object_get(b, "remove"), *v;
    json_t *clear = json_object_get(b, "clear"), *from = json_object_get(b, "rename_from");
    size_t i;
    *code = "BAD_REQUEST";
    *status = 400;
    if (util_json_only_keys(b, allowed, &bad) < 0) {
        snprintf(msg, sizeof msg, "unknown field '%s' (allowed: set, remove, clear, rename_from)",
                 bad);
        return msg;
    }
    if (set && !json_is_object(set))
        return "'set' must be an object of string values";
    if (rm && !json_is_array(rm))
        return "'remove' must be an array of keys";
    if (clear && !json_is_boolean(clear))
        return "'clear' must be true or false";
    if (from && !json_is_string(from))
        return "'rename_from' must be a path";
    if (json_object_size(set) > META_MAX_KEYS || json_array_size(rm) > META_MAX_KEYS)
        return "at most " META_STR(META_MAX_KEYS) " keys per request";
    json_object_foreach(set, k, v)
    {
        const char *why = key_bad(k, strlen(k));
        if (why)
            return why;
        if (synthetic(k))
            goto ro;
        if (!json_is_string(v) && !json_is_null(v))
            return "metadata values must be strings (or null to remove the key)";
        if (json_is_string(v) && json_string_length(v) > META_VALUE_MAX)
            return "a metadata value is at most " META_STR(META_VALUE_MAX) " bytes";
        if (json_is_string(v) && strlen(json_string_value(v)) != json_string_length(v))
            return "a metadata value must not contain NUL";
    }
    json_array_foreach(rm, i, v)
    {
        if (!json_is_string(v))
            return "'remove' must be an array of keys";
        const char *why = key_bad(json_string_value(v), json_string_length(v));
        if (why)
            return why;
        if (synthetic(json_string_value(v)))
            goto ro;
    }
    return NULL;
ro:
    *code = "READ_ONLY_KEY";
    *status = 403;
    return "the metadata keys 'org' and 'repo' are read-only (answered by the server)";
}

/* Apply a checked body to path, inside a transaction. */
static int patch_apply(req_t *r, json_t *b, const char *path, const char *from)
{
    json_t *set = json_object_get(b, "set"), *rm = json_object_get(b, "remove"), *v;
    const char *k;
    size_t i;
    int rc = 0;
    if (from && strcmp(from, path) != 0)
        rc = db_meta_rename(r->repo.id, from, path);
    if (rc == 0 && json_is_true(json_object_get(b, "clear")))
        rc = db_meta_remove(r->repo.id, path, NULL);
    json_array_foreach(rm, i, v)
    {
        if (rc == 0)
            rc = db_meta_remove(r->repo.id, path, json_string_value(v));
    }
    json_object_foreach(set, k, v)
    {
        if (rc == 0)
            rc = json_is_null(v) ? db_meta_remove(r->repo.id, path, k)
                                 : db_meta_set(r->repo.id, path, k, json_string_value(v));
    }
    return rc;
}

/* Is the number of keys of path within the cap? */
static int count_ok(req_t *r, const char *path)
{
    json_t *m = NULL;
    int ok = db_meta_get(r->repo.id, path, &m) == 0 && json_object_size(m) <= META_MAX_KEYS;
    json_decref(m);
    return ok;
}

int api_meta_patch(req_t *r)
{
    char path[PATHCHECK_MAX_PATH + 2], from[PATHCHECK_MAX_PATH + 2];
    const char *code, *why, *f;
    unsigned status;
    if (meta_path(r, "path", path) < 0)
        return 0;
    json_t *b = http_body_json(r);
    if (!b)
        return 0;
    why = patch_bad(b, &code, &status);
    f = json_string_value(json_object_get(b, "rename_from"));
    if (!why && f) {
        size_t fl = strlen(f);
        if (fl != json_string_length(json_object_get(b, "rename_from")) ||
            fl > PATHCHECK_MAX_PATH || pathcheck_query(f, from, &why) < 0 || !from[0])
            why = why ? why : "'rename_from' must name a path in the repository";
        else if (!path[0])
            why = "'rename_from' needs a path to move to (not the repository root)";
        else if (strncmp(path, from, strlen(from)) == 0 && path[strlen(from)] == '/')
            why = "cannot move metadata below its own path";
        else if (strncmp(from, path, strlen(path)) == 0 && from[strlen(path)] == '/')
            why = "cannot move metadata onto a path above it";
    }
    if (why) {
        json_decref(b);
        return http_error(r, status, code, "%s", why);
    }
    int rc = db_begin();
    if (rc == 0)
        rc = patch_apply(r, b, path, f ? from : NULL);
    if (rc == 0 && !count_ok(r, path)) {
        db_rollback();
        json_decref(b);
        return http_error(r, 400, "BAD_REQUEST",
                          "a path holds at most " META_STR(META_MAX_KEYS) " metadata keys");
    }
    if (rc == 0)
        rc = db_commit();
    if (rc < 0)
        db_rollback();
    json_decref(b);
    return rc < 0 ? http_errno(r, -EIO, "metadata") : answer(r, path);
}

/* ------------------------------------------------------------ listings */

typedef struct filt {
    json_t *want; /* {key: [values...]} */
    const char *bad;
} filt_t;

static enum MHD_Result filt_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    filt_t *f = cls;
    size_t n = strlen(key);
    (void)kind;
    if (strncmp(key, "metadata[", 9) != 0)
        return MHD_YES;
    if (n < 11 || key[n - 1] != ']') {
        f->bad = "a metadata filter is ?metadata[KEY]=VALUE with a non-empty KEY";
        return MHD_NO;
    }
    char k[META_KEY_MAX + 1];
    if (n - 10 > META_KEY_MAX || !value) {
        f->bad =
            "a metadata filter needs a key of at most " META_STR(META_KEY_MAX) " bytes and a value";
        return MHD_NO;
    }
    memcpy(k, key + 9, n - 10);
    k[n - 10] = '\0';
    if (!mesa_utf8_valid(k) || !mesa_utf8_valid(value)) {
        f->bad = "a metadata filter must be valid UTF-8";
        return MHD_NO;
    }
    json_t *vals = json_object_get(f->want, k);
    if (!vals) {
        vals = json_array();
        if (json_object_set_new(f->want, k, vals) < 0) {
            f->bad = "a metadata filter could not be read";
            return MHD_NO;
        }
    }
    json_array_append_new(vals, json_string(value));
    return MHD_YES;
}

int api_meta_filters(req_t *r, json_t **out)
{
    filt_t f = {json_object(), NULL};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, filt_arg, &f);
    if (f.bad) {
        json_decref(f.want);
        return http_error(r, 400, "BAD_REQUEST", "%s", f.bad), -1;
    }
    if (json_object_size(f.want) == 0) {
        json_decref(f.want);
        f.want = NULL;
    }
    *out = f.want;
    return 0;
}

int api_meta_match(json_t *filters, json_t *meta)
{
    const char *k;
    json_t *vals, *v;
    size_t i;
    json_object_foreach(filters, k, vals)
    {
        const char *have = json_string_value(json_object_get(meta, k));
        json_array_foreach(vals, i, v)
        {
            const char *want = json_string_value(v);
            if (!have || !want || strcmp(have, want) != 0)
                return 0;
        }
    }
    return 1;
}
