/* server/api_merge.c - POST /v1/{org}/{repo}/bookmarks/merge.
 *
 * Same commit -> no_op. Otherwise a three-way merge of the trees (base =
 * merge base of the two commits) becomes a new change with parents
 * [target, source], and target moves to it. Conflicts are 409
 * MERGE_CONFLICT unless allow_conflicted (then the files hold conflict
 * markers and the change is is_conflicted); whole-file resolutions settle
 * paths first. The whole merge runs under the repo's write lock.
 */
#include "config.h"
#include "api.h"
#include "b64.h"
#include "events.h"
#include "pathcheck.h"
#include "repo.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct merge {
    const char *target, *source, *message;
    int delete_source, allow_conflicted;
    json_t *resolutions;
    char t_oid[SG_OID_HEX], s_oid[SG_OID_HEX];
    sg_commit_info_t t, s;
    char tree[SG_OID_HEX];
    char **conflicts;
    size_t nconflicts;
    char change_id[33], commit[SG_OID_HEX];
} merge_t;

/* Validate one resolution entry fully, before anything is merged. */
static int check_resolution(req_t *r, json_t *e, size_t i)
{
    static const char *const allowed[] = {"path", "content", "take", "encoding", "hunks", NULL};
    const char *bad = NULL, *why = NULL;
    json_t *path = json_object_get(e, "path"), *content = json_object_get(e, "content");
    json_t *take = json_object_get(e, "take"), *enc = json_object_get(e, "encoding");
    unsigned char *data = NULL;
    size_t len;
    if (!json_is_object(e) || util_json_only_keys(e, allowed, &bad) < 0)
        return http_error(r, 400, "BAD_REQUEST", "resolutions[%zu]: %s%s", i,
                          bad ? "unknown field " : "must be an object", bad ? bad : ""), -1;
    if (json_object_get(e, "hunks"))
        return http_error(r, 400, "BAD_REQUEST", "hunk resolutions are not supported by mesad"),
               -1;
    if (!json_is_string(path) ||
        pathcheck_file(json_string_value(path), json_string_length(path), &why) < 0)
        return http_error(r, 400, "BAD_REQUEST", "resolutions[%zu]: %s", i,
                          why ? why : "path must be a string"), -1;
    if (enc && !(json_is_string(enc) && strcmp(json_string_value(enc), "base64") == 0))
        return http_error(r, 400, "BAD_REQUEST", "resolutions[%zu]: encoding must be base64", i),
               -1;
    if (content && take)
        return http_error(r, 400, "BAD_REQUEST", "resolutions[%zu]: content or take, not both",
                          i), -1;
    if (content) {
        int ok = json_is_string(content) &&
                 mesa_b64_decode(json_string_value(content), json_string_length(content), &data,
                                 &len) == 0;
        free(data);
        return ok ? 0
                  : (http_error(r, 400, "BAD_REQUEST", "resolutions[%zu]: content is not base64",
                                i), -1);
    }
    const char *side = json_string_value(take);
    if (!side || (strcmp(side, "target") != 0 && strcmp(side, "source") != 0))
        return http_error(r, 400, "BAD_REQUEST", "resolutions[%zu]: needs content or take "
                                                 "(target or source)", i), -1;
    return 0;
}

static int parse_merge(req_t *r, json_t *b, merge_t *m)
{
    static const char *const allowed[] = {"target", "source", "delete_source", "allow_conflicted",
                                          "message", "resolutions", NULL};
    const char *bad;
    json_t *t = json_object_get(b, "target"), *s = json_object_get(b, "source");
    json_t *ds = json_object_get(b, "delete_source"), *ac = json_object_get(b, "allow_conflicted");
    json_t *msg = json_object_get(b, "message"), *res = json_object_get(b, "resolutions");
    if (util_json_only_keys(b, allowed, &bad) < 0)
        return http_error(r, 400, "BAD_REQUEST", "unknown field '%s'", bad), -1;
    if (!json_is_string(t) || !json_is_string(s) || (ds && !json_is_boolean(ds)) ||
        (ac && !json_is_boolean(ac)) || (msg && !json_is_string(msg)) ||
        (res && !json_is_array(res)))
        return http_error(r, 400, "BAD_REQUEST", "target and source must be strings; "
                                                 "delete_source and allow_conflicted booleans"),
               -1;
    m->target = json_string_value(t);
    m->source = json_string_value(s);
    m->message = msg ? json_string_value(msg) : NULL;
    m->delete_source = json_is_true(ds);
    m->allow_conflicted = json_is_true(ac);
    m->resolutions = res;
    size_t i;
    json_t *x;
    json_array_foreach(res, i, x)
    {
        if (check_resolution(r, x, i) < 0)
            return -1;
    }
    if (strcmp(m->target, m->source) == 0)
        return http_error(r, 400, "BAD_REQUEST", "target and source are the same bookmark"), -1;
    return 0;
}

static int read_bookmark(sg_repo_t *g, const char *name, char oid[SG_OID_HEX])
{
    char ref[300];
    if (!sg_bookmark_name_valid(name))
        return -ENOENT;
    snprintf(ref, sizeof ref, "refs/heads/%s", name);
    return sg_ref_read(g, ref, oid);
}

static void drop_conflict(merge_t *m, const char *path)
{
    for (size_t i = 0; i < m->nconflicts; i++) {
        if (strcmp(m->conflicts[i], path) != 0)
            continue;
        free(m->conflicts[i]);
        memmove(&m->conflicts[i], &m->conflicts[i + 1],
                (m->nconflicts - i - 1) * sizeof m->conflicts[0]);
        m->nconflicts--;
        return;
    }
}

/* One resolution as a tree op (content or take). */
static int resolution_op(req_t *r, sg_repo_t *g, merge_t *m, json_t *e, sg_op_t *op)
{
    json_t *path = json_object_get(e, "path"), *content = json_object_get(e, "content");
    json_t *take = json_object_get(e, "take");
    if (!json_is_object(e) || !json_is_string(path))
        return http_error(r, 400, "BAD_REQUEST", "each resolution needs a path"), -1;
    if (json_object_get(e, "hunks"))
        return http_error(r, 400, "BAD_REQUEST", "hunk resolutions are not supported by mesad"),
               -1;
    op->path = json_string_value(path);
    op->kind = SG_OP_UPSERT;
    op->mode = 0100644;
    if (json_is_string(content)) {
        unsigned char *data = NULL;
        size_t len;
        if (mesa_b64_decode(json_string_value(content), json_string_length(content), &data,
                            &len) < 0)
            return http_error(r, 400, "BAD_REQUEST", "resolution content is not base64"), -1;
        int rc = sg_blob_write(g, data, len, op->oid);
        free(data);
        return rc < 0 ? (http_errno(r, rc, "blob"), -1) : 0;
    }
    const char *side = json_string_value(take);
    if (!side || (strcmp(side, "target") != 0 && strcmp(side, "source") != 0))
        return http_error(r, 400, "BAD_REQUEST", "resolution needs content or take"), -1;
    sg_entry_t ent;
    const char *tree = side[0] == 't' ? m->t.tree : m->s.tree;
    if (sg_tree_lookup(g, tree, op->path, &ent) < 0) {
        op->kind = SG_OP_DELETE;
        return 0;
    }
    snprintf(op->oid, sizeof op->oid, "%s", ent.oid);
    op->mode = ent.mode;
    free(ent.path);
    return ent.type == SG_TREE ? (http_error(r, 400, "BAD_REQUEST", "cannot take a directory"),
                                  -1)
                               : 0;
}

static int apply_resolutions(req_t *r, sg_repo_t *g, merge_t *m)
{
    size_t n = json_array_size(m->resolutions);
    if (n == 0)
        return 0;
    sg_op_t *ops = calloc(n, sizeof *ops);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = resolution_op(r, g, m, json_array_get(m->resolutions, i), &ops[i]);
    if (rc == 0 && (rc = sg_tree_apply(g, m->tree, ops, n, m->tree)) < 0)
        http_errno(r, rc, "resolution");
    for (size_t i = 0; rc == 0 && i < n; i++)
        drop_conflict(m, ops[i].path);
    free(ops);
    return rc < 0 ? -1 : 0;
}

/* mtimes of the merge: target's, with changed paths taking source's or now. */
static int merge_mtimes(req_t *r, sg_repo_t *g, merge_t *m)
{
    int rc = db_mtimes_copy(r->repo.id, m->t_oid, m->commit);
    sg_change_t *d = NULL;
    size_t n = 0;
    int64_t now = util_now_ns(), ns;
    if (rc == 0)
        rc = sg_tree_diff(g, m->t.tree, m->tree, &d, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (d[i].status == 'D')
            rc = db_mtimes_delete_tree(r->repo.id, m->commit, d[i].path);
        else
            rc = db_mtime_set(r->repo.id, m->commit, d[i].path,
                              db_mtime_get(r->repo.id, m->s_oid, d[i].path, &ns) == 0 ? ns
                                                                                     : now);
    }
    sg_changes_free(d, n);
    return rc;
}

static int write_merge(req_t *r, sg_repo_t *g, merge_t *m)
{
    char msg[600];
    snprintf(msg, sizeof msg, "Merge %s into %s\n", m->source, m->target);
    const char *parents[2] = {m->t_oid, m->s_oid};
    sg_sig_t sig = {"Mesa", "mesa@localhost", util_now_ms() / 1000, 0};
    int rc = sg_change_id_new(m->change_id);
    if (rc == 0)
        rc = sg_commit_write(g, m->tree, parents, 2, m->change_id, &sig, &sig,
                             m->message ? m->message : msg, m->commit);
    if (rc < 0)
        return rc;
    db_change_t c = {0};
    json_t *conf = json_array();
    for (size_t i = 0; i < m->nconflicts; i++)
        json_array_append_new(conf, json_string(m->conflicts[i]));
    char *cs = json_dumps(conf, JSON_COMPACT);
    json_decref(conf);
    snprintf(c.change_id, sizeof c.change_id, "%s", m->change_id);
    snprintf(c.commit_oid, sizeof c.commit_oid, "%s", m->commit);
    snprintf(c.conflicts, sizeof c.conflicts, "%s", cs && strlen(cs) < sizeof c.conflicts ? cs : "[]");
    free(cs);
    c.is_conflicted = m->nconflicts > 0;
    c.created_ms = c.updated_ms = util_now_ms();
    rc = sg_commit_keep(g, m->commit);
    if (rc == 0)
        rc = db_begin();
    if (rc == 0)
        rc = db_change_put(r->repo.id, &c);
    if (rc == 0)
        rc = db_commit_put(r->repo.id, m->commit, m->change_id);
    if (rc == 0)
        rc = merge_mtimes(r, g, m);
    if (rc == 0)
        rc = events_record(&r->org, &r->repo, "bookmark.merged",
                           json_pack("{s:s, s:s, s:s, s:s, s:b}", "target", m->target, "source",
                                     m->source, "change_id", m->change_id, "commit_oid",
                                     m->commit, "is_conflicted", c.is_conflicted),
                           NULL);
    if (rc == 0)
        rc = db_commit();
    if (rc < 0) {
        db_rollback();
        return rc;
    }
    char ref[300];
    snprintf(ref, sizeof ref, "refs/heads/%s", m->target);
    return sg_ref_cas(g, ref, m->commit, m->t_oid);
}

/* Under the lock: compute and write the merge; sets the response on error. */
static int do_merge(req_t *r, sg_repo_t *g, merge_t *m, const char **type)
{
    int rc;
    if (read_bookmark(g, m->target, m->t_oid) < 0 || read_bookmark(g, m->source, m->s_oid) < 0)
        return http_error(r, 404, "NOT_FOUND", "bookmark '%s' or '%s' not found", m->target,
                          m->source), -1;
    if (strcmp(m->t_oid, m->s_oid) == 0) {
        *type = "no_op";
        snprintf(m->commit, sizeof m->commit, "%s", m->t_oid);
        char tmp[SG_OID_HEX];
        return repo_resolve(g, &r->repo, m->target, m->change_id, tmp) < 0 ? -1 : 0;
    }
    *type = "merge_commit";
    char base[SG_OID_HEX];
    sg_commit_info_t bi;
    const char *base_tree = NULL;
    int have_base = sg_merge_base(g, m->t_oid, m->s_oid, base) == 0 &&
                    sg_commit_read(g, base, &bi) == 0;
    if (have_base)
        base_tree = bi.tree;
    if ((rc = sg_commit_read(g, m->t_oid, &m->t)) == 0 &&
        (rc = sg_commit_read(g, m->s_oid, &m->s)) == 0)
        rc = sg_tree_merge(g, base_tree, m->t.tree, m->s.tree, m->tree, &m->conflicts,
                           &m->nconflicts);
    if (have_base)
        sg_commit_info_free(&bi);
    if (rc < 0)
        return http_errno(r, rc, "merge"), -1;
    if (apply_resolutions(r, g, m) < 0)
        return -1;
    if (m->nconflicts && !m->allow_conflicted) {
        json_t *paths = json_array();
        for (size_t i = 0; i < m->nconflicts; i++)
            json_array_append_new(paths, json_string(m->conflicts[i]));
        return http_error_details(r, 409, "MERGE_CONFLICT", json_pack("{s:o}", "conflict_paths",
                                                                      paths),
                                  "merging %s into %s conflicts in %zu path(s)", m->source,
                                  m->target, m->nconflicts), -1;
    }
    if ((rc = write_merge(r, g, m)) < 0)
        return http_errno(r, rc, "merge"), -1;
    return 0;
}

int api_bookmarks_merge(req_t *r)
{
    merge_t m;
    memset(&m, 0, sizeof m);
    json_t *b = http_body_json(r);
    if (!b || parse_merge(r, b, &m) < 0) {
        json_decref(b);
        return 0;
    }
    sg_repo_t *g;
    if (repo_open_git(&r->repo, &g) < 0) {
        json_decref(b);
        return http_errno(r, -EIO, "repository");
    }
    const char *type = NULL;
    int deleted = 0;
    repo_lock(r->repo.id);
    int rc = do_merge(r, g, &m, &type);
    if (rc == 0 && m.delete_source) {
        char ref[300];
        snprintf(ref, sizeof ref, "refs/heads/%s", m.source);
        deleted = strcmp(m.source, r->repo.default_bookmark) != 0 &&
                  sg_ref_delete_cas(g, ref, m.s_oid) == 0;
    }
    repo_unlock(r->repo.id);
    if (rc == 0) {
        events_notify();
        http_json(r, 200, json_pack("{s:s, s:b, s:s, s:s, s:s, s:s, s:b}", "merge_type", type,
                                    "is_conflicted", m.nconflicts > 0, "commit_oid", m.commit,
                                    "change_id", m.change_id, "target", m.target, "source",
                                    m.source, "source_deleted", deleted));
    }
    if (m.t.message)
        sg_commit_info_free(&m.t);
    if (m.s.message)
        sg_commit_info_free(&m.s);
    sg_strv_free(m.conflicts, m.nconflicts);
    sg_repo_close(g);
    json_decref(b);
    return 0;
}
