/* tests/core/test_overlay.c - the overlay: journal records in, the view out.
 *
 * Most cases are scripts (table `scripts` below): one line each, either a
 * journal record, applied directly as a mesa_jrec_t, or a check of the
 * resulting view, rendered as a short string and compared:
 *   W path id [@mtime]   D path   K path [@mtime]   R path   N new old
 *   L path target [@mtime]   X path 0|1   T path @mtime   E
 *   slot N               records and checks that follow are for slot N
 *   clear                mesa_overlay_clear_dirty of the current slot
 *   ? path = VIEW        lookup
 *   ls dir = [ORIGIN] name=VIEW, ...   children, sorted by name (ORIGIN - is NULL)
 *   dirty = p1 p2 ...    the dirty set, in the order the overlay gives it
 * VIEW: tree:<tree path> | file:<staging id or -> | dir:<origin or opaque> |
 * link:<target> | deleted, then " o=<origin>" (files), " x=<exec>" unless -1,
 * " m=<mtime>" unless 0. "/" stands for the repo root ("").
 * The scripts follow what real programs do: editors and git (write a temp
 * file, rename it over), sed -i (temp, fchmod, rename), mv of directories,
 * rm -rf, tar x, make and gcc. Then come limits: 4096-byte and deep paths,
 * 10,000 entries, bad records, short buffers, callbacks that stop early.
 */
#include "config.h"
#include "core/overlay.h"
#include "tests/lib/ctest.h"

#include <errno.h>
#include <stdlib.h>

#define VIEW_MAX 16384

/* ------------------------------------------------------------------ helpers */

static const char *root(const char *p)
{
    return strcmp(p, "/") == 0 ? "" : p;
}

static int rec(mesa_overlay_t *ov, unsigned slot, int type, const char *arg, const char *path,
               int64_t mtime)
{
    mesa_jrec_t r = {
        .type = (mesa_jtype_t)type, .slot = slot, .mtime_ns = mtime, .arg = arg, .path = path};

    return mesa_overlay_apply(ov, &r);
}

/* VIEW of e (tree: the tree path of a NONE answer). */
static void view(char *b, size_t n, const mesa_ov_ent_t *e, const char *tree)
{
    size_t l = 0;

    switch (e->kind) {
    case MESA_OV_NONE:
        l = snprintf(b, n, "tree:%s", tree ? tree : "?");
        break;
    case MESA_OV_FILE:
        l = snprintf(b, n, "file:%s", e->staging_id ? e->staging_id : "-");
        if (e->origin)
            l += snprintf(b + l, n - l, " o=%s", e->origin);
        break;
    case MESA_OV_DIR:
        l = snprintf(b, n, "dir:%s", e->origin ? e->origin : "opaque");
        break;
    case MESA_OV_LINK:
        l = snprintf(b, n, "link:%s", e->target ? e->target : "?");
        break;
    case MESA_OV_DELETED:
        l = snprintf(b, n, "deleted");
        break;
    }
    if (e->exec != -1)
        l += snprintf(b + l, n - l, " x=%d", e->exec);
    if (e->mtime_ns)
        snprintf(b + l, n - l, " m=%lld", (long long)e->mtime_ns);
}

static char *lookup_view(const mesa_overlay_t *ov, unsigned slot, const char *path)
{
    static char out[VIEW_MAX];
    char tree[VIEW_MAX];
    mesa_ov_ent_t e;
    int rc = mesa_overlay_lookup(ov, slot, path, &e, tree, sizeof tree);

    if (rc < 0)
        snprintf(out, sizeof out, "error %d", rc);
    else
        view(out, sizeof out, &e, tree);
    return out;
}

/* children: collected as "name=VIEW" strings, then sorted and joined. */
typedef struct list {
    char *item[64];
    size_t n;
} list_t;

static int collect(void *ctx, const char *name, const mesa_ov_ent_t *e)
{
    list_t *l = ctx;
    char v[VIEW_MAX], *s;

    view(v, sizeof v, e, e->origin);
    if (l->n == 64 || !(s = malloc(strlen(name) + strlen(v) + 2)))
        return -ENOMEM;
    sprintf(s, "%s=%s", name, v);
    l->item[l->n++] = s;
    return 0;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *ls_view(const mesa_overlay_t *ov, unsigned slot, const char *dir)
{
    static char out[VIEW_MAX];
    const char *origin = "?";
    list_t l = {.n = 0};
    size_t i, len;
    int rc = mesa_overlay_children(ov, slot, dir, collect, &l, &origin);

    qsort(l.item, l.n, sizeof l.item[0], cmp);
    len = snprintf(out, sizeof out, "[%s]", origin ? origin : "-");
    if (rc)
        len += snprintf(out + len, sizeof out - len, " error %d", rc);
    for (i = 0; i < l.n; i++) {
        if (len < sizeof out)
            len += snprintf(out + len, sizeof out - len, "%s%s", i ? ", " : " ", l.item[i]);
        free(l.item[i]);
    }
    return out;
}

static int add_dirty(void *ctx, const char *path)
{
    char *out = ctx;
    size_t len = strlen(out);

    snprintf(out + len, VIEW_MAX - len, "%s%s", len ? " " : "", path[0] ? path : "/");
    return 0;
}

static char *dirty_view(const mesa_overlay_t *ov, unsigned slot)
{
    static char out[VIEW_MAX];
    int rc;

    out[0] = '\0';
    rc = mesa_overlay_dirty(ov, slot, add_dirty, out);
    if (rc)
        snprintf(out, sizeof out, "error %d", rc);
    return out;
}

/* ------------------------------------------------------------------ scripts */

static const struct {
    const char *name, *script;
} scripts[] = {
    {"untouched paths come from the tree", "? / = tree:\n"
                                           "? src/main.c = tree:src/main.c\n"
                                           "ls / = []\n"
                                           "ls src = [src]\n"
                                           "dirty = \n"},
    {"an editor writes a temp file and renames it over a tree file",
     "W src/.main.c.swp s1 @100\n"
     "? src/.main.c.swp = file:s1 o=src/.main.c.swp m=100\n"
     "N src/main.c src/.main.c.swp\n"
     "? src/main.c = file:s1 o=src/.main.c.swp m=100\n"
     "? src/.main.c.swp = deleted\n"
     "ls src = [src] .main.c.swp=deleted, main.c=file:s1 o=src/.main.c.swp m=100\n"
     "dirty = src/.main.c.swp src/main.c\n"},
    {"rename over an existing tree file, then back", "N b a\n"
                                                     "? b = tree:a\n"
                                                     "? a = deleted\n"
                                                     "N a b\n"
                                                     "? a = tree:a\n"
                                                     "? b = deleted\n"
                                                     "ls / = [] a=tree:a, b=deleted\n"
                                                     "dirty = a b\n"},
    {"renames of renamed files chain to the tree path",
     "N b a\n"
     "N c b\n"
     "N d c\n"
     "? d = tree:a\n"
     "X d 1\n"
     "? d = tree:a x=1\n"
     "ls / = [] a=deleted, b=deleted, c=deleted, d=tree:a x=1\n"},
    {"rename a tree dir, write inside it, rename it again",
     "N lib2 lib\n"
     "? lib2 = tree:lib\n"
     "? lib2/old.c = tree:lib/old.c\n"
     "W lib2/new.c s1 @5\n"
     "? lib2/new.c = file:s1 o=lib/new.c m=5\n"
     "N lib3 lib2\n"
     "? lib3 = tree:lib\n"
     "? lib3/old.c = tree:lib/old.c\n"
     "? lib3/deep/er/x.c = tree:lib/deep/er/x.c\n"
     "? lib3/new.c = file:s1 o=lib/new.c m=5\n"
     "? lib2 = deleted\n"
     "? lib2/new.c = deleted\n"
     "? lib = deleted\n"
     "? lib/old.c = deleted\n"
     "ls lib3 = [lib] new.c=file:s1 o=lib/new.c m=5\n"
     "ls lib2 = [-]\n"
     "N top/x lib3/sub\n"
     "? top/x = tree:lib/sub\n"
     "? top/x/y.c = tree:lib/sub/y.c\n"
     "ls lib3 = [lib] new.c=file:s1 o=lib/new.c m=5, sub=deleted\n"
     "ls top = [top] x=tree:lib/sub\n"
     "ls top/x = [lib/sub]\n"
     "dirty = lib lib2 lib2/new.c lib3 lib3/sub top/x\n"},
    {"mv of a dir with locally written files moves them",
     "W d/x s1 @1\n"
     "W d/sub/y s2 @2\n"
     "D d/gone\n"
     "N e d\n"
     "? e/x = file:s1 o=d/x m=1\n"
     "? e/sub/y = file:s2 o=d/sub/y m=2\n"
     "? e/sub/z = tree:d/sub/z\n"
     "? e/gone = deleted\n"
     "? d/x = deleted\n"
     "ls e = [d] gone=deleted, x=file:s1 o=d/x m=1\n"
     "ls e/sub = [d/sub] y=file:s2 o=d/sub/y m=2\n"
     "ls d = [-]\n"
     "ls / = [] d=deleted, e=tree:d\n"
     "dirty = d d/gone d/sub/y d/x e\n"},
    {"mv onto an empty dir replaces it and its whiteouts",
     "D dst/old.txt\n"
     "W src/a.c s1 @1\n"
     "N dst src\n"
     "? dst = tree:src\n"
     "? dst/old.txt = tree:src/old.txt\n"
     "? dst/a.c = file:s1 o=src/a.c m=1\n"
     "? src = deleted\n"
     "? src/a.c = deleted\n"
     "ls dst = [src] a.c=file:s1 o=src/a.c m=1\n"
     "ls / = [] dst=tree:src, src=deleted\n"},
    {"rm -rf then mkdir: the new dir is opaque", "D d/a.c\n"
                                                 "D d/sub/b.c\n"
                                                 "R d/sub\n"
                                                 "R d\n"
                                                 "? d = deleted\n"
                                                 "? d/a.c = deleted\n"
                                                 "? d/other.c = deleted\n"
                                                 "ls d = [-]\n"
                                                 "ls / = [] d=deleted\n"
                                                 "K d @7\n"
                                                 "? d = dir:opaque m=7\n"
                                                 "? d/a.c = deleted\n"
                                                 "? d/sub = deleted\n"
                                                 "ls d = [-]\n"
                                                 "W d/a.c s2 @8\n"
                                                 "? d/a.c = file:s2 m=8\n"
                                                 "ls d = [-] a.c=file:s2 m=8\n"
                                                 "dirty = d d/a.c d/sub d/sub/b.c\n"},
    {"unlink then recreate a file: a new file", "X f.sh 1\n"
                                                "D f.sh\n"
                                                "? f.sh = deleted\n"
                                                "W f.sh s1 @3\n"
                                                "? f.sh = file:s1 m=3\n"},
    {"a locally created file keeps its staging id and exec bit through renames",
     "W out.o s9 @1\n"
     "X out.o 1\n"
     "N bin/out out.o\n"
     "? bin/out = file:s9 o=out.o x=1 m=1\n"
     "? out.o = deleted\n"
     "ls bin = [bin] out=file:s9 o=out.o x=1 m=1\n"},
    {"sed -i: temp file, fchmod, rename over", "W doc/sedAbC123 s4 @9\n"
                                               "X doc/sedAbC123 0\n"
                                               "N doc/README doc/sedAbC123\n"
                                               "? doc/README = file:s4 o=doc/sedAbC123 x=0 m=9\n"
                                               "? doc/sedAbC123 = deleted\n"
                                               "dirty = doc/README doc/sedAbC123\n"},
    {"chmod of a tree file, then a write keeps the bit", "X run.sh 1\n"
                                                         "? run.sh = tree:run.sh x=1\n"
                                                         "ls / = [] run.sh=tree:run.sh x=1\n"
                                                         "W run.sh s3 @4\n"
                                                         "? run.sh = file:s3 o=run.sh x=1 m=4\n"
                                                         "X run.sh 0\n"
                                                         "? run.sh = file:s3 o=run.sh x=0 m=4\n"},
    {"a write to a tree file without chmod leaves exec to the tree",
     "W tools/gen.py s1 @4\n"
     "? tools/gen.py = file:s1 o=tools/gen.py m=4\n"},
    {"utimes of tree paths is an mtime override",
     "T Makefile @123\n"
     "? Makefile = tree:Makefile m=123\n"
     "T src @5\n"
     "? src = tree:src m=5\n"
     "? src/a.c = tree:src/a.c\n"
     "ls src = [src]\n"
     "T / @6\n"
     "? / = tree: m=6\n"
     "ls / = [] Makefile=tree:Makefile m=123, src=tree:src m=5\n"
     "N mk Makefile\n"
     "? mk = tree:Makefile m=123\n"
     "dirty = / Makefile mk src\n"},
    {"utimes and chmod of local entries", "W a s1 @1\n"
                                          "T a @99\n"
                                          "? a = file:s1 o=a m=99\n"
                                          "K newdir @2\n"
                                          "X newdir 1\n"
                                          "T newdir @3\n"
                                          "? newdir = dir:opaque m=3\n"
                                          "L ln target @4\n"
                                          "X ln 1\n"
                                          "? ln = link:target m=4\n"
                                          "dirty = a ln newdir\n"},
    {"tar x into a new directory", "K pkg @1\n"
                                   "K pkg/src @1\n"
                                   "W pkg/src/a.c s1 @1\n"
                                   "T pkg/src/a.c @50\n"
                                   "L pkg/link src/a.c @1\n"
                                   "T pkg/link @51\n"
                                   "T pkg/src @52\n"
                                   "T pkg @60\n"
                                   "? pkg = dir:opaque m=60\n"
                                   "? pkg/src/a.c = file:s1 m=50\n"
                                   "? pkg/link = link:src/a.c m=51\n"
                                   "? pkg/missing = deleted\n"
                                   "ls pkg = [-] link=link:src/a.c m=51, src=dir:opaque m=52\n"
                                   "ls pkg/src = [-] a.c=file:s1 m=50\n"
                                   "dirty = pkg pkg/link pkg/src pkg/src/a.c\n"},
    {"git commits: index.lock renamed over index, objects written",
     "W .git/index.lock s1 @1\n"
     "N .git/index .git/index.lock\n"
     "W .git/objects/ab/tmp_obj s2 @2\n"
     "N .git/objects/ab/cdef .git/objects/ab/tmp_obj\n"
     "? .git/index = file:s1 o=.git/index.lock m=1\n"
     "? .git/objects/ab/cdef = file:s2 o=.git/objects/ab/tmp_obj m=2\n"
     "ls .git/objects/ab = [.git/objects/ab] cdef=file:s2 o=.git/objects/ab/tmp_obj m=2, "
     "tmp_obj=deleted\n"},
    {"make and gcc: temp files come and go, outputs stay", "W tmp/ccX.s s1 @1\n"
                                                           "W main.o s2 @2\n"
                                                           "D tmp/ccX.s\n"
                                                           "W prog s3 @3\n"
                                                           "X prog 1\n"
                                                           "? tmp/ccX.s = deleted\n"
                                                           "? prog = file:s3 o=prog x=1 m=3\n"
                                                           "dirty = main.o prog tmp/ccX.s\n"
                                                           "clear\n"
                                                           "dirty = \n"
                                                           "W main.o s4 @4\n"
                                                           "dirty = main.o\n"
                                                           "? main.o = file:s4 o=main.o m=4\n"},
    {"symlinks replace and move", "L lnk target/x @1\n"
                                  "? lnk = link:target/x m=1\n"
                                  "? lnk/sub = deleted\n"
                                  "N lnk2 lnk\n"
                                  "? lnk2 = link:target/x m=1\n"
                                  "? lnk = deleted\n"},
    {"an epoch clears the slot", "W a s1 @1\n"
                                 "N b c\n"
                                 "T d @3\n"
                                 "E\n"
                                 "? a = tree:a\n"
                                 "? b = tree:b\n"
                                 "? c = tree:c\n"
                                 "? d = tree:d\n"
                                 "ls / = []\n"
                                 "dirty = \n"},
    {"slots are independent", "W a s1 @1\n"
                              "slot 3\n"
                              "D a\n"
                              "? a = deleted\n"
                              "dirty = a\n"
                              "slot 0\n"
                              "? a = file:s1 o=a m=1\n"
                              "slot 3\n"
                              "E\n"
                              "? a = tree:a\n"
                              "slot 0\n"
                              "? a = file:s1 o=a m=1\n"
                              "dirty = a\n"},
};

typedef struct run {
    mesa_overlay_t *ov;
    unsigned slot;
    const char *name;
    int failed; /* records that did not apply */
} run_t;

static int64_t at(const char *s)
{
    return s && s[0] == '@' ? strtoll(s + 1, NULL, 10) : 0;
}

/* Apply one record line (split into words w[0..n)); 0 or the apply result. */
static int run_record(run_t *r, char **w, int n)
{
    const char *a1 = n > 1 ? root(w[1]) : "", *a2 = n > 2 ? w[2] : "-";

    switch (w[0][0]) {
    case 'W':
    case 'L':
    case 'X':
        return rec(r->ov, r->slot, w[0][0], a2, a1, n > 3 ? at(w[3]) : 0);
    case 'N':
        return rec(r->ov, r->slot, 'N', a2, a1, 0);
    case 'E':
        return rec(r->ov, r->slot, 'E', "change", "", 0);
    default:
        return rec(r->ov, r->slot, w[0][0], "-", a1, n > 2 ? at(w[2]) : 0);
    }
}

static void run_check(run_t *r, const char *line, const char *lhs, const char *want)
{
    char what[512];
    const char *got;

    snprintf(what, sizeof what, "%s: %s", r->name, line);
    if (strncmp(lhs, "? ", 2) == 0)
        got = lookup_view(r->ov, r->slot, root(lhs + 2));
    else if (strncmp(lhs, "ls ", 3) == 0)
        got = ls_view(r->ov, r->slot, root(lhs + 3));
    else
        got = dirty_view(r->ov, r->slot);
    CHECK_EQ_STR(got, want, what);
}

static void run_line(run_t *r, char *line)
{
    char *eq = strstr(line, " = "), *w[8], *save = NULL, *tok;
    int n = 0;

    if (eq) {
        char lhs[VIEW_MAX];

        snprintf(lhs, sizeof lhs, "%.*s", (int)(eq - line), line);
        run_check(r, line, lhs, eq + 3);
        return;
    }
    for (tok = strtok_r(line, " ", &save); tok && n < 8; tok = strtok_r(NULL, " ", &save))
        w[n++] = tok;
    if (n == 0)
        return;
    if (strcmp(w[0], "slot") == 0 && n == 2)
        r->slot = (unsigned)atoi(w[1]);
    else if (strcmp(w[0], "clear") == 0)
        mesa_overlay_clear_dirty(r->ov, r->slot);
    else if (run_record(r, w, n) != 0)
        r->failed++;
}

static void test_scripts(void)
{
    size_t i;

    for (i = 0; i < sizeof scripts / sizeof scripts[0]; i++) {
        run_t r = {.ov = mesa_overlay_new(), .name = scripts[i].name};
        char *copy = strdup(scripts[i].script), *line, *save = NULL;

        for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
            run_line(&r, line);
        CHECK_EQ_INT(r.failed, 0, scripts[i].name);
        free(copy);
        mesa_overlay_free(r.ov);
    }
}

/* ------------------------------------------------------------------- limits */

static void test_bad_records(void)
{
    mesa_overlay_t *ov = mesa_overlay_new();
    mesa_jrec_t r = {.type = MESA_J_WRITE, .arg = "s1", .path = NULL};

    CHECK_EQ_INT(rec(ov, 0, 'Z', "-", "a", 0), -EINVAL, "an unknown record type is EINVAL");
    CHECK_EQ_INT(rec(ov, 0, 'W', "s1", "", 0), -EINVAL, "a write of the root is EINVAL");
    CHECK_EQ_INT(rec(ov, 0, 'N', "", "a", 0), -EINVAL, "a rename of the root is EINVAL");
    CHECK_EQ_INT(rec(ov, 0, 'X', "2", "a", 0), -EINVAL, "chmod with arg 2 is EINVAL");
    CHECK_EQ_INT(mesa_overlay_apply(ov, &r), -EINVAL, "a NULL path is EINVAL");
    CHECK_EQ_INT(mesa_overlay_apply(ov, NULL), -EINVAL, "a NULL record is EINVAL");
    CHECK_EQ_STR(dirty_view(ov, 0), "", "refused records leave nothing dirty");
    CHECK_EQ_INT(rec(ov, 9, 'E', "c", "", 0), 0, "an epoch of an unused slot is fine");
    CHECK_EQ_INT(rec(ov, 0, 'N', "a", "a", 0), 0, "a rename onto itself is fine");
    CHECK_EQ_STR(lookup_view(ov, 0, "a"), "tree:a", "and changes nothing");
    mesa_overlay_free(ov);
    mesa_overlay_free(NULL);
}

static void test_short_buffers(void)
{
    mesa_overlay_t *ov = mesa_overlay_new();
    mesa_ov_ent_t e;
    char buf[8];

    rec(ov, 0, 'N', "longname", "b", 0);
    CHECK_EQ_INT(mesa_overlay_lookup(ov, 0, "b", &e, buf, 8), -ENAMETOOLONG,
                 "a tree path longer than the buffer is ENAMETOOLONG");
    CHECK_EQ_INT(mesa_overlay_lookup(ov, 0, "abcdefg", &e, buf, 8), 0,
                 "strlen + 1 bytes are enough");
    CHECK_EQ_STR(buf, "abcdefg", "and hold the path");
    CHECK_EQ_INT(mesa_overlay_lookup(ov, 0, "x", &e, NULL, 0), -ENAMETOOLONG,
                 "no buffer for a NONE answer is ENAMETOOLONG");
    CHECK_EQ_INT(mesa_overlay_lookup(ov, 0, "longname", &e, NULL, 0), 0,
                 "a DELETED answer needs no buffer");
    CHECK_EQ_INT(e.kind, MESA_OV_DELETED, "and is DELETED");
    mesa_overlay_free(ov);
}

static int stop_at_first(void *ctx, const char *name, const mesa_ov_ent_t *e)
{
    (*(int *)ctx)++;
    return 7;
}

static int stop_dirty(void *ctx, const char *path)
{
    (*(int *)ctx)++;
    return 5;
}

static void test_early_stop(void)
{
    mesa_overlay_t *ov = mesa_overlay_new();
    int calls = 0;

    rec(ov, 0, 'D', "-", "a", 0);
    rec(ov, 0, 'D', "-", "b", 0);
    CHECK_EQ_INT(mesa_overlay_children(ov, 0, "", stop_at_first, &calls, NULL), 7,
                 "children returns what fn returned to stop");
    CHECK_EQ_INT(calls, 1, "after one call");
    calls = 0;
    CHECK_EQ_INT(mesa_overlay_dirty(ov, 0, stop_dirty, &calls), 5,
                 "dirty returns what fn returned to stop");
    CHECK_EQ_INT(calls, 1, "after one call");
    mesa_overlay_free(ov);
}

/* "aaa.../aaa.../..." of exactly len bytes, segments of at most 200. */
static char *long_path(size_t len, char c)
{
    char *p = malloc(len + 1);
    size_t i = 0;

    while (i < len) {
        size_t seg = len - i < 200 ? len - i : 200;

        if (len - i - seg == 1) /* never end with a '/' */
            seg--;
        memset(p + i, c, seg);
        i += seg;
        if (i < len)
            p[i++] = '/';
    }
    p[len] = '\0';
    return p;
}

static void test_long_paths(void)
{
    mesa_overlay_t *ov = mesa_overlay_new();
    char *p = long_path(4095, 'a'), *q = malloc(4096 + 2), tree[4096];
    char *parent = strdup(p), *got;
    mesa_ov_ent_t e;

    *strrchr(parent, '/') = '\0';
    CHECK_EQ_INT(rec(ov, 0, 'W', "s1", p, 1), 0, "a write of a 4095-byte path applies");
    got = lookup_view(ov, 0, p);
    CHECK(strncmp(got, "file:s1 o=aaa", 13) == 0, "and is a file");
    CHECK(strstr(ls_view(ov, 0, parent), "=file:s1") != NULL, "listed in its parent");
    /* rename the top dir "aaa..." (200 bytes) to "b": the tree path stays 4095 bytes */
    snprintf(q, 4096 + 2, "b%s", p + 200);
    CHECK_EQ_INT(rec(ov, 0, 'N', "", "b", 0), -EINVAL, "rename from the root is EINVAL");
    p[200] = '\0';
    CHECK_EQ_INT(rec(ov, 0, 'N', p, "b", 0), 0, "rename of the 200-byte top dir applies");
    p[200] = '/';
    strcpy(q + strlen(q) - 1, "z"); /* a sibling of the written file: from the tree */
    CHECK_EQ_INT(mesa_overlay_lookup(ov, 0, q, &e, tree, sizeof tree), 0,
                 "a renamed 3896-byte path resolves to its 4095-byte tree path");
    CHECK_EQ_INT(strlen(tree), 4095, "of 4095 bytes");
    CHECK_EQ_INT(mesa_overlay_lookup(ov, 0, q, &e, tree, 4095), -ENAMETOOLONG,
                 "which does not fit 4095 bytes");
    CHECK_EQ_INT(e.kind, MESA_OV_NONE, "NONE");
    free(p);
    free(q);
    free(parent);
    mesa_overlay_free(ov);
}

static void test_deep_paths(void)
{
    mesa_overlay_t *ov = mesa_overlay_new();
    char *p = malloc(2 * 1000 + 8), *top = malloc(2 * 1000 + 8), tree[4096];
    mesa_ov_ent_t e;
    size_t i;

    for (i = 0; i < 1000; i++)
        memcpy(p + 2 * i, "d/", 2);
    strcpy(p + 2000, "f");
    CHECK_EQ_INT(rec(ov, 0, 'W', "s1", p, 1), 0, "a write 1000 dirs deep applies");
    CHECK_EQ_INT(rec(ov, 0, 'N', "d", "top", 0), 0, "rename of its top dir applies");
    sprintf(top, "top%s", p + 1);
    CHECK_EQ_INT(mesa_overlay_lookup(ov, 0, top, &e, tree, sizeof tree), 0, "lookup applies");
    CHECK_EQ_INT(e.kind, MESA_OV_FILE, "the deep file moved with it");
    CHECK_EQ_STR(e.staging_id, "s1", "with its staging id");
    strcpy(top + strlen(top) - 1, "g");
    CHECK_EQ_INT(mesa_overlay_lookup(ov, 0, top, &e, tree, sizeof tree), 0, "a sibling looks up");
    CHECK(e.kind == MESA_OV_NONE && strncmp(tree, "d/d/", 4) == 0 && strlen(tree) == 2001,
          "in the tree at the old path");
    free(top);
    free(p);
    mesa_overlay_free(ov);
}

static int count(void *ctx, const char *name, const mesa_ov_ent_t *e)
{
    (*(size_t *)ctx)++;
    return 0;
}

static int count_dirty(void *ctx, const char *path)
{
    (*(size_t *)ctx)++;
    return 0;
}

static void test_many_entries(void)
{
    mesa_overlay_t *ov = mesa_overlay_new();
    size_t i, n = 0, failed = 0;
    mesa_ov_ent_t e;
    char path[64], tree[64];

    for (i = 0; i < 10000; i++) {
        snprintf(path, sizeof path, "f/%05zu", i);
        failed += rec(ov, 0, 'W', "s", path, (int64_t)i + 1) != 0;
    }
    CHECK_EQ_INT(failed, 0, "10,000 writes apply");
    CHECK_EQ_INT(mesa_overlay_children(ov, 0, "f", count, &n, NULL), 0, "children of f");
    CHECK_EQ_INT(n, 10000, "are 10,000");
    CHECK_EQ_INT(rec(ov, 0, 'N', "f", "g", 0), 0, "rename of the dir applies");
    CHECK_EQ_INT(mesa_overlay_lookup(ov, 0, "g/09999", &e, tree, sizeof tree), 0, "lookup");
    CHECK(e.kind == MESA_OV_FILE && e.mtime_ns == 10000, "the last file moved");
    n = 0;
    mesa_overlay_children(ov, 0, "g", count, &n, NULL);
    CHECK_EQ_INT(n, 10000, "all 10,000 moved");
    n = 0;
    mesa_overlay_children(ov, 0, "f", count, &n, NULL);
    CHECK_EQ_INT(n, 0, "none stayed");
    n = 0;
    mesa_overlay_dirty(ov, 0, count_dirty, &n);
    CHECK_EQ_INT(n, 10002, "10,000 writes and a rename are 10,002 dirty paths");
    CHECK_EQ_INT(rec(ov, 0, 'R', "-", "g", 0), 0, "rm -rf of the dir applies");
    n = 0;
    mesa_overlay_children(ov, 0, "", count, &n, NULL);
    CHECK_EQ_INT(n, 2, "leaving two whiteouts at the root");
    for (i = failed = 0; i < 10000; i++) {
        snprintf(path, sizeof path, "t/%05zu", i);
        failed += rec(ov, 0, 'D', "-", path, 0) != 0;
    }
    failed += rec(ov, 0, 'R', "-", "t", 0) != 0;
    CHECK_EQ_INT(failed, 0, "rm -rf of a 10,000-file tree dir applies");
    n = 0;
    mesa_overlay_children(ov, 0, "t", count, &n, NULL);
    CHECK_EQ_INT(n, 0, "and leaves no whiteouts below it");
    CHECK_EQ_STR(lookup_view(ov, 0, "t/00001"), "deleted", "its files are gone");
    mesa_overlay_free(ov);
}

int main(void)
{
    test_scripts();
    test_bad_records();
    test_short_buffers();
    test_early_stop();
    test_long_paths();
    test_deep_paths();
    test_many_entries();
    return ctest_done();
}
