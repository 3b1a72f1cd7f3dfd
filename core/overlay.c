/* core/overlay.c - the mount's local view of namespace changes (see overlay.h,
 * docs/MOUNT.md "overlay").
 *
 * One slot_t per repo slot (uthash by slot number), each with two uthash maps
 * keyed by repo-relative path: the entries (node_t) and the dirty set.
 * Entries are FILE, DIR, LINK, DELETED, or REF: an untyped reference to a
 * tree object at `origin`. A journal record does not say whether the thing
 * it renames, chmods or touches is a file or a directory, and the overlay
 * must stay a pure function of the journal (every process replays it against
 * whatever commit it sees at that moment), so a tree object that was renamed,
 * chmod'ed or touched without local content becomes a REF, answered as
 * MESA_OV_NONE at tree_path = origin plus its exec/mtime overrides: the
 * caller takes the type from the tree, as for any NONE answer.
 *
 * Invariants: a REF's or DIR's origin is a tree path, resolved when the
 * entry was made (so renames of renamed things chain: the reference moves,
 * its origin does not change); nothing is stored below a DELETED, FILE or
 * LINK entry (rmdir drops them, a rename replaces the subtree at its target,
 * unlink and symlink apply to paths that cannot have any); no two nodes of a
 * slot share a path.
 *
 * Costs: lookup is one hash probe per path segment, no allocation; so is
 * every record but these, which scan the slot's entries (O(entries)): rename,
 * rmdir, mkdir, and children (a listing) and dirty (a sort).
 * After -ENOMEM from apply the record may be partly applied: rebuild the
 * overlay from the journal.
 *
 * Callers: the shim (apply while replaying the journal, lookup for stat and
 * open, children for readdir), mesarun's pusher (dirty, clear_dirty),
 * tests/core/test_overlay.c.
 */
#include "config.h"
#include "overlay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define HASH_NONFATAL_OOM 1
#define uthash_nonfatal_oom(obj) ((obj)->oom = 1)
#include <uthash.h>

/* children's computed *origin: a tree path (< 4096) + '/' + the rest (< 4096). */
#define SCRATCH_SIZE (2 * 4096)

enum { N_REF = MESA_OV_DELETED + 1 }; /* node kinds: the MESA_OV_* ones, and REF */

typedef struct node {
    UT_hash_handle hh;
    char *path; /* key */
    int kind;
    char *staging; /* FILE */
    char *origin;  /* FILE (tree path for exec -1), DIR (NULL: opaque), REF */
    char *target;  /* LINK */
    int exec;
    int64_t mtime;
    int oom;
} node_t;

typedef struct dirty {
    UT_hash_handle hh;
    char *path;
    int oom;
} dirty_t;

typedef struct slot {
    UT_hash_handle hh;
    unsigned id;
    node_t *nodes;
    dirty_t *dirty;
    int oom;
} slot_t;

struct mesa_overlay {
    slot_t *slots;
    char *scratch; /* SCRATCH_SIZE bytes: children's *origin when it is computed */
};

/* The fields of an entry to store; strings are copied. */
typedef struct spec {
    int kind;
    const char *staging, *origin, *target;
    int exec;
    int64_t mtime;
} spec_t;

/* Where a path's answer comes from: its own entry, or the nearest ancestor's. */
typedef struct where {
    const node_t *own; /* the path's own entry, NULL if none */
    int kind;          /* MESA_OV_* of the answer (a REF answers NONE) */
    const char *base;  /* NONE: the tree path is base ... */
    const char *rest;  /* ... or base + "/" + rest (NULL: base alone) */
} where_t;

/* ------------------------------------------------------------------ helpers */

static int is_below(const char *p, size_t plen, const char *dir, size_t dlen)
{
    if (dlen == 0)
        return plen > 0;
    return plen > dlen && p[dlen] == '/' && memcmp(p, dir, dlen) == 0;
}

static int is_child(const char *p, size_t plen, const char *dir, size_t dlen)
{
    size_t start = dlen ? dlen + 1 : 0;

    return is_below(p, plen, dir, dlen) && !memchr(p + start, '/', plen - start);
}

/* Length of the parent of p[0..len) ("" for a top-level name). */
static size_t parent_len(const char *p, size_t len)
{
    while (len > 0 && p[len - 1] != '/')
        len--;
    return len ? len - 1 : 0;
}

/* base [+ "/" + rest] into buf (n bytes). 0 or -ENAMETOOLONG. */
static int join(char *buf, size_t n, const char *base, const char *rest)
{
    size_t bl = strlen(base), rl = rest ? strlen(rest) : 0;
    size_t sep = rest && bl ? 1 : 0;

    if (!buf || bl + sep + rl + 1 > n)
        return -ENAMETOOLONG;
    memcpy(buf, base, bl);
    if (sep)
        buf[bl] = '/';
    if (rest)
        memcpy(buf + bl + sep, rest, rl);
    buf[bl + sep + rl] = '\0';
    return 0;
}

/* base [+ "/" + rest], malloc'd; NULL when out of memory. */
static char *join_dup(const char *base, const char *rest)
{
    size_t n = strlen(base) + (rest ? strlen(rest) + 1 : 0) + 1;
    char *s = malloc(n);

    if (s)
        join(s, n, base, rest);
    return s;
}

static int dup_opt(const char *s, char **out)
{
    *out = s ? strdup(s) : NULL;
    return s && !*out ? -ENOMEM : 0;
}

/* -------------------------------------------------------------------- slots */

static slot_t *slot_find(const mesa_overlay_t *ov, unsigned id)
{
    slot_t *s = NULL;

    HASH_FIND(hh, ov->slots, &id, sizeof id, s);
    return s;
}

static slot_t *slot_get(mesa_overlay_t *ov, unsigned id)
{
    slot_t *s = slot_find(ov, id);

    if (s)
        return s;
    s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->id = id;
    HASH_ADD(hh, ov->slots, id, sizeof s->id, s);
    if (s->oom) {
        free(s);
        return NULL;
    }
    return s;
}

static void node_free(node_t *n)
{
    free(n->path);
    free(n->staging);
    free(n->origin);
    free(n->target);
    free(n);
}

static void dirty_clear(slot_t *s)
{
    dirty_t *d, *tmp;

    HASH_ITER(hh, s->dirty, d, tmp)
    {
        HASH_DEL(s->dirty, d);
        free(d->path);
        free(d);
    }
}

static void slot_free(mesa_overlay_t *ov, slot_t *s)
{
    node_t *n, *tmp;

    HASH_ITER(hh, s->nodes, n, tmp)
    {
        HASH_DEL(s->nodes, n);
        node_free(n);
    }
    dirty_clear(s);
    HASH_DEL(ov->slots, s);
    free(s);
}

/* -------------------------------------------------------------------- nodes */

static node_t *node_find(const slot_t *s, const char *p, size_t len)
{
    node_t *n = NULL;

    if (s)
        HASH_FIND(hh, s->nodes, p, len, n);
    return n;
}

static node_t *node_alloc(const char *p, size_t len)
{
    node_t *n = calloc(1, sizeof *n);

    if (!n || !(n->path = strndup(p, len))) {
        free(n);
        return NULL;
    }
    n->exec = -1;
    return n;
}

/* Add n (path already set) to s, replacing a node with the same path.
 * 0, or -ENOMEM (n is freed). */
static int node_insert(slot_t *s, node_t *n)
{
    size_t len = strlen(n->path);
    node_t *old = node_find(s, n->path, len);

    if (old) {
        HASH_DEL(s->nodes, old);
        node_free(old);
    }
    n->oom = 0;
    HASH_ADD_KEYPTR(hh, s->nodes, n->path, len, n);
    if (n->oom) {
        node_free(n);
        return -ENOMEM;
    }
    return 0;
}

static node_t *node_get(slot_t *s, const char *p, size_t len)
{
    node_t *n = node_find(s, p, len);

    if (n)
        return n;
    n = node_alloc(p, len);
    if (!n || node_insert(s, n) < 0)
        return NULL;
    return n;
}

/* Remove every entry strictly below dir. */
static void drop_below(slot_t *s, const char *dir, size_t dlen)
{
    node_t *n, *tmp;

    HASH_ITER(hh, s->nodes, n, tmp)
    {
        if (is_below(n->path, strlen(n->path), dir, dlen)) {
            HASH_DEL(s->nodes, n);
            node_free(n);
        }
    }
}

/* Make path's entry sp (strings copied before anything changes). 0 or -ENOMEM. */
static int set_entry(slot_t *s, const char *path, const spec_t *sp)
{
    char *st = NULL, *orig = NULL, *tgt = NULL;
    node_t *n;

    if (dup_opt(sp->staging, &st) || dup_opt(sp->origin, &orig) || dup_opt(sp->target, &tgt))
        goto oom;
    n = node_get(s, path, strlen(path));
    if (!n)
        goto oom;
    free(n->staging);
    free(n->origin);
    free(n->target);
    n->kind = sp->kind;
    n->staging = st;
    n->origin = orig;
    n->target = tgt;
    n->exec = sp->exec;
    n->mtime = sp->mtime;
    return 0;
oom:
    free(st);
    free(orig);
    free(tgt);
    return -ENOMEM;
}

static int mark_dirty(slot_t *s, const char *path)
{
    size_t len = strlen(path);
    dirty_t *d = NULL;

    HASH_FIND(hh, s->dirty, path, len, d);
    if (d)
        return 0;
    d = calloc(1, sizeof *d);
    if (!d || !(d->path = strdup(path))) {
        free(d);
        return -ENOMEM;
    }
    HASH_ADD_KEYPTR(hh, s->dirty, d->path, len, d);
    if (d->oom) {
        free(d->path);
        free(d);
        return -ENOMEM;
    }
    return 0;
}

/* ------------------------------------------------------------------ resolve */

/* An ancestor entry a decides for a path below it (rest: the path below a). */
static void from_ancestor(const node_t *a, const char *rest, where_t *w)
{
    if (a->kind == N_REF || (a->kind == MESA_OV_DIR && a->origin)) {
        w->kind = MESA_OV_NONE;
        w->base = a->origin;
        w->rest = rest;
    } else {
        w->kind = MESA_OV_DELETED; /* below a whiteout, file, link or opaque dir */
    }
}

/* The nearest entry for path or an ancestor decides (s may be NULL). */
static void resolve(const slot_t *s, const char *path, where_t *w)
{
    size_t len = strlen(path);
    const node_t *a;

    memset(w, 0, sizeof *w);
    w->own = node_find(s, path, len);
    if (w->own && w->own->kind != N_REF) {
        w->kind = w->own->kind;
        return;
    }
    if (w->own) {
        w->kind = MESA_OV_NONE;
        w->base = w->own->origin;
        return;
    }
    while (len > 0) {
        len = parent_len(path, len);
        a = node_find(s, path, len);
        if (a) {
            from_ancestor(a, path + len + (len ? 1 : 0), w);
            return;
        }
    }
    w->kind = MESA_OV_NONE;
    w->base = path;
}

/* The public view of an entry, or of a path without one (n NULL). */
static void ent_out(const node_t *n, int kind, mesa_ov_ent_t *out)
{
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->exec = -1;
    if (!n)
        return;
    out->kind = n->kind == N_REF ? MESA_OV_NONE : (mesa_ov_kind_t)n->kind;
    out->staging_id = n->staging;
    out->origin = n->origin;
    out->target = n->target;
    out->exec = n->exec;
    out->mtime_ns = n->mtime;
}

/* ------------------------------------------------------------------ records */

static int apply_write(slot_t *s, const mesa_jrec_t *r)
{
    spec_t sp = {.kind = MESA_OV_FILE, .staging = r->arg, .exec = -1, .mtime = r->mtime_ns};
    char *tree = NULL;
    where_t w;
    int rc;

    resolve(s, r->path, &w);
    if (w.own && (w.own->kind == MESA_OV_FILE || w.own->kind == N_REF)) {
        sp.exec = w.own->exec;
        sp.origin = w.own->origin;
    } else if (!w.own && w.kind == MESA_OV_NONE) {
        tree = join_dup(w.base, w.rest); /* the tree file it replaces, if any */
        if (!tree)
            return -ENOMEM;
        sp.origin = tree;
    }
    rc = set_entry(s, r->path, &sp);
    free(tree);
    return rc;
}

/* unlink, rmdir, mkdir, symlink: a new entry that has nothing below it. */
static int apply_replace(slot_t *s, const mesa_jrec_t *r)
{
    spec_t sp = {.kind = MESA_OV_DELETED, .exec = -1};
    int rc;

    if (r->type == MESA_J_MKDIR || r->type == MESA_J_SYMLINK)
        sp.mtime = r->mtime_ns;
    if (r->type == MESA_J_MKDIR)
        sp.kind = MESA_OV_DIR; /* opaque: tree children of an earlier dir stay hidden */
    if (r->type == MESA_J_SYMLINK) {
        sp.kind = MESA_OV_LINK;
        sp.target = r->arg;
    }
    rc = set_entry(s, r->path, &sp);
    /* Only a directory has entries below it (whiteouts of its tree children);
     * unlink and symlink replace files or nothing, which have none. */
    if (rc == 0 && (r->type == MESA_J_RMDIR || r->type == MESA_J_MKDIR))
        drop_below(s, r->path, strlen(r->path));
    return rc;
}

/* chmod or utimes of an existing entry. */
static void attr_own(node_t *own, const mesa_jrec_t *r, int exec)
{
    if (own->kind == MESA_OV_DELETED)
        return;
    if (r->type == MESA_J_UTIMES)
        own->mtime = r->mtime_ns;
    else if (own->kind == MESA_OV_FILE || own->kind == N_REF)
        own->exec = exec; /* a directory or symlink has no exec bit to keep */
}

/* chmod and utimes: change the path's entry, or make a REF to its tree object. */
static int apply_attr(slot_t *s, const mesa_jrec_t *r, int exec)
{
    spec_t sp = {.kind = N_REF, .exec = exec};
    char *tree;
    where_t w;
    int rc;

    resolve(s, r->path, &w);
    if (w.own)
        attr_own((node_t *)w.own, r, exec);
    if (w.own || w.kind != MESA_OV_NONE)
        return 0; /* has an entry, or does not exist (not a valid record) */
    if (r->type == MESA_J_UTIMES)
        sp.mtime = r->mtime_ns;
    tree = join_dup(w.base, w.rest);
    if (!tree)
        return -ENOMEM;
    sp.origin = tree;
    rc = set_entry(s, r->path, &sp);
    free(tree);
    return rc;
}

/* The node that moves to new: old's own entry, or a REF to old's tree object
 * (a DELETED one if old does not exist). *own is set when it is old's entry. */
static node_t *rename_source(slot_t *s, const char *old, const char *new, node_t **own)
{
    node_t *n;
    where_t w;

    resolve(s, old, &w);
    *own = (node_t *)w.own;
    n = node_alloc(new, strlen(new));
    if (!n || w.own)
        return n;
    n->kind = w.kind == MESA_OV_NONE ? N_REF : MESA_OV_DELETED;
    if (w.kind == MESA_OV_NONE && !(n->origin = join_dup(w.base, w.rest))) {
        node_free(n);
        return NULL;
    }
    return n;
}

/* The entries strictly below old, each with its path under new (malloc'd).
 * 0 or -ENOMEM (nothing allocated). */
static int rename_collect(slot_t *s, const char *old, const char *new, node_t ***moved,
                          char ***paths, size_t *k)
{
    size_t olen = strlen(old), nlen = strlen(new), cap = 0, i;
    node_t *n, *tmp;
    int rc = -ENOMEM;

    *moved = NULL;
    *paths = NULL;
    *k = 0;
    HASH_ITER(hh, s->nodes, n, tmp)
    {
        cap += (size_t)is_below(n->path, strlen(n->path), old, olen);
    }
    if (cap == 0)
        return 0;
    *moved = calloc(cap, sizeof **moved);
    *paths = calloc(cap, sizeof **paths);
    if (!*moved || !*paths)
        goto out;
    HASH_ITER(hh, s->nodes, n, tmp)
    {
        size_t plen = strlen(n->path);

        if (!is_below(n->path, plen, old, olen))
            continue;
        (*paths)[*k] = malloc(nlen + plen - olen + 1);
        if (!(*paths)[*k])
            goto out;
        memcpy((*paths)[*k], new, nlen);
        memcpy((*paths)[*k] + nlen, n->path + olen, plen - olen + 1);
        (*moved)[(*k)++] = n;
    }
    return 0;
out:
    for (i = 0; i < *k; i++)
        free((*paths)[i]);
    free(*moved);
    free(*paths);
    *moved = NULL;
    *paths = NULL;
    *k = 0;
    return rc;
}

/* Detach moved (and own), clear new and below, re-add them under new. */
static int rename_commit(slot_t *s, const char *new, node_t *own, node_t *src, node_t **moved,
                         char **paths, size_t k)
{
    size_t i;
    int rc = 0;

    for (i = 0; i < k; i++)
        HASH_DEL(s->nodes, moved[i]);
    if (own) {
        HASH_DEL(s->nodes, own);
        free(own->path);
        own->path = src->path; /* src is then just the new path's holder */
        src->path = NULL;
        node_free(src);
        src = own;
    }
    drop_below(s, new, strlen(new));
    for (i = 0; i < k; i++) {
        free(moved[i]->path);
        moved[i]->path = paths[i];
        paths[i] = NULL;
        if (node_insert(s, moved[i]) < 0)
            rc = -ENOMEM;
    }
    if (node_insert(s, src) < 0)
        rc = -ENOMEM;
    return rc;
}

static int apply_rename(slot_t *s, const mesa_jrec_t *r)
{
    spec_t tomb = {.kind = MESA_OV_DELETED, .exec = -1};
    node_t *own, *src, **moved = NULL;
    char **paths = NULL;
    size_t k = 0, i;
    int rc;

    if (strcmp(r->arg, r->path) == 0)
        return 0;
    src = rename_source(s, r->arg, r->path, &own);
    if (!src)
        return -ENOMEM;
    rc = rename_collect(s, r->arg, r->path, &moved, &paths, &k);
    if (rc < 0) {
        node_free(src);
        return rc;
    }
    rc = rename_commit(s, r->path, own, src, moved, paths, k);
    if (rc == 0)
        rc = set_entry(s, r->arg, &tomb);
    for (i = 0; i < k; i++)
        free(paths[i]);
    free(moved);
    free(paths);
    return rc;
}

static int parse_exec(const mesa_jrec_t *r)
{
    if (r->type != MESA_J_CHMOD)
        return -1;
    if ((r->arg[0] == '0' || r->arg[0] == '1') && r->arg[1] == '\0')
        return r->arg[0] - '0';
    return -EINVAL;
}

/* 1 if a record of this type may not name the repo root. */
static int needs_name(mesa_jtype_t t)
{
    return t == MESA_J_WRITE || t == MESA_J_UNLINK || t == MESA_J_MKDIR || t == MESA_J_RMDIR ||
           t == MESA_J_RENAME || t == MESA_J_SYMLINK;
}

static int apply_one(slot_t *s, const mesa_jrec_t *r, int exec)
{
    switch (r->type) {
    case MESA_J_WRITE:
        return apply_write(s, r);
    case MESA_J_RENAME:
        return apply_rename(s, r);
    case MESA_J_CHMOD:
    case MESA_J_UTIMES:
        return apply_attr(s, r, exec);
    default:
        return apply_replace(s, r);
    }
}

static int check_record(const mesa_jrec_t *r)
{
    if (!mesa_journal_type_valid(r->type))
        return -EINVAL;
    if (needs_name(r->type) && r->path[0] == '\0')
        return -EINVAL;
    if (r->type == MESA_J_RENAME && r->arg[0] == '\0')
        return -EINVAL;
    /* a staging id names a file in staging/ (the shim makes 32 hex
     * digits), never a path: the journal is writable by the mount's
     * processes, sandboxed ones included, and the pusher reads what it names */
    static const char id_chars[] = "0123456789abcdefghijklmnopqrstuvwxyz"
                                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ-_";
    size_t idlen = strlen(r->arg);
    if (r->type == MESA_J_WRITE && (idlen == 0 || idlen > 64 || strspn(r->arg, id_chars) != idlen))
        return -EINVAL;
    return 0;
}

/* ------------------------------------------------------------------- public */

mesa_overlay_t *mesa_overlay_new(void)
{
    mesa_overlay_t *ov = calloc(1, sizeof *ov);

    if (!ov || !(ov->scratch = malloc(SCRATCH_SIZE))) {
        free(ov);
        return NULL;
    }
    return ov;
}

void mesa_overlay_free(mesa_overlay_t *ov)
{
    slot_t *s, *tmp;

    if (!ov)
        return;
    HASH_ITER(hh, ov->slots, s, tmp)
    {
        slot_free(ov, s);
    }
    free(ov->scratch);
    free(ov);
}

int mesa_overlay_apply(mesa_overlay_t *ov, const mesa_jrec_t *r)
{
    slot_t *s;
    int exec, rc;

    if (!ov || !r || !r->path || !r->arg)
        return -EINVAL;
    rc = check_record(r);
    exec = parse_exec(r);
    if (rc < 0 || exec == -EINVAL)
        return -EINVAL;
    if (r->type == MESA_J_EPOCH) {
        s = slot_find(ov, r->slot);
        if (s)
            slot_free(ov, s);
        return 0;
    }
    s = slot_get(ov, r->slot);
    if (!s || mark_dirty(s, r->path) < 0)
        return -ENOMEM;
    if (r->type == MESA_J_RENAME && mark_dirty(s, r->arg) < 0)
        return -ENOMEM;
    return apply_one(s, r, exec);
}

int mesa_overlay_lookup(const mesa_overlay_t *ov, unsigned slot, const char *path,
                        mesa_ov_ent_t *out, char *tree_path, size_t n)
{
    where_t w;

    resolve(slot_find(ov, slot), path, &w);
    ent_out(w.own, w.kind, out);
    if (tree_path && n)
        tree_path[0] = '\0';
    if (w.kind != MESA_OV_NONE)
        return 0;
    return join(tree_path, n, w.base, w.rest);
}

/* Returns 0, -ENAMETOOLONG (a computed origin over SCRATCH_SIZE), or the
 * non-zero value fn stopped with. fn must not apply records. */
int mesa_overlay_children(const mesa_overlay_t *ov, unsigned slot, const char *dir,
                          int (*fn)(void *ctx, const char *name, const mesa_ov_ent_t *e), void *ctx,
                          const char **origin)
{
    const slot_t *s = slot_find(ov, slot);
    size_t dlen = strlen(dir);
    mesa_ov_ent_t e;
    node_t *n, *tmp;
    where_t w;
    int rc;

    resolve(s, dir, &w);
    if (origin) {
        *origin = w.kind == MESA_OV_DIR ? w.own->origin : NULL;
        if (w.kind == MESA_OV_NONE && !w.rest)
            *origin = w.base;
        if (w.kind == MESA_OV_NONE && w.rest) {
            rc = join(ov->scratch, SCRATCH_SIZE, w.base, w.rest);
            if (rc < 0)
                return rc;
            *origin = ov->scratch;
        }
    }
    if (!s)
        return 0;
    HASH_ITER(hh, s->nodes, n, tmp)
    {
        size_t plen = strlen(n->path);

        if (!is_child(n->path, plen, dir, dlen))
            continue;
        ent_out(n, 0, &e);
        rc = fn(ctx, n->path + (dlen ? dlen + 1 : 0), &e);
        if (rc)
            return rc;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Returns 0, -ENOMEM, or the non-zero value fn stopped with. */
int mesa_overlay_dirty(const mesa_overlay_t *ov, unsigned slot,
                       int (*fn)(void *ctx, const char *path), void *ctx)
{
    const slot_t *s = slot_find(ov, slot);
    size_t k = 0, i;
    const char **v;
    dirty_t *d, *tmp;
    int rc = 0;

    if (!s || !s->dirty)
        return 0;
    v = malloc(HASH_COUNT(s->dirty) * sizeof *v);
    if (!v)
        return -ENOMEM;
    HASH_ITER(hh, s->dirty, d, tmp)
    {
        v[k++] = d->path;
    }
    qsort(v, k, sizeof *v, cmp_str);
    for (i = 0; i < k && rc == 0; i++)
        rc = fn(ctx, v[i]);
    free(v);
    return rc;
}

void mesa_overlay_clear_dirty(mesa_overlay_t *ov, unsigned slot)
{
    slot_t *s = slot_find(ov, slot);

    if (s)
        dirty_clear(s);
}
