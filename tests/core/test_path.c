/* tests/core/test_path.c - virtual paths: normalise, prefix test, split, resolve.
 *
 * Normalisation is checked from tables (repo-root clamping of "..", one- and
 * two-segment prefixes, no prefix), then at the exact length limits, with
 * hostile bytes and with buffers too small, each time making sure nothing is
 * written past outlen. Symlink resolution runs against a fake in-memory
 * filesystem (fake_fs below): chains, relative and absolute targets, clamped
 * climbs, links leaving the mount, loops and the 40-link limit, missing
 * components and files used as directories.
 */
#include "core/path.h"
#include "tests/lib/ctest.h"

#include <errno.h>
#include <stdlib.h>

#define CANARY 0x5a
#define BIG (2 * MESA_PATH_MAX + 64)

static char buf[BIG];

/* Fill buf with CANARY, and 1 if every byte from off on still is. */
static void canary_fill(void)
{
    memset(buf, CANARY, sizeof buf);
}

static int canary_intact(size_t off)
{
    size_t i;

    for (i = off; i < sizeof buf; i++)
        if ((unsigned char)buf[i] != CANARY)
            return 0;
    return 1;
}

/* "/xxx/xxx..." of exactly len bytes (len >= 2), segments of at most 200. */
static char *long_path(size_t len, char c)
{
    char *p = malloc(len + 1);
    size_t i = 0;

    while (i < len) {
        size_t seg = len - i - 1 < 200 ? len - i - 1 : 200;

        if (len - i - 1 - seg == 1) /* never leave a lone '/' at the end */
            seg--;
        p[i++] = '/';
        memset(p + i, c, seg);
        i += seg;
    }
    p[len] = '\0';
    return p;
}

/* ---------------------------------------------------------------- normalize */

static const struct {
    const char *prefix, *cwd, *path;
    int ret;
    const char *want;
} norm_cases[] = {
    /* the repo root is its own parent */
    {"/mesa", "/", "/mesa/acme/app/../x", 0, "/mesa/acme/app/x"},
    {"/mesa", "/mesa/acme/app/src", "../../..", 0, "/mesa/acme/app"},
    {"/mesa", "/mesa/acme/app", "..", 0, "/mesa/acme/app"},
    {"/mesa", "/mesa/acme/app", "../../x", 0, "/mesa/acme/app/x"},
    {"/mesa", "/", "/mesa/acme/app/src/../../../..", 0, "/mesa/acme/app"},
    {"/mesa", "/", "/mesa/acme/app/a/../..", 0, "/mesa/acme/app"},
    {"/mesa", "/", "/mesa/acme/app/./././..", 0, "/mesa/acme/app"},
    {"/mesa", "/", "/mesa/acme/app/../../other", 0, "/mesa/acme/app/other"},
    /* above the repo, ".." works */
    {"/mesa", "/mesa/acme", "..", 0, "/mesa"},
    {"/mesa", "/", "/mesa/acme/..", 0, "/mesa"},
    {"/mesa", "/", "/mesa/..", 0, "/"},
    {"/mesa", "/", "/mesa/../mesa/acme/app", 0, "/mesa/acme/app"},
    /* outside the prefix, ".." works */
    {"/mesa", "/home/u", "../x", 0, "/home/x"},
    {"/mesa", "/", "..", 0, "/"},
    {"/mesa", "/", "/../../..", 0, "/"},
    {"/mesa", "/", "/mesax/a/b/..", 0, "/mesax/a"},
    {"/mesa", "/", "/mes/a/b/..", 0, "/mes/a"},
    {"/mesa", "/", "/home/mesa/a/b/..", 0, "/home/mesa/a"},
    /* spelling */
    {"/mesa", "/", "//mesa///acme/./app/", 0, "/mesa/acme/app"},
    {"/mesa", "/mesa/acme/app", "src/./a.c", 0, "/mesa/acme/app/src/a.c"},
    {"/mesa", "/mesa/acme/app", ".", 0, "/mesa/acme/app"},
    {"/mesa", "/mesa/acme/app", "./", 0, "/mesa/acme/app"},
    {"/mesa", "/", "/mesa/acme/app/...", 0, "/mesa/acme/app/..."},
    {"/mesa", "/", "/mesa/acme/app/.x/..y/x..", 0, "/mesa/acme/app/.x/..y/x.."},
    {"/mesa", "/", "/a/b/c/", 0, "/a/b/c"},
    {"/mesa", "/", "a", 0, "/a"},
    {"/mesa", "/", ".", 0, "/"},
    {"/mesa", "/", "/", 0, "/"},
    {"/mesa", "/", "////", 0, "/"},
    {"/mesa", "/mesa/acme/app", "/etc/passwd", 0, "/etc/passwd"},
    {"/mesa", "/", "/mesa/a\xff\x01 b/r\t/\x7f", 0, "/mesa/a\xff\x01 b/r\t/\x7f"},
    /* a multi-segment prefix */
    {"/a/b", "/", "/a/b/o/r/..", 0, "/a/b/o/r"},
    {"/a/b", "/", "/a/b/o/..", 0, "/a/b"},
    {"/a/b", "/", "/a/b/..", 0, "/a"},
    {"/a/b", "/", "/a/../a/b/o/r/../../x", 0, "/a/b/o/r/x"},
    {"/a/b", "/", "/a/c/o/r/..", 0, "/a/c/o"},
    {"/a/b", "/", "/b/a/o/r/..", 0, "/b/a/o"},
    {"/a/b", "/a/b/o/r/s", "../../../..", 0, "/a/b/o/r"},
    /* no prefix: no clamping */
    {NULL, "/", "/mesa/acme/app/..", 0, "/mesa/acme"},
    {NULL, "/mesa/acme/app", "../../..", 0, "/"},
    /* errors */
    {"/mesa", "/", "", -ENOENT, NULL},
    {"/mesa", "rel", "x", -EINVAL, NULL},
    {"/mesa", "", "x", -EINVAL, NULL},
    {"/mesa", NULL, "x", -EINVAL, NULL},
    {"/mesa", "rel", "/x", 0, "/x"},
    {"/mesa", NULL, "/x", 0, "/x"},
};

static void test_normalize_table(void)
{
    char out[MESA_PATH_MAX], what[256];
    size_t i;

    for (i = 0; i < sizeof norm_cases / sizeof norm_cases[0]; i++) {
        int ret = mesa_path_normalize(norm_cases[i].prefix, norm_cases[i].cwd, norm_cases[i].path,
                                      out, sizeof out);

        snprintf(what, sizeof what, "normalize(%s, %s, \"%s\") returns %d",
                 norm_cases[i].prefix ? norm_cases[i].prefix : "NULL",
                 norm_cases[i].cwd ? norm_cases[i].cwd : "NULL", norm_cases[i].path,
                 norm_cases[i].ret);
        CHECK_EQ_INT(ret, norm_cases[i].ret, what);
        if (norm_cases[i].want && ret == 0) {
            snprintf(what, sizeof what, "normalize(\"%s\") is \"%s\"", norm_cases[i].path,
                     norm_cases[i].want);
            CHECK_EQ_STR(out, norm_cases[i].want, what);
        }
    }
    CHECK_EQ_INT(mesa_path_normalize("/mesa", "/", NULL, out, sizeof out), -EINVAL,
                 "normalize of a NULL path is -EINVAL");
    CHECK_EQ_INT(mesa_path_normalize("/mesa", "/", "/x", NULL, 10), -EINVAL,
                 "normalize into a NULL buffer is -EINVAL");
}

static void test_normalize_segment_limit(void)
{
    char seg[MESA_NAME_MAX + 2], path[MESA_NAME_MAX + 64], out[MESA_PATH_MAX];

    memset(seg, 'n', MESA_NAME_MAX);
    seg[MESA_NAME_MAX] = '\0';
    snprintf(path, sizeof path, "/mesa/acme/app/%s", seg);
    CHECK_EQ_INT(mesa_path_normalize("/mesa", "/", path, out, sizeof out), 0,
                 "a 255-byte segment is accepted");
    CHECK(strcmp(out, path) == 0, "a 255-byte segment is kept whole");
    CHECK_EQ_INT(mesa_path_normalize("/mesa", "/mesa/acme/app", seg, out, sizeof out), 0,
                 "a relative 255-byte segment is accepted");

    seg[MESA_NAME_MAX] = 'n';
    seg[MESA_NAME_MAX + 1] = '\0';
    snprintf(path, sizeof path, "/mesa/acme/app/%s", seg);
    CHECK_EQ_INT(mesa_path_normalize("/mesa", "/", path, out, sizeof out), -ENAMETOOLONG,
                 "a 256-byte segment is -ENAMETOOLONG");
    snprintf(path, sizeof path, "/x/%s/..", seg);
    CHECK_EQ_INT(mesa_path_normalize("/mesa", "/", path, out, sizeof out), -ENAMETOOLONG,
                 "a 256-byte segment is -ENAMETOOLONG even when \"..\" removes it");
    CHECK_EQ_INT(mesa_path_normalize("/mesa", "/", seg, out, sizeof out), -ENAMETOOLONG,
                 "a relative 256-byte segment is -ENAMETOOLONG");
}

static void test_normalize_length_limit(void)
{
    char *p4095 = long_path(MESA_PATH_MAX - 1, 'a');
    char *p4096 = long_path(MESA_PATH_MAX, 'a');
    char *cwd = long_path(2000, 'c');
    char rel[MESA_PATH_MAX];
    size_t n;

    canary_fill();
    CHECK_EQ_INT(mesa_path_normalize("/mesa", "/", p4095, buf, MESA_PATH_MAX), 0,
                 "a 4095-byte result fits MESA_PATH_MAX");
    CHECK(strcmp(buf, p4095) == 0, "the 4095-byte result is the path");
    CHECK(canary_intact(MESA_PATH_MAX), "nothing is written past MESA_PATH_MAX");
    CHECK_EQ_INT(mesa_path_normalize("/mesa", "/", p4096, buf, sizeof buf), -ENAMETOOLONG,
                 "a 4096-byte path is -ENAMETOOLONG whatever outlen");

    /* a relative path whose result is 4095 or 4096 bytes */
    n = MESA_PATH_MAX - 1 - 2000 - 1;
    memcpy(rel, p4095 + 1, n); /* "aaa/aaa..." */
    rel[n] = '\0';
    CHECK_EQ_INT(mesa_path_normalize("/mesa", cwd, rel, buf, sizeof buf), 0,
                 "cwd + relative path of 4095 bytes is accepted");
    CHECK_EQ_INT(strlen(buf), MESA_PATH_MAX - 1, "cwd + relative path is 4095 bytes long");
    rel[n] = 'a';
    rel[n + 1] = '\0';
    CHECK_EQ_INT(mesa_path_normalize("/mesa", cwd, rel, buf, sizeof buf), -ENAMETOOLONG,
                 "cwd + relative path of 4096 bytes is -ENAMETOOLONG");

    /* the intermediate path may exceed the limit if the result does not */
    for (n = 0; n < 12; n++) {
        memset(rel + n * 251, 'y', 250);
        rel[n * 251 + 250] = '/';
    }
    rel[12 * 251] = '\0';
    for (n = 0; n < 12; n++)
        strcat(rel, "../");
    strcat(rel, "z");
    CHECK(strlen(cwd) + strlen(rel) > MESA_PATH_MAX, "the walk goes past MESA_PATH_MAX");
    CHECK_EQ_INT(mesa_path_normalize("/mesa", cwd, rel, buf, MESA_PATH_MAX), 0,
                 "a long detour that comes back fits");
    CHECK(strncmp(buf, cwd, 2000) == 0 && strcmp(buf + 2000, "/z") == 0,
          "the long detour ends at cwd/z");
    free(p4095);
    free(p4096);
    free(cwd);
}

static void test_normalize_small_buffers(void)
{
    canary_fill();
    CHECK_EQ_INT(mesa_path_normalize("/mesa", "/", "/mesa", buf, 5), -ENAMETOOLONG,
                 "\"/mesa\" does not fit in 5 bytes");
    CHECK(canary_intact(5), "a too-small buffer is not overrun");
    CHECK_EQ_INT(mesa_path_normalize("/mesa", "/", "/mesa", buf, 6), 0,
                 "\"/mesa\" fits in 6 bytes");
    CHECK_EQ_STR(buf, "/mesa", "\"/mesa\" in 6 bytes is whole");
    canary_fill();
    CHECK_EQ_INT(mesa_path_normalize("/mesa", "/", "/", buf, 1), -ENAMETOOLONG,
                 "\"/\" does not fit in 1 byte");
    CHECK(canary_intact(1), "a 1-byte buffer is not overrun");
    CHECK_EQ_INT(mesa_path_normalize("/mesa", "/", "/..", buf, 2), 0, "\"/\" fits in 2 bytes");
    canary_fill();
    CHECK_EQ_INT(mesa_path_normalize("/mesa", "/", "/", buf, 0), -ENAMETOOLONG,
                 "outlen 0 is -ENAMETOOLONG");
    CHECK(canary_intact(0), "outlen 0 writes nothing");
    canary_fill();
    CHECK_EQ_INT(mesa_path_normalize("/mesa", "/", "/mesa/acme/app/../../x", buf, 12),
                 -ENAMETOOLONG, "a clamped result longer than outlen is -ENAMETOOLONG");
    CHECK(canary_intact(12), "the clamped overflow is not overrun");
    CHECK_EQ_INT(mesa_path_normalize("/mesa", "/", "/abcdefghij/../x", buf, 4), 0,
                 "a detour longer than outlen that comes back fits");
    CHECK_EQ_STR(buf, "/x", "the short detour ends at /x");
}

/* ---------------------------------------------------------------- under, split */

static const struct {
    const char *prefix, *abs;
    int want;
} under_cases[] = {
    {"/mesa", "/mesa", 1},  {"/mesa", "/mesa/x", 1},    {"/mesa", "/mesa/acme/app/a", 1},
    {"/mesa", "/mesax", 0}, {"/mesa", "/", 0},          {"/mesa", "/mes", 0},
    {"/mesa", "", 0},       {"/mesa", "/home/mesa", 0}, {"/a/b", "/a/b/c", 1},
    {"/a/b", "/a/bc", 0},   {"/a/b", "/a", 0},          {NULL, "/mesa", 0},
    {"/mesa", NULL, 0},
};

static void test_under(void)
{
    char what[128];
    size_t i;

    for (i = 0; i < sizeof under_cases / sizeof under_cases[0]; i++) {
        snprintf(what, sizeof what, "under(%s, %s) is %d",
                 under_cases[i].prefix ? under_cases[i].prefix : "NULL",
                 under_cases[i].abs ? under_cases[i].abs : "NULL", under_cases[i].want);
        CHECK_EQ_INT(mesa_path_under(under_cases[i].prefix, under_cases[i].abs),
                     under_cases[i].want, what);
    }
}

static const struct {
    const char *prefix, *abs;
    mesa_vp_kind_t kind;
    const char *org, *repo, *rel;
} split_cases[] = {
    {"/mesa", "/mesa", MESA_VP_PREFIX, "", "", ""},
    {"/mesa", "/mesa/acme", MESA_VP_ORG, "acme", "", ""},
    {"/mesa", "/mesa/acme/app", MESA_VP_REPO, "acme", "app", ""},
    {"/mesa", "/mesa/acme/app/src", MESA_VP_REPO, "acme", "app", "src"},
    {"/mesa", "/mesa/acme/app/src/a.c", MESA_VP_REPO, "acme", "app", "src/a.c"},
    {"/mesa", "/mesax/acme/app", MESA_VP_OUTSIDE, "", "", ""},
    {"/mesa", "/", MESA_VP_OUTSIDE, "", "", ""},
    {"/mesa", "/home/u", MESA_VP_OUTSIDE, "", "", ""},
    {"/mesa", "/mesa/", MESA_VP_OUTSIDE, "", "", ""},
    {"/mesa", "/mesa//app", MESA_VP_OUTSIDE, "", "", ""},
    {"/mesa", "/mesa/acme//x", MESA_VP_OUTSIDE, "", "", ""},
    {"/a/b", "/a/b/o/r/x/y", MESA_VP_REPO, "o", "r", "x/y"},
    {"/a/b", "/a/b", MESA_VP_PREFIX, "", "", ""},
};

static void test_split_table(void)
{
    mesa_vpath_t vp;
    char what[160];
    size_t i;

    for (i = 0; i < sizeof split_cases / sizeof split_cases[0]; i++) {
        mesa_vp_kind_t k = mesa_path_split(split_cases[i].prefix, split_cases[i].abs, &vp);

        snprintf(what, sizeof what, "split(%s) is kind %d org \"%s\" repo \"%s\" rel \"%s\"",
                 split_cases[i].abs, split_cases[i].kind, split_cases[i].org, split_cases[i].repo,
                 split_cases[i].rel);
        CHECK(k == split_cases[i].kind && vp.kind == k && !strcmp(vp.org, split_cases[i].org) &&
                  !strcmp(vp.repo, split_cases[i].repo) && !strcmp(vp.rel, split_cases[i].rel),
              what);
    }
}

static void test_split_long_names(void)
{
    char name[MESA_NAME_MAX + 2], path[3 * MESA_NAME_MAX];
    mesa_vpath_t vp;

    memset(name, 'o', MESA_NAME_MAX);
    name[MESA_NAME_MAX] = '\0';
    snprintf(path, sizeof path, "/mesa/%s/%s/x", name, name);
    CHECK_EQ_INT(mesa_path_split("/mesa", path, &vp), MESA_VP_REPO,
                 "255-byte org and repo names split");
    CHECK(strlen(vp.org) == MESA_NAME_MAX && strlen(vp.repo) == MESA_NAME_MAX &&
              !strcmp(vp.rel, "x"),
          "255-byte names are copied whole");
    name[MESA_NAME_MAX] = 'o';
    name[MESA_NAME_MAX + 1] = '\0';
    snprintf(path, sizeof path, "/mesa/%s", name);
    CHECK_EQ_INT(mesa_path_split("/mesa", path, &vp), MESA_VP_OUTSIDE, "a 256-byte org is OUTSIDE");
    CHECK(vp.org[0] == '\0', "a 256-byte org leaves org empty");
    snprintf(path, sizeof path, "/mesa/acme/%s/x", name);
    CHECK_EQ_INT(mesa_path_split("/mesa", path, &vp), MESA_VP_OUTSIDE,
                 "a 256-byte repo is OUTSIDE");
    CHECK(vp.org[0] == '\0' && vp.repo[0] == '\0', "a 256-byte repo leaves names empty");
}

/* ---------------------------------------------------------------- resolve */

enum { F_FILE, F_DIR, F_LINK };

static const struct node {
    const char *path;
    int type;
    const char *target;
} fake_nodes[] = {
    {"/mesa/acme/app/src", F_DIR, NULL},
    {"/mesa/acme/app/chain", F_DIR, NULL},
    {"/mesa/acme/app/src/lib", F_DIR, NULL},
    {"/mesa/acme/app/docs", F_DIR, NULL},
    {"/mesa/acme/app/src/a.c", F_FILE, NULL},
    {"/mesa/acme/app/src/lib/b.c", F_FILE, NULL},
    {"/mesa/acme/app/README", F_FILE, NULL},
    {"/mesa/acme/app/l_rel", F_LINK, "src"},
    {"/mesa/acme/app/src/l_up", F_LINK, "../docs"},
    {"/mesa/acme/app/l_abs", F_LINK, "/mesa/acme/app/src/lib"},
    {"/mesa/acme/app/l_chain1", F_LINK, "l_chain2"},
    {"/mesa/acme/app/l_chain2", F_LINK, "src/l_up"},
    {"/mesa/acme/app/src/l_climb", F_LINK, "../../../../../etc"},
    {"/mesa/acme/app/src/l_climb2", F_LINK, "../../../../../src/lib"},
    {"/mesa/acme/app/l_etc", F_LINK, "/etc"},
    {"/mesa/acme/app/l_etcdot", F_LINK, "/mesa/../etc/./x"},
    {"/mesa/acme/app/l_root", F_LINK, "/"},
    {"/mesa/acme/app/l_mnt", F_LINK, "/mesa"},
    {"/mesa/acme/app/l_other", F_LINK, "/mesa/acme/lib/include"},
    {"/mesa/acme/app/l_loopa", F_LINK, "l_loopb"},
    {"/mesa/acme/app/l_loopb", F_LINK, "l_loopa"},
    {"/mesa/acme/app/l_self", F_LINK, "l_self"},
    {"/mesa/acme/app/l_slash", F_LINK, "src/"},
    {"/mesa/acme/app/l_messy", F_LINK, ".//src//lib/."},
    {"/mesa/acme/app/l_dangling", F_LINK, "ghost/file"},
    {"/mesa/acme/app/l_ghostup", F_LINK, "ghost/../src"},
    {"/mesa/acme/app/l_filedir", F_LINK, "README/x/y"},
    {"/mesa/acme/app/l_eio", F_LINK, "eio/x"},
    {"/mesa/acme/app/l_tolink", F_LINK, "l_rel/lib"},
};

struct fake_fs {
    int chain; /* /mesa/acme/app/chain/<i> -> <i+1> for i < chain; then a file */
    int calls, bad_calls;
    char long_target[MESA_PATH_MAX];
};

static int fake_copy(const char *t, char *target, size_t targetlen)
{
    size_t n = strlen(t);

    memcpy(target, t, n < targetlen ? n : targetlen);
    return (int)n;
}

static int fake_chain(struct fake_fs *fs, const char *rest, char *target, size_t targetlen)
{
    char t[32];
    int i = atoi(rest);

    if (i >= fs->chain)
        return 0;
    snprintf(t, sizeof t, "%d", i + 1);
    return fake_copy(t, target, targetlen);
}

/* A file above abs makes it -ENOTDIR. */
static int fake_missing(const char *abs)
{
    size_t i, n;

    for (i = 0; i < sizeof fake_nodes / sizeof fake_nodes[0]; i++) {
        n = strlen(fake_nodes[i].path);
        if (fake_nodes[i].type == F_FILE && !strncmp(abs, fake_nodes[i].path, n) && abs[n] == '/')
            return -ENOTDIR;
    }
    return -ENOENT;
}

/* Below a repo root, normalised: what the callback is promised. */
static int fake_fair_question(const char *abs)
{
    mesa_vpath_t vp;
    size_t n = strlen(abs);

    if (mesa_path_split("/mesa", abs, &vp) != MESA_VP_REPO || !vp.rel[0])
        return 0;
    if (strstr(abs, "//") || strstr(abs, "/./") || strstr(abs, "/../"))
        return 0;
    return abs[n - 1] != '/' && strcmp(abs + n - 2, "/.") && strcmp(abs + n - 3, "/..");
}

static int fake_readlink(void *ctx, const char *abs, char *target, size_t targetlen)
{
    struct fake_fs *fs = ctx;
    size_t i;

    fs->calls++;
    if (!fake_fair_question(abs))
        fs->bad_calls++;
    if (!strncmp(abs, "/mesa/acme/app/chain/", 21))
        return fake_chain(fs, abs + 21, target, targetlen);
    if (!strcmp(abs, "/mesa/acme/app/l_long"))
        return fake_copy(fs->long_target, target, targetlen);
    if (!strncmp(abs, "/mesa/acme/app/eio", 18))
        return -EIO;
    for (i = 0; i < sizeof fake_nodes / sizeof fake_nodes[0]; i++)
        if (!strcmp(abs, fake_nodes[i].path))
            return fake_nodes[i].type == F_LINK ? fake_copy(fake_nodes[i].target, target, targetlen)
                                                : 0;
    return fake_missing(abs);
}

static const struct {
    const char *abs;
    int follow;
    int ret;
    const char *want;
} resolve_cases[] = {
    {"/mesa/acme/app/src/a.c", 1, 0, "/mesa/acme/app/src/a.c"},
    {"/mesa/acme/app", 1, 0, "/mesa/acme/app"},
    {"/mesa/acme", 1, 0, "/mesa/acme"},
    {"/mesa", 1, 0, "/mesa"},
    {"/mesa/acme/app/l_rel", 1, 0, "/mesa/acme/app/src"},
    {"/mesa/acme/app/l_rel", 0, 0, "/mesa/acme/app/l_rel"},
    {"/mesa/acme/app/l_rel/a.c", 0, 0, "/mesa/acme/app/src/a.c"},
    {"/mesa/acme/app/l_rel/l_up", 0, 0, "/mesa/acme/app/src/l_up"},
    {"/mesa/acme/app/l_rel/l_up", 1, 0, "/mesa/acme/app/docs"},
    {"/mesa/acme/app/src/l_up/x", 1, 0, "/mesa/acme/app/docs/x"},
    {"/mesa/acme/app/l_abs/b.c", 1, 0, "/mesa/acme/app/src/lib/b.c"},
    {"/mesa/acme/app/l_chain1", 1, 0, "/mesa/acme/app/docs"},
    {"/mesa/acme/app/l_chain1/new", 0, 0, "/mesa/acme/app/docs/new"},
    {"/mesa/acme/app/l_tolink", 1, 0, "/mesa/acme/app/src/lib"},
    {"/mesa/acme/app/l_slash", 1, 0, "/mesa/acme/app/src"},
    {"/mesa/acme/app/l_messy/b.c", 1, 0, "/mesa/acme/app/src/lib/b.c"},
    /* a climb above the repo root stops there */
    {"/mesa/acme/app/src/l_climb", 1, 0, "/mesa/acme/app/etc"},
    {"/mesa/acme/app/src/l_climb2/b.c", 1, 0, "/mesa/acme/app/src/lib/b.c"},
    /* absolute targets may leave the mount; the rest goes along unresolved */
    {"/mesa/acme/app/l_etc", 1, 0, "/etc"},
    {"/mesa/acme/app/l_etc", 0, 0, "/mesa/acme/app/l_etc"},
    {"/mesa/acme/app/l_etc/passwd", 0, 0, "/etc/passwd"},
    {"/mesa/acme/app/l_etc/a/../b", 0, 0, "/etc/a/../b"},
    {"/mesa/acme/app/l_etcdot", 1, 0, "/etc/./x"},
    {"/mesa/acme/app/l_root", 1, 0, "/"},
    {"/mesa/acme/app/l_mnt", 1, 0, "/mesa"},
    {"/mesa/acme/app/l_mnt/acme/app/l_rel", 1, 0, "/mesa/acme/app/src"},
    {"/mesa/acme/app/l_other/x.h", 1, 0, "/mesa/acme/lib/include/x.h"},
    {"/etc/passwd", 1, 0, "/etc/passwd"},
    {"/", 1, 0, "/"},
    /* loops */
    {"/mesa/acme/app/l_loopa", 1, -ELOOP, NULL},
    {"/mesa/acme/app/l_loopa", 0, 0, "/mesa/acme/app/l_loopa"},
    {"/mesa/acme/app/l_loopa/x", 0, -ELOOP, NULL},
    {"/mesa/acme/app/l_self", 1, -ELOOP, NULL},
    /* missing components stop resolution */
    {"/mesa/acme/app/nope", 1, 0, "/mesa/acme/app/nope"},
    {"/mesa/acme/app/nope/x/y", 1, 0, "/mesa/acme/app/nope/x/y"},
    {"/mesa/acme/app/l_rel/nope/z", 1, 0, "/mesa/acme/app/src/nope/z"},
    {"/mesa/acme/app/l_dangling", 1, 0, "/mesa/acme/app/ghost/file"},
    {"/mesa/acme/app/l_ghostup", 1, -ENOENT, NULL},
    {"/mesa/acme/other/x", 1, 0, "/mesa/acme/other/x"},
    /* files used as directories, other errors */
    {"/mesa/acme/app/README/x/y", 1, -ENOTDIR, NULL},
    {"/mesa/acme/app/README/x", 1, -ENOTDIR, NULL},
    {"/mesa/acme/app/README/x", 0, 0, "/mesa/acme/app/README/x"},
    {"/mesa/acme/app/l_filedir", 1, -ENOTDIR, NULL},
    {"/mesa/acme/app/l_eio", 1, -EIO, NULL},
    {"mesa/acme/app", 1, -EINVAL, NULL},
    {"", 1, -EINVAL, NULL},
};

static void test_resolve_table(void)
{
    struct fake_fs fs = {0};
    char out[MESA_PATH_MAX], what[256];
    size_t i;

    for (i = 0; i < sizeof resolve_cases / sizeof resolve_cases[0]; i++) {
        int ret = mesa_path_resolve("/mesa", resolve_cases[i].abs, resolve_cases[i].follow,
                                    fake_readlink, &fs, out, sizeof out);

        snprintf(what, sizeof what, "resolve(\"%s\", follow=%d) returns %d", resolve_cases[i].abs,
                 resolve_cases[i].follow, resolve_cases[i].ret);
        CHECK_EQ_INT(ret, resolve_cases[i].ret, what);
        if (resolve_cases[i].want && ret == 0) {
            snprintf(what, sizeof what, "resolve(\"%s\", follow=%d) is \"%s\"",
                     resolve_cases[i].abs, resolve_cases[i].follow, resolve_cases[i].want);
            CHECK_EQ_STR(out, resolve_cases[i].want, what);
        }
    }
    CHECK_EQ_INT(fs.bad_calls, 0,
                 "the callback only sees normalised paths below a repo root, never org/repo");
}

static void test_resolve_loop_limit(void)
{
    struct fake_fs fs = {0};
    char out[MESA_PATH_MAX];

    fs.chain = MESA_SYMLOOP_MAX;
    CHECK_EQ_INT(mesa_path_resolve("/mesa", "/mesa/acme/app/chain/0", 1, fake_readlink, &fs, out,
                                   sizeof out),
                 0, "a chain of 40 links resolves");
    CHECK_EQ_STR(out, "/mesa/acme/app/chain/40", "the chain of 40 links ends at its file");
    fs.chain = MESA_SYMLOOP_MAX + 1;
    CHECK_EQ_INT(mesa_path_resolve("/mesa", "/mesa/acme/app/chain/0", 1, fake_readlink, &fs, out,
                                   sizeof out),
                 -ELOOP, "a chain of 41 links is -ELOOP");
    fs.chain = MESA_SYMLOOP_MAX;
    CHECK_EQ_INT(mesa_path_resolve("/mesa", "/mesa/acme/app/chain/0", 0, fake_readlink, &fs, out,
                                   sizeof out),
                 0, "a chain not followed at the end is not walked");
    CHECK_EQ_STR(out, "/mesa/acme/app/chain/0", "the unfollowed chain is the link itself");
}

static void test_resolve_buffers(void)
{
    struct fake_fs fs = {0};
    const char *abs = "/mesa/acme/app/l_rel"; /* 20 bytes */

    canary_fill();
    CHECK_EQ_INT(mesa_path_resolve("/mesa", abs, 0, fake_readlink, &fs, buf, 20), -ENAMETOOLONG,
                 "a path that does not fit outlen is -ENAMETOOLONG");
    CHECK(canary_intact(20), "resolve does not write past a too-small outlen");
    canary_fill();
    CHECK_EQ_INT(mesa_path_resolve("/mesa", abs, 1, fake_readlink, &fs, buf, 22), -ENAMETOOLONG,
                 "a link target that does not fit the gap is -ENAMETOOLONG");
    CHECK(canary_intact(22), "a target that does not fit is not written past outlen");
    canary_fill();
    CHECK_EQ_INT(mesa_path_resolve("/mesa", abs, 1, fake_readlink, &fs, buf, 40), 0,
                 "a link resolves in a small buffer that holds it");
    CHECK_EQ_STR(buf, "/mesa/acme/app/src", "the small-buffer result is right");
    CHECK(canary_intact(40), "the small-buffer resolve stays in its buffer");

    strcpy(buf, "/mesa/acme/app/l_chain1/x");
    CHECK_EQ_INT(mesa_path_resolve("/mesa", buf, 1, fake_readlink, &fs, buf, MESA_PATH_MAX), 0,
                 "abs and out may be the same buffer");
    CHECK_EQ_STR(buf, "/mesa/acme/app/docs/x", "in-place resolution is right");
}

static void test_resolve_long(void)
{
    struct fake_fs fs = {0};
    char out[MESA_PATH_MAX], seg[MESA_NAME_MAX + 32];
    char *deep = long_path(3000, 'd');
    char abs[MESA_PATH_MAX + 64];

    memset(fs.long_target, 't', 2000);
    fs.long_target[2000] = '\0';
    snprintf(abs, sizeof abs, "/mesa/acme/app/l_long");
    CHECK_EQ_INT(mesa_path_resolve("/mesa", abs, 1, fake_readlink, &fs, out, sizeof out),
                 -ENAMETOOLONG, "a link target with a 2000-byte segment is -ENAMETOOLONG");
    memcpy(fs.long_target, deep + 1, 2999);
    fs.long_target[2999] = '\0';
    CHECK_EQ_INT(mesa_path_resolve("/mesa", abs, 1, fake_readlink, &fs, out, sizeof out), 0,
                 "a 2999-byte link target resolves");
    CHECK(strlen(out) == 15 + 2999 && !strncmp(out + 15, deep + 1, 2999),
          "the 2999-byte target lands below the link's directory");
    snprintf(abs, sizeof abs, "/mesa/acme/app/l_long%s", deep);
    CHECK_EQ_INT(mesa_path_resolve("/mesa", abs, 1, fake_readlink, &fs, out, sizeof out),
                 -ENAMETOOLONG, "target + rest beyond MESA_PATH_MAX is -ENAMETOOLONG");
    memset(seg, 's', MESA_NAME_MAX + 1);
    seg[MESA_NAME_MAX + 1] = '\0';
    snprintf(abs, sizeof abs, "/mesa/acme/app/%s", seg);
    CHECK_EQ_INT(mesa_path_resolve("/mesa", abs, 1, fake_readlink, &fs, out, sizeof out),
                 -ENAMETOOLONG, "a 256-byte segment is -ENAMETOOLONG");
    free(deep);
}

int main(void)
{
    test_normalize_table();
    test_normalize_segment_limit();
    test_normalize_length_limit();
    test_normalize_small_buffers();
    test_under();
    test_split_table();
    test_split_long_names();
    test_resolve_table();
    test_resolve_loop_limit();
    test_resolve_buffers();
    test_resolve_long();
    return ctest_done();
}
