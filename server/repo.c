/* server/repo.c - shared per-repo operations (see repo.h).
 *
 * Invariant of the write pipeline: git objects are written (and fsync'ed)
 * before the lock; under the per-repo lock the base is re-checked, the
 * change index, mtimes and event are committed in one SQLite transaction,
 * and only then do bookmarks move (compare-and-swap). A crash between the
 * commit and the ref moves is repaired by repo_recover_all() at start-up,
 * so what was acknowledged is never lost and refs never point at commits
 * the index does not know.
 * Called by api_changes.c, api_bookmarks.c, api_content.c, api_repos.c, main.c.
 */
#include "config.h"
#include "repo.h"
#include "events.h"
#include "http.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

/* ------------------------------------------------------------ basics */

void repo_git_path(const db_repo_t *repo, char *out, size_t n)
{
    snprintf(out, n, "%s/repos/%s.git", http_cfg.data_dir, repo->id);
}

int repo_open_git(const db_repo_t *repo, sg_repo_t **out)
{
    char path[4200];
    repo_git_path(repo, path, sizeof path);
    return sg_repo_open(path, out);
}

typedef struct lock_ent {
    char id[37];
    pthread_mutex_t mu;
    UT_hash_handle hh;
} lock_ent_t;
static lock_ent_t *locks;
static pthread_mutex_t locks_mu = PTHREAD_MUTEX_INITIALIZER;

static pthread_mutex_t *lock_for(const char *repo_id)
{
    pthread_mutex_lock(&locks_mu);
    lock_ent_t *e;
    HASH_FIND_STR(locks, repo_id, e);
    if (!e) {
        e = calloc(1, sizeof *e);
        snprintf(e->id, sizeof e->id, "%s", repo_id);
        pthread_mutex_init(&e->mu, NULL);
        HASH_ADD_STR(locks, id, e);
    }
    pthread_mutex_unlock(&locks_mu);
    return &e->mu;
}

void repo_lock(const char *repo_id)
{
    pthread_mutex_lock(lock_for(repo_id));
}

void repo_unlock(const char *repo_id)
{
    pthread_mutex_unlock(lock_for(repo_id));
}

const char *repo_type_str(enum sg_type t)
{
    return t == SG_TREE ? "dir" : t == SG_LINK ? "symlink" : "file";
}

void repo_mode_str(unsigned mode, char out[8])
{
    snprintf(out, 8, "%06o", mode);
}

/* The change a commit belongs to: the index, else its header. */
static int change_of_commit(sg_repo_t *g, const char *repo_id, const char *commit,
                            char change_id[33])
{
    if (db_commit_change(repo_id, commit, change_id) == 0)
        return 0;
    sg_commit_info_t ci;
    int rc = sg_commit_read(g, commit, &ci);
    if (rc < 0)
        return rc;
    snprintf(change_id, 33, "%s", ci.change_id);
    sg_commit_info_free(&ci);
    return change_id[0] ? 0 : -ENOENT;
}

int repo_resolve(sg_repo_t *g, const db_repo_t *repo, const char *rev, char change_id[33],
                 char commit[SG_OID_HEX])
{
    if (!rev || !*rev)
        rev = repo->default_bookmark;
    db_change_t c;
    if (sg_change_id_valid(rev) && db_change_get(repo->id, rev, &c) == 0) {
        snprintf(change_id, 33, "%s", c.change_id);
        snprintf(commit, SG_OID_HEX, "%s", c.commit_oid);
        return 0;
    }
    if (!sg_bookmark_name_valid(rev))
        return -ENOENT;
    char ref[300];
    snprintf(ref, sizeof ref, "refs/heads/%s", rev);
    int rc = sg_ref_read(g, ref, commit);
    if (rc < 0)
        return -ENOENT;
    return change_of_commit(g, repo->id, commit, change_id);
}

/* ------------------------------------------------------------ writes */

static const sg_sig_t default_sig = {"Mesa", "mesa@localhost", 0, 0};

static sg_sig_t sig_now(const sg_sig_t *s)
{
    sg_sig_t out = s ? *s : default_sig;
    if (!s || s->when == 0)
        out.when = util_now_ms() / 1000;
    return out;
}

/* The commit to write for w, given the current state. */
typedef struct plan {
    char change_id[33];
    char old_commit[SG_OID_HEX]; /* PATCH: the commit being replaced; create: the parent */
    char new_commit[SG_OID_HEX];
    int64_t created_ms;
} plan_t;

static repo_wstatus_t plan_patch(sg_repo_t *g, const db_repo_t *repo, const repo_write_t *w,
                                 plan_t *p, char current_out[SG_OID_HEX], int *err)
{
    db_change_t c;
    if (db_change_get(repo->id, w->change_id, &c) < 0)
        return REPO_W_NOBASE;
    if (strcmp(c.change_id, SG_ROOT_CHANGE_ID) == 0)
        return REPO_W_IMMUTABLE;
    snprintf(current_out, SG_OID_HEX, "%s", c.commit_oid);
    if (w->expected_commit && strcmp(w->expected_commit, c.commit_oid) != 0)
        return REPO_W_STALE;
    sg_commit_info_t ci;
    if ((*err = sg_commit_read(g, c.commit_oid, &ci)) < 0)
        return REPO_W_ERROR;
    char tree[SG_OID_HEX];
    repo_wstatus_t st = REPO_W_ERROR;
    if ((*err = sg_tree_apply(g, ci.tree, w->ops, w->nops, tree)) < 0)
        goto out;
    const char *parents[64];
    size_t np = ci.nparents < 64 ? ci.nparents : 64;
    for (size_t i = 0; i < np; i++)
        parents[i] = ci.parents[i];
    sg_sig_t author = w->author ? sig_now(w->author)
                                : (sg_sig_t){ci.author_name, ci.author_email, ci.author_time,
                                             ci.author_offset};
    sg_sig_t committer = sig_now(w->committer);
    if ((*err = sg_commit_write(g, tree, parents, np, c.change_id, &author, &committer,
                                w->message ? w->message : ci.message, p->new_commit)) < 0)
        goto out;
    snprintf(p->change_id, sizeof p->change_id, "%s", c.change_id);
    snprintf(p->old_commit, sizeof p->old_commit, "%s", c.commit_oid);
    p->created_ms = c.created_ms;
    st = REPO_W_OK;
out:
    sg_commit_info_free(&ci);
    return st;
}

static repo_wstatus_t plan_create(sg_repo_t *g, const db_repo_t *repo, const repo_write_t *w,
                                  plan_t *p, int *err)
{
    char base_change[33];
    if (repo_resolve(g, repo, w->base_rev, base_change, p->old_commit) < 0)
        return REPO_W_NOBASE;
    sg_commit_info_t ci;
    if ((*err = sg_commit_read(g, p->old_commit, &ci)) < 0)
        return REPO_W_ERROR;
    char tree[SG_OID_HEX];
    repo_wstatus_t st = REPO_W_ERROR;
    if ((*err = sg_tree_apply(g, ci.tree, w->ops, w->nops, tree)) < 0)
        goto out;
    if ((*err = sg_change_id_new(p->change_id)) < 0)
        goto out;
    const char *parents[1] = {p->old_commit};
    sg_sig_t author = sig_now(w->author), committer = sig_now(w->committer);
    if ((*err = sg_commit_write(g, tree, parents, 1, p->change_id, &author, &committer,
                                w->message ? w->message : "", p->new_commit)) < 0)
        goto out;
    p->created_ms = util_now_ms();
    st = REPO_W_OK;
out:
    sg_commit_info_free(&ci);
    return st;
}

/* Under the lock: is the plan still based on the current state? */
static int plan_still_valid(sg_repo_t *g, const db_repo_t *repo, const repo_write_t *w,
                            const plan_t *p)
{
    char change_id[33], commit[SG_OID_HEX];
    const char *rev = w->change_id ? w->change_id : w->base_rev;
    if (repo_resolve(g, repo, rev, change_id, commit) < 0)
        return 0;
    return strcmp(commit, p->old_commit) == 0;
}

static json_t *op_paths(const repo_write_t *w)
{
    json_t *a = json_array();
    for (size_t i = 0; i < w->nops && i < 1000; i++)
        json_array_append_new(a, json_string(w->ops[i].path));
    return a;
}

static int record_mtimes(const db_repo_t *repo, const repo_write_t *w, const plan_t *p)
{
    int rc = db_mtimes_copy(repo->id, p->old_commit, p->new_commit);
    int64_t now = util_now_ns();
    for (size_t i = 0; rc == 0 && i < w->nops; i++) {
        const sg_op_t *op = &w->ops[i];
        if (op->kind == SG_OP_DELETE)
            rc = db_mtimes_delete_tree(repo->id, p->new_commit, op->path);
        else
            rc = db_mtime_set(repo->id, p->new_commit, op->path,
                              w->mtimes && w->mtimes[i] >= 0 ? w->mtimes[i] : now);
    }
    return rc;
}

/* Bookmarks at old move to new_commit: they follow the rewritten change. */
static void follow_bookmarks(sg_repo_t *g, const char *old, const char *new_commit)
{
    sg_ref_t *refs = NULL;
    size_t n = 0;
    if (sg_branches_list(g, &refs, &n) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(refs[i].oid, old) != 0)
            continue;
        char ref[300];
        snprintf(ref, sizeof ref, "refs/heads/%s", refs[i].name);
        /* under the repo lock no other writer can race; a failure here is
         * a stale lock or outside interference, repaired at start-up */
        if (sg_ref_cas(g, ref, new_commit, old) < 0)
            fprintf(stderr, "mesad: bookmark %s could not follow its change to %s\n",
                    refs[i].name, new_commit);
    }
    sg_refs_free(refs, n);
}

static int commit_plan(const db_org_t *org, const db_repo_t *repo, sg_repo_t *g,
                       const repo_write_t *w, const plan_t *p, db_change_t *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->change_id, sizeof out->change_id, "%s", p->change_id);
    snprintf(out->commit_oid, sizeof out->commit_oid, "%s", p->new_commit);
    snprintf(out->conflicts, sizeof out->conflicts, "[]");
    out->created_ms = p->created_ms;
    out->updated_ms = util_now_ms();
    json_t *data = json_pack("{s:s, s:s, s:s, s:o, s:b}", "change_id", p->change_id,
                             "commit_oid", p->new_commit, "previous_commit_oid",
                             w->change_id ? p->old_commit : "", "paths", op_paths(w),
                             "paths_truncated", w->nops > 1000);
    if (!w->change_id)
        json_object_del(data, "previous_commit_oid");
    int rc = sg_commit_keep(g, p->new_commit);
    if (rc == 0)
        rc = db_begin();
    if (rc == 0)
        rc = db_change_put(repo->id, out);
    if (rc == 0)
        rc = db_commit_put(repo->id, p->new_commit, p->change_id);
    if (rc == 0)
        rc = record_mtimes(repo, w, p);
    if (rc == 0)
        rc = events_record(org, repo, w->change_id ? "change.evolved" : "change.created", data,
                           NULL);
    else
        json_decref(data);
    if (rc == 0)
        rc = db_commit();
    if (rc < 0) {
        db_rollback();
        return rc;
    }
    if (w->change_id)
        follow_bookmarks(g, p->old_commit, p->new_commit);
    return 0;
}

/* Optimistic first: objects are built without the lock and committed if
 * nobody wrote meanwhile. After OPTIMISTIC_TRIES lost races the plan is
 * made under the lock, which cannot lose: a write without an expected base
 * always lands, however contended the change is. */
#define OPTIMISTIC_TRIES 3

repo_wstatus_t repo_write(const db_org_t *org, const db_repo_t *repo, sg_repo_t *g,
                          const repo_write_t *w, db_change_t *out, char current_out[SG_OID_HEX],
                          int *err)
{
    *err = 0;
    for (int attempt = 0; attempt <= OPTIMISTIC_TRIES; attempt++) {
        int locked = attempt == OPTIMISTIC_TRIES;
        plan_t p = {0};
        if (locked)
            repo_lock(repo->id);
        repo_wstatus_t st = w->change_id ? plan_patch(g, repo, w, &p, current_out, err)
                                         : plan_create(g, repo, w, &p, err);
        if (st != REPO_W_OK) {
            if (locked)
                repo_unlock(repo->id);
            return st;
        }
        if (!locked) {
            repo_lock(repo->id);
            if (!plan_still_valid(g, repo, w, &p)) {
                repo_unlock(repo->id);
                continue; /* someone wrote first: rebuild on the new state */
            }
        }
        *err = commit_plan(org, repo, g, w, &p, out);
        repo_unlock(repo->id);
        if (*err < 0)
            return REPO_W_ERROR;
        events_notify();
        return REPO_W_OK;
    }
    *err = -EAGAIN; /* not reached: the locked attempt cannot lose */
    return REPO_W_ERROR;
}

/* ------------------------------------------------------------ rendering */

/* Signature dates are given in UTC with milliseconds, like every time of
 * the API (git keeps the author's offset; the commit object shows it). */
static json_t *sig_json(const char *name, const char *email, int64_t when)
{
    char date[32];
    util_fmt_time_ms(when * 1000, date);
    return json_pack("{s:s, s:s, s:s}", "name", name ? name : "", "email", email ? email : "",
                     "date", date);
}

json_t *repo_change_json(sg_repo_t *g, const db_repo_t *repo, const db_change_t *c)
{
    sg_commit_info_t ci;
    memset(&ci, 0, sizeof ci);
    if (sg_commit_read(g, c->commit_oid, &ci) < 0)
        return NULL;
    json_t *parents = json_array();
    for (size_t i = 0; i < ci.nparents; i++) {
        char pc[33];
        if (change_of_commit(g, repo->id, ci.parents[i], pc) == 0)
            json_array_append_new(parents, json_string(pc));
    }
    char created[32], updated[32];
    util_fmt_time_ms(c->created_ms, created);
    util_fmt_time_ms(c->updated_ms, updated);
    json_t *v = json_pack(
        "{s:s, s:s, s:b, s:s, s:o, s:o, s:o, s:s, s:s}", "id", c->change_id,
        "current_commit_oid", c->commit_oid, "is_conflicted", c->is_conflicted, "message",
        ci.message ? ci.message : "", "author",
        sig_json(ci.author_name, ci.author_email, ci.author_time), "committer",
        sig_json(ci.committer_name, ci.committer_email, ci.committer_time),
        "parents", parents, "created_at", created, "updated_at", updated);
    sg_commit_info_free(&ci);
    return v;
}

/* mtime of path: binary search in the sorted mtimes, else fallback. */
static int64_t mtime_lookup(const db_mtime_t *m, size_t n, const char *path, int64_t fallback)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(m[mid].path, path);
        if (c == 0)
            return m[mid].ns;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return fallback;
}

json_t *repo_tree_json(sg_repo_t *g, const db_repo_t *repo, const char *commit)
{
    sg_commit_info_t ci;
    if (sg_commit_read(g, commit, &ci) < 0)
        return NULL;
    sg_entry_t *e = NULL;
    size_t n = 0;
    db_mtime_t *m = NULL;
    size_t nm = 0;
    json_t *out = NULL;
    int64_t fallback = ci.committer_time * 1000000000LL;
    if (sg_tree_list_flat(g, ci.tree, &e, &n) < 0 || db_mtimes_load(repo->id, commit, &m, &nm) < 0)
        goto out;
    int64_t *mt = calloc(n ? n : 1, sizeof *mt);
    for (size_t i = 0; i < n; i++)
        mt[i] = mtime_lookup(m, nm, e[i].path, e[i].type == SG_TREE ? 0 : fallback);
    /* A directory's mtime is the newest of its subtree: entries are sorted,
     * so a directory's subtree follows it contiguously. */
    for (size_t i = n; i-- > 0;) {
        if (e[i].type != SG_TREE)
            continue;
        size_t len = strlen(e[i].path);
        for (size_t j = i + 1; j < n && strncmp(e[j].path, e[i].path, len) == 0 &&
                               e[j].path[len] == '/';
             j++)
            if (mt[j] > mt[i])
                mt[i] = mt[j];
        if (mt[i] == 0)
            mt[i] = fallback;
    }
    json_t *entries = json_array();
    for (size_t i = 0; i < n; i++) {
        char mode[8];
        repo_mode_str(e[i].mode, mode);
        json_array_append_new(entries,
                              json_pack("{s:s, s:s, s:s, s:I, s:s, s:I}", "path", e[i].path,
                                        "type", repo_type_str(e[i].type), "mode", mode, "size",
                                        (json_int_t)e[i].size, "oid", e[i].oid, "mtime_ns",
                                        (json_int_t)mt[i]));
    }
    free(mt);
    char change_id[33] = "";
    change_of_commit(g, repo->id, commit, change_id);
    out = json_pack("{s:s, s:s, s:o}", "commit_oid", commit, "change_id", change_id, "entries",
                    entries);
out:
    sg_entries_free(e, n);
    db_mtimes_free(m, nm);
    sg_commit_info_free(&ci);
    return out;
}

int repo_index_root(const db_repo_t *repo, const char *root_oid)
{
    db_change_t c = {0};
    snprintf(c.change_id, sizeof c.change_id, "%s", SG_ROOT_CHANGE_ID);
    snprintf(c.commit_oid, sizeof c.commit_oid, "%s", root_oid);
    snprintf(c.conflicts, sizeof c.conflicts, "[]");
    c.created_ms = c.updated_ms = repo->created_ms;
    int rc = db_change_put(repo->id, &c);
    return rc ? rc : db_commit_put(repo->id, root_oid, SG_ROOT_CHANGE_ID);
}

/* ------------------------------------------------------------ recovery */

static void recover_branch(sg_repo_t *g, const db_repo_t *repo, const sg_ref_t *ref)
{
    char change_id[33];
    if (change_of_commit(g, repo->id, ref->oid, change_id) < 0)
        return; /* a commit without change-id (written by plain git): leave it */
    db_change_t c;
    if (db_change_get(repo->id, change_id, &c) < 0) {
        /* unknown to the index: adopt it as the change's current commit */
        memset(&c, 0, sizeof c);
        snprintf(c.change_id, sizeof c.change_id, "%s", change_id);
        snprintf(c.commit_oid, sizeof c.commit_oid, "%s", ref->oid);
        snprintf(c.conflicts, sizeof c.conflicts, "[]");
        c.created_ms = c.updated_ms = util_now_ms();
        db_change_put(repo->id, &c);
        db_commit_put(repo->id, ref->oid, change_id);
        return;
    }
    if (strcmp(c.commit_oid, ref->oid) == 0)
        return;
    char known[33];
    if (db_commit_change(repo->id, ref->oid, known) == 0 && strcmp(known, change_id) == 0) {
        char name[300];
        snprintf(name, sizeof name, "refs/heads/%s", ref->name);
        if (sg_ref_cas(g, name, c.commit_oid, ref->oid) == 0)
            fprintf(stderr, "mesad: recovered bookmark %s of repo %s to %s\n", ref->name,
                    repo->name, c.commit_oid);
    }
}

int repo_recover_all(const char *data_dir)
{
    db_repo_t *repos = NULL;
    size_t n = 0;
    int rc = db_repo_all(&repos, &n);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        sg_repo_t *g;
        char path[4200];
        repo_git_path(&repos[i], path, sizeof path);
        int stale = sg_repo_clear_stale_locks(path);
        if (stale > 0)
            fprintf(stderr, "mesad: removed %d stale lock file(s) in repo %s\n", stale,
                    repos[i].name);
        if (repo_open_git(&repos[i], &g) < 0) {
            fprintf(stderr, "mesad: repo %s (%s) cannot be opened\n", repos[i].name,
                    repos[i].id);
            continue;
        }
        sg_ref_t *refs = NULL;
        size_t nr = 0;
        if (sg_branches_list(g, &refs, &nr) == 0) {
            for (size_t j = 0; j < nr; j++)
                recover_branch(g, &repos[i], &refs[j]);
            sg_refs_free(refs, nr);
        }
        sg_repo_close(g);
    }
    free(repos);
    return 0;
}
