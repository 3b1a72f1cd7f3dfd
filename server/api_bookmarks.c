/* server/api_bookmarks.c - bookmarks (git branches under refs/heads/):
 * list, create, get, move, delete, and merge. Every mutation takes the
 * repo's write lock and moves refs with compare-and-swap; merges write an
 * explicit merge commit as a new change (the Jujutsu model).
 */
#include "config.h"
#include "api.h"
#include "b64.h"
#include "events.h"
#include "repo.h"
#include "util.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The bookmark name from the URL: everything after "bookmarks/". */
static void url_bookmark(req_t *r, char *out, size_t n)
{
    size_t len = 0;
    out[0] = '\0';
    for (int i = 3; i < r->nseg; i++)
        len += (size_t)snprintf(out + len, len < n ? n - len : 0, "%s%s", i > 3 ? "/" : "",
                                r->seg[i]);
}

static json_t *bookmark_json(const db_repo_t *repo, const char *name, const char *change_id)
{
    return json_pack("{s:s, s:s, s:b}", "name", name, "change_id", change_id, "is_default",
                     strcmp(name, repo->default_bookmark) == 0);
}

static void record(req_t *r, const char *type, json_t *data)
{
    if (events_record(&r->org, &r->repo, type, data, NULL) == 0)
        events_notify();
}

int api_bookmarks_list(req_t *r)
{
    long off;
    int limit;
    const char *glob = http_arg(r, "glob");
    if (http_page_args(r, &off, &limit) < 0)
        return 0;
    sg_repo_t *g;
    if (repo_open_git(&r->repo, &g) < 0)
        return http_errno(r, -EIO, "repository");
    sg_ref_t *refs = NULL;
    size_t n = 0;
    json_t *arr = json_array();
    long idx = 0;
    int more = 0;
    sg_branches_list(g, &refs, &n);
    for (size_t i = 0; i < n && !more; i++) {
        char change_id[33];
        if (glob && fnmatch(glob, refs[i].name, 0) != 0)
            continue;
        if (repo_resolve(g, &r->repo, refs[i].name, change_id, refs[i].oid) < 0)
            continue;
        if (idx >= off && json_array_size(arr) == (size_t)limit)
            more = 1;
        else if (idx++ >= off)
            json_array_append_new(arr, bookmark_json(&r->repo, refs[i].name, change_id));
    }
    sg_refs_free(refs, n);
    sg_repo_close(g);
    return http_page(r, "bookmarks", arr, off, more);
}

/* Parse {"change_id"} (plus "name" when with_name) from the body. */
static json_t *bookmark_body(req_t *r, int with_name)
{
    static const char *const both[] = {"name", "change_id", NULL};
    static const char *const one[] = {"change_id", NULL};
    const char *bad;
    json_t *b = http_body_json(r);
    if (!b)
        return NULL;
    if (util_json_only_keys(b, with_name ? both : one, &bad) < 0) {
        http_error(r, 400, "BAD_REQUEST", "unknown field '%s'", bad);
    } else if (!json_is_string(json_object_get(b, "change_id"))) {
        http_error(r, 400, "BAD_REQUEST", "change_id must be a string");
    } else if (with_name && (!json_is_string(json_object_get(b, "name")) ||
                             !sg_bookmark_name_valid(json_string_value(
                                 json_object_get(b, "name"))))) {
        http_error(r, 400, "BAD_REQUEST", "name must be a valid bookmark name");
    } else {
        return b;
    }
    json_decref(b);
    return NULL;
}

/* Does name collide with an existing bookmark as a directory or a file
 * ("a" vs "a/b")? git cannot store both. *other names the one in the way. */
static int name_collides(sg_repo_t *g, const char *name, char *other, size_t n)
{
    sg_ref_t *refs = NULL;
    size_t nr = 0, len = strlen(name);
    int hit = 0;
    if (sg_branches_list(g, &refs, &nr) < 0)
        return 0;
    for (size_t i = 0; i < nr && !hit; i++) {
        size_t l = strlen(refs[i].name);
        hit = (l < len && strncmp(name, refs[i].name, l) == 0 && name[l] == '/') ||
              (len < l && strncmp(refs[i].name, name, len) == 0 && refs[i].name[len] == '/');
        if (hit)
            snprintf(other, n, "%s", refs[i].name);
    }
    sg_refs_free(refs, nr);
    return hit;
}

/* The change's current commit (a change id, not a bookmark). */
static int change_commit(const db_repo_t *repo, const char *change_id, char commit[SG_OID_HEX])
{
    db_change_t c;
    if (!sg_change_id_valid(change_id) || db_change_get(repo->id, change_id, &c) < 0)
        return -ENOENT;
    snprintf(commit, SG_OID_HEX, "%s", c.commit_oid);
    return 0;
}

int api_bookmarks_create(req_t *r)
{
    json_t *b = bookmark_body(r, 1);
    if (!b)
        return 0;
    const char *name = json_string_value(json_object_get(b, "name"));
    const char *change_id = json_string_value(json_object_get(b, "change_id"));
    char commit[SG_OID_HEX], ref[300];
    sg_repo_t *g = NULL;
    snprintf(ref, sizeof ref, "refs/heads/%s", name);
    if (repo_open_git(&r->repo, &g) < 0) {
        http_errno(r, -EIO, "repository");
        goto out;
    }
    char other[300];
    repo_lock(r->repo.id);
    int rc = change_commit(&r->repo, change_id, commit), collides = 0;
    if (rc == 0 && !(collides = name_collides(g, name, other, sizeof other))) {
        rc = sg_ref_cas(g, ref, commit, NULL);
        if (rc == -EAGAIN)
            rc = -EEXIST;
    }
    repo_unlock(r->repo.id);
    if (collides) {
        http_error(r, 409, "CONFLICT", "bookmark '%s' collides with bookmark '%s'", name, other);
        goto out;
    }
    if (rc < 0) {
        http_errno(r, rc, rc == -ENOENT ? "change" : "bookmark");
        goto out;
    }
    record(r, "bookmark.created", json_pack("{s:s, s:s, s:s}", "bookmark", name, "change_id",
                                            change_id, "commit_oid", commit));
    http_json(r, 201, bookmark_json(&r->repo, name, change_id));
out:
    if (g)
        sg_repo_close(g);
    json_decref(b);
    return 0;
}

int api_bookmark_get(req_t *r)
{
    char name[1024], change_id[33], commit[SG_OID_HEX], ref[1100];
    url_bookmark(r, name, sizeof name);
    snprintf(ref, sizeof ref, "refs/heads/%s", name);
    sg_repo_t *g;
    if (repo_open_git(&r->repo, &g) < 0)
        return http_errno(r, -EIO, "repository");
    int rc = sg_bookmark_name_valid(name) ? sg_ref_read(g, ref, commit) : -ENOENT;
    if (rc == 0)
        rc = repo_resolve(g, &r->repo, name, change_id, commit);
    sg_repo_close(g);
    if (rc < 0)
        return http_error(r, 404, "NOT_FOUND", "bookmark '%s' not found", name);
    return http_json(r, 200, bookmark_json(&r->repo, name, change_id));
}

int api_bookmark_patch(req_t *r)
{
    char name[1024], ref[1100], old[SG_OID_HEX], commit[SG_OID_HEX], from[33] = "";
    url_bookmark(r, name, sizeof name);
    snprintf(ref, sizeof ref, "refs/heads/%s", name);
    json_t *b = bookmark_body(r, 0);
    if (!b)
        return 0;
    const char *change_id = json_string_value(json_object_get(b, "change_id"));
    sg_repo_t *g;
    if (repo_open_git(&r->repo, &g) < 0) {
        json_decref(b);
        return http_errno(r, -EIO, "repository");
    }
    repo_lock(r->repo.id);
    int rc = sg_bookmark_name_valid(name) ? sg_ref_read(g, ref, old) : -ENOENT;
    const char *what = "bookmark";
    if (rc == 0) {
        char tmp[SG_OID_HEX];
        repo_resolve(g, &r->repo, name, from, tmp);
        what = "change";
        rc = change_commit(&r->repo, change_id, commit);
    }
    if (rc == 0)
        rc = sg_ref_cas(g, ref, commit, old);
    repo_unlock(r->repo.id);
    sg_repo_close(g);
    if (rc < 0) {
        json_decref(b);
        return http_errno(r, rc, what);
    }
    record(r, "bookmark.moved", json_pack("{s:s, s:s, s:s, s:s}", "bookmark", name, "change_id",
                                          change_id, "commit_oid", commit, "from_change_id",
                                          from));
    json_t *v = bookmark_json(&r->repo, name, change_id);
    json_object_set_new(v, "from_change_id", from[0] ? json_string(from) : json_null());
    json_decref(b);
    return http_json(r, 200, v);
}

int api_bookmark_delete(req_t *r)
{
    char name[1024], ref[1100], old[SG_OID_HEX];
    url_bookmark(r, name, sizeof name);
    snprintf(ref, sizeof ref, "refs/heads/%s", name);
    if (strcmp(name, r->repo.default_bookmark) == 0)
        return http_error(r, 409, "CONFLICT", "cannot delete the default bookmark '%s'", name);
    sg_repo_t *g;
    if (repo_open_git(&r->repo, &g) < 0)
        return http_errno(r, -EIO, "repository");
    repo_lock(r->repo.id);
    int rc = sg_bookmark_name_valid(name) ? sg_ref_read(g, ref, old) : -ENOENT;
    if (rc == 0)
        rc = sg_ref_delete_cas(g, ref, old);
    repo_unlock(r->repo.id);
    sg_repo_close(g);
    if (rc < 0)
        return http_errno(r, rc, "bookmark");
    record(r, "bookmark.deleted", json_pack("{s:s, s:s}", "bookmark", name, "commit_oid", old));
    return http_json(r, 200, json_pack("{s:b}", "success", 1));
}
