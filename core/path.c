/* core/path.c - virtual paths of a mount: normalise, classify, split, resolve.
 *
 * Invariant: nothing here allocates, takes a lock or makes a syscall, and
 * nothing writes outside the caller's buffer: these functions run inside
 * vfork children and in the signal handlers of the programs the shim lives
 * in, on inputs those programs choose (arbitrary bytes, any length). Every
 * result is bounded by MESA_PATH_MAX (length + NUL, as Linux's PATH_MAX) and
 * every segment by MESA_NAME_MAX.
 *
 * Paths are built segment by segment in a small accumulator ("acc") that
 * knows its depth and how many leading segments equal the prefix's, so the
 * repo-root clamp of ".." and the inside/outside test cost O(1) per segment.
 * Callers: every shim wrapper (mesa_path_under first, then normalize, split,
 * resolve), core's metadata and fd code, the launcher.
 *
 * Differences from the kernel, by design: ".." is lexical in normalize (the
 * shim's virtual cwd is logical, like a shell's), and a ".." that follows a
 * non-directory inside a link target is not refused (the callback cannot
 * tell a file from a directory).
 */
#include "path.h"

#include <errno.h>
#include <string.h>

/* A path under construction in buf: "" stands for "/", else "/a/b". */
struct acc {
    char *buf;
    size_t cap;         /* bytes of buf usable for the path and its NUL */
    size_t len;         /* bytes stored */
    size_t depth;       /* segments, stored or not (normalize may overflow) */
    size_t stored;      /* leading segments that fit in buf */
    size_t pmatch;      /* leading segments equal to the prefix's */
    const char *prefix; /* NULL: no repo clamping */
    size_t pdepth;      /* segments of prefix */
};

enum where { W_OUTSIDE, W_ABOVE, W_MOUNT, W_REPO };

static size_t seg_count(const char *s)
{
    size_t n = 0;

    while (*s) {
        while (*s == '/')
            s++;
        if (!*s)
            break;
        n++;
        while (*s && *s != '/')
            s++;
    }
    return n;
}

/* Does segment i of prefix equal seg[0..n)? */
static int prefix_seg_eq(const char *prefix, size_t i, const char *seg, size_t n)
{
    const char *s = prefix;
    size_t k;

    for (;;) {
        while (*s == '/')
            s++;
        for (k = 0; s[k] && s[k] != '/'; k++)
            ;
        if (!k)
            return 0;
        if (!i--)
            return k == n && memcmp(s, seg, n) == 0;
        s += k;
    }
}

static void acc_init(struct acc *a, const char *prefix, char *buf, size_t cap)
{
    memset(a, 0, sizeof *a);
    a->buf = buf;
    a->cap = cap < MESA_PATH_MAX ? cap : MESA_PATH_MAX;
    a->prefix = prefix;
    a->pdepth = prefix ? seg_count(prefix) : 0;
}

static void acc_reset(struct acc *a)
{
    a->len = a->depth = a->stored = a->pmatch = 0;
}

/* Is the path exactly a repo root, whose ".." stays put? */
static int acc_at_repo_root(const struct acc *a)
{
    return a->prefix && a->pmatch == a->pdepth && a->depth == a->pdepth + 2;
}

static enum where acc_where(const struct acc *a)
{
    if (!a->prefix)
        return W_OUTSIDE;
    if (a->pmatch < a->pdepth)
        return a->pmatch == a->depth ? W_ABOVE : W_OUTSIDE;
    return a->depth > a->pdepth + 2 ? W_REPO : W_MOUNT;
}

/* Append seg[0..n) (which may lie in buf, after len). Returns 0 when it did
 * not fit; the segment then only counts (normalize decides later). */
static int acc_push(struct acc *a, const char *seg, size_t n)
{
    if (a->prefix && a->pmatch == a->depth && a->depth < a->pdepth &&
        prefix_seg_eq(a->prefix, a->depth, seg, n))
        a->pmatch++;
    a->depth++;
    if (a->stored + 1 != a->depth || a->len + 1 + n >= a->cap)
        return 0;
    a->buf[a->len] = '/';
    memmove(a->buf + a->len + 1, seg, n);
    a->len += 1 + n;
    a->stored++;
    return 1;
}

/* Remove the last segment, whatever it is. */
static void acc_drop(struct acc *a)
{
    if (!a->depth)
        return;
    a->depth--;
    if (a->pmatch > a->depth)
        a->pmatch = a->depth;
    if (a->stored > a->depth) {
        a->stored--;
        while (a->len && a->buf[--a->len] != '/')
            ;
    }
}

/* "..": "/" and a repo root are their own parents. */
static void acc_up(struct acc *a)
{
    if (!acc_at_repo_root(a))
        acc_drop(a);
}

static int acc_finish(struct acc *a)
{
    if (a->stored != a->depth)
        return -ENAMETOOLONG;
    if (!a->len) {
        if (a->cap < 2)
            return -ENAMETOOLONG;
        a->buf[a->len++] = '/';
    }
    a->buf[a->len] = '\0';
    return 0;
}

static int is_dot(const char *s, size_t n)
{
    return n == 1 && s[0] == '.';
}

static int is_dotdot(const char *s, size_t n)
{
    return n == 2 && s[0] == '.' && s[1] == '.';
}

/* Apply every segment of the NUL-terminated s to a, lexically. */
static int acc_walk(struct acc *a, const char *s)
{
    size_t n;

    for (;;) {
        while (*s == '/')
            s++;
        if (!*s)
            return 0;
        for (n = 0; s[n] && s[n] != '/'; n++)
            if (n >= MESA_NAME_MAX)
                return -ENAMETOOLONG;
        if (is_dotdot(s, n))
            acc_up(a);
        else if (!is_dot(s, n))
            acc_push(a, s, n);
        s += n;
    }
}

/* Length of s if shorter than MESA_PATH_MAX, else MESA_PATH_MAX. */
static size_t path_len(const char *s)
{
    return strnlen(s, MESA_PATH_MAX);
}

int mesa_path_normalize(const char *prefix, const char *cwd, const char *path, char *out,
                        size_t outlen)
{
    struct acc a;
    int ret;

    if (!path || !out)
        return -EINVAL;
    if (!*path)
        return -ENOENT;
    if (path_len(path) >= MESA_PATH_MAX)
        return -ENAMETOOLONG;
    acc_init(&a, prefix, out, outlen);
    if (path[0] != '/') {
        if (!cwd || cwd[0] != '/')
            return -EINVAL;
        if (path_len(cwd) >= MESA_PATH_MAX)
            return -ENAMETOOLONG;
        ret = acc_walk(&a, cwd);
        if (ret)
            return ret;
    }
    ret = acc_walk(&a, path);
    return ret ? ret : acc_finish(&a);
}

/* The hot fall-through test of every wrapper: one strncmp, one byte. The
 * prefix is normalised and is not "/" (a mount lives somewhere). */
int mesa_path_under(const char *prefix, const char *abs)
{
    size_t n;

    if (!prefix || !abs)
        return 0;
    n = strlen(prefix);
    return strncmp(abs, prefix, n) == 0 && (abs[n] == '/' || abs[n] == '\0');
}

/* Copy the name at *p (up to '/' or NUL) into dst; advance *p past it.
 * Returns 0 for an empty or over-long name. */
static int take_name(const char **p, char dst[MESA_NAME_MAX + 1])
{
    size_t n;

    for (n = 0; (*p)[n] && (*p)[n] != '/'; n++)
        if (n >= MESA_NAME_MAX)
            return 0;
    if (!n)
        return 0;
    memcpy(dst, *p, n);
    dst[n] = '\0';
    *p += n;
    return 1;
}

/* Malformed paths under the prefix (an empty org or repo name, or one longer
 * than MESA_NAME_MAX) cannot come out of normalize; they split as OUTSIDE so
 * that a caller never acts on a truncated name. */
mesa_vp_kind_t mesa_path_split(const char *prefix, const char *abs, mesa_vpath_t *out)
{
    const char *p;

    if (!out)
        return MESA_VP_OUTSIDE;
    out->kind = MESA_VP_OUTSIDE;
    out->org[0] = out->repo[0] = '\0';
    out->rel = "";
    if (!mesa_path_under(prefix, abs))
        return MESA_VP_OUTSIDE;
    p = abs + strlen(prefix);
    if (!*p)
        return out->kind = MESA_VP_PREFIX;
    p++;
    if (!take_name(&p, out->org))
        goto malformed;
    if (!*p)
        return out->kind = MESA_VP_ORG;
    p++;
    if (!take_name(&p, out->repo))
        goto malformed;
    out->rel = *p ? p + 1 : p;
    return out->kind = MESA_VP_REPO;
malformed:
    out->org[0] = out->repo[0] = '\0';
    return MESA_VP_OUTSIDE;
}

/*
 * Symlink resolution works inside out[0..cap): the resolved part grows from
 * the left (acc), the part still to walk ("pending") sits right-aligned at
 * out[ps..pe), and link targets are read into the gap between them and then
 * moved in front of pending. So no buffer but the caller's is needed; the
 * price is that resolved + target + pending must fit in MESA_PATH_MAX.
 */
struct walk {
    struct acc a;
    size_t ps, pe; /* pending: out[ps..pe) */
    int links;
    int missing; /* a component was missing: no more lookups */
};

/* Move pending out[ps..pe) behind the resolved path and finish. Used when
 * resolution stops outside the mount: the real filesystem walks the rest. */
static void walk_append_raw(struct walk *w)
{
    struct acc *a = &w->a;
    size_t n;

    while (w->ps < w->pe && a->buf[w->ps] == '/')
        w->ps++;
    n = w->pe - w->ps;
    if (n) {
        a->buf[a->len] = '/';
        memmove(a->buf + a->len + 1, a->buf + w->ps, n);
        a->len += 1 + n;
    }
}

/* Replace the link just pushed by its target, read at buf[len + 1]. */
static int walk_splice(struct walk *w, size_t r)
{
    struct acc *a = &w->a;
    const char *target = a->buf + a->len + 1;

    if (++w->links > MESA_SYMLOOP_MAX)
        return -ELOOP;
    w->ps -= r;
    memmove(a->buf + w->ps, target, r);
    if (a->buf[w->ps] == '/')
        acc_reset(a);
    else
        acc_drop(a);
    return 0;
}

/* Look the component just pushed up; splice it if it is a link. */
static int walk_lookup(struct walk *w, mesa_readlink_fn fn, void *ctx)
{
    struct acc *a = &w->a;
    size_t room = w->ps - a->len - 1;
    int r;

    a->buf[a->len] = '\0';
    r = fn(ctx, a->buf, a->buf + a->len + 1, room);
    if (r == -ENOENT) {
        w->missing = 1;
        return 0;
    }
    if (r <= 0)
        return r;
    if ((size_t)r >= room)
        return -ENAMETOOLONG;
    return walk_splice(w, (size_t)r);
}

/* Take the next pending segment; returns its length, 0 at the end. */
static size_t walk_next(struct walk *w, const char **seg)
{
    const char *b = w->a.buf;
    size_t s;

    while (w->ps < w->pe && b[w->ps] == '/')
        w->ps++;
    s = w->ps;
    while (w->ps < w->pe && b[w->ps] != '/')
        w->ps++;
    *seg = b + s;
    return w->ps - s;
}

static int walk_is_last(const struct walk *w)
{
    size_t i;

    for (i = w->ps; i < w->pe; i++)
        if (w->a.buf[i] != '/')
            return 0;
    return 1;
}

/* One component. Returns 0 to go on, 1 when done, or -errno. */
static int walk_step(struct walk *w, int follow_last, mesa_readlink_fn fn, void *ctx)
{
    struct acc *a = &w->a;
    const char *seg;
    size_t n = walk_next(w, &seg);

    if (!n)
        return 1;
    if (n > MESA_NAME_MAX)
        return -ENAMETOOLONG;
    if (is_dot(seg, n))
        return 0;
    if (is_dotdot(seg, n)) {
        if (w->missing) /* the kernel fails "missing/.." too */
            return -ENOENT;
        acc_up(a);
        return 0;
    }
    a->cap = w->ps;
    if (!acc_push(a, seg, n))
        return -ENAMETOOLONG;
    switch (acc_where(a)) {
    case W_OUTSIDE:
        walk_append_raw(w);
        return 1;
    case W_REPO:
        break;
    default:
        return 0;
    }
    if (w->missing || (!follow_last && walk_is_last(w)))
        return 0;
    return walk_lookup(w, fn, ctx);
}

int mesa_path_resolve(const char *prefix, const char *abs, int follow_last, mesa_readlink_fn fn,
                      void *ctx, char *out, size_t outlen)
{
    struct walk w;
    size_t n;
    int ret;

    if (!prefix || !abs || !fn || !out || abs[0] != '/')
        return -EINVAL;
    memset(&w, 0, sizeof w);
    acc_init(&w.a, prefix, out, outlen);
    n = path_len(abs);
    if (n >= w.a.cap)
        return -ENAMETOOLONG;
    w.pe = w.a.cap;
    w.ps = w.pe - n;
    memmove(out + w.ps, abs, n);
    do
        ret = walk_step(&w, follow_last, fn, ctx);
    while (!ret);
    return ret < 0 ? ret : acc_finish(&w.a);
}
