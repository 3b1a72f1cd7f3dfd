/* server/api_repos.c - identity, org and repo endpoints:
 * GET /v1/whoami, GET /v1/{org}, GET|POST /v1/{org}/repos,
 * GET|PATCH|DELETE /v1/{org}/{repo}. A new repo is a bare git repo holding
 * the root change, with its default bookmark on it.
 */
#include "config.h"
#include "api.h"
#include "events.h"
#include "pathcheck.h"
#include "repo.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int api_whoami(req_t *r)
{
    principal_t *p = &r->who;
    return http_json(r, 200,
                     json_pack("{s:{s:s, s:s, s:s}, s:s, s:s, s:o}", "org", "id", p->org.id,
                               "slug", p->org.slug, "name", p->org.name, "key_id", p->key.id,
                               "key_name", p->key.name, "scopes", db_scopes_json(p->scopes)));
}

int api_org_get(req_t *r)
{
    long n = 0;
    char created[32];
    if (db_repo_count(r->org.id, &n) < 0)
        return http_errno(r, -EIO, "organization");
    util_fmt_time_ms(r->org.created_ms, created);
    return http_json(r, 200, json_pack("{s:s, s:I}", "created_at", created, "num_repos",
                                       (json_int_t)n));
}

/* The Repo object; head_change_id from the default bookmark. */
static json_t *repo_json(const db_org_t *org, const db_repo_t *repo, sg_repo_t *g)
{
    char change_id[33] = SG_ROOT_CHANGE_ID, commit[SG_OID_HEX];
    sg_repo_t *own = NULL;
    if (!g && repo_open_git(repo, &own) == 0)
        g = own;
    if (g)
        repo_resolve(g, repo, NULL, change_id, commit);
    if (own)
        sg_repo_close(own);
    char created[32];
    util_fmt_time_ms(repo->created_ms, created);
    json_t *tags = json_loads(repo->tags, 0, NULL);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:n, s:s, s:o}", "id", repo->id, "org",
                     org->slug, "name", repo->name, "default_bookmark",
                     repo->default_bookmark, "head_change_id", change_id, "upstream",
                     "created_at", created, "tags", tags ? tags : json_object());
}

int api_repo_get(req_t *r)
{
    return http_json(r, 200, repo_json(&r->org, &r->repo, NULL));
}

int api_repos_list(req_t *r)
{
    long off;
    int limit;
    if (http_page_args(r, &off, &limit) < 0)
        return 0;
    db_repo_t *repos = NULL;
    size_t n = 0;
    int more = 0;
    int rc = db_repo_list(r->org.id, off, limit, &repos, &n, &more);
    if (rc < 0)
        return http_errno(r, rc, "repositories");
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        const char *why;
        if (auth_check(&r->who, r->org.slug, repos[i].name, AUTH_READ, &why) == 0)
            json_array_append_new(arr, repo_json(&r->org, &repos[i], NULL));
    }
    free(repos);
    /* the cursor counts rows read, not rows shown (some may be out of scope) */
    char next[32];
    util_cursor_encode(off + (long)n, next);
    return http_json(r, 200, json_pack("{s:o, s:o, s:b}", "repos", arr, "next_cursor",
                                       more ? json_string(next) : json_null(), "has_more",
                                       more));
}

/* Validate tags: an object of string values (or null when allow_null). */
static int tags_valid(json_t *tags, int allow_null)
{
    const char *k;
    json_t *v;
    if (!json_is_object(tags))
        return 0;
    json_object_foreach(tags, k, v)
    {
        if (!(json_is_string(v) || (allow_null && json_is_null(v))) || strlen(k) > 100)
            return 0;
    }
    return 1;
}

static int set_tags(db_repo_t *repo, json_t *patch)
{
    json_t *cur = json_loads(repo->tags[0] ? repo->tags : "{}", 0, NULL);
    if (!cur)
        cur = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(patch, k, v)
    {
        if (json_is_null(v))
            json_object_del(cur, k);
        else
            json_object_set(cur, k, v);
    }
    char *s = json_dumps(cur, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(cur);
    int ok = s && strlen(s) < sizeof repo->tags;
    if (ok)
        snprintf(repo->tags, sizeof repo->tags, "%s", s);
    free(s);
    return ok ? 0 : -EINVAL;
}

static void record_repo_event(req_t *r, const db_repo_t *repo, const char *type)
{
    if (events_record(&r->org, repo, type, json_pack("{s:s}", "name", repo->name), NULL) == 0)
        events_notify();
}

int api_repos_create(req_t *r)
{
    static const char *const allowed[] = {"name", "default_bookmark", "tags", "upstream", NULL};
    json_t *b = http_body_json(r);
    if (!b)
        return 0;
    const char *bad = NULL, *why = NULL;
    db_repo_t repo = {0};
    json_t *name = json_object_get(b, "name"), *bm = json_object_get(b, "default_bookmark");
    json_t *tags = json_object_get(b, "tags");
    if (util_json_only_keys(b, allowed, &bad) < 0) {
        http_error(r, 400, "BAD_REQUEST", "unknown field '%s'", bad);
        goto out;
    }
    if (json_object_get(b, "upstream")) {
        http_error(r, 400, "BAD_REQUEST", "upstream remotes are not supported by mesad");
        goto out;
    }
    if (!json_is_string(name) || pathcheck_repo_name(json_string_value(name), &why) < 0) {
        http_error(r, 400, "BAD_REQUEST", "%s", why ? why : "name must be a string");
        goto out;
    }
    if (bm && (!json_is_string(bm) || !sg_bookmark_name_valid(json_string_value(bm)))) {
        http_error(r, 400, "BAD_REQUEST", "default_bookmark must be a valid bookmark name");
        goto out;
    }
    if (tags && !tags_valid(tags, 0)) {
        http_error(r, 400, "BAD_REQUEST", "tags must be an object of strings");
        goto out;
    }
    snprintf(repo.org_id, sizeof repo.org_id, "%s", r->org.id);
    snprintf(repo.name, sizeof repo.name, "%s", json_string_value(name));
    snprintf(repo.default_bookmark, sizeof repo.default_bookmark, "%s",
             bm ? json_string_value(bm) : "main");
    snprintf(repo.tags, sizeof repo.tags, "{}");
    if (tags && set_tags(&repo, tags) < 0) {
        http_error(r, 400, "BAD_REQUEST", "tags too large");
        goto out;
    }
    int rc = db_repo_create(&repo);
    if (rc < 0) {
        http_errno(r, rc, "repository");
        goto out;
    }
    char path[4200], root[SG_OID_HEX];
    repo_git_path(&repo, path, sizeof path);
    rc = sg_repo_create(path, repo.default_bookmark, root);
    if (rc == 0)
        rc = repo_index_root(&repo, root);
    if (rc < 0) {
        db_repo_delete(repo.id);
        sg_repo_destroy(path);
        http_errno(r, rc, "repository");
        goto out;
    }
    record_repo_event(r, &repo, "repo.created");
    http_json(r, 201, repo_json(&r->org, &repo, NULL));
out:
    json_decref(b);
    return 0;
}

static int patch_default_bookmark(req_t *r, db_repo_t *repo, json_t *bm)
{
    if (!json_is_string(bm) || !sg_bookmark_name_valid(json_string_value(bm)))
        return http_error(r, 400, "BAD_REQUEST", "default_bookmark must be a bookmark name"),
               -1;
    sg_repo_t *g;
    char ref[300], oid[SG_OID_HEX];
    if (repo_open_git(repo, &g) < 0)
        return http_errno(r, -EIO, "repository"), -1;
    snprintf(ref, sizeof ref, "refs/heads/%s", json_string_value(bm));
    int rc = sg_ref_read(g, ref, oid);
    sg_repo_close(g);
    if (rc < 0)
        return http_error(r, 400, "BAD_REQUEST", "bookmark '%s' does not exist",
                          json_string_value(bm)),
               -1;
    snprintf(repo->default_bookmark, sizeof repo->default_bookmark, "%s", json_string_value(bm));
    return 0;
}

int api_repo_patch(req_t *r)
{
    static const char *const allowed[] = {"name", "default_bookmark", "tags", "upstream", NULL};
    json_t *b = http_body_json(r);
    if (!b)
        return 0;
    const char *bad = NULL, *why = NULL;
    db_repo_t repo = r->repo;
    json_t *name = json_object_get(b, "name"), *bm = json_object_get(b, "default_bookmark");
    json_t *tags = json_object_get(b, "tags");
    if (util_json_only_keys(b, allowed, &bad) < 0) {
        http_error(r, 400, "BAD_REQUEST", "unknown field '%s'", bad);
        goto out;
    }
    if (json_object_get(b, "upstream") && !json_is_null(json_object_get(b, "upstream"))) {
        http_error(r, 400, "BAD_REQUEST", "upstream remotes are not supported by mesad");
        goto out;
    }
    if (name && (!json_is_string(name) || pathcheck_repo_name(json_string_value(name), &why))) {
        http_error(r, 400, "BAD_REQUEST", "%s", why ? why : "name must be a string");
        goto out;
    }
    if (name)
        snprintf(repo.name, sizeof repo.name, "%s", json_string_value(name));
    if (bm && patch_default_bookmark(r, &repo, bm) < 0)
        goto out;
    if (tags && (!tags_valid(tags, 1) || set_tags(&repo, tags) < 0)) {
        http_error(r, 400, "BAD_REQUEST", "tags must be an object of strings or nulls");
        goto out;
    }
    int rc = db_repo_update(&repo);
    if (rc < 0) {
        http_errno(r, rc, "repository");
        goto out;
    }
    record_repo_event(r, &repo, "repo.updated");
    http_json(r, 200, repo_json(&r->org, &repo, NULL));
out:
    json_decref(b);
    return 0;
}

int api_repo_delete(req_t *r)
{
    char path[4200], trash[4300];
    repo_git_path(&r->repo, path, sizeof path);
    snprintf(trash, sizeof trash, "%s.deleted", path);
    repo_lock(r->repo.id);
    int rc = db_begin();
    if (rc == 0)
        rc = db_repo_delete(r->repo.id);
    if (rc == 0)
        rc = events_record(&r->org, &r->repo, "repo.deleted",
                           json_pack("{s:s}", "name", r->repo.name), NULL);
    if (rc == 0)
        rc = db_commit();
    if (rc < 0)
        db_rollback();
    repo_unlock(r->repo.id);
    if (rc < 0)
        return http_errno(r, rc, "repository");
    events_notify();
    /* rename first so a half-removed directory never looks like a repo */
    if (rename(path, trash) == 0)
        util_rmtree(trash);
    return http_json(r, 200, json_pack("{s:b}", "success", 1));
}
