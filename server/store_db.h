/* server/store_db.h - mesad's metadata store (SQLite, WAL), behind one narrow
 * API so it can move to another database: orgs, API keys (only their
 * derived secret S), repos, the change index (change id -> current commit,
 * and every commit ever written -> its change), per-path mtimes per commit,
 * and the event log.
 *
 * Each thread gets its own connection (db_thread()). Functions return 0 or a
 * negative errno (-ENOENT, -EEXIST, -EIO). Write paths that must be atomic
 * wrap their calls in db_begin()/db_commit() (BEGIN IMMEDIATE; commit is
 * durable: synchronous=FULL).
 */
#ifndef MESA_STORE_DB_H
#define MESA_STORE_DB_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define DB_FILE "mesa.db"

enum { SCOPE_READ = 1, SCOPE_WRITE = 2, SCOPE_ADMIN = 4 };
/* "read,write" -> bits; -EINVAL on an unknown name or an empty list. */
int db_scopes_parse(const char *csv, unsigned *out);
/* bits -> JSON array of names (new reference). */
json_t *db_scopes_json(unsigned scopes);

/* Set the data directory for every connection opened later; creates the
 * schema (idempotent). */
int db_setup(const char *data_dir);
/* Close this thread's connection (called at thread exit automatically). */
void db_thread_close(void);

int db_begin(void);
int db_commit(void);
void db_rollback(void);

typedef struct db_org {
    char id[37];
    char slug[101];
    char name[101];
    int64_t created_ms;
} db_org_t;
int db_org_create(const char *slug, db_org_t *out);
int db_org_by_slug(const char *slug, db_org_t *out);
int db_org_by_id(const char *id, db_org_t *out);

typedef struct db_key {
    char id[41];
    char org_id[37];
    char name[101];
    char secret[44];
    unsigned scopes;
    int64_t created_ms;
    int revoked;
} db_key_t;
int db_key_create(const char *org_id, const char *name, const char *secret, unsigned scopes,
                  db_key_t *out);
int db_key_get(const char *id, db_key_t *out);
/* The id of the key whose secret is S. */
int db_key_by_secret(const char *secret, char *id, size_t idlen);
int db_key_revoke(const char *org_id, const char *id);
/* JSON array of {key_id,name,scopes,created_at,revoked} (new reference). */
json_t *db_key_list(const char *org_id);

typedef struct db_repo {
    char id[37];
    char org_id[37];
    char name[101];
    char default_bookmark[256];
    char tags[4096]; /* JSON object text */
    int64_t created_ms;
} db_repo_t;
int db_repo_create(db_repo_t *r); /* fills id/created_ms; -EEXIST */
int db_repo_get(const char *org_id, const char *name, db_repo_t *out);
int db_repo_update(const db_repo_t *r); /* by id; -EEXIST on a name clash */
int db_repo_delete(const char *repo_id);
int db_repo_count(const char *org_id, long *n);
/* Up to limit repos from offset, by name; *out malloc'd. */
int db_repo_list(const char *org_id, long off, int limit, db_repo_t **out, size_t *n,
                 int *has_more);
/* Every repo (for start-up recovery); *out malloc'd. */
int db_repo_all(db_repo_t **out, size_t *n);

typedef struct db_change {
    char change_id[33];
    char commit_oid[41];
    int is_conflicted;
    char conflicts[8192]; /* JSON array text */
    int64_t created_ms, updated_ms;
} db_change_t;
int db_change_get(const char *repo_id, const char *change_id, db_change_t *out);
/* Upsert: keeps created_ms of an existing row. */
int db_change_put(const char *repo_id, const db_change_t *c);
/* The change a commit belongs to (any commit ever written). */
int db_commit_change(const char *repo_id, const char *commit_oid, char change_id[33]);
int db_commit_put(const char *repo_id, const char *commit_oid, const char *change_id);
/* Changes by updated_at desc; *out malloc'd. */
int db_change_list(const char *repo_id, long off, int limit, db_change_t **out, size_t *n,
                   int *has_more);

/* mtimes (ns) per path per commit */
int db_mtimes_copy(const char *repo_id, const char *from_commit, const char *to_commit);
int db_mtimes_delete_tree(const char *repo_id, const char *commit, const char *path);
int db_mtime_set(const char *repo_id, const char *commit, const char *path, int64_t ns);
int db_mtime_get(const char *repo_id, const char *commit, const char *path, int64_t *ns);
typedef struct db_mtime {
    char *path;
    int64_t ns;
} db_mtime_t;
/* All mtimes of a commit sorted by path (byte order); free with db_mtimes_free. */
int db_mtimes_load(const char *repo_id, const char *commit, db_mtime_t **out, size_t *n);
void db_mtimes_free(db_mtime_t *m, size_t n);

/* Per-path metadata (string keys -> string values), current values only.
 * db_meta_get: the object of path (new reference, {} when none).
 * db_meta_remove: one key, or every key of path when key is NULL.
 * db_meta_rename: path from (and every path below it) becomes to (and
 * below), replacing what was there. db_meta_tree: {path: {key: value}}
 * of dir and every path below it ("" = the whole repo; new reference). */
int db_meta_get(const char *repo_id, const char *path, json_t **out);
int db_meta_set(const char *repo_id, const char *path, const char *key, const char *value);
int db_meta_remove(const char *repo_id, const char *path, const char *key);
int db_meta_rename(const char *repo_id, const char *from, const char *to);
int db_meta_tree(const char *repo_id, const char *dir, json_t **out);

/* events */
int db_event_add(const char *repo_id, const char *type, const char *payload, int64_t *id);
/* Up to limit events with id > after as a JSON array of envelopes (new ref). */
int db_events_after(const char *repo_id, int64_t after, int limit, json_t **out,
                    int64_t *last_id);
int db_events_last(const char *repo_id, int64_t *last_id);

#endif
