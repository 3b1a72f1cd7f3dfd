/* server/repo.h - operations on one Mesa repo that several handlers share:
 * opening its git store, the per-repo write lock, resolving a change id or
 * bookmark name, the write pipeline for changes (objects first, then under
 * the lock: base check, SQLite transaction, ref moves), Change JSON, and the
 * flat listing with mtimes. Start-up recovery after a crash lives here too.
 */
#ifndef MESA_REPO_H
#define MESA_REPO_H

#include <jansson.h>
#include <stdint.h>

#include "store_db.h"
#include "store_git.h"

/* <data>/repos/<id>.git */
void repo_git_path(const db_repo_t *repo, char *out, size_t n);
int repo_open_git(const db_repo_t *repo, sg_repo_t **out);

void repo_lock(const char *repo_id);
void repo_unlock(const char *repo_id);

/* rev: a change id or a bookmark name (NULL/"" = the default bookmark).
 * -ENOENT if neither. */
int repo_resolve(sg_repo_t *g, const db_repo_t *repo, const char *rev, char change_id[33],
                 char commit[SG_OID_HEX]);

/* One write to a change. */
typedef struct repo_write {
    const char *change_id;       /* PATCH: the change; NULL to create a new one */
    const char *base_rev;        /* create: base change id or bookmark */
    const char *expected_commit; /* PATCH: base_commit_oid, or NULL */
    const sg_op_t *ops;
    size_t nops;
    const int64_t *mtimes; /* per op: ns, or -1 for "now" */
    const char *message;   /* NULL: keep (PATCH) / "" (create) */
    const sg_sig_t *author, *committer; /* NULL: keep (PATCH) / default */
} repo_write_t;

typedef enum {
    REPO_W_OK = 0,
    REPO_W_STALE,     /* expected_commit is not current; *current_out says what is */
    REPO_W_IMMUTABLE, /* the root change */
    REPO_W_NOBASE,    /* base/change not found */
    REPO_W_ERROR,     /* see *err */
} repo_wstatus_t;

/* Run a write; on OK, *out is the change's new row. err gets a negative
 * errno for REPO_W_ERROR (e.g. -ENOTDIR from the tree edit). */
repo_wstatus_t repo_write(const db_org_t *org, const db_repo_t *repo, sg_repo_t *g,
                          const repo_write_t *w, db_change_t *out, char current_out[SG_OID_HEX],
                          int *err);

/* Change JSON (Mesa's Change object). */
json_t *repo_change_json(sg_repo_t *g, const db_repo_t *repo, const db_change_t *c);

/* Flat listing with mtimes: entries (path,type,mode,size,oid,mtime_ns). */
json_t *repo_tree_json(sg_repo_t *g, const db_repo_t *repo, const char *commit);

/* Record a new repo's root change in the index. */
int repo_index_root(const db_repo_t *repo, const char *root_oid);

/* After a crash: make every bookmark that points at an older commit of a
 * change follow it, and index commits the database lost. */
int repo_recover_all(const char *data_dir);

/* Type and mode strings. */
const char *repo_type_str(enum sg_type t);
void repo_mode_str(unsigned mode, char out[8]);

#endif
