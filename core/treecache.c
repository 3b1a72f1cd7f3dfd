/* core/treecache.c - flat per-commit listings on disk (see treecache.h).
 *
 * File <dir>/trees/<commit>, host byte order, written once (temp file in
 * <dir>/tmp, fsync, rename; 0444), mapped read-only by readers:
 *   header, 64 bytes: "MESATRE1", u32 version (1), u32 count,
 *     u64 strtab_off, u64 strtab_len, u8 commit[20], u32 record size (56),
 *     i64 root mtime_ns (newest of all entries);
 *   count records of 56 bytes in path order: u32 path_off, u32 path_len
 *     (into the string table), u32 mode, u32 end, u64 size, i64 mtime_ns,
 *     u8 oid[20], u8 type, u8 flags (bit 0: oid present), 2 zero bytes;
 *   string table: the paths, each NUL-terminated.
 * Path order is byte order with '/' before every other byte (the order of
 * the segment lists), so that a directory's subtree follows it contiguously:
 * entries [index+1, end). Plain strcmp order would put "a-b" and "a.c"
 * between "a" and "a/x". A file from a host of the other byte order fails
 * the version check.
 *
 * Invariant: a listing handed out by open has been fully checked in one pass
 * (sizes, offsets, NUL terminators, path syntax, strict order, every parent
 * present and a directory, exact subtree ends), so lookup and iteration can
 * never read outside the mapping, whatever the file holds; a bad file is
 * -EBADMSG. Lookups are binary searches that do not allocate.
 *
 * Building and deriving share one pipeline: entries sorted in path order ->
 * complete() adds missing parents and sets ends -> fix_mtimes() -> write.
 * derive() first folds the deltas into an overlay (a hash of touched paths,
 * each with the sequence number of its last state and of its last subtree
 * removal), then merges the overlay with the base listing in one pass.
 *
 * Callers: the metadata plane (stat, readdir of mesa paths), the pusher and
 * the event follower (derive), tests/core/test_treecache.c.
 */
#include "treecache.h"
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define HASH_NONFATAL_OOM 1
#define uthash_nonfatal_oom(obj) ((obj)->oom = 1)
#include <uthash.h>

#define TREE_MAGIC "MESATRE1"
#define TREE_VERSION 1u
#define OID_RAW 20
#define DIR_MODE 040000u
#define FLAG_OID 1u

typedef struct disk_hdr {
    char magic[8];
    uint32_t version;
    uint32_t count;
    uint64_t strtab_off;
    uint64_t strtab_len;
    uint8_t commit[OID_RAW];
    uint32_t rec_size;
    int64_t root_mtime;
} disk_hdr_t;

typedef struct disk_rec {
    uint32_t path_off;
    uint32_t path_len;
    uint32_t mode;
    uint32_t end;
    uint64_t size;
    int64_t mtime_ns;
    uint8_t oid[OID_RAW];
    uint8_t type;
    uint8_t flags;
    uint8_t pad[2];
} disk_rec_t;

_Static_assert(sizeof(disk_hdr_t) == 64, "header layout");
_Static_assert(sizeof(disk_rec_t) == 56, "record layout");

struct mesa_tree {
    void *map;
    size_t size;
    const disk_rec_t *rec;
    const char *str;
    uint64_t str_len;
    uint32_t count;
    int64_t root_mtime;
    char commit[41];
};

/* An entry being built (paths are not NUL-terminated: len counts). */
typedef struct went {
    const char *path;
    uint32_t len;
    uint8_t type;
    uint8_t has_oid;
    uint8_t dirty;   /* a directory whose mtime is the newest of its subtree */
    uint8_t has_sub; /* sub is set: the directory has entries below it */
    uint32_t mode;
    uint32_t end;
    uint64_t size;
    int64_t mtime;
    int64_t sub; /* newest mtime below a directory */
    uint8_t oid[OID_RAW];
} went_t;

typedef struct wlist {
    went_t *v;
    size_t n, cap;
} wlist_t;

/* ---- paths and oids ---- */

/* Path order: bytes, with '/' before every other byte. */
static int pcmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;

    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x == y)
            continue;
        if (x == '/' || y == '/')
            return x == '/' ? -1 : 1;
        return x < y ? -1 : 1;
    }
    return alen < blen ? -1 : alen > blen;
}

/* Is a strictly below d ("d/...")? */
static int below(const char *a, size_t alen, const char *d, size_t dlen)
{
    return alen > dlen && a[dlen] == '/' && memcmp(a, d, dlen) == 0;
}

/* Relative, no empty, "." or ".." segment, no NUL. */
static int valid_path(const char *p, size_t len)
{
    size_t seg = 0;

    if (len == 0 || len > UINT32_MAX - 1)
        return 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && p[i] != '/') {
            if (p[i] == '\0')
                return 0;
            continue;
        }
        if (i == seg || (i - seg == 1 && p[seg] == '.') ||
            (i - seg == 2 && p[seg] == '.' && p[seg + 1] == '.'))
            return 0;
        seg = i + 1;
    }
    return 1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* 40 hex digits (either case) to 20 bytes. 0 or -EINVAL. */
static int hex_to_raw(const char *hex, uint8_t *raw)
{
    if (!hex || strnlen(hex, 41) != 40)
        return -EINVAL;
    for (int i = 0; i < OID_RAW; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        raw[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static void raw_to_hex(const uint8_t *raw, char *hex)
{
    static const char digits[] = "0123456789abcdef";

    for (int i = 0; i < OID_RAW; i++) {
        hex[2 * i] = digits[raw[i] >> 4];
        hex[2 * i + 1] = digits[raw[i] & 15];
    }
    hex[40] = '\0';
}

/* <dir>/<sub>/<commit> or <dir>/<sub> into out (PATH_MAX). */
static int cache_path(const char *dir, const char *sub, const char *commit, char *out)
{
    int n = commit ? snprintf(out, PATH_MAX, "%s/%s/%s", dir, sub, commit)
                   : snprintf(out, PATH_MAX, "%s/%s", dir, sub);

    return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

/* ---- the mapped listing ---- */

static const char *rec_path(const mesa_tree_t *t, uint32_t i)
{
    return t->str + t->rec[i].path_off;
}

static void fill_ent(const mesa_tree_t *t, uint32_t i, mesa_tree_ent_t *out)
{
    const disk_rec_t *r = &t->rec[i];

    out->path = rec_path(t, i);
    out->path_len = r->path_len;
    out->type = r->type;
    out->mode = r->mode;
    out->size = r->size;
    out->oid[0] = '\0';
    if (r->flags & FLAG_OID)
        raw_to_hex(r->oid, out->oid);
    out->mtime_ns = r->mtime_ns;
    out->index = i;
    out->end = r->end;
}

static void fill_root(const mesa_tree_t *t, mesa_tree_ent_t *out)
{
    memset(out, 0, sizeof *out);
    out->path = "";
    out->type = MESA_ENT_DIR;
    out->mode = DIR_MODE;
    out->mtime_ns = t->root_mtime;
    out->index = UINT32_MAX;
    out->end = t->count;
}

/* Binary search for path p (len bytes): 0 and *idx, or -ENOENT. */
static int find(const mesa_tree_t *t, const char *p, size_t len, uint32_t *idx)
{
    uint32_t lo = 0, hi = t->count;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = pcmp(rec_path(t, mid), t->rec[mid].path_len, p, len);
        if (c == 0) {
            *idx = mid;
            return 0;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -ENOENT;
}

const char *mesa_tree_commit(const mesa_tree_t *t)
{
    return t->commit;
}

uint32_t mesa_tree_count(const mesa_tree_t *t)
{
    return t->count;
}

void mesa_tree_at(const mesa_tree_t *t, uint32_t i, mesa_tree_ent_t *out)
{
    if (i < t->count)
        fill_ent(t, i, out);
    else
        fill_root(t, out); /* out of contract; never read out of bounds */
}

int mesa_tree_lookup(const mesa_tree_t *t, const char *path, mesa_tree_ent_t *out)
{
    mesa_tree_ent_t tmp;
    uint32_t i;

    if (!t || !path)
        return -EINVAL;
    out = out ? out : &tmp;
    if (!*path) {
        fill_root(t, out);
        return 0;
    }
    if (find(t, path, strlen(path), &i) < 0)
        return -ENOENT;
    fill_ent(t, i, out);
    return 0;
}

int mesa_tree_children(const mesa_tree_t *t, const char *dir,
                       int (*fn)(void *ctx, const mesa_tree_ent_t *e), void *ctx)
{
    mesa_tree_ent_t d, e;
    int rc = mesa_tree_lookup(t, dir, &d);

    if (rc < 0)
        return rc;
    if (d.type != MESA_ENT_DIR)
        return -ENOTDIR;
    for (uint32_t j = d.index == UINT32_MAX ? 0 : d.index + 1; j < d.end; j = t->rec[j].end) {
        fill_ent(t, j, &e);
        rc = fn(ctx, &e);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- opening: validation ---- */

static int check_header(const mesa_tree_t *t, const uint8_t *commit)
{
    const disk_hdr_t *h = t->map;

    if (memcmp(h->magic, TREE_MAGIC, 8) != 0 || h->version != TREE_VERSION ||
        h->rec_size != sizeof(disk_rec_t) || memcmp(h->commit, commit, OID_RAW) != 0 ||
        h->count == UINT32_MAX)
        return -EBADMSG;
    if (h->strtab_off != sizeof *h + (uint64_t)h->count * sizeof(disk_rec_t) ||
        h->strtab_off > t->size || h->strtab_len != t->size - h->strtab_off)
        return -EBADMSG;
    return 0;
}

/* One record on its own: type, flags, end range, path in the table. */
static int check_rec(const mesa_tree_t *t, uint32_t i)
{
    const disk_rec_t *r = &t->rec[i];
    const char *p;

    if (r->type < MESA_ENT_FILE || r->type > MESA_ENT_LINK || (r->flags & ~FLAG_OID))
        return -EBADMSG;
    if (r->type == MESA_ENT_DIR ? r->end <= i || r->end > t->count : r->end != i + 1)
        return -EBADMSG;
    if ((uint64_t)r->path_off + r->path_len >= t->str_len)
        return -EBADMSG;
    p = t->str + r->path_off;
    return p[r->path_len] == '\0' && valid_path(p, r->path_len) ? 0 : -EBADMSG;
}

/* Record i after i-1 (both passed check_rec): strictly after it, and its
 * parent is i-1 (a directory) or an ancestor of i-1 - which, by induction
 * from entry 0 (top-level), is present and a directory. */
static int check_order(const mesa_tree_t *t, uint32_t i)
{
    const disk_rec_t *r = &t->rec[i], *prev = i ? &t->rec[i - 1] : NULL;
    const char *p = rec_path(t, i), *q = i ? rec_path(t, i - 1) : NULL;
    const char *slash = memrchr(p, '/', r->path_len);
    size_t plen = slash ? (size_t)(slash - p) : 0;

    if (!prev)
        return slash ? -EBADMSG : 0;
    if (pcmp(q, prev->path_len, p, r->path_len) >= 0)
        return -EBADMSG;
    if (!slash)
        return 0;
    if (prev->path_len == plen && memcmp(q, p, plen) == 0)
        return prev->type == MESA_ENT_DIR ? 0 : -EBADMSG;
    return below(q, prev->path_len, p, plen) ? 0 : -EBADMSG;
}

/* A directory's end is exactly past its subtree: in path order a subtree
 * is contiguous, so its last entry is below it and the next one is not. */
static int check_end(const mesa_tree_t *t, uint32_t i)
{
    const disk_rec_t *r = &t->rec[i];
    const char *p = rec_path(t, i);
    uint32_t e = r->end;

    if (r->type != MESA_ENT_DIR)
        return 0;
    if (e > i + 1 && !below(rec_path(t, e - 1), t->rec[e - 1].path_len, p, r->path_len))
        return -EBADMSG;
    if (e < t->count && below(rec_path(t, e), t->rec[e].path_len, p, r->path_len))
        return -EBADMSG;
    return 0;
}

static int validate(mesa_tree_t *t, const uint8_t *commit)
{
    const disk_hdr_t *h = t->map;
    int rc = check_header(t, commit);

    if (rc < 0)
        return rc;
    t->count = h->count;
    t->root_mtime = h->root_mtime;
    t->rec = (const disk_rec_t *)(h + 1);
    t->str = (const char *)t->map + h->strtab_off;
    t->str_len = h->strtab_len;
    for (uint32_t i = 0; i < t->count && rc == 0; i++)
        rc = check_rec(t, i);
    for (uint32_t i = 0; i < t->count && rc == 0; i++) {
        rc = check_order(t, i);
        if (rc == 0)
            rc = check_end(t, i);
    }
    return rc;
}

static int map_file(const char *path, void **map, size_t *size)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) != 0)
        rc = -errno;
    else if (!S_ISREG(st.st_mode) || st.st_size < (off_t)sizeof(disk_hdr_t) ||
             (uint64_t)st.st_size > SIZE_MAX)
        rc = -EBADMSG;
    if (rc == 0) {
        *size = (size_t)st.st_size;
        *map = mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (*map == MAP_FAILED)
            rc = -errno;
    }
    close(fd);
    return rc;
}

int mesa_tree_open(const char *dir, const char *commit, mesa_tree_t **out)
{
    uint8_t raw[OID_RAW];
    char path[PATH_MAX];
    mesa_tree_t *t;
    int rc;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!dir || hex_to_raw(commit, raw) < 0)
        return -EINVAL;
    t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    raw_to_hex(raw, t->commit);
    rc = cache_path(dir, "trees", t->commit, path);
    if (rc == 0)
        rc = map_file(path, &t->map, &t->size);
    if (rc == 0)
        rc = validate(t, raw);
    if (rc < 0) {
        mesa_tree_close(t);
        return rc;
    }
    *out = t;
    return 0;
}

void mesa_tree_close(mesa_tree_t *t)
{
    if (!t)
        return;
    if (t->map && t->map != MAP_FAILED)
        munmap(t->map, t->size);
    free(t);
}

/* ---- building: entries in memory ---- */

static int wl_push(wlist_t *l, const went_t *e)
{
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 64;
        went_t *v = realloc(l->v, ncap * sizeof *v);
        if (!v)
            return -ENOMEM;
        l->v = v;
        l->cap = ncap;
    }
    if (l->n >= UINT32_MAX - 1)
        return -E2BIG;
    l->v[l->n++] = *e;
    return 0;
}

static int went_cmp(const void *a, const void *b)
{
    const went_t *x = a, *y = b;

    return pcmp(x->path, x->len, y->path, y->len);
}

/* A checked entry from an input (its path is borrowed). */
static int went_from_input(const mesa_tree_input_t *in, went_t *e)
{
    memset(e, 0, sizeof *e);
    if (!in->path || !valid_path(in->path, strlen(in->path)))
        return -EINVAL;
    if (in->type < MESA_ENT_FILE || in->type > MESA_ENT_LINK)
        return -EINVAL;
    if (in->oid && *in->oid) {
        if (hex_to_raw(in->oid, e->oid) < 0)
            return -EINVAL;
        e->has_oid = 1;
    }
    e->path = in->path;
    e->len = (uint32_t)strlen(in->path);
    e->type = in->type;
    e->mode = in->mode;
    e->size = in->size;
    e->mtime = in->mtime_ns;
    return 0;
}

static went_t implicit_dir(const char *path, uint32_t len, int64_t mtime)
{
    went_t d = {.path = path, .len = len, .type = MESA_ENT_DIR, .mode = DIR_MODE};

    d.mtime = mtime;
    d.dirty = 1;
    return d;
}

/* The ancestors chain of complete(): indices into out. */
typedef struct chain {
    uint32_t *v;
    size_t n, cap;
} chain_t;

static int chain_push(chain_t *c, size_t i)
{
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 32;
        uint32_t *v = realloc(c->v, ncap * sizeof *v);
        if (!v)
            return -ENOMEM;
        c->v = v;
        c->cap = ncap;
    }
    c->v[c->n++] = (uint32_t)i;
    return 0;
}

/* Append e to out after the parents it lacks; out is kept in path order
 * (in must be sorted). ch holds the entries of out that are ancestors of
 * the last one, and the last one: popping an entry fixes its end. */
static int add_with_parents(wlist_t *out, chain_t *ch, const went_t *e)
{
    const went_t *top;
    size_t pos = 0;
    const char *s;
    int rc = 0;

    while (ch->n) {
        top = &out->v[ch->v[ch->n - 1]];
        if (below(e->path, e->len, top->path, top->len))
            break;
        if (top->len == e->len && memcmp(top->path, e->path, e->len) == 0)
            return -EINVAL; /* duplicate */
        out->v[ch->v[--ch->n]].end = (uint32_t)out->n;
    }
    if (ch->n) {
        top = &out->v[ch->v[ch->n - 1]];
        if (top->type != MESA_ENT_DIR)
            return -EINVAL; /* a file with entries below it */
        pos = top->len + 1;
    }
    while (rc == 0 && (s = memchr(e->path + pos, '/', e->len - pos))) {
        went_t d = implicit_dir(e->path, (uint32_t)(s - e->path), e->mtime);
        pos = (size_t)(s - e->path) + 1;
        rc = wl_push(out, &d);
        if (rc == 0)
            rc = chain_push(ch, out->n - 1);
    }
    if (rc == 0)
        rc = wl_push(out, e);
    if (rc == 0)
        rc = chain_push(ch, out->n - 1);
    return rc;
}

/* Sorted entries -> out with every missing parent and every end set.
 * -EINVAL for a duplicate path or a path below a non-directory. */
static int complete(const went_t *in, size_t n, wlist_t *out)
{
    chain_t ch = {0};
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0; i++)
        rc = add_with_parents(out, &ch, &in[i]);
    while (rc == 0 && ch.n)
        out->v[ch.v[--ch.n]].end = (uint32_t)out->n;
    free(ch.v);
    return rc;
}

/* Set the newest-below of every directory (children first: reverse
 * order), and make it the mtime of dirty ones that have entries below.
 * Returns the root's mtime: the newest of all. */
static int64_t fix_mtimes(went_t *v, size_t n)
{
    int64_t root = INT64_MIN;

    for (size_t i = n; i-- > 0;) {
        went_t *d = &v[i];
        if (d->type != MESA_ENT_DIR)
            continue;
        for (size_t j = i + 1; j < d->end; j = v[j].end) {
            int64_t m = v[j].has_sub && v[j].sub > v[j].mtime ? v[j].sub : v[j].mtime;
            if (!d->has_sub || m > d->sub)
                d->sub = m;
            d->has_sub = 1;
        }
        if (d->dirty && d->has_sub)
            d->mtime = d->sub;
    }
    for (size_t i = 0; i < n; i++)
        root = v[i].mtime > root ? v[i].mtime : root;
    return n ? root : 0;
}

/* ---- building: the file ---- */

static int serialize(const wlist_t *l, const uint8_t *commit, int64_t root, char **buf,
                     size_t *size)
{
    uint64_t strl = 0, off = 0;
    disk_hdr_t *h;
    disk_rec_t *r;
    char *s;

    for (size_t i = 0; i < l->n; i++)
        strl += (uint64_t)l->v[i].len + 1;
    if (strl > UINT32_MAX)
        return -EFBIG;
    *size = sizeof *h + l->n * sizeof *r + (size_t)strl;
    *buf = calloc(1, *size);
    if (!*buf)
        return -ENOMEM;
    h = (disk_hdr_t *)*buf;
    memcpy(h->magic, TREE_MAGIC, 8);
    h->version = TREE_VERSION;
    h->count = (uint32_t)l->n;
    h->strtab_off = sizeof *h + l->n * sizeof *r;
    h->strtab_len = strl;
    memcpy(h->commit, commit, OID_RAW);
    h->rec_size = sizeof *r;
    h->root_mtime = root;
    r = (disk_rec_t *)(h + 1);
    s = *buf + h->strtab_off;
    for (size_t i = 0; i < l->n; i++, r++) {
        const went_t *e = &l->v[i];
        *r = (disk_rec_t){.path_off = (uint32_t)off,
                          .path_len = e->len,
                          .mode = e->mode,
                          .end = e->end,
                          .size = e->size,
                          .mtime_ns = e->mtime,
                          .type = e->type,
                          .flags = e->has_oid ? FLAG_OID : 0};
        memcpy(r->oid, e->oid, OID_RAW);
        memcpy(s + off, e->path, e->len);
        off += (uint64_t)e->len + 1;
    }
    return 0;
}

static int make_dirs(const char *dir)
{
    static const char *const subs[] = {"trees", "tmp"};
    char p[PATH_MAX];

    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -errno;
    for (size_t i = 0; i < 2; i++) {
        int rc = cache_path(dir, subs[i], NULL, p);
        if (rc < 0)
            return rc;
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            return -errno;
    }
    return 0;
}

/* Write buf as <dir>/trees/<commit> (0444) through a temp file in <dir>/tmp. */
static int publish(const char *dir, const char *commit, const char *buf, size_t size)
{
    char tmpdir[PATH_MAX], dst[PATH_MAX];
    int rc = make_dirs(dir);

    if (rc == 0)
        rc = cache_path(dir, "trees", commit, dst);
    if (rc == 0)
        rc = cache_path(dir, "tmp", NULL, tmpdir);
    return rc < 0 ? rc : mesa_publish(tmpdir, "tree", buf, size, 0444, dst);
}

/* Sorted entries -> completed listing on disk -> opened. */
static int write_and_open(const char *dir, const uint8_t *commit, const went_t *v, size_t n,
                          mesa_tree_t **out)
{
    wlist_t full = {0};
    char hex[41], *buf = NULL;
    size_t size = 0;
    int rc = complete(v, n, &full);

    if (rc == 0)
        rc = serialize(&full, commit, fix_mtimes(full.v, full.n), &buf, &size);
    raw_to_hex(commit, hex);
    if (rc == 0)
        rc = publish(dir, hex, buf, size);
    if (rc == 0)
        rc = mesa_tree_open(dir, hex, out);
    free(buf);
    free(full.v);
    return rc;
}

int mesa_tree_build(const char *dir, const char *commit, const mesa_tree_input_t *in, size_t n,
                    mesa_tree_t **out)
{
    uint8_t raw[OID_RAW];
    went_t *v = NULL;
    int rc = 0;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!dir || hex_to_raw(commit, raw) < 0 || (!in && n))
        return -EINVAL;
    if (n >= UINT32_MAX)
        return -E2BIG;
    v = malloc((n ? n : 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = went_from_input(&in[i], &v[i]);
    if (rc == 0 && n > 1)
        qsort(v, n, sizeof *v, went_cmp);
    if (rc == 0)
        rc = write_and_open(dir, raw, v, n, out);
    free(v);
    return rc;
}

/* ---- deriving: the overlay ---- */

/* A path touched by the deltas. Its state (has_state) is the entry or its
 * absence as of delta number seq; kill is the number of the last delta that
 * removed everything below it. A path's state is the newest of: its own,
 * absence from the newest kill of an ancestor, the base listing (seq 0). */
typedef struct dnode {
    UT_hash_handle hh;
    char *path;
    uint32_t len;
    uint32_t seq;
    uint32_t kill;
    uint8_t has_state;
    uint8_t present;
    uint8_t dirty; /* something below it changed */
    uint8_t oom;
    went_t e;
} dnode_t;

typedef struct overlay {
    const mesa_tree_t *base;
    dnode_t *nodes;
    size_t n;
} overlay_t;

static dnode_t *node_find(const overlay_t *o, const char *p, size_t len)
{
    dnode_t *n = NULL;

    HASH_FIND(hh, o->nodes, p, len, n);
    return n;
}

static dnode_t *node_get(overlay_t *o, const char *p, size_t len)
{
    dnode_t *n = node_find(o, p, len);

    if (n)
        return n;
    n = calloc(1, sizeof *n);
    if (!n || !(n->path = malloc(len + 1))) {
        free(n);
        return NULL;
    }
    memcpy(n->path, p, len);
    n->path[len] = '\0';
    n->len = (uint32_t)len;
    HASH_ADD_KEYPTR(hh, o->nodes, n->path, len, n);
    if (n->oom) {
        free(n->path);
        free(n);
        return NULL;
    }
    o->n++;
    return n;
}

static void overlay_free(overlay_t *o)
{
    dnode_t *n, *tmp;

    HASH_ITER(hh, o->nodes, n, tmp)
    {
        HASH_DEL(o->nodes, n);
        free(n->path);
        free(n);
    }
}

static went_t base_went(const mesa_tree_t *t, uint32_t i)
{
    const disk_rec_t *r = &t->rec[i];
    went_t e = {.path = rec_path(t, i), .len = r->path_len, .type = r->type, .mode = r->mode};

    e.has_oid = (r->flags & FLAG_OID) != 0;
    e.size = r->size;
    e.mtime = r->mtime_ns;
    memcpy(e.oid, r->oid, OID_RAW);
    return e;
}

/* The current state of path p: 1 (present, *e) or 0 (absent). */
static int state(const overlay_t *o, const char *p, size_t len, went_t *e)
{
    uint32_t kill = 0, i;
    dnode_t *n;

    for (size_t k = 0; k < len; k++)
        if (p[k] == '/' && (n = node_find(o, p, k)) && n->kill > kill)
            kill = n->kill;
    n = node_find(o, p, len);
    if (n && n->has_state && n->seq > kill) {
        if (n->present)
            *e = n->e;
        return n->present;
    }
    if (kill || find(o->base, p, len, &i) < 0)
        return 0;
    *e = base_went(o->base, i);
    return 1;
}

static void set_state(dnode_t *n, uint32_t seq, const went_t *e)
{
    n->has_state = 1;
    n->seq = seq;
    n->present = e != NULL;
    if (e) {
        n->e = *e;
        n->e.path = n->path;
        n->e.len = n->len;
    }
}

/* Make every ancestor of p a directory (absent ones and files alike). */
static int ensure_parents(overlay_t *o, const char *p, size_t len, uint32_t seq, int64_t mtime)
{
    went_t cur;

    for (size_t k = 0; k < len; k++) {
        dnode_t *n;
        went_t d;
        if (p[k] != '/' || (state(o, p, k, &cur) && cur.type == MESA_ENT_DIR))
            continue;
        n = node_get(o, p, k);
        if (!n)
            return -ENOMEM;
        d = implicit_dir(NULL, 0, mtime);
        set_state(n, seq, &d);
    }
    return 0;
}

static int mark_dirty(overlay_t *o, const char *p, size_t len)
{
    for (size_t k = 0; k < len; k++) {
        dnode_t *n;
        if (p[k] != '/')
            continue;
        n = node_get(o, p, k);
        if (!n)
            return -ENOMEM;
        n->dirty = 1;
    }
    return 0;
}

/* Set p's state (e, or absent when NULL) after its parents, as delta seq;
 * kill: also remove what is below p. */
static int put_state(overlay_t *o, const char *p, size_t len, uint32_t seq, const went_t *e,
                     int kill)
{
    int64_t mtime = e ? e->mtime : 0;
    int rc = e ? ensure_parents(o, p, len, seq, mtime) : 0;
    dnode_t *n = rc == 0 ? node_get(o, p, len) : NULL;

    if (!n)
        return rc < 0 ? rc : -ENOMEM;
    set_state(n, seq, e);
    if (kill)
        n->kill = seq;
    return mark_dirty(o, p, len);
}

static int apply(overlay_t *o, const mesa_tree_delta_t *d, uint32_t seq)
{
    const char *p = d->ent.path;
    size_t len = p ? strlen(p) : 0;
    went_t cur, e;
    int rc;

    if (!p || !valid_path(p, len))
        return -EINVAL;
    switch (d->kind) {
    case MESA_DELTA_DELETE:
        return state(o, p, len, &cur) ? put_state(o, p, len, seq, NULL, 1) : 0;
    case MESA_DELTA_UPSERT:
        rc = went_from_input(&d->ent, &e);
        return rc < 0 ? rc : put_state(o, p, len, seq, &e, e.type != MESA_ENT_DIR);
    case MESA_DELTA_MKDIR:
        if (state(o, p, len, &cur))
            return 0;
        e = implicit_dir(p, (uint32_t)len, d->ent.mtime_ns);
        e.dirty = 0;
        return put_state(o, p, len, seq, &e, 0);
    }
    return -EINVAL;
}

/* ---- deriving: the merge ---- */

static int node_cmp(const void *a, const void *b)
{
    const dnode_t *x = *(dnode_t *const *)a, *y = *(dnode_t *const *)b;

    return pcmp(x->path, x->len, y->path, y->len);
}

/* Kill scopes of the merge: the overlay paths above the current one that
 * removed what is below them, with the newest kill of the chain. */
typedef struct scope {
    const char *path;
    uint32_t len;
    uint32_t kill;
} scope_t;

/* The result for one path of the merge: base entry b (may be NULL), overlay
 * node n (may be NULL), kill = the newest kill above. Appends to out. */
static int emit(wlist_t *out, const went_t *b, const dnode_t *n, uint32_t kill)
{
    went_t e;

    if (n && n->has_state && n->seq > kill) {
        if (!n->present)
            return 0;
        e = n->e;
    } else if (!kill && b) {
        e = *b;
    } else {
        return 0;
    }
    e.dirty = n ? n->dirty : 0;
    return wl_push(out, &e);
}

/* Base listing + sorted overlay nodes -> out, in path order. */
static int merge(const mesa_tree_t *base, dnode_t **nodes, size_t nn, scope_t *sc, wlist_t *out)
{
    size_t i = 0, j = 0, top = 0;
    int rc = 0;

    while (rc == 0 && (i < base->count || j < nn)) {
        went_t b = i < base->count ? base_went(base, (uint32_t)i) : (went_t){0};
        dnode_t *n = j < nn ? nodes[j] : NULL;
        int c = !n ? -1 : i >= base->count ? 1 : pcmp(b.path, b.len, n->path, n->len);
        const char *p = c <= 0 ? b.path : n->path;
        uint32_t len = c <= 0 ? b.len : n->len, kill;

        while (top && !below(p, len, sc[top - 1].path, sc[top - 1].len))
            top--;
        kill = top ? sc[top - 1].kill : 0;
        rc = emit(out, c <= 0 ? &b : NULL, c >= 0 ? n : NULL, kill);
        if (c >= 0 && n->kill)
            sc[top++] = (scope_t){n->path, n->len, n->kill > kill ? n->kill : kill};
        i += c <= 0;
        j += c >= 0;
    }
    return rc;
}

static int merge_overlay(const overlay_t *o, wlist_t *out)
{
    dnode_t **nodes = malloc((o->n ? o->n : 1) * sizeof *nodes);
    scope_t *sc = malloc((o->n ? o->n : 1) * sizeof *sc);
    dnode_t *n, *tmp;
    size_t k = 0;
    int rc = -ENOMEM;

    if (!nodes || !sc)
        goto out;
    HASH_ITER(hh, o->nodes, n, tmp)
    {
        nodes[k++] = n;
    }
    if (k > 1)
        qsort(nodes, k, sizeof *nodes, node_cmp);
    rc = merge(o->base, nodes, k, sc, out);
out:
    free(nodes);
    free(sc);
    return rc;
}

int mesa_tree_derive(const char *dir, const mesa_tree_t *base, const char *new_commit,
                     const mesa_tree_delta_t *d, size_t n, mesa_tree_t **out)
{
    overlay_t o = {.base = base};
    wlist_t merged = {0};
    uint8_t raw[OID_RAW];
    int rc = 0;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!dir || !base || hex_to_raw(new_commit, raw) < 0 || (!d && n))
        return -EINVAL;
    if (n >= UINT32_MAX)
        return -E2BIG;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = apply(&o, &d[i], (uint32_t)i + 1);
    if (rc == 0)
        rc = merge_overlay(&o, &merged);
    if (rc == 0)
        rc = write_and_open(dir, raw, merged.v, merged.n, out);
    free(merged.v);
    overlay_free(&o);
    return rc;
}
