/* core/pusher.c - group commit of a mount's writes (see pusher.h).
 *
 * Invariant: a pending path leaves the pending set only when a batch that
 * carried it was acknowledged (200); every failure keeps it, so nothing
 * written is dropped. A batch is built from the overlay's current view of
 * each pending path (not from history), so re-sending it after a 409 on top
 * of someone else's commit is always correct. Paths whose staging file is
 * still open for writing wait for a later batch.
 * Called by mesarun's pusher thread and by mesa push-pending.
 */
#include "config.h"
#include "pusher.h"
#include "b64.h"
#include "blobcache.h"
#include "fetch.h"
#include "journal.h"
#include "overlay.h"
#include "state.h"
#include "treecache.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uthash.h>

#define ROOT_CHANGE "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"
#define STALE_RETRIES 8

typedef struct pend {
    char *path;
    UT_hash_handle hh;
} pend_t;

typedef struct staged {
    char id[64];
    int closed;
    int slot;   /* where the W record put it, -1 if not seen yet */
    char *path;
    int read;          /* a batch read it: the size and mtime it had then */
    off_t read_size;
    int64_t read_mtime;
    UT_hash_handle hh;
} staged_t;

struct mesa_pusher {
    char run[3840], cache[3840]; /* room for "/staging/<id>" within PATH_MAX */
    mesa_client_t *client;
    void (*log)(void *ctx, const char *line);
    void *log_ctx;
    char author_name[256], author_email[256]; /* "" for none */
    mesa_state_t *st;
    mesa_journal_reader_t *jr;
    mesa_overlay_t *ov;
    staged_t *staged;
    int all_closed;
    pend_t *pending[MESA_STATE_MAX_REPOS];
    mesa_tree_t *tree[MESA_STATE_MAX_REPOS]; /* listing of the slot's commit, when loaded */
    mesa_tree_t *base[MESA_STATE_MAX_REPOS]; /* listing of the epoch's base commit */
    int wakefd; /* eventfd: mesa_pusher_wake ends the run loop's wait */
    int inflight; /* atomic: a push is under way (mesa_pusher_inflight) */
};

/* ------------------------------------------------------------ setup */

int mesa_pusher_new(const mesa_pusher_opts_t *o, mesa_pusher_t **out)
{
    char path[PATH_MAX];
    mesa_pusher_t *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    snprintf(p->run, sizeof p->run, "%s", o->run_dir);
    snprintf(p->cache, sizeof p->cache, "%s", o->cache_dir ? o->cache_dir : o->run_dir);
    p->client = o->client;
    p->log = o->log;
    p->log_ctx = o->log_ctx;
    if (o->author_name && o->author_email) {
        snprintf(p->author_name, sizeof p->author_name, "%s", o->author_name);
        snprintf(p->author_email, sizeof p->author_email, "%s", o->author_email);
    }
    p->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int rc = (p->ov = mesa_overlay_new()) && p->wakefd >= 0 ? 0 : -ENOMEM;
    snprintf(path, sizeof path, "%s/state", p->run);
    if (rc == 0)
        rc = mesa_state_open(path, &p->st);
    snprintf(path, sizeof path, "%s/journal", p->run);
    if (rc == 0)
        rc = mesa_journal_reader_open(path, 0, &p->jr);
    if (rc < 0) {
        mesa_pusher_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

static void pending_clear(pend_t **h)
{
    pend_t *e, *tmp;
    HASH_ITER(hh, *h, e, tmp)
    {
        HASH_DEL(*h, e);
        free(e->path);
        free(e);
    }
}

void mesa_pusher_free(mesa_pusher_t *p)
{
    if (!p)
        return;
    staged_t *s, *tmp;
    HASH_ITER(hh, p->staged, s, tmp)
    {
        HASH_DEL(p->staged, s);
        free(s->path);
        free(s);
    }
    for (size_t i = 0; i < MESA_STATE_MAX_REPOS; i++) {
        pending_clear(&p->pending[i]);
        mesa_tree_close(p->tree[i]);
        mesa_tree_close(p->base[i]);
    }
    mesa_journal_reader_close(p->jr);
    mesa_state_close(p->st);
    if (p->wakefd >= 0)
        close(p->wakefd);
    mesa_overlay_free(p->ov);
    free(p);
}

/* ------------------------------------------------------------ journal */

static int pending_add(mesa_pusher_t *p, unsigned slot, const char *path)
{
    pend_t *e;
    HASH_FIND_STR(p->pending[slot], path, e);
    if (e)
        return 0;
    if (!(e = calloc(1, sizeof *e)) || !(e->path = strdup(path))) {
        free(e);
        return -ENOMEM;
    }
    HASH_ADD_KEYPTR(hh, p->pending[slot], e->path, strlen(e->path), e);
    return 0;
}

static int add_dirty(void *ctx, const char *path)
{
    void **a = ctx;
    return pending_add(a[0], *(unsigned *)a[1], path);
}

static staged_t *staged_get(mesa_pusher_t *p, const char *id)
{
    staged_t *s;
    HASH_FIND_STR(p->staged, id, s);
    if (!s && (s = calloc(1, sizeof *s)) != NULL) {
        snprintf(s->id, sizeof s->id, "%s", id);
        s->slot = -1;
        HASH_ADD_STR(p->staged, id, s);
    }
    return s;
}

/* A W record: the staging file now backs slot/path. Ids are never reused,
 * so a file already reported closed (inotify can beat the replay) stays so. */
static void staged_written(mesa_pusher_t *p, unsigned slot, const char *id, const char *path)
{
    staged_t *s = staged_get(p, id);
    if (!s)
        return;
    free(s->path);
    s->path = strdup(path);
    s->slot = (int)slot;
}

/* Apply one record to the pusher's view. */
static int replay(mesa_pusher_t *p, const mesa_jrec_t *r)
{
    if (r->slot >= mesa_state_count(p->st))
        return 0; /* not a slot of this mount: ignore */
    if (r->type == MESA_J_WRITE)
        staged_written(p, r->slot, r->arg, r->path);
    if (r->type == MESA_J_EPOCH)
        pending_clear(&p->pending[r->slot]);
    return mesa_overlay_apply(p->ov, r);
}

int mesa_pusher_resume(mesa_pusher_t *p)
{
    uint64_t acked = mesa_state_acked(p->st);
    mesa_jrec_t r;
    int rc = 0;
    while (mesa_journal_offset(p->jr) < acked && (rc = mesa_journal_next(p->jr, &r)) == 1)
        if ((rc = replay(p, &r)) < 0)
            return rc;
    if (rc < 0)
        return rc;
    for (unsigned slot = 0; slot < mesa_state_count(p->st); slot++)
        mesa_overlay_clear_dirty(p->ov, slot); /* acknowledged: not pending */
    return 0;
}

int mesa_pusher_poll(mesa_pusher_t *p)
{
    mesa_jrec_t r;
    int rc;
    while ((rc = mesa_journal_next(p->jr, &r)) == 1)
        if ((rc = replay(p, &r)) < 0)
            return rc;
    if (rc < 0)
        return rc;
    for (unsigned slot = 0; slot < mesa_state_count(p->st); slot++) {
        void *a[2] = {p, &slot};
        if ((rc = mesa_overlay_dirty(p->ov, slot, add_dirty, a)) < 0)
            return rc;
        mesa_overlay_clear_dirty(p->ov, slot);
    }
    return 0;
}

void mesa_pusher_closed(mesa_pusher_t *p, const char *staging_id)
{
    staged_t *s = staged_get(p, staging_id);
    mesa_ov_ent_t e;
    char tp[8];
    if (!s)
        return;
    s->closed = 1;
    /* new content of a path already pushed: due again, if it still backs it */
    if (s->slot >= 0 && s->path &&
        mesa_overlay_lookup(p->ov, (unsigned)s->slot, s->path, &e, tp, sizeof tp) == 0 &&
        e.kind == MESA_OV_FILE && e.staging_id && strcmp(e.staging_id, s->id) == 0)
        pending_add(p, (unsigned)s->slot, s->path);
}

void mesa_pusher_all_closed(mesa_pusher_t *p)
{
    p->all_closed = 1;
}

static int is_due(const mesa_pusher_t *p, const char *id)
{
    staged_t *s;
    if (p->all_closed)
        return 1;
    HASH_FIND_STR(p->staged, id, s);
    return s && s->closed;
}

size_t mesa_pusher_pending(const mesa_pusher_t *p, void (*fn)(void *ctx, const char *path),
                           void *ctx)
{
    size_t n = 0;
    for (size_t slot = 0; slot < mesa_state_count(p->st); slot++) {
        mesa_state_repo_t r;
        mesa_state_get(p->st, slot, &r);
        for (pend_t *e = p->pending[slot]; e; e = e->hh.next, n++) {
            char full[PATH_MAX + 256];
            snprintf(full, sizeof full, "%s/%s/%s", r.org, r.repo, e->path);
            if (fn)
                fn(ctx, full);
        }
    }
    return n;
}

/* ------------------------------------------------------------ tree */

/* Make *t the listing of commit (cache, else GET .../tree). */
static int tree_load(mesa_pusher_t *p, const mesa_state_repo_t *r, const char *commit,
                     mesa_tree_t **t, mesa_error_t *e)
{
    if (*t && strcmp(mesa_tree_commit(*t), commit) == 0)
        return 0;
    mesa_tree_close(*t);
    *t = NULL;
    return mesa_fetch_tree(p->client, p->cache, r->org, r->repo, commit, t, e);
}

/* ------------------------------------------------------------ batches */

typedef struct batch {
    mesa_pusher_t *p;
    unsigned slot;
    const mesa_state_repo_t *r;
    const mesa_tree_t *tree; /* the server now: what to delete, what is in the way */
    const mesa_tree_t *base; /* the epoch's base: where overlay references point */
    json_t *deletes, *mkdirs, *upserts; /* files[] entries, in that order */
    json_t *deltas;                     /* [{k, path, oid, mode, size, mtime}] for derive */
    json_t *done;                       /* paths handled (a set) */
    json_t *sent;                       /* pending paths this batch settles */
    int err;
    mesa_error_t *e;
} batch_t;

static void delta(batch_t *b, const char *k, const char *path, const char *oid, unsigned mode,
                  uint64_t size, int64_t mtime)
{
    json_array_append_new(b->deltas, json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}", "k", k, "path",
                                               path, "oid", oid ? oid : "", "mode",
                                               (json_int_t)mode, "size", (json_int_t)size,
                                               "mtime", (json_int_t)mtime));
}

static int tree_get(const batch_t *b, const char *path, mesa_tree_ent_t *t)
{
    return b->tree ? mesa_tree_lookup(b->tree, path, t) : -ENOENT;
}

/* An overlay reference (origin, tree_path) resolved in the epoch's base. */
static int base_get(const batch_t *b, const char *path, mesa_tree_ent_t *t)
{
    return b->base ? mesa_tree_lookup(b->base, path, t) : -ENOENT;
}

static int deleted_here(const batch_t *b, const char *path)
{
    size_t i;
    json_t *x;
    json_array_foreach(b->deletes, i, x)
    {
        if (strcmp(json_string_value(json_object_get(x, "path")), path) == 0)
            return 1;
    }
    return 0;
}

static void add_delete(batch_t *b, const char *path)
{
    mesa_tree_ent_t t;
    if (tree_get(b, path, &t) < 0 || deleted_here(b, path))
        return; /* nothing there on the server, or already going */
    json_array_append_new(b->deletes, json_pack("{s:s, s:s}", "path", path, "action", "delete"));
    delta(b, "D", path, NULL, 0, 0, 0);
}

/* Make room for a `want_dir` entry at path: remove what the tree has there
 * if it is of the other kind. */
static void make_room(batch_t *b, const char *path, int want_dir)
{
    mesa_tree_ent_t t;
    if (tree_get(b, path, &t) == 0 && (t.type == MESA_ENT_DIR) != want_dir)
        add_delete(b, path);
}

static void add_mkdir(batch_t *b, const char *path, int64_t mtime)
{
    mesa_tree_ent_t t;
    if (tree_get(b, path, &t) == 0 && t.type == MESA_ENT_DIR && !deleted_here(b, path))
        return;
    make_room(b, path, 1);
    json_t *f = json_pack("{s:s, s:s}", "path", path, "action", "mkdir");
    if (mtime > 0)
        json_object_set_new(f, "mtime_ns", json_integer(mtime));
    json_array_append_new(b->mkdirs, f);
    delta(b, "K", path, NULL, 040000, 0, mtime);
}

static const char *mode_str(unsigned mode)
{
    return mode == 0120000 ? "120000" : mode == 0100755 ? "100755" : "100644";
}

/* Upsert by blob id (already on the server). */
static void add_blob(batch_t *b, const char *path, const char *oid, unsigned mode, uint64_t size,
                     int64_t mtime)
{
    make_room(b, path, 0);
    json_t *f = json_pack("{s:s, s:s, s:s}", "path", path, "blob_oid", oid, "mode", mode_str(mode));
    if (mtime > 0)
        json_object_set_new(f, "mtime_ns", json_integer(mtime));
    json_array_append_new(b->upserts, f);
    delta(b, "U", path, oid, mode, size, mtime);
}

/* Upload large content raw; returns its oid in oid. */
static int upload(batch_t *b, const void *data, size_t len, char oid[41])
{
    static const char *const h[] = {"Content-Type: application/octet-stream", NULL};
    char path[600];
    mesa_resp_t resp;
    snprintf(path, sizeof path, "/%s/%s/blobs", b->r->org, b->r->repo);
    int rc = mesa_client_request(b->p->client, "POST", path, h, data, len, &resp, b->e);
    if (rc < 0)
        return rc;
    rc = resp.status == 201 ? 0 : -EIO;
    if (rc < 0) {
        b->e->err = EIO;
        b->e->status = resp.status;
        snprintf(b->e->message, sizeof b->e->message, "blob upload failed: %.200s", resp.body);
    }
    mesa_resp_free(&resp);
    mesa_blob_oid(data, len, oid);
    return rc;
}

/* Upsert with content (inline base64, or uploaded when large). */
static int add_content(batch_t *b, const char *path, const void *data, size_t len, unsigned mode,
                       int64_t mtime)
{
    char oid[41];
    if (len > (1u << 20)) {
        int rc = upload(b, data, len, oid);
        if (rc == 0)
            add_blob(b, path, oid, mode, len, mtime);
        return rc;
    }
    char *b64 = malloc(mesa_b64_enclen(len) + 1);
    if (!b64)
        return -ENOMEM;
    mesa_b64_encode(data, len, b64);
    mesa_blob_oid(data, len, oid);
    make_room(b, path, 0);
    json_t *f = json_pack("{s:s, s:s, s:s}", "path", path, "content", b64, "mode", mode_str(mode));
    free(b64);
    if (mtime > 0)
        json_object_set_new(f, "mtime_ns", json_integer(mtime));
    json_array_append_new(b->upserts, f);
    delta(b, "U", path, oid, mode, len, mtime);
    return 0;
}

static void handle(batch_t *b, const char *path);

/* Read staging/<id> and upsert it at path. 1 if not due yet. */
static int handle_staged(batch_t *b, const char *path, const mesa_ov_ent_t *e)
{
    char sp[PATH_MAX];
    if (!is_due(b->p, e->staging_id))
        return 1;
    snprintf(sp, sizeof sp, "%s/staging/%s", b->p->run, e->staging_id);
    /* never through a symlink, nor anything but a plain file: the staging
     * directory is writable by every process of the mount */
    int fd = open(sp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
        close(fd);
        fd = -1;
        errno = EINVAL;
    }
    if (fd < 0 || fstat(fd, &st) < 0) {
        int err = -errno;
        if (fd >= 0)
            close(fd);
        return err;
    }
    char *data = malloc(st.st_size ? (size_t)st.st_size : 1);
    ssize_t got = data ? pread(fd, data, (size_t)st.st_size, 0) : -1;
    close(fd);
    staged_t *s = staged_get(b->p, e->staging_id);
    if (s) { /* what the drain compares with (a close it never heard of) */
        s->read = 1;
        s->read_size = st.st_size;
        s->read_mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    }
    if (got != st.st_size) {
        free(data);
        return -EIO;
    }
    mesa_tree_ent_t t;
    int exec = e->exec >= 0 ? e->exec
               : e->origin && base_get(b, e->origin, &t) == 0 ? t.mode == 0100755
                                                              : (st.st_mode & 0100) != 0;
    int rc = add_content(b, path, data, (size_t)st.st_size, exec ? 0100755 : 0100644,
                         (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec);
    free(data);
    return rc;
}

static int child_of_overlay(void *ctx, const char *name, const mesa_ov_ent_t *e)
{
    void **a = ctx;
    char p[PATH_MAX];
    const char *dir = a[1];
    snprintf(p, sizeof p, "%s%s%s", dir, dir[0] ? "/" : "", name);
    handle(a[0], p);
    return ((batch_t *)a[0])->err;
}

static int child_of_tree(void *ctx, const mesa_tree_ent_t *t)
{
    void **a = ctx;
    const char *name = strrchr(t->path, '/');
    return child_of_overlay(ctx, name ? name + 1 : t->path, NULL), ((batch_t *)a[0])->err;
}

/* Everything below a directory that came from tree path tp. */
static void handle_children(batch_t *b, const char *path, const char *tp)
{
    void *a[2] = {b, (void *)path};
    if (tp && b->base)
        mesa_tree_children(b->base, tp, child_of_tree, a);
    mesa_overlay_children(b->p->ov, b->slot, path, child_of_overlay, a, NULL);
}

/* A path the overlay answers with a tree reference at tp. */
static void handle_tree_ref(batch_t *b, const char *path, const char *tp, const mesa_ov_ent_t *e)
{
    mesa_tree_ent_t t;
    int same = strcmp(tp, path) == 0;
    /* in the base as the overlay saw it, or added since by someone else */
    if (base_get(b, tp, &t) < 0 && tree_get(b, tp, &t) < 0) {
        add_delete(b, path);
        return;
    }
    if (t.type == MESA_ENT_DIR) {
        if (!same) {
            add_mkdir(b, path, e->mtime_ns);
            handle_children(b, path, tp);
        }
        return;
    }
    unsigned mode = t.type == MESA_ENT_LINK ? 0120000
                    : e->exec == 1          ? 0100755
                    : e->exec == 0          ? 0100644
                                            : t.mode;
    if (!same || mode != t.mode || e->mtime_ns)
        add_blob(b, path, t.oid, mode, t.size, e->mtime_ns ? e->mtime_ns : t.mtime_ns);
}

/* Put the current view of path (and, for directories, below) into b. */
static void handle(batch_t *b, const char *path)
{
    mesa_ov_ent_t e;
    char tp[PATH_MAX];
    if (b->err || json_object_get(b->done, path))
        return;
    json_object_set_new(b->done, path, json_true());
    if (mesa_overlay_lookup(b->p->ov, b->slot, path, &e, tp, sizeof tp) < 0) {
        b->err = -ENAMETOOLONG;
        return;
    }
    switch (e.kind) {
    case MESA_OV_DELETED:
        add_delete(b, path);
        break;
    case MESA_OV_DIR:
        if (!e.origin) /* made anew (rmdir + mkdir): the tree's old children are gone */
            add_delete(b, path);
        add_mkdir(b, path, e.mtime_ns);
        handle_children(b, path, e.origin);
        break;
    case MESA_OV_LINK:
        b->err = add_content(b, path, e.target, strlen(e.target), 0120000, e.mtime_ns);
        break;
    case MESA_OV_FILE:
        if (e.staging_id) {
            int rc = handle_staged(b, path, &e);
            if (rc == 1) /* still open for writing: a later batch */
                json_object_del(b->done, path);
            else if (rc < 0)
                b->err = rc;
            break;
        }
        handle_tree_ref(b, path, e.origin ? e.origin : path, &e);
        break;
    case MESA_OV_NONE:
        handle_tree_ref(b, path, tp, &e);
        break;
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void batch_free(batch_t *b)
{
    json_decref(b->deletes);
    json_decref(b->mkdirs);
    json_decref(b->upserts);
    json_decref(b->deltas);
    json_decref(b->done);
}

/* Build the batch of a slot from its pending paths (sorted: parents first). */
static int batch_build(mesa_pusher_t *p, unsigned slot, const mesa_state_repo_t *r, batch_t *b,
                       mesa_error_t *e)
{
    memset(b, 0, sizeof *b);
    b->p = p;
    b->slot = slot;
    b->r = r;
    b->e = e;
    b->deletes = json_array();
    b->mkdirs = json_array();
    b->upserts = json_array();
    b->deltas = json_array();
    b->done = json_object();
    int rc = tree_load(p, r, r->commit, &p->tree[slot], e);
    if (rc == 0)
        rc = tree_load(p, r, r->base_commit[0] ? r->base_commit : r->commit, &p->base[slot], e);
    if (rc < 0)
        return rc;
    b->tree = p->tree[slot];
    b->base = p->base[slot];
    size_t n = HASH_COUNT(p->pending[slot]), i = 0;
    char **paths = calloc(n ? n : 1, sizeof *paths);
    if (!paths)
        return -ENOMEM;
    for (pend_t *x = p->pending[slot]; x; x = x->hh.next)
        paths[i++] = x->path;
    qsort(paths, n, sizeof *paths, cmp_str);
    for (i = 0; i < n && !b->err; i++)
        handle(b, paths[i]);
    free(paths);
    return b->err;
}

static json_t *batch_files(const batch_t *b)
{
    json_t *f = json_array();
    json_array_extend(f, b->deletes);
    json_array_extend(f, b->mkdirs);
    json_array_extend(f, b->upserts);
    return f;
}

/* Apply the batch's deltas to the slot's listing as new_commit. */
static void derive_tree(mesa_pusher_t *p, batch_t *b, const char *new_commit)
{
    size_t n = json_array_size(b->deltas), i;
    mesa_tree_delta_t *d = calloc(n ? n : 1, sizeof *d);
    json_t *x;
    mesa_tree_t *nt = NULL;
    if (!d)
        return;
    json_array_foreach(b->deltas, i, x)
    {
        const char *k = json_string_value(json_object_get(x, "k"));
        unsigned mode = (unsigned)json_integer_value(json_object_get(x, "mode"));
        d[i].kind = k[0] == 'D' ? MESA_DELTA_DELETE : k[0] == 'K' ? MESA_DELTA_MKDIR
                                                                  : MESA_DELTA_UPSERT;
        d[i].ent = (mesa_tree_input_t){
            .path = json_string_value(json_object_get(x, "path")),
            .type = mode == 040000 ? MESA_ENT_DIR : mode == 0120000 ? MESA_ENT_LINK
                                                                    : MESA_ENT_FILE,
            .mode = mode,
            .size = (uint64_t)json_integer_value(json_object_get(x, "size")),
            .oid = json_string_value(json_object_get(x, "oid")),
            .mtime_ns = json_integer_value(json_object_get(x, "mtime"))};
    }
    if (b->tree && mesa_tree_derive(p->cache, b->tree, new_commit, d, n, &nt) == 0) {
        mesa_tree_close(p->tree[b->slot]);
        p->tree[b->slot] = nt;
    }
    free(d);
}

/* Send files to the slot's change (on the root change: a new change on
 * top of it, and the mounted bookmark moves there). 0 with the new change
 * and commit in *r, -ESTALE for a stale base, or another negative errno. */
static int send_batch(mesa_pusher_t *p, mesa_state_repo_t *r, json_t *files, mesa_error_t *e)
{
    char path[700];
    json_t *v = NULL, *body;
    int root = strcmp(r->change_id, ROOT_CHANGE) == 0;
    if (root) {
        snprintf(path, sizeof path, "/%s/%s/changes", r->org, r->repo);
        body = json_pack("{s:s, s:O}", "base_change_id", ROOT_CHANGE, "files", files);
    } else {
        snprintf(path, sizeof path, "/%s/%s/changes/%s", r->org, r->repo, r->change_id);
        body = json_pack("{s:s, s:O}", "base_commit_oid", r->commit, "files", files);
    }
    if (body && p->author_name[0])
        json_object_set_new(body, "author",
                            json_pack("{s:s, s:s}", "name", p->author_name, "email",
                                      p->author_email));
    int rc = mesa_client_json(p->client, root ? "POST" : "PATCH", path, body, &v, e);
    json_decref(body);
    if (rc < 0)
        return rc;
    snprintf(r->change_id, sizeof r->change_id, "%s", json_string_value(json_object_get(v, "id")));
    snprintf(r->commit, sizeof r->commit, "%s",
             json_string_value(json_object_get(v, "current_commit_oid")));
    json_decref(v);
    if (root && r->bookmark[0]) {
        mesa_error_t be;
        snprintf(path, sizeof path, "/%s/%s/bookmarks/%s", r->org, r->repo, r->bookmark);
        json_t *mv = json_pack("{s:s}", "change_id", r->change_id);
        int mrc = mesa_client_json(p->client, "PATCH", path, mv, &v, &be);
        json_decref(mv);
        if (mrc == 0)
            json_decref(v);
        else if (p->log) /* the write is safe in the new change; only the name lags */
            p->log(p->log_ctx, be.message);
    }
    return 0;
}

/* The change moved under us: take its current commit. */
static int refresh(mesa_pusher_t *p, unsigned slot, mesa_state_repo_t *r, mesa_error_t *e)
{
    char path[700];
    json_t *v = NULL;
    snprintf(path, sizeof path, "/%s/%s/changes/%s", r->org, r->repo, r->change_id);
    int rc = mesa_client_json(p->client, "GET", path, NULL, &v, e);
    if (rc < 0)
        return rc;
    snprintf(r->commit, sizeof r->commit, "%s",
             json_string_value(json_object_get(v, "current_commit_oid")));
    json_decref(v);
    return mesa_state_set(p->st, slot, r->change_id, r->commit, NULL);
}

/* Drop the pending paths that batch b settled. */
static void settle(mesa_pusher_t *p, unsigned slot, const batch_t *b)
{
    const char *k;
    json_t *v;
    json_object_foreach(b->done, k, v)
    {
        pend_t *x;
        HASH_FIND_STR(p->pending[slot], k, x);
        if (x) {
            HASH_DEL(p->pending[slot], x);
            free(x->path);
            free(x);
        }
    }
}

/* One batch for a slot: 1 pushed, 0 nothing due, or a negative errno. */
static int push_slot(mesa_pusher_t *p, unsigned slot, mesa_error_t *e)
{
    mesa_state_repo_t r;
    if (!p->pending[slot] || mesa_state_get(p->st, slot, &r) < 0)
        return 0;
    for (int attempt = 0; attempt < STALE_RETRIES; attempt++) {
        batch_t b;
        int rc = batch_build(p, slot, &r, &b, e);
        json_t *files = rc == 0 ? batch_files(&b) : NULL;
        size_t n = json_array_size(files);
        if (rc == 0 && n > 0)
            rc = send_batch(p, &r, files, e);
        json_decref(files);
        if (rc == -ESTALE && (rc = refresh(p, slot, &r, e)) == 0) {
            batch_free(&b);
            continue; /* the same pending set, on top of the new commit */
        }
        if (rc == 0 && n > 0) {
            derive_tree(p, &b, r.commit);
            mesa_state_set(p->st, slot, r.change_id, r.commit, NULL);
            if (p->log) {
                char line[400];
                snprintf(line, sizeof line, "pushed %zu path(s) to %s/%s: change %.12s commit %.12s",
                         n, r.org, r.repo, r.change_id, r.commit);
                p->log(p->log_ctx, line);
            }
        }
        if (rc == 0)
            settle(p, slot, &b);
        batch_free(&b);
        return rc < 0 ? rc : n > 0;
    }
    return -ESTALE;
}

int mesa_pusher_inflight(const mesa_pusher_t *p)
{
    return __atomic_load_n(&p->inflight, __ATOMIC_ACQUIRE);
}

int mesa_pusher_push(mesa_pusher_t *p, mesa_error_t *e)
{
    int pushed = 0, rc = 0;
    __atomic_store_n(&p->inflight, 1, __ATOMIC_RELEASE);
    for (unsigned slot = 0; slot < mesa_state_count(p->st) && rc >= 0; slot++) {
        rc = push_slot(p, slot, e);
        if (rc > 0)
            pushed += rc;
    }
    __atomic_store_n(&p->inflight, 0, __ATOMIC_RELEASE); /* the state is set by now */
    if (rc < 0)
        return rc;
    if (mesa_pusher_pending(p, NULL, NULL) == 0)
        mesa_state_set_acked(p->st, mesa_journal_offset(p->jr));
    return pushed;
}

/* ------------------------------------------------------------ loops */

/* Feed the names of closed staging files to the pusher. */
static void read_closes(mesa_pusher_t *p, int fd)
{
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        for (char *q = buf; q < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)q;
            if (ev->len && (ev->mask & IN_CLOSE_WRITE))
                mesa_pusher_closed(p, ev->name);
            q += sizeof *ev + ev->len;
        }
    }
}

static void say(mesa_pusher_t *p, const char *what, const mesa_error_t *e)
{
    if (!p->log)
        return;
    char line[700];
    snprintf(line, sizeof line, "%s: %s", what, e->message[0] ? e->message : strerror(e->err));
    p->log(p->log_ctx, line);
}

int mesa_pusher_run(mesa_pusher_t *p, volatile int *stop, int interval_ms)
{
    char staging[PATH_MAX];
    snprintf(staging, sizeof staging, "%s/staging", p->run);
    int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (fd < 0)
        return -errno;
    if (inotify_add_watch(fd, staging, IN_CLOSE_WRITE) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    int backoff = 0; /* ms to wait after a failed push */
    while (!*stop) {
        struct pollfd pfd[2] = {{.fd = fd, .events = POLLIN}, {.fd = p->wakefd, .events = POLLIN}};
        int wait = backoff > interval_ms ? backoff : interval_ms;
        uint64_t n;
        if (poll(pfd, 2, wait) > 0) {
            read_closes(p, fd);
            if (pfd[1].revents && read(p->wakefd, &n, sizeof n) < 0 && errno != EAGAIN)
                break;
            if (*stop)
                break; /* the drain follows */
        }
        mesa_error_t e = {0};
        int rc = mesa_pusher_poll(p);
        if (rc == 0 && mesa_pusher_pending(p, NULL, NULL) > 0)
            rc = mesa_pusher_push(p, &e);
        if (rc < 0) {
            say(p, "push failed, will retry", &e);
            backoff = backoff ? (backoff * 2 > 5000 ? 5000 : backoff * 2) : 100;
        } else {
            backoff = 0;
        }
    }
    close(fd);
    return 0;
}

/* The rescan before the drain: a staging file that still backs its path
 * and changed since a batch last read it was written again after its last
 * reported close (the report can be lost when the watch ends, or merged). */
static void rescan(mesa_pusher_t *p)
{
    for (staged_t *s = p->staged; s; s = s->hh.next) {
        char sp[PATH_MAX], tp[8];
        struct stat st;
        mesa_ov_ent_t e;
        if (s->slot < 0 || !s->path ||
            mesa_overlay_lookup(p->ov, (unsigned)s->slot, s->path, &e, tp, sizeof tp) != 0 ||
            e.kind != MESA_OV_FILE || !e.staging_id || strcmp(e.staging_id, s->id) != 0)
            continue;
        snprintf(sp, sizeof sp, "%s/staging/%s", p->run, s->id);
        if (stat(sp, &st) < 0)
            continue;
        int64_t m = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        if (!s->read || st.st_size != s->read_size || m != s->read_mtime)
            pending_add(p, (unsigned)s->slot, s->path);
    }
}

void mesa_pusher_wake(mesa_pusher_t *p)
{
    uint64_t one = 1;
    if (write(p->wakefd, &one, sizeof one) < 0) {
        /* the counter is full: a wake is pending anyway */
    }
}

int mesa_pusher_drain(mesa_pusher_t *p, int max_rounds, mesa_error_t *e)
{
    int rc = mesa_pusher_poll(p);
    mesa_pusher_all_closed(p); /* the kernel may not have reported every close */
    if (rc == 0)
        rescan(p);
    for (int i = 0; rc >= 0 && i < max_rounds && mesa_pusher_pending(p, NULL, NULL) > 0; i++)
        rc = mesa_pusher_push(p, e);
    if (rc < 0)
        return rc;
    return mesa_pusher_pending(p, NULL, NULL) ? -EAGAIN : 0;
}
