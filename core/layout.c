/* core/layout.c - read and validate a layout document (the SDK's JSON path
 * map) and flatten it into mount points.
 *
 * Invariant: a layout that loads is structurally sound: every mount path is
 * absolute and normalised, every declaration names a repo with mode ro|rw
 * and at most one of bookmark/changeId, no path is declared twice, and a
 * repo mounted at several paths is mounted the same way at each (a mount
 * has one state slot per repo). Whether the repos exist is the launcher's
 * business. Callers: tools/mesarun.c (--layout), tools/mesa_layout.c.
 */
#include "config.h"
#include "layout.h"
#include "env.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ctx {
    mesa_layout_t *l;
    size_t cap;
    char *err;
    size_t errlen;
};

static int fail(struct ctx *c, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct ctx *c, const char *at, const char *fmt, ...)
{
    char rule[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rule, sizeof rule, fmt, ap);
    va_end(ap);
    snprintf(c->err, c->errlen, "%s (at %s)", rule, at);
    return -1;
}

/* Segments of s, none empty, ".", or "..", no trailing '/'. */
static int segments_clean(const char *s)
{
    while (*s) {
        size_t n = strcspn(s, "/");
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.') ||
            n > MESA_NAME_MAX)
            return 0;
        s += n;
        if (*s == '/' && !*++s)
            return 0;
    }
    return 1;
}

static int check_key(struct ctx *c, const char *key)
{
    if (key[0] != '/')
        return fail(c, key, "a mount path must be absolute");
    if (!key[1])
        return fail(c, key, "a mount path must not be / itself");
    if (strlen(key) >= MESA_PATH_MAX || !segments_clean(key + 1))
        return fail(c, key, "a mount path must be normalised (no '.', '..', '//' or trailing '/')");
    return 0;
}

/* An optional non-empty string field into out (outlen bytes). */
static int opt_string(struct ctx *c, const char *at, json_t *d, const char *field, char *out,
                      size_t outlen)
{
    json_t *v = json_object_get(d, field);
    out[0] = '\0';
    if (!v)
        return 0;
    if (!json_is_string(v) || !json_string_length(v))
        return fail(c, at, "%s must be a non-empty string", field);
    if (json_string_length(v) >= outlen)
        return fail(c, at, "%s is too long (at most %zu bytes)", field, outlen - 1);
    snprintf(out, outlen, "%s", json_string_value(v));
    return 0;
}

static int check_fields(struct ctx *c, const char *at, json_t *d)
{
    static const char *const known[] = {"kind",     "name",  "mode",     "bookmark",
                                        "changeId", "alias", "subPaths", NULL};
    const char *k;
    json_t *v;
    json_object_foreach(d, k, v)
    {
        int ok = 0;
        for (int i = 0; known[i] && !ok; i++)
            ok = strcmp(k, known[i]) == 0;
        if (!ok)
            return fail(c, at, "unknown field '%s' in a repo declaration", k);
    }
    json_t *kind = json_object_get(d, "kind");
    if (!kind)
        return fail(c, at, "missing kind (the only kind is \"repo\")");
    if (!json_is_string(kind) || strcmp(json_string_value(kind), "repo") != 0)
        return fail(c, at, "unknown kind (the only kind is \"repo\")");
    return 0;
}

static int same_mount(const mesa_layout_mount_t *a, const mesa_layout_mount_t *b)
{
    return a->read_only == b->read_only && strcmp(a->bookmark, b->bookmark) == 0 &&
           strcmp(a->change, b->change) == 0;
}

/* Add mount m at path, checking it against those already there. */
static int add_mount(struct ctx *c, const mesa_layout_mount_t *m)
{
    mesa_layout_t *l = c->l;
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->m[i].path, m->path) == 0)
            return fail(c, m->path,
                        "a mount path is declared twice (two repos cannot both be "
                        "mounted there)");
        if (strcmp(l->m[i].name, m->name) == 0 && !same_mount(&l->m[i], m))
            return fail(c, m->path,
                        "repo '%s' is also mounted at %s with another mode or revision (a "
                        "mount has one state per repo)",
                        m->name, l->m[i].path);
        if (m->alias[0] && strcmp(l->m[i].alias, m->alias) == 0)
            return fail(c, m->path, "alias '%s' is also used at %s", m->alias, l->m[i].path);
    }
    if (l->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        mesa_layout_mount_t *nm = realloc(l->m, cap * sizeof *nm);
        if (!nm)
            return fail(c, m->path, "out of memory");
        l->m = nm;
        c->cap = cap;
    }
    l->m[l->n++] = *m;
    return 0;
}

static int add_value(struct ctx *c, const char *path, json_t *v);

static int add_subpaths(struct ctx *c, const char *path, json_t *subs)
{
    const char *k;
    json_t *v;
    if (!json_is_object(subs))
        return fail(c, path, "subPaths must be an object of relative paths");
    json_object_foreach(subs, k, v)
    {
        char sub[MESA_PATH_MAX];
        int n = snprintf(sub, sizeof sub, "%s/%s", path, k);
        if (!k[0] || k[0] == '/' || !segments_clean(k))
            return fail(c, n > 0 && (size_t)n < sizeof sub ? sub : path,
                        "a subPaths key must be a normalised relative path (no leading '/', "
                        "'.', '..', '//' or trailing '/')");
        if (n < 0 || (size_t)n >= sizeof sub)
            return fail(c, path, "a mount path is too long");
        if (add_value(c, sub, v) < 0)
            return -1;
    }
    return 0;
}

static int add_decl(struct ctx *c, const char *path, json_t *d)
{
    mesa_layout_mount_t *m = calloc(1, sizeof *m);
    int rc = -1;
    if (!m)
        return fail(c, path, "out of memory");
    snprintf(m->path, sizeof m->path, "%s", path);
    if (!json_is_object(d)) {
        fail(c, path, "a value must be a repo declaration (an object) or a list of them");
        goto out;
    }
    if (check_fields(c, path, d) < 0)
        goto out;
    json_t *name = json_object_get(d, "name"), *mode = json_object_get(d, "mode");
    if (!name) {
        fail(c, path, "missing name");
        goto out;
    }
    if (!json_is_string(name) || !mesa_config_repo_valid(json_string_value(name))) {
        fail(c, path, "name must be a repository name (1..100 of [A-Za-z0-9._-])");
        goto out;
    }
    snprintf(m->name, sizeof m->name, "%s", json_string_value(name));
    if (!json_is_string(mode) || (strcmp(json_string_value(mode), "ro") != 0 &&
                                  strcmp(json_string_value(mode), "rw") != 0)) {
        fail(c, path, "mode must be \"ro\" or \"rw\"");
        goto out;
    }
    m->read_only = strcmp(json_string_value(mode), "ro") == 0;
    if (opt_string(c, path, d, "bookmark", m->bookmark, sizeof m->bookmark) < 0 ||
        opt_string(c, path, d, "changeId", m->change, sizeof m->change) < 0 ||
        opt_string(c, path, d, "alias", m->alias, sizeof m->alias) < 0)
        goto out;
    if (m->bookmark[0] && m->change[0]) {
        fail(c, path, "bookmark and changeId are mutually exclusive");
        goto out;
    }
    if (add_mount(c, m) < 0)
        goto out;
    json_t *subs = json_object_get(d, "subPaths");
    rc = subs ? add_subpaths(c, path, subs) : 0;
out:
    free(m);
    return rc;
}

static int add_value(struct ctx *c, const char *path, json_t *v)
{
    size_t i;
    json_t *d;
    if (!json_is_array(v))
        return add_decl(c, path, v);
    if (!json_array_size(v))
        return fail(c, path, "a list of declarations must not be empty");
    json_array_foreach(v, i, d)
    {
        if (add_decl(c, path, d) < 0)
            return -1;
    }
    return 0;
}

static int by_length(const void *a, const void *b)
{
    const mesa_layout_mount_t *x = a, *y = b;
    size_t lx = strlen(x->path), ly = strlen(y->path);
    return lx != ly ? (lx < ly ? -1 : 1) : strcmp(x->path, y->path);
}

int mesa_layout_load(const char *file, mesa_layout_t *out, char *err, size_t errlen)
{
    struct ctx c = {.l = out, .err = err, .errlen = errlen};
    json_error_t je;
    const char *k;
    json_t *v;
    memset(out, 0, sizeof *out);
    json_t *root = json_load_file(file, JSON_REJECT_DUPLICATES, &je);
    int rc = -1;
    if (!root) {
        char at[64];
        snprintf(at, sizeof at, "line %d", je.line);
        if (strstr(je.text, "duplicate object key"))
            fail(&c, at, "a mount path is declared twice (two repos cannot both be mounted there)");
        else
            fail(&c, at, "not a JSON document: %s", je.text);
        return -1;
    }
    if (!json_is_object(root)) {
        fail(&c, "top level", "a layout must be a JSON object of mount paths");
        goto out;
    }
    if (!json_object_size(root)) {
        fail(&c, "top level", "a layout must declare at least one mount path");
        goto out;
    }
    json_object_foreach(root, k, v)
    {
        if (check_key(&c, k) < 0 || add_value(&c, k, v) < 0)
            goto out;
    }
    qsort(out->m, out->n, sizeof *out->m, by_length);
    rc = 0;
out:
    json_decref(root);
    if (rc < 0)
        mesa_layout_free(out);
    return rc;
}

const mesa_layout_mount_t *mesa_layout_find(const mesa_layout_t *l, const char *path)
{
    for (size_t i = l->n; i-- > 0;) {
        size_t n = strlen(l->m[i].path);
        if (strncmp(path, l->m[i].path, n) == 0 && (path[n] == '/' || !path[n]))
            return &l->m[i];
    }
    return NULL;
}

int mesa_layout_canonical(const mesa_layout_t *l, const char *prefix, const char *org,
                          const char *path, char *out, size_t outlen)
{
    const mesa_layout_mount_t *m = mesa_layout_find(l, path);
    if (!m)
        return 0;
    int n = snprintf(out, outlen, "%s/%s/%s%s", prefix, org, m->name, path + strlen(m->path));
    return n > 0 && (size_t)n < outlen ? 1 : -ENAMETOOLONG;
}

int mesa_layout_workspace(const mesa_layout_t *l, const char *prefix, const char *org,
                          const char *canon, char *out, size_t outlen)
{
    for (size_t i = 0; i < l->n; i++) {
        char root[MESA_PATH_MAX];
        int n = snprintf(root, sizeof root, "%s/%s/%s", prefix, org, l->m[i].name);
        if (n < 0 || (size_t)n >= sizeof root || strncmp(canon, root, (size_t)n) != 0 ||
            (canon[n] != '/' && canon[n]))
            continue;
        n = snprintf(out, outlen, "%s%s", l->m[i].path, canon + n);
        return n > 0 && (size_t)n < outlen ? 1 : -ENAMETOOLONG;
    }
    return 0;
}

char *mesa_layout_export(const mesa_layout_t *l, const char *prefix, const char *org,
                         int hide_canonical)
{
    size_t cap = 7, len = 0;
    for (size_t i = 0; i < l->n; i++)
        cap += strlen(l->m[i].path) + strlen(prefix) + strlen(org) + strlen(l->m[i].name) + 4;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    s[0] = '\0';
    if (hide_canonical)
        len += (size_t)snprintf(s, cap, "!hide\n");
    for (size_t i = 0; i < l->n; i++)
        len += (size_t)snprintf(s + len, cap - len, "%s\t%s/%s/%s\n", l->m[i].path, prefix, org,
                                l->m[i].name);
    return s;
}

void mesa_layout_free(mesa_layout_t *l)
{
    free(l->m);
    l->m = NULL;
    l->n = 0;
}
