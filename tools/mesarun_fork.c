/* tools/mesarun_fork.c - `--branched-from BOOKMARK|CHANGE [--as NAME]`:
 * the mount of a repo starts on a new, empty change forked from a state,
 * named by a new bookmark NAME when --as is given (the SDK's
 * `branched_from` / `as`), so that several runs can work on one repo at
 * once, each on its own fork.
 *
 * Two steps, both before COMMAND starts (called by mesarun_setup.c's
 * mr_resolve): mr_fork_resolve finds the base (no write: a bad name is
 * still exit 2), and mr_fork_create, once every repo has resolved,
 * checks that NAME is free, then creates the change and the bookmark.
 * Invariant: an existing NAME fails before anything is written; only a
 * race with another creator of NAME can leave the new (empty) change
 * without a bookmark, and then its id is in the message.
 */
#include "config.h"
#include "mesarun.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A JSON call on "/<org>/<repo><fmt...>" with the setup client; body
 * borrowed. 0 or -errno with e filled. */
static int call(mr_t *m, const mr_repo_t *r, const char *method, json_t *body, json_t **out,
                mesa_error_t *e, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static int call(mr_t *m, const mr_repo_t *r, const char *method, json_t *body, json_t **out,
                mesa_error_t *e, const char *fmt, ...)
{
    char rest[1200], path[1500];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(rest, sizeof rest, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof rest)
        return mesa_error_set(e, ENAMETOOLONG, "request path too long");
    snprintf(path, sizeof path, "/%s/%s%s", r->org, r->name, rest);
    json_t *ignored = NULL;
    int rc = mesa_client_json(m->client, method, path, body, out ? out : &ignored, e);
    json_decref(ignored);
    return rc;
}

/* The change id and commit of a Change object v into r. 0 or -EPROTO. */
static int take_change(mr_repo_t *r, json_t *v, mesa_error_t *e)
{
    const char *cid = json_string_value(json_object_get(v, "id"));
    const char *commit = json_string_value(json_object_get(v, "current_commit_oid"));
    if (!cid || !commit || strlen(cid) != 32 || strlen(commit) != 40)
        return mesa_error_set(e, EPROTO, "malformed change object");
    snprintf(r->change_id, sizeof r->change_id, "%s", cid);
    snprintf(r->commit, sizeof r->commit, "%s", commit);
    return 0;
}

/* The change named by id (a change id, or a bookmark name when bm). */
static int lookup(mr_t *m, mr_repo_t *r, const char *id, int bm, mesa_error_t *e)
{
    char esc[1024];
    json_t *v = NULL;
    if (mesa_client_escape(id, esc, sizeof esc) < 0)
        return -ENOENT;
    int rc = call(m, r, "GET", NULL, &v, e, bm ? "/bookmarks/%s" : "/changes/%s", esc);
    const char *cid = json_string_value(json_object_get(v, "change_id"));
    if (rc == 0 && bm && !cid)
        rc = mesa_error_set(e, EPROTO, "malformed bookmark object");
    if (rc == 0 && bm)
        snprintf(esc, sizeof esc, "%s", cid); /* v owns cid */
    if (rc == 0 && !bm)
        rc = take_change(r, v, e);
    json_decref(v);
    return rc == 0 && bm ? lookup(m, r, esc, 0, e) : rc;
}

int mr_fork_resolve(mr_t *m, mr_repo_t *r, const char *what)
{
    mesa_error_t e = {0};
    /* a bookmark first (what users mostly name), then a change id */
    int rc = lookup(m, r, r->want_branched, 1, &e);
    if (rc == -ENOENT || e.status == 400) { /* 400: not a bookmark name */
        memset(&e, 0, sizeof e);
        rc = lookup(m, r, r->want_branched, 0, &e);
    }
    r->bookmark[0] = '\0';
    if (rc == -ENOENT || (rc < 0 && e.status == 400))
        return mr_usage("--branched-from", "%s: no such bookmark or change in %s",
                        r->want_branched, what);
    return rc < 0 ? mr_fail_api(what, &e) : 0;
}

/* --as NAME must not exist yet: 0, or exit 1 having said so. */
static int name_free(mr_t *m, mr_repo_t *r, const char *what)
{
    char esc[1024];
    mesa_error_t e = {0};
    if (mesa_client_escape(r->want_as, esc, sizeof esc) < 0)
        return mr_usage("--as", "'%s' is too long for a bookmark name", r->want_as);
    int rc = call(m, r, "GET", NULL, NULL, &e, "/bookmarks/%s", esc);
    if (rc == 0)
        return mr_fail("--as %s: bookmark already exists in %s (nothing created; pick another "
                       "name, or mount it with --bookmark %s)",
                       r->want_as, what, r->want_as);
    return rc == -ENOENT ? 0 : mr_fail_api(what, &e);
}

int mr_fork_create(mr_t *m, mr_repo_t *r)
{
    char what[256], base[33];
    mesa_error_t e = {0};
    json_t *v = NULL;
    int rc;
    snprintf(what, sizeof what, "%s/%s", r->org, r->name);
    if (r->want_as && (rc = name_free(m, r, what)) != 0)
        return rc;
    snprintf(base, sizeof base, "%s", r->change_id);
    json_t *body = json_pack("{s:s, s:s, s:[]}", "base_change_id", base, "message", "", "files");
    mr_default_author(m); /* the fork is the mount's change: the same author as its pushes */
    if (body && m->o.author_name[0])
        json_object_set_new(body, "author", json_pack("{s:s, s:s}", "name", m->o.author_name,
                                                      "email", m->o.author_email));
    rc = call(m, r, "POST", body, &v, &e, "/changes");
    json_decref(body);
    if (rc == 0)
        rc = take_change(r, v, &e);
    json_decref(v);
    if (rc < 0)
        return mr_fail_api(what, &e);
    if (r->want_as) {
        body = json_pack("{s:s, s:s}", "name", r->want_as, "change_id", r->change_id);
        rc = call(m, r, "POST", body, NULL, &e, "/bookmarks");
        json_decref(body);
        if (rc < 0) {
            char msg[1024];
            snprintf(msg, sizeof msg, "--as %s (the new change %s has no bookmark)", r->want_as,
                     r->change_id);
            return mr_fail_api(msg, &e);
        }
        snprintf(r->bookmark, sizeof r->bookmark, "%s", r->want_as);
    }
    if (m->o.verbose) {
        char line[700];
        snprintf(line, sizeof line, "%s: forked from %s (change %s) as change %s%s%s", what,
                 r->want_branched, base, r->change_id, r->want_as ? ", bookmark " : "",
                 r->want_as ? r->want_as : "");
        mr_log(NULL, line);
    }
    return 0;
}
