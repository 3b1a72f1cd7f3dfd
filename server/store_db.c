/* server/store_db.c - the SQLite metadata store (see store_db.h).
 *
 * Invariant: a write that the server acknowledges is in a committed
 * transaction of a WAL database opened with synchronous=FULL, so it survives
 * kill -9 and power loss. One connection per thread, opened lazily and
 * closed by a pthread key destructor when the thread ends.
 * Called by the api_* handlers, repo.c, auth.c and the CLI.
 */
#include "config.h"
#include "store_db.h"
#include "pathcheck.h"
#include "token.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATHCHECK_BOUND (PATHCHECK_MAX_PATH + 2)

static char db_path[4096];
static pthread_key_t db_key;
static pthread_once_t db_key_once = PTHREAD_ONCE_INIT;

static const char *schema =
    "CREATE TABLE IF NOT EXISTS orgs(id TEXT PRIMARY KEY, slug TEXT UNIQUE NOT NULL,"
    " name TEXT NOT NULL, created_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS api_keys(id TEXT PRIMARY KEY, org_id TEXT NOT NULL,"
    " name TEXT NOT NULL, secret TEXT NOT NULL, scopes INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL, revoked_at INTEGER);"
    "CREATE UNIQUE INDEX IF NOT EXISTS api_keys_secret ON api_keys(secret);"
    "CREATE TABLE IF NOT EXISTS repos(id TEXT PRIMARY KEY, org_id TEXT NOT NULL,"
    " name TEXT NOT NULL, default_bookmark TEXT NOT NULL, tags TEXT NOT NULL,"
    " created_at INTEGER NOT NULL, UNIQUE(org_id, name));"
    "CREATE TABLE IF NOT EXISTS changes(repo_id TEXT NOT NULL, change_id TEXT NOT NULL,"
    " commit_oid TEXT NOT NULL, is_conflicted INTEGER NOT NULL, conflicts TEXT NOT NULL,"
    " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    " PRIMARY KEY(repo_id, change_id)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS changes_updated ON changes(repo_id, updated_at);"
    "CREATE TABLE IF NOT EXISTS commits(repo_id TEXT NOT NULL, commit_oid TEXT NOT NULL,"
    " change_id TEXT NOT NULL, PRIMARY KEY(repo_id, commit_oid)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS mtimes(repo_id TEXT NOT NULL, commit_oid TEXT NOT NULL,"
    " path TEXT NOT NULL, mtime_ns INTEGER NOT NULL,"
    " PRIMARY KEY(repo_id, commit_oid, path)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " repo_id TEXT NOT NULL, type TEXT NOT NULL, payload TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS events_repo ON events(repo_id, id);"
    /* per-path metadata: current values only (added later: IF NOT EXISTS
     * is the migration of an existing data directory) */
    "CREATE TABLE IF NOT EXISTS metadata(repo_id TEXT NOT NULL, path TEXT NOT NULL,"
    " key TEXT NOT NULL, value TEXT NOT NULL,"
    " PRIMARY KEY(repo_id, path, key)) WITHOUT ROWID;";

static void close_conn(void *p)
{
    sqlite3_close_v2((sqlite3 *)p);
}

static void make_key(void)
{
    pthread_key_create(&db_key, close_conn);
}

static sqlite3 *conn(void)
{
    pthread_once(&db_key_once, make_key);
    sqlite3 *db = pthread_getspecific(db_key);
    if (db)
        return db;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                          SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        sqlite3_close_v2(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 30000);
    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL, NULL);
    pthread_setspecific(db_key, db);
    return db;
}

void db_thread_close(void)
{
    pthread_once(&db_key_once, make_key);
    sqlite3 *db = pthread_getspecific(db_key);
    if (db) {
        sqlite3_close_v2(db);
        pthread_setspecific(db_key, NULL);
    }
}

int db_setup(const char *data_dir)
{
    if ((size_t)snprintf(db_path, sizeof db_path, "%s/%s", data_dir, DB_FILE) >= sizeof db_path)
        return -ENAMETOOLONG;
    sqlite3 *db = conn();
    if (!db)
        return -EIO;
    return sqlite3_exec(db, schema, NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

/* Prepare sql and bind arguments described by fmt: 's' text, 'i' int64,
 * 'd' int. Returns NULL on failure. */
static sqlite3_stmt *prep(const char *sql, const char *fmt, ...)
{
    sqlite3 *db = conn();
    sqlite3_stmt *st = NULL;
    if (!db || sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    for (int i = 0; fmt && fmt[i]; i++) {
        int rc = SQLITE_OK;
        switch (fmt[i]) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            rc = s ? sqlite3_bind_text(st, i + 1, s, -1, SQLITE_TRANSIENT)
                   : sqlite3_bind_null(st, i + 1);
            break;
        }
        case 'i':
            rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
            break;
        case 'd':
            rc = sqlite3_bind_int(st, i + 1, va_arg(ap, int));
            break;
        }
        if (rc != SQLITE_OK) {
            sqlite3_finalize(st);
            st = NULL;
            break;
        }
    }
    va_end(ap);
    return st;
}

/* Run a statement that returns no rows. */
static int run(sqlite3_stmt *st)
{
    if (!st)
        return -EIO;
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_CONSTRAINT ? -EEXIST : -EIO;
}

static void copy_col(sqlite3_stmt *st, int col, char *dst, size_t n)
{
    const unsigned char *s = sqlite3_column_text(st, col);
    snprintf(dst, n, "%s", s ? (const char *)s : "");
}

int db_begin(void)
{
    return run(prep("BEGIN IMMEDIATE", NULL));
}

int db_commit(void)
{
    return run(prep("COMMIT", NULL));
}

void db_rollback(void)
{
    sqlite3 *db = conn();
    if (db && !sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

int db_scopes_parse(const char *csv, unsigned *out)
{
    unsigned bits = 0;
    const char *p = csv;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == 4 && strncmp(p, "read", 4) == 0)
            bits |= SCOPE_READ;
        else if (n == 5 && strncmp(p, "write", 5) == 0)
            bits |= SCOPE_WRITE;
        else if (n == 5 && strncmp(p, "admin", 5) == 0)
            bits |= SCOPE_ADMIN;
        else
            return -EINVAL;
        p += n;
        if (*p == ',')
            p++;
    }
    if (!bits)
        return -EINVAL;
    *out = bits;
    return 0;
}

json_t *db_scopes_json(unsigned s)
{
    json_t *a = json_array();
    if (s & SCOPE_READ)
        json_array_append_new(a, json_string("read"));
    if (s & SCOPE_WRITE)
        json_array_append_new(a, json_string("write"));
    if (s & SCOPE_ADMIN)
        json_array_append_new(a, json_string("admin"));
    return a;
}

/* ---------------------------------------------------------------- orgs */

static int org_row(sqlite3_stmt *st, db_org_t *o)
{
    if (!st)
        return -EIO;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        copy_col(st, 0, o->id, sizeof o->id);
        copy_col(st, 1, o->slug, sizeof o->slug);
        copy_col(st, 2, o->name, sizeof o->name);
        o->created_ms = sqlite3_column_int64(st, 3);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
}

int db_org_create(const char *slug, db_org_t *out)
{
    memset(out, 0, sizeof *out);
    mesa_uuid4(out->id);
    snprintf(out->slug, sizeof out->slug, "%s", slug);
    snprintf(out->name, sizeof out->name, "%s", slug);
    out->created_ms = util_now_ms();
    return run(prep("INSERT INTO orgs VALUES(?,?,?,?)", "sssi", out->id, out->slug, out->name,
                    out->created_ms));
}

int db_org_by_slug(const char *slug, db_org_t *out)
{
    return org_row(prep("SELECT id, slug, name, created_at FROM orgs WHERE slug=?", "s", slug),
                   out);
}

int db_org_by_id(const char *id, db_org_t *out)
{
    return org_row(prep("SELECT id, slug, name, created_at FROM orgs WHERE id=?", "s", id), out);
}

/* ---------------------------------------------------------------- keys */

int db_key_create(const char *org_id, const char *name, const char *secret, unsigned scopes,
                  db_key_t *out)
{
    memset(out, 0, sizeof *out);
    char rnd[21];
    mesa_random_base62(rnd, 20);
    snprintf(out->id, sizeof out->id, "key_%s", rnd);
    snprintf(out->org_id, sizeof out->org_id, "%s", org_id);
    snprintf(out->name, sizeof out->name, "%s", name);
    snprintf(out->secret, sizeof out->secret, "%s", secret);
    out->scopes = scopes;
    out->created_ms = util_now_ms();
    return run(prep("INSERT INTO api_keys VALUES(?,?,?,?,?,?,NULL)", "ssssii", out->id, org_id,
                    name, secret, (int64_t)scopes, out->created_ms));
}

int db_key_get(const char *id, db_key_t *out)
{
    sqlite3_stmt *st = prep("SELECT id, org_id, name, secret, scopes, created_at,"
                            " revoked_at IS NOT NULL FROM api_keys WHERE id=?",
                            "s", id);
    if (!st)
        return -EIO;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        copy_col(st, 0, out->id, sizeof out->id);
        copy_col(st, 1, out->org_id, sizeof out->org_id);
        copy_col(st, 2, out->name, sizeof out->name);
        copy_col(st, 3, out->secret, sizeof out->secret);
        out->scopes = (unsigned)sqlite3_column_int(st, 4);
        out->created_ms = sqlite3_column_int64(st, 5);
        out->revoked = sqlite3_column_int(st, 6);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
}

int db_key_by_secret(const char *secret, char *id, size_t idlen)
{
    sqlite3_stmt *st = prep("SELECT id FROM api_keys WHERE secret=?", "s", secret);
    if (!st)
        return -EIO;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        copy_col(st, 0, id, idlen);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
}

int db_key_revoke(const char *org_id, const char *id)
{
    int rc = run(prep("UPDATE api_keys SET revoked_at=? WHERE id=? AND org_id=?"
                      " AND revoked_at IS NULL",
                      "iss", util_now_ms(), id, org_id));
    if (rc < 0)
        return rc;
    return sqlite3_changes(conn()) == 1 ? 0 : -ENOENT;
}

json_t *db_key_list(const char *org_id)
{
    json_t *a = json_array();
    sqlite3_stmt *st = prep("SELECT id, name, scopes, created_at, revoked_at IS NOT NULL"
                            " FROM api_keys WHERE org_id=? ORDER BY created_at, id",
                            "s", org_id);
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        char when[32];
        util_fmt_time_ms(sqlite3_column_int64(st, 3), when);
        json_array_append_new(
            a, json_pack("{s:s, s:s, s:o, s:s, s:b}", "key_id", sqlite3_column_text(st, 0),
                         "name", sqlite3_column_text(st, 1), "scopes",
                         db_scopes_json((unsigned)sqlite3_column_int(st, 2)), "created_at", when,
                         "revoked", sqlite3_column_int(st, 4)));
    }
    sqlite3_finalize(st);
    return a;
}

/* ---------------------------------------------------------------- repos */

#define REPO_COLS "id, org_id, name, default_bookmark, tags, created_at"

static void repo_from_row(sqlite3_stmt *st, db_repo_t *r)
{
    copy_col(st, 0, r->id, sizeof r->id);
    copy_col(st, 1, r->org_id, sizeof r->org_id);
    copy_col(st, 2, r->name, sizeof r->name);
    copy_col(st, 3, r->default_bookmark, sizeof r->default_bookmark);
    copy_col(st, 4, r->tags, sizeof r->tags);
    r->created_ms = sqlite3_column_int64(st, 5);
}

int db_repo_create(db_repo_t *r)
{
    mesa_uuid4(r->id);
    r->created_ms = util_now_ms();
    return run(prep("INSERT INTO repos VALUES(?,?,?,?,?,?)", "sssssi", r->id, r->org_id, r->name,
                    r->default_bookmark, r->tags, r->created_ms));
}

int db_repo_get(const char *org_id, const char *name, db_repo_t *out)
{
    sqlite3_stmt *st =
        prep("SELECT " REPO_COLS " FROM repos WHERE org_id=? AND name=?", "ss", org_id, name);
    if (!st)
        return -EIO;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        repo_from_row(st, out);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
}

int db_repo_update(const db_repo_t *r)
{
    return run(prep("UPDATE repos SET name=?, default_bookmark=?, tags=? WHERE id=?", "ssss",
                    r->name, r->default_bookmark, r->tags, r->id));
}

int db_repo_delete(const char *repo_id)
{
    static const char *const del[] = {
        "DELETE FROM repos WHERE id=?", "DELETE FROM changes WHERE repo_id=?",
        "DELETE FROM commits WHERE repo_id=?", "DELETE FROM mtimes WHERE repo_id=?",
        "DELETE FROM metadata WHERE repo_id=?"};
    for (size_t i = 0; i < sizeof del / sizeof del[0]; i++) {
        int rc = run(prep(del[i], "s", repo_id));
        if (rc < 0)
            return rc;
    }
    return 0;
}

int db_repo_count(const char *org_id, long *n)
{
    sqlite3_stmt *st = prep("SELECT count(*) FROM repos WHERE org_id=?", "s", org_id);
    if (!st || sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return -EIO;
    }
    *n = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return 0;
}

/* Collect rows of st into a malloc'd array of elements of size sz with fill(). */
static int collect(sqlite3_stmt *st, size_t sz, void (*fill)(sqlite3_stmt *, void *), int limit,
                   void **out, size_t *n, int *has_more)
{
    if (!st)
        return -EIO;
    size_t cap = 16, cnt = 0;
    char *arr = malloc(cap * sz);
    int rc;
    if (has_more)
        *has_more = 0;
    while (arr && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (limit >= 0 && (int)cnt == limit) {
            *has_more = 1;
            break;
        }
        if (cnt == cap) {
            char *na = realloc(arr, (cap *= 2) * sz);
            if (!na) {
                free(arr);
                arr = NULL;
                break;
            }
            arr = na;
        }
        memset(arr + cnt * sz, 0, sz);
        fill(st, arr + cnt * sz);
        cnt++;
    }
    sqlite3_finalize(st);
    if (!arr)
        return -ENOMEM;
    *out = arr;
    *n = cnt;
    return 0;
}

static void fill_repo(sqlite3_stmt *st, void *p)
{
    repo_from_row(st, p);
}

int db_repo_list(const char *org_id, long off, int limit, db_repo_t **out, size_t *n,
                 int *has_more)
{
    return collect(prep("SELECT " REPO_COLS " FROM repos WHERE org_id=? ORDER BY name"
                        " LIMIT ? OFFSET ?",
                        "sii", org_id, (int64_t)limit + 1, (int64_t)off),
                   sizeof **out, fill_repo, limit, (void **)out, n, has_more);
}

int db_repo_all(db_repo_t **out, size_t *n)
{
    return collect(prep("SELECT " REPO_COLS " FROM repos ORDER BY id", NULL), sizeof **out,
                   fill_repo, -1, (void **)out, n, NULL);
}

/* ---------------------------------------------------------------- changes */

#define CHANGE_COLS "change_id, commit_oid, is_conflicted, conflicts, created_at, updated_at"

static void fill_change(sqlite3_stmt *st, void *p)
{
    db_change_t *c = p;
    copy_col(st, 0, c->change_id, sizeof c->change_id);
    copy_col(st, 1, c->commit_oid, sizeof c->commit_oid);
    c->is_conflicted = sqlite3_column_int(st, 2);
    copy_col(st, 3, c->conflicts, sizeof c->conflicts);
    c->created_ms = sqlite3_column_int64(st, 4);
    c->updated_ms = sqlite3_column_int64(st, 5);
}

int db_change_get(const char *repo_id, const char *change_id, db_change_t *out)
{
    sqlite3_stmt *st = prep("SELECT " CHANGE_COLS " FROM changes WHERE repo_id=? AND change_id=?",
                            "ss", repo_id, change_id);
    if (!st)
        return -EIO;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        fill_change(st, out);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
}

int db_change_put(const char *repo_id, const db_change_t *c)
{
    return run(prep("INSERT INTO changes VALUES(?,?,?,?,?,?,?) ON CONFLICT(repo_id, change_id)"
                    " DO UPDATE SET commit_oid=excluded.commit_oid,"
                    " is_conflicted=excluded.is_conflicted, conflicts=excluded.conflicts,"
                    " updated_at=excluded.updated_at",
                    "sssdsii", repo_id, c->change_id, c->commit_oid, c->is_conflicted,
                    c->conflicts[0] ? c->conflicts : "[]", c->created_ms, c->updated_ms));
}

int db_commit_change(const char *repo_id, const char *commit_oid, char change_id[33])
{
    sqlite3_stmt *st = prep("SELECT change_id FROM commits WHERE repo_id=? AND commit_oid=?", "ss",
                            repo_id, commit_oid);
    if (!st)
        return -EIO;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        copy_col(st, 0, change_id, 33);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
}

int db_commit_put(const char *repo_id, const char *commit_oid, const char *change_id)
{
    return run(prep("INSERT OR IGNORE INTO commits VALUES(?,?,?)", "sss", repo_id, commit_oid,
                    change_id));
}

int db_change_list(const char *repo_id, long off, int limit, db_change_t **out, size_t *n,
                   int *has_more)
{
    return collect(prep("SELECT " CHANGE_COLS " FROM changes WHERE repo_id=?"
                        " ORDER BY updated_at DESC, change_id LIMIT ? OFFSET ?",
                        "sii", repo_id, (int64_t)limit + 1, (int64_t)off),
                   sizeof **out, fill_change, limit, (void **)out, n, has_more);
}

/* ---------------------------------------------------------------- mtimes */

int db_mtimes_copy(const char *repo_id, const char *from_commit, const char *to_commit)
{
    return run(prep("INSERT OR REPLACE INTO mtimes SELECT repo_id, ?, path, mtime_ns FROM mtimes"
                    " WHERE repo_id=? AND commit_oid=?",
                    "sss", to_commit, repo_id, from_commit));
}

int db_mtimes_delete_tree(const char *repo_id, const char *commit, const char *path)
{
    /* path itself and everything below it: "p/" <= x < "p0" ('0' follows '/') */
    char lo[4200], hi[4200];
    snprintf(lo, sizeof lo, "%s/", path);
    snprintf(hi, sizeof hi, "%s0", path);
    return run(prep("DELETE FROM mtimes WHERE repo_id=? AND commit_oid=?"
                    " AND (path=? OR (path>=? AND path<?))",
                    "sssss", repo_id, commit, path, lo, hi));
}

int db_mtime_set(const char *repo_id, const char *commit, const char *path, int64_t ns)
{
    return run(prep("INSERT OR REPLACE INTO mtimes VALUES(?,?,?,?)", "sssi", repo_id, commit,
                    path, ns));
}

int db_mtime_get(const char *repo_id, const char *commit, const char *path, int64_t *ns)
{
    sqlite3_stmt *st = prep("SELECT mtime_ns FROM mtimes WHERE repo_id=? AND commit_oid=?"
                            " AND path=?",
                            "sss", repo_id, commit, path);
    if (!st)
        return -EIO;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *ns = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
}

static void fill_mtime(sqlite3_stmt *st, void *p)
{
    db_mtime_t *m = p;
    m->path = strdup((const char *)sqlite3_column_text(st, 0));
    m->ns = sqlite3_column_int64(st, 1);
}

int db_mtimes_load(const char *repo_id, const char *commit, db_mtime_t **out, size_t *n)
{
    return collect(prep("SELECT path, mtime_ns FROM mtimes WHERE repo_id=? AND commit_oid=?"
                        " ORDER BY path",
                        "ss", repo_id, commit),
                   sizeof **out, fill_mtime, -1, (void **)out, n, NULL);
}

void db_mtimes_free(db_mtime_t *m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(m[i].path);
    free(m);
}

/* ---------------------------------------------------------------- events */

int db_event_add(const char *repo_id, const char *type, const char *payload, int64_t *id)
{
    int rc = run(prep("INSERT INTO events(repo_id, type, payload) VALUES(?,?,?)", "sss", repo_id,
                      type, payload));
    if (rc == 0 && id)
        *id = sqlite3_last_insert_rowid(conn());
    return rc;
}

int db_events_after(const char *repo_id, int64_t after, int limit, json_t **out, int64_t *last_id)
{
    sqlite3_stmt *st = prep("SELECT id, payload FROM events WHERE repo_id=? AND id>?"
                            " ORDER BY id LIMIT ?",
                            "sii", repo_id, after, (int64_t)limit);
    if (!st)
        return -EIO;
    json_t *a = json_array();
    *last_id = after;
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        json_t *ev = json_loads((const char *)sqlite3_column_text(st, 1), 0, NULL);
        if (!ev)
            continue;
        char ids[24];
        snprintf(ids, sizeof ids, "%lld", (long long)id);
        json_object_set_new(ev, "id", json_string(ids));
        json_array_append_new(a, ev);
        *last_id = id;
    }
    sqlite3_finalize(st);
    *out = a;
    return 0;
}

int db_events_last(const char *repo_id, int64_t *last_id)
{
    sqlite3_stmt *st = prep("SELECT coalesce(max(id), 0) FROM events WHERE repo_id=?", "s",
                            repo_id);
    if (!st || sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return -EIO;
    }
    *last_id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return 0;
}

/* ------------------------------------------------------------ metadata */

/* Rows of path = dir or below dir ("" = every path): the bounds of the
 * byte range "dir/" .. "dir0" ('0' follows '/'). */
static void meta_bounds(const char *dir, char *lo, char *hi, size_t len)
{
    snprintf(lo, len, "%s/", dir);
    snprintf(hi, len, "%s0", dir);
}

int db_meta_get(const char *repo_id, const char *path, json_t **out)
{
    sqlite3_stmt *st = prep("SELECT key, value FROM metadata WHERE repo_id=? AND path=?"
                            " ORDER BY key",
                            "ss", repo_id, path);
    if (!st)
        return -EIO;
    json_t *o = json_object();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_object_set_new(o, (const char *)sqlite3_column_text(st, 0),
                            json_string((const char *)sqlite3_column_text(st, 1)));
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        json_decref(o);
        return -EIO;
    }
    *out = o;
    return 0;
}

int db_meta_set(const char *repo_id, const char *path, const char *key, const char *value)
{
    return run(prep("INSERT INTO metadata(repo_id, path, key, value) VALUES(?,?,?,?)"
                    " ON CONFLICT(repo_id, path, key) DO UPDATE SET value=excluded.value",
                    "ssss", repo_id, path, key, value));
}

int db_meta_remove(const char *repo_id, const char *path, const char *key)
{
    if (key)
        return run(prep("DELETE FROM metadata WHERE repo_id=? AND path=? AND key=?", "sss",
                        repo_id, path, key));
    return run(prep("DELETE FROM metadata WHERE repo_id=? AND path=?", "ss", repo_id, path));
}

int db_meta_rename(const char *repo_id, const char *from, const char *to)
{
    char lo[PATHCHECK_BOUND], hi[PATHCHECK_BOUND], flo[PATHCHECK_BOUND], fhi[PATHCHECK_BOUND];
    meta_bounds(to, lo, hi, sizeof lo);
    meta_bounds(from, flo, fhi, sizeof flo);
    int rc = run(prep("DELETE FROM metadata WHERE repo_id=? AND (path=? OR (path>? AND path<?))",
                      "ssss", repo_id, to, lo, hi));
    if (rc == 0)
        rc = run(prep("UPDATE metadata SET path=? || substr(path, length(?) + 1)"
                      " WHERE repo_id=? AND (path=? OR (path>? AND path<?))",
                      "ssssss", to, from, repo_id, from, flo, fhi));
    return rc;
}

int db_meta_tree(const char *repo_id, const char *dir, json_t **out)
{
    char lo[PATHCHECK_BOUND], hi[PATHCHECK_BOUND];
    meta_bounds(dir, lo, hi, sizeof lo);
    sqlite3_stmt *st =
        dir[0] ? prep("SELECT path, key, value FROM metadata WHERE repo_id=?"
                      " AND (path=? OR (path>? AND path<?))",
                      "ssss", repo_id, dir, lo, hi)
               : prep("SELECT path, key, value FROM metadata WHERE repo_id=?", "s", repo_id);
    if (!st)
        return -EIO;
    json_t *o = json_object();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *p = (const char *)sqlite3_column_text(st, 0);
        json_t *m = json_object_get(o, p);
        if (!m)
            json_object_set_new(o, p, m = json_object());
        json_object_set_new(m, (const char *)sqlite3_column_text(st, 1),
                            json_string((const char *)sqlite3_column_text(st, 2)));
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        json_decref(o);
        return -EIO;
    }
    *out = o;
    return 0;
}
