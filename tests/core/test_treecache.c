/* tests/core/test_treecache.c - per-commit listings: build, lookup, derive.
 *
 * Checks a build from unsorted input (implicit parents, their mtimes, order
 * with '/' before other bytes, subtree ends), lookups of every entry and of
 * missing paths, children of the root and of nested directories, refusals
 * of bad input, derive against a build of the expected full listing (every
 * field of every entry), corrupt files (each must be -EBADMSG or open into
 * a listing that can be walked safely: run under ASan), 100,000 entries,
 * and two processes opening and rewriting one listing at once.
 * Every test works in its own mkdtemp directory under ${TMPDIR:-/tmp}.
 */
#include "core/treecache.h"
#include "tests/lib/ctest.h"
#include "tests/lib/tmpdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define C1 "1111111111111111111111111111111111111111"
#define C2 "2222222222222222222222222222222222222222"
#define C3 "3333333333333333333333333333333333333333"
#define C4 "4444444444444444444444444444444444444444"
#define CX "abcdefabcdefabcdefabcdefabcdefabcdefabcd"
#define OA "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define OB "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define OC "cccccccccccccccccccccccccccccccccccccccc"
#define OD "dddddddddddddddddddddddddddddddddddddddd"
#define OE "0123456789abcdef0123456789abcdef01234567"

#define F MESA_ENT_FILE
#define D MESA_ENT_DIR
#define L MESA_ENT_LINK

/* ---- helpers ---- */

static void tree_file(const char *dir, const char *commit, char *out)
{
    snprintf(out, PATH_MAX, "%s/trees/%s", dir, commit);
}

static int exists(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0;
}

/* Collects children names as "a,b,c". */
typedef struct names {
    char buf[4096];
    int n, stop_at;
} names_t;

static int collect(void *ctx, const mesa_tree_ent_t *e)
{
    names_t *c = ctx;
    const char *slash = strrchr(e->path, '/');
    size_t used = strlen(c->buf);

    snprintf(c->buf + used, sizeof c->buf - used, "%s%s", c->n ? "," : "",
             slash ? slash + 1 : e->path);
    c->n++;
    return c->stop_at && c->n == c->stop_at ? 42 : 0;
}

static const char *children_of(const mesa_tree_t *t, const char *dir, names_t *c, int *rc)
{
    memset(c, 0, sizeof *c);
    *rc = mesa_tree_children(t, dir, collect, c);
    return c->buf;
}

/* Every field of every entry equal? Prints the first difference. */
static int same_tree(const mesa_tree_t *a, const mesa_tree_t *b)
{
    mesa_tree_ent_t x, y;

    if (mesa_tree_count(a) != mesa_tree_count(b)) {
        printf("# count %u != %u\n", mesa_tree_count(a), mesa_tree_count(b));
        return 0;
    }
    for (uint32_t i = 0; i < mesa_tree_count(a); i++) {
        mesa_tree_at(a, i, &x);
        mesa_tree_at(b, i, &y);
        if (strcmp(x.path, y.path) || x.path_len != y.path_len || x.type != y.type ||
            x.mode != y.mode || x.size != y.size || strcmp(x.oid, y.oid) ||
            x.mtime_ns != y.mtime_ns || x.index != y.index || x.end != y.end) {
            printf("# entry %u: %s t%d m%o s%llu %s @%lld end %u | %s t%d m%o s%llu %s @%lld end "
                   "%u\n",
                   i, x.path, x.type, x.mode, (unsigned long long)x.size, x.oid,
                   (long long)x.mtime_ns, x.end, y.path, y.type, y.mode, (unsigned long long)y.size,
                   y.oid, (long long)y.mtime_ns, y.end);
            return 0;
        }
    }
    mesa_tree_lookup(a, "", &x);
    mesa_tree_lookup(b, "", &y);
    return x.mtime_ns == y.mtime_ns;
}

/* ---- build, lookup, children ---- */

static const mesa_tree_input_t sample[] = {
    {"src/main.c", F, 0100644, 120, OA, 50},
    {"README", F, 0100644, 10, OB, 10},
    {"src/lib/util.c", F, 0100755, 30, OC, 70},
    {"docs", D, 040000, 0, "", 5},
    {"src/lib/util.h", F, 0100644, 20, OD, 60},
    {"a-b", F, 0100644, 1, OE, 1},
    {"a/x", F, 0100644, 2, OA, 2},
    {"a.txt", F, 0100644, 3, OB, 3},
    {"link", L, 0120000, 6, OC, 4},
};
#define NSAMPLE (sizeof sample / sizeof *sample)

static const struct {
    const char *path;
    uint32_t end;
    int64_t mtime;
} sample_order[] = {
    {"README", 1, 10},
    {"a", 3, 2},
    {"a/x", 3, 2},
    {"a-b", 4, 1},
    {"a.txt", 5, 3},
    {"docs", 6, 5},
    {"link", 7, 4},
    {"src", 12, 70},
    {"src/lib", 11, 70},
    {"src/lib/util.c", 10, 70},
    {"src/lib/util.h", 11, 60},
    {"src/main.c", 12, 50},
};

static void test_build(const char *dir, mesa_tree_t **out)
{
    mesa_tree_t *t = NULL;
    mesa_tree_ent_t e;
    char p[PATH_MAX];
    struct stat st;
    int ok = 1;

    CHECK_EQ_INT(mesa_tree_build(dir, C1, sample, NSAMPLE, &t), 0, "build from unsorted input");
    CHECK_EQ_STR(mesa_tree_commit(t), C1, "the listing names its commit");
    CHECK_EQ_INT(mesa_tree_count(t), 12, "9 entries and 3 implicit parent directories");
    for (uint32_t i = 0; i < 12; i++) {
        mesa_tree_at(t, i, &e);
        ok &= strcmp(e.path, sample_order[i].path) == 0 && e.index == i &&
              e.end == sample_order[i].end && e.mtime_ns == sample_order[i].mtime &&
              e.path_len == strlen(e.path);
        if (!ok) {
            printf("# at %u: %s end %u mtime %lld\n", i, e.path, e.end, (long long)e.mtime_ns);
            break;
        }
    }
    CHECK(ok, "entries in path order ('/' first), with subtree ends and mtimes");
    mesa_tree_at(t, 1, &e);
    CHECK(e.type == D && e.mode == 040000 && e.size == 0 && e.oid[0] == '\0',
          "an implicit parent is a directory 040000 without oid");
    mesa_tree_at(t, 9, &e);
    CHECK(e.type == F && e.mode == 0100755 && e.size == 30 && strcmp(e.oid, OC) == 0,
          "a file keeps type, mode, size and oid");
    tree_file(dir, C1, p);
    CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0444, "the listing is a 0444 file");
    CHECK_EQ_INT(ctest_count_files(dir, "tmp"), 0, "no temp file is left behind");
    *out = t;
}

static void test_lookup(const mesa_tree_t *t)
{
    static const char *const missing[] = {"nope", "src/nope", "src/main.c/x", "src/", "/src",
                                          "s",    "a/x/y",    "srcx",         "a/",   "src//lib"};
    mesa_tree_ent_t e;
    int ok = 1;

    for (size_t i = 0; i < NSAMPLE; i++) {
        ok &= mesa_tree_lookup(t, sample[i].path, &e) == 0 && strcmp(e.path, sample[i].path) == 0 &&
              e.type == sample[i].type && e.mode == sample[i].mode && e.size == sample[i].size &&
              strcmp(e.oid, sample[i].oid) == 0 && e.mtime_ns == sample[i].mtime_ns;
    }
    CHECK(ok, "lookup finds every input entry with its fields");
    ok = 1;
    for (uint32_t i = 0; i < mesa_tree_count(t); i++) {
        mesa_tree_ent_t a;
        mesa_tree_at(t, i, &a);
        ok &= mesa_tree_lookup(t, a.path, &e) == 0 && e.index == i;
    }
    CHECK(ok, "lookup finds every entry at its index");
    ok = 1;
    for (size_t i = 0; i < sizeof missing / sizeof *missing; i++)
        ok &= mesa_tree_lookup(t, missing[i], &e) == -ENOENT;
    CHECK(ok, "lookup of missing paths is ENOENT");
    CHECK_EQ_INT(mesa_tree_lookup(t, "src", NULL), 0, "lookup without an out entry");
    CHECK_EQ_INT(mesa_tree_lookup(t, "", &e), 0, "lookup of the root");
    CHECK(e.type == D && e.index == UINT32_MAX && e.end == 12 && e.mtime_ns == 70 && !*e.path,
          "the root is a directory, index UINT32_MAX, end count, newest mtime");
}

static void test_children(const mesa_tree_t *t)
{
    names_t c;
    int rc;

    CHECK_EQ_STR(children_of(t, "", &c, &rc), "README,a,a-b,a.txt,docs,link,src",
                 "children of the root, in order");
    CHECK_EQ_INT(rc, 0, "children returns 0");
    CHECK_EQ_STR(children_of(t, "src", &c, &rc), "lib,main.c", "children of src skip src/lib/*");
    CHECK_EQ_STR(children_of(t, "src/lib", &c, &rc), "util.c,util.h", "children of src/lib");
    CHECK_EQ_STR(children_of(t, "a", &c, &rc), "x", "children of a exclude a-b and a.txt");
    CHECK_EQ_STR(children_of(t, "docs", &c, &rc), "", "an empty directory has no children");
    CHECK_EQ_INT(rc, 0, "and children returns 0");
    children_of(t, "README", &c, &rc);
    CHECK_EQ_INT(rc, -ENOTDIR, "children of a file is ENOTDIR");
    children_of(t, "nope", &c, &rc);
    CHECK_EQ_INT(rc, -ENOENT, "children of a missing path is ENOENT");
    memset(&c, 0, sizeof c);
    c.stop_at = 2;
    CHECK_EQ_INT(mesa_tree_children(t, "", collect, &c), 42, "the callback's non-zero is returned");
    CHECK_EQ_STR(c.buf, "README,a", "and stops the iteration");
}

static void test_refusals(const char *dir)
{
    static const char *const bad_paths[] = {"/a",   "a//b",  "a/", "",  "./a",
                                            "a/..", "a/./b", ".",  ".."};
    mesa_tree_input_t in[2] = {{"x", F, 0100644, 1, "", 1}, {"y", F, 0100644, 1, "", 1}};
    mesa_tree_t *t = (mesa_tree_t *)1;
    char p[PATH_MAX];
    int ok = 1;

    for (size_t i = 0; i < sizeof bad_paths / sizeof *bad_paths; i++) {
        in[1].path = bad_paths[i];
        ok &= mesa_tree_build(dir, C2, in, 2, &t) == -EINVAL && t == NULL;
    }
    CHECK(ok, "invalid paths are EINVAL");
    in[1].path = "x";
    CHECK_EQ_INT(mesa_tree_build(dir, C2, in, 2, &t), -EINVAL, "a duplicate path is EINVAL");
    in[1].path = "x/y";
    CHECK_EQ_INT(mesa_tree_build(dir, C2, in, 2, &t), -EINVAL, "a path below a file is EINVAL");
    in[1].path = "y";
    in[1].type = 7;
    CHECK_EQ_INT(mesa_tree_build(dir, C2, in, 2, &t), -EINVAL, "a bad type is EINVAL");
    in[1].type = F;
    in[1].oid = "xyz";
    CHECK_EQ_INT(mesa_tree_build(dir, C2, in, 2, &t), -EINVAL, "a bad oid is EINVAL");
    in[1].oid = NULL;
    CHECK_EQ_INT(mesa_tree_build(dir, "c2", in, 2, &t), -EINVAL, "a bad commit is EINVAL");
    tree_file(dir, C2, p);
    CHECK(!exists(p), "a refused build writes no listing");
    CHECK_EQ_INT(mesa_tree_open(dir, C2, &t), -ENOENT, "open of an uncached commit is ENOENT");
    CHECK_EQ_INT(mesa_tree_build(dir, C2, in, 2, &t), 0, "a NULL oid means none");
    mesa_tree_close(t);
    CHECK_EQ_INT(mesa_tree_build(dir, C3, NULL, 0, &t), 0, "an empty listing builds");
    CHECK_EQ_INT(mesa_tree_count(t), 0, "and has no entries");
    mesa_tree_close(t);
    CHECK_EQ_INT(mesa_tree_open(dir, C3, &t), 0, "and opens");
    mesa_tree_close(t);
    mesa_tree_close(NULL);
}

/* ---- derive ---- */

static const mesa_tree_input_t dbase[] = {
    {"keep", D, 040000, 0, "", 999},
    {"keep/a.txt", F, 0100644, 1, OA, 5},
    {"d2", D, 040000, 0, "", 999},
    {"d2/old", F, 0100644, 1, OA, 5},
    {"mod.txt", F, 0100644, 1, OA, 1},
    {"gone.txt", F, 0100644, 1, OA, 1},
    {"tree/x/y/z", F, 0100644, 1, OA, 90},
    {"tree/x/w", F, 0100644, 1, OA, 2},
    {"tree/v", F, 0100644, 1, OA, 3},
    {"dir2file/a", F, 0100644, 1, OA, 1},
    {"dir2file/b/c", F, 0100644, 1, OA, 1},
    {"file2dir", F, 0100644, 1, OA, 1},
    {"empty", D, 040000, 0, "", 7},
    {"re/a", F, 0100644, 1, OA, 1},
    {"re/b", F, 0100644, 1, OA, 1},
    {"f2d", F, 0100644, 1, OA, 1},
    {"kd", D, 040000, 0, "", 8},
    {"kd/a", F, 0100644, 1, OA, 4},
    {"mod2", F, 0100644, 1, OA, 1},
    {"zz", F, 0100644, 1, OA, 1},
};

#define UP(p, t, m, s, o, mt)                                                                      \
    {                                                                                              \
        MESA_DELTA_UPSERT,                                                                         \
        {                                                                                          \
            p, t, m, s, o, mt                                                                      \
        }                                                                                          \
    }
#define DEL(p)                                                                                     \
    {                                                                                              \
        MESA_DELTA_DELETE,                                                                         \
        {                                                                                          \
            p, 0, 0, 0, NULL, 0                                                                    \
        }                                                                                          \
    }
#define MK(p, mt)                                                                                  \
    {                                                                                              \
        MESA_DELTA_MKDIR,                                                                          \
        {                                                                                          \
            p, 0, 0, 0, NULL, mt                                                                   \
        }                                                                                          \
    }

static const mesa_tree_delta_t deltas[] = {
    UP("d2/new", F, 0100644, 2, OB, 10),
    UP("mod.txt", F, 0100755, 9, OC, 20),
    DEL("gone.txt"),
    DEL("tree/x"),
    UP("dir2file", F, 0100644, 3, OD, 21),
    UP("file2dir/inner", F, 0100644, 4, OE, 22),
    DEL("re"),
    UP("re/c", F, 0100644, 5, OB, 23),
    DEL("no/such/path"),
    MK("newdir", 33),
    MK("keep", 34),
    UP("deep/er/file", F, 0100644, 6, OC, 44),
    UP("link2", L, 0120000, 7, OD, 45),
    UP("tmpfile", F, 0100644, 1, OA, 46),
    DEL("tmpfile"),
    DEL("mod2"),
    UP("mod2", F, 0100644, 8, OE, 47),
    UP("f2d", D, 040000, 0, "", 50),
    UP("kd", D, 040000, 0, OB, 77),
    MK("newdir/sub", 35),
    DEL("newdir/sub"),
    DEL("zz"),
    MK("zz/top", 36),
};

/* The listing the deltas must give; changed directories left implicit. */
static const mesa_tree_input_t dwant[] = {
    {"keep", D, 040000, 0, "", 999},     {"keep/a.txt", F, 0100644, 1, OA, 5},
    {"d2/old", F, 0100644, 1, OA, 5},    {"d2/new", F, 0100644, 2, OB, 10},
    {"mod.txt", F, 0100755, 9, OC, 20},  {"tree/v", F, 0100644, 1, OA, 3},
    {"dir2file", F, 0100644, 3, OD, 21}, {"file2dir/inner", F, 0100644, 4, OE, 22},
    {"empty", D, 040000, 0, "", 7},      {"re/c", F, 0100644, 5, OB, 23},
    {"newdir", D, 040000, 0, "", 33},    {"deep/er/file", F, 0100644, 6, OC, 44},
    {"link2", L, 0120000, 7, OD, 45},    {"mod2", F, 0100644, 8, OE, 47},
    {"f2d", D, 040000, 0, "", 50},       {"kd", D, 040000, 0, OB, 77},
    {"kd/a", F, 0100644, 1, OA, 4},      {"zz/top", D, 040000, 0, "", 36},
};

static void test_derive(const char *dir)
{
    mesa_tree_t *base = NULL, *got = NULL, *want = NULL, *again = NULL;
    mesa_tree_delta_t bad = DEL("/x");
    mesa_tree_ent_t e;

    CHECK_EQ_INT(mesa_tree_build(dir, C1, dbase, sizeof dbase / sizeof *dbase, &base), 0,
                 "build the base listing");
    CHECK_EQ_INT(mesa_tree_derive(dir, base, C2, deltas, sizeof deltas / sizeof *deltas, &got), 0,
                 "derive with upserts, deletes and mkdirs");
    CHECK_EQ_INT(mesa_tree_build(dir, C3, dwant, sizeof dwant / sizeof *dwant, &want), 0,
                 "build the expected listing");
    CHECK(got && want && same_tree(got, want), "derived == built from the full set, every field");
    CHECK_EQ_STR(got ? mesa_tree_commit(got) : "", C2, "the derived listing is new_commit's");
    CHECK(mesa_tree_lookup(got, "d2", &e) == 0 && e.mtime_ns == 10,
          "a changed directory's mtime is the newest of its subtree");
    CHECK(mesa_tree_lookup(got, "keep", &e) == 0 && e.mtime_ns == 999,
          "an unchanged directory keeps its mtime");
    CHECK(mesa_tree_lookup(base, "gone.txt", &e) == 0, "the base listing is unchanged");
    mesa_tree_close(got);
    got = NULL;
    CHECK_EQ_INT(mesa_tree_open(dir, C2, &got), 0, "the derived listing is cached");
    mesa_tree_close(got);
    CHECK_EQ_INT(mesa_tree_derive(dir, want, C4, NULL, 0, &again), 0, "derive with no deltas");
    CHECK(again && same_tree(again, want), "gives the same listing");
    mesa_tree_close(again);
    again = NULL;
    CHECK_EQ_INT(mesa_tree_derive(dir, base, C4, &bad, 1, &again), -EINVAL,
                 "a delta with an invalid path is EINVAL");
    CHECK(again == NULL, "and gives no listing");
    mesa_tree_close(want);
    mesa_tree_close(base);
}

/* ---- derive against a naive model ---- */

#define MODEL_MAX 256

/* The listing as a plain array, changed by the obvious O(n) rules. */
typedef struct model {
    struct {
        char path[64];
        mesa_tree_input_t in;
    } v[MODEL_MAX];
    int n;
} model_t;

static int m_find(const model_t *m, const char *p)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->v[i].path, p) == 0)
            return i;
    return -1;
}

static int m_below(const char *a, const char *d)
{
    size_t n = strlen(d);

    return strncmp(a, d, n) == 0 && a[n] == '/';
}

static void m_del(model_t *m, const char *p, int self)
{
    for (int i = 0; i < m->n;)
        if ((self && strcmp(m->v[i].path, p) == 0) || m_below(m->v[i].path, p))
            m->v[i] = m->v[--m->n];
        else
            i++;
}

static void m_set(model_t *m, const mesa_tree_input_t *in)
{
    int i = m_find(m, in->path);

    if (i < 0 && m->n < MODEL_MAX)
        i = m->n++;
    if (i < 0)
        return;
    snprintf(m->v[i].path, sizeof m->v[i].path, "%s", in->path);
    m->v[i].in = *in;
    m->v[i].in.path = m->v[i].path;
}

static void m_parents(model_t *m, const char *p, int64_t mtime)
{
    char q[64];

    for (const char *s = strchr(p, '/'); s; s = strchr(s + 1, '/')) {
        int i;
        snprintf(q, sizeof q, "%.*s", (int)(s - p), p);
        i = m_find(m, q);
        if (i < 0 || m->v[i].in.type != D) {
            mesa_tree_input_t d = {q, D, 040000, 0, "", mtime};
            m_set(m, &d);
        }
    }
}

static void m_apply(model_t *m, const mesa_tree_delta_t *d)
{
    int i = m_find(m, d->ent.path);

    if (d->kind == MESA_DELTA_DELETE) {
        m_del(m, d->ent.path, 1);
    } else if (d->kind == MESA_DELTA_UPSERT) {
        m_parents(m, d->ent.path, d->ent.mtime_ns);
        if (d->ent.type != D)
            m_del(m, d->ent.path, 0);
        m_set(m, &d->ent);
    } else if (i < 0) {
        mesa_tree_input_t dir = {d->ent.path, D, 040000, 0, "", d->ent.mtime_ns};
        m_parents(m, d->ent.path, d->ent.mtime_ns);
        m_set(m, &dir);
    }
}

static void m_inputs(const model_t *m, mesa_tree_input_t *in)
{
    for (int i = 0; i < m->n; i++) {
        in[i] = m->v[i].in;
        in[i].path = m->v[i].path; /* entries move when others are deleted */
    }
}

/* All fields equal, but directories' mtimes (derive recomputes those). */
static int same_but_dir_mtimes(const mesa_tree_t *a, const mesa_tree_t *b)
{
    mesa_tree_ent_t x, y;

    if (mesa_tree_count(a) != mesa_tree_count(b))
        return 0;
    for (uint32_t i = 0; i < mesa_tree_count(a); i++) {
        mesa_tree_at(a, i, &x);
        mesa_tree_at(b, i, &y);
        if (strcmp(x.path, y.path) || x.type != y.type || x.mode != y.mode || x.size != y.size ||
            strcmp(x.oid, y.oid) || x.end != y.end || (x.type != D && x.mtime_ns != y.mtime_ns))
            return 0;
    }
    return 1;
}

static uint32_t rnd(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/* A random path of 1-3 segments from a small alphabet (many collisions,
 * names that sort around '/'). */
static void rnd_path(uint32_t *x, char *out)
{
    static const char *const seg[] = {"a", "b", "a-b", "a.c", "a0"};
    int depth = 1 + (int)(rnd(x) % 3);

    out[0] = '\0';
    for (int i = 0; i < depth; i++)
        sprintf(out + strlen(out), "%s%s", i ? "/" : "", seg[rnd(x) % 5]);
}

static void rnd_delta(uint32_t *x, mesa_tree_delta_t *d, char *path, int64_t mtime)
{
    static const uint8_t types[] = {F, F, L, D};
    static const uint32_t modes[] = {0100644, 0100755, 0120000, 040000};
    static const char *const oids[] = {OA, OB, ""};
    int t = (int)(rnd(x) % 4);

    rnd_path(x, path);
    d->kind = 1 + rnd(x) % 3;
    d->ent = (mesa_tree_input_t){path, types[t], modes[t], rnd(x) % 100, oids[rnd(x) % 3], mtime};
}

static void test_derive_random(const char *dir)
{
    char paths[40][64];
    mesa_tree_delta_t d[40];
    uint32_t x = 88172645u;
    int ok = 1, round;

    for (round = 0; round < 300 && ok; round++) {
        model_t *m = calloc(1, sizeof *m);
        mesa_tree_input_t in[MODEL_MAX];
        mesa_tree_t *base = NULL, *got = NULL, *want = NULL;
        int nd = 1 + (int)(rnd(&x) % 40);

        for (int i = 0; i < 25; i++) { /* a consistent random base */
            rnd_delta(&x, &d[0], paths[0], i);
            d[0].kind = MESA_DELTA_UPSERT;
            m_apply(m, &d[0]);
        }
        m_inputs(m, in);
        ok &= mesa_tree_build(dir, C1, in, (size_t)m->n, &base) == 0;
        for (int i = 0; i < nd; i++) {
            rnd_delta(&x, &d[i], paths[i], 100 + i);
            m_apply(m, &d[i]);
        }
        m_inputs(m, in);
        ok &= base && mesa_tree_derive(dir, base, C2, d, (size_t)nd, &got) == 0;
        ok &= mesa_tree_build(dir, C3, in, (size_t)m->n, &want) == 0;
        ok &= got && want && same_but_dir_mtimes(got, want);
        mesa_tree_close(base);
        mesa_tree_close(got);
        mesa_tree_close(want);
        free(m);
    }
    CHECK(ok, "300 random delta lists: derive == the naive model (dir mtimes aside)");
    if (!ok)
        printf("# failed in round %d\n", round - 1);
}

/* ---- corrupt files ---- */

static int write_file(const char *path, const void *buf, size_t len)
{
    int fd, ok;

    chmod(path, 0644);
    unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
    if (fd < 0)
        return -1;
    ok = write(fd, buf, len) == (ssize_t)len;
    close(fd);
    return ok ? 0 : -1;
}

static unsigned char *read_file(const char *path, size_t *len)
{
    struct stat st;
    unsigned char *buf;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0 || fstat(fd, &st) != 0)
        return NULL;
    buf = malloc((size_t)st.st_size);
    *len = (size_t)read(fd, buf, (size_t)st.st_size);
    close(fd);
    return buf;
}

static int walk_dir(void *ctx, const mesa_tree_ent_t *e)
{
    (*(unsigned long *)ctx) += e->path_len;
    return 0;
}

/* Use everything an opened listing offers (ASan watches). */
static void walk(const mesa_tree_t *t)
{
    unsigned long sum = 0;
    mesa_tree_ent_t e, f;

    for (uint32_t i = 0; i < mesa_tree_count(t); i++) {
        mesa_tree_at(t, i, &e);
        sum += strlen(e.path) + strlen(e.oid);
        mesa_tree_lookup(t, e.path, &f);
        if (e.type == D)
            mesa_tree_children(t, e.path, walk_dir, &sum);
    }
    mesa_tree_children(t, "", walk_dir, &sum);
    mesa_tree_lookup(t, "src/lib/util.c", &f);
}

/* Open file bytes buf as commit C1: the result of open. */
static int open_bytes(const char *dir, const void *buf, size_t len)
{
    char p[PATH_MAX];
    mesa_tree_t *t = NULL;
    int rc;

    tree_file(dir, C1, p);
    if (write_file(p, buf, len) < 0)
        return -999;
    rc = mesa_tree_open(dir, C1, &t);
    if (rc == 0)
        walk(t);
    mesa_tree_close(t);
    return rc;
}

/* Offsets in the format (see core/treecache.c). */
#define H_VERSION 8
#define H_COUNT 12
#define H_STROFF 16
#define H_STRLEN 24
#define H_COMMIT 32
#define H_RECSIZE 52
#define REC(i) (64 + (i)*56)
#define R_OFF 0
#define R_LEN 4
#define R_END 12
#define R_TYPE 52
#define R_FLAGS 53

static void put32(unsigned char *b, size_t at, uint32_t v)
{
    memcpy(b + at, &v, 4);
}

static uint32_t get32(const unsigned char *b, size_t at)
{
    uint32_t v;

    memcpy(&v, b + at, 4);
    return v;
}

static int corrupt_with(const char *dir, const unsigned char *good, size_t len, size_t at,
                        uint32_t v, int width)
{
    unsigned char *b = malloc(len);
    int rc;

    memcpy(b, good, len);
    if (width == 4)
        put32(b, at, v);
    else
        b[at] = (unsigned char)v;
    rc = open_bytes(dir, b, len);
    free(b);
    return rc;
}

static void test_corrupt(const char *dir)
{
    static const size_t cuts[] = {0, 1, 63, 64, 64 + 56, 64 + 12 * 56};
    mesa_tree_t *t = NULL;
    char p[PATH_MAX];
    unsigned char *good, *b;
    size_t len = 0;
    int ok = 1, opened = 0, rejected = 0, other = 0;
    uint64_t stroff;

    CHECK_EQ_INT(mesa_tree_build(dir, C1, sample, NSAMPLE, &t), 0, "build a listing to corrupt");
    mesa_tree_close(t);
    tree_file(dir, C1, p);
    good = read_file(p, &len);
    CHECK(good && len > 64 + 12 * 56, "read it");
    if (!good)
        return;
    memcpy(&stroff, good + H_STROFF, 8);
    CHECK_EQ_INT(open_bytes(dir, good, len), 0, "an intact copy opens");
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++)
        ok &= open_bytes(dir, good, cuts[i]) == -EBADMSG;
    ok &= open_bytes(dir, good, len - 1) == -EBADMSG;
    ok &= open_bytes(dir, good, (size_t)stroff + 5) == -EBADMSG;
    CHECK(ok, "every truncation is EBADMSG");
    b = malloc(len + 8);
    memcpy(b, good, len);
    memset(b + len, 0, 8);
    CHECK_EQ_INT(open_bytes(dir, b, len + 8), -EBADMSG, "trailing bytes are EBADMSG");
    free(b);

    CHECK_EQ_INT(corrupt_with(dir, good, len, 0, 'X', 1), -EBADMSG, "bad magic");
    CHECK_EQ_INT(corrupt_with(dir, good, len, H_VERSION, 2, 4), -EBADMSG, "other version");
    CHECK_EQ_INT(corrupt_with(dir, good, len, H_VERSION, 0x01000000, 4), -EBADMSG,
                 "other byte order");
    CHECK_EQ_INT(corrupt_with(dir, good, len, H_COUNT, 13, 4), -EBADMSG, "count too big");
    CHECK_EQ_INT(corrupt_with(dir, good, len, H_COUNT, UINT32_MAX, 4), -EBADMSG, "count huge");
    CHECK_EQ_INT(corrupt_with(dir, good, len, H_COUNT, 11, 4), -EBADMSG, "count too small");
    CHECK_EQ_INT(corrupt_with(dir, good, len, H_STROFF, (uint32_t)stroff + 1, 4), -EBADMSG,
                 "string table offset moved");
    CHECK_EQ_INT(corrupt_with(dir, good, len, H_STRLEN, get32(good, H_STRLEN) - 1, 4), -EBADMSG,
                 "string table length off");
    CHECK_EQ_INT(corrupt_with(dir, good, len, H_COMMIT, good[H_COMMIT] ^ 1, 1), -EBADMSG,
                 "another commit's listing");
    CHECK_EQ_INT(corrupt_with(dir, good, len, H_RECSIZE, 48, 4), -EBADMSG, "other record size");
    CHECK_EQ_INT(corrupt_with(dir, good, len, REC(3) + R_OFF, 0xfffffff0u, 4), -EBADMSG,
                 "path offset out of range");
    CHECK_EQ_INT(corrupt_with(dir, good, len, REC(3) + R_LEN, 0xffffu, 4), -EBADMSG,
                 "path length out of range");
    CHECK_EQ_INT(corrupt_with(dir, good, len, REC(3) + R_LEN, 0, 4), -EBADMSG, "empty path");
    CHECK_EQ_INT(corrupt_with(dir, good, len, REC(3) + R_LEN, 2, 4), -EBADMSG,
                 "path not NUL-terminated at its length");
    CHECK_EQ_INT(corrupt_with(dir, good, len, REC(3) + R_OFF, get32(good, REC(4) + R_OFF), 4),
                 -EBADMSG, "two records with one path");
    CHECK_EQ_INT(corrupt_with(dir, good, len, REC(7) + R_END, 13, 4), -EBADMSG, "end past count");
    CHECK_EQ_INT(corrupt_with(dir, good, len, REC(7) + R_END, 7, 4), -EBADMSG,
                 "a directory's end at itself");
    CHECK_EQ_INT(corrupt_with(dir, good, len, REC(7) + R_END, 11, 4), -EBADMSG,
                 "a directory's end inside its subtree");
    CHECK_EQ_INT(corrupt_with(dir, good, len, REC(5) + R_END, 7, 4), -EBADMSG,
                 "a directory's end past its subtree");
    CHECK_EQ_INT(corrupt_with(dir, good, len, REC(0) + R_END, 2, 4), -EBADMSG,
                 "a file's end other than index+1");
    CHECK_EQ_INT(corrupt_with(dir, good, len, REC(2) + R_TYPE, 9, 1), -EBADMSG, "unknown type");
    CHECK_EQ_INT(corrupt_with(dir, good, len, REC(2) + R_FLAGS, 2, 1), -EBADMSG, "unknown flag");
    CHECK_EQ_INT(corrupt_with(dir, good, len, REC(1) + R_TYPE, F, 1), -EBADMSG,
                 "an entry below a file");
    CHECK_EQ_INT(corrupt_with(dir, good, len, stroff, '/', 1), -EBADMSG, "a leading '/'");
    CHECK_EQ_INT(corrupt_with(dir, good, len, stroff + 6, 'x', 1), -EBADMSG,
                 "a missing NUL terminator");
    CHECK_EQ_INT(corrupt_with(dir, good, len, stroff + 1, 0, 1), -EBADMSG, "a NUL inside a path");

    b = malloc(len);
    memcpy(b, good, len);
    memcpy(b + REC(3), good + REC(4), 56);
    memcpy(b + REC(4), good + REC(3), 56);
    put32(b, REC(3) + R_END, 4);
    put32(b, REC(4) + R_END, 5);
    CHECK_EQ_INT(open_bytes(dir, b, len), -EBADMSG, "records out of order");
    free(b);

    for (size_t at = 0; at < len; at++) {
        static const unsigned vals[] = {0x01, 0x80, 0xff};
        for (size_t k = 0; k < 3; k++) {
            int rc = corrupt_with(dir, good, len, at, good[at] ^ vals[k], 1);
            opened += rc == 0;
            rejected += rc == -EBADMSG;
            other += rc != 0 && rc != -EBADMSG;
        }
    }
    printf("# byte flips: %d opened (harmless fields), %d rejected\n", opened, rejected);
    CHECK_EQ_INT(other, 0, "every byte flip opens or is EBADMSG, and nothing crashes");
    CHECK(rejected > 0 && opened > 0, "flips hit both checked and free fields");
    free(good);
}

/* ---- scale and concurrency ---- */

#define BIG_DIRS 100
#define BIG_SUBS 10
#define BIG_FILES 100
#define BIG (BIG_DIRS * BIG_SUBS * BIG_FILES)

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void test_big(const char *dir)
{
    mesa_tree_input_t *in = calloc(BIG, sizeof *in);
    char(*paths)[32] = calloc(BIG, 32), (*oids)[41] = calloc(BIG, 41);
    uint32_t x = 12345;
    mesa_tree_t *t = NULL;
    mesa_tree_ent_t e;
    struct timespec t0;
    names_t c;
    int ok = 1, rc;

    for (int i = 0; i < BIG; i++) {
        snprintf(paths[i], 32, "d%03d/s%02d/f%05d.txt", i / (BIG_SUBS * BIG_FILES),
                 i / BIG_FILES % BIG_SUBS, i);
        snprintf(oids[i], 41, "%08x%08x%08x%08x%08x", (unsigned)i, 1u, 2u, 3u, (unsigned)i * 7);
        in[i] = (mesa_tree_input_t){paths[i], F, 0100644, (uint64_t)i, oids[i], 1000 + i};
    }
    for (int i = BIG - 1; i > 0; i--) { /* shuffle */
        mesa_tree_input_t tmp;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        int j = (int)(x % (uint32_t)(i + 1));
        tmp = in[i];
        in[i] = in[j];
        in[j] = tmp;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_EQ_INT(mesa_tree_build(dir, CX, in, BIG, &t), 0, "build 100000 entries");
    printf("# built %d entries in %.1f ms\n", BIG, ms_since(&t0));
    CHECK_EQ_INT(t ? mesa_tree_count(t) : 0, BIG + BIG_DIRS + BIG_DIRS * BIG_SUBS,
                 "with 1100 implicit directories");
    for (int i = 0; t && i < BIG; i++) {
        int n;
        sscanf(in[i].path + 10, "%d", &n);
        ok &= mesa_tree_lookup(t, in[i].path, &e) == 0 && strcmp(e.oid, oids[n]) == 0 &&
              e.size == (uint64_t)n && e.mtime_ns == 1000 + n;
    }
    CHECK(ok, "every entry is found with its fields");
    CHECK(t && mesa_tree_lookup(t, "d042/s03", &e) == 0 && e.type == D &&
              e.mtime_ns == 1000 + 42 * 1000 + 3 * 100 + 99,
          "an implicit directory has the newest mtime below it");
    CHECK(t && mesa_tree_lookup(t, "d042/s03/f00000.txt", &e) == -ENOENT, "a missing path");
    if (t) {
        children_of(t, "d042/s03", &c, &rc);
        CHECK_EQ_INT(c.n, BIG_FILES, "a directory of 100 files has 100 children");
        children_of(t, "", &c, &rc);
        CHECK_EQ_INT(c.n, BIG_DIRS, "the root has 100 children");
    }
    mesa_tree_close(t);
    t = NULL;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_EQ_INT(mesa_tree_open(dir, CX, &t), 0, "open (and check) the big listing");
    printf("# opened and checked %u entries in %.1f ms\n", t ? mesa_tree_count(t) : 0,
           ms_since(&t0));
    mesa_tree_close(t);
    free(in);
    free(paths);
    free(oids);
}

/* One of two processes: open, check and sometimes rewrite the listing. */
static int open_loop(const char *dir, int rounds, int rewrite_every)
{
    mesa_tree_t *t = NULL;
    mesa_tree_ent_t e;
    int bad = 0;

    for (int i = 0; i < rounds; i++) {
        if (rewrite_every && i % rewrite_every == 0) {
            bad |= mesa_tree_build(dir, C4, sample, NSAMPLE, &t) != 0;
            mesa_tree_close(t);
        }
        t = NULL;
        if (mesa_tree_open(dir, C4, &t) != 0) {
            bad = 1;
            continue;
        }
        bad |=
            mesa_tree_count(t) != 12 || mesa_tree_lookup(t, "src/main.c", &e) != 0 || e.size != 120;
        mesa_tree_close(t);
    }
    return bad;
}

static void test_two_processes(const char *dir)
{
    mesa_tree_t *t = NULL;
    pid_t pid;
    int st = 0, parent_bad;

    CHECK_EQ_INT(mesa_tree_build(dir, C4, sample, NSAMPLE, &t), 0, "build a shared listing");
    mesa_tree_close(t);
    pid = fork();
    if (pid == 0)
        _exit(open_loop(dir, 300, 7));
    parent_bad = open_loop(dir, 300, 5);
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "a second process opens (and rewrites) the listing 300 times, always whole");
    CHECK_EQ_INT(parent_bad, 0, "so does the first, at the same time");
    CHECK_EQ_INT(ctest_count_files(dir, "tmp"), 0, "no temp files are left");
}

int main(void)
{
    char *dir = ctest_tmpdir("treecache");
    mesa_tree_t *t = NULL;

    test_build(dir, &t);
    if (t) {
        test_lookup(t);
        test_children(t);
    }
    mesa_tree_close(t);
    test_refusals(dir);
    test_derive(dir);
    test_derive_random(dir);
    test_corrupt(dir);
    test_big(dir);
    test_two_processes(dir);
    ctest_rmtree(dir);
    return ctest_done();
}
