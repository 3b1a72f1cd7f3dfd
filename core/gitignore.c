/* core/gitignore.c - .gitignore matching, the way git itself decides.
 *
 * Invariant: mesa_ignore_match answers what `git check-ignore --no-index`
 * answers for the same .gitignore files (core.ignoreCase off, no global or
 * info/exclude files). That means reproducing git's code, not its manual:
 * - parsing as dir.c's add_patterns_from_buffer: a UTF-8 BOM is skipped, a
 *   line's '\r' is dropped, '#' starts a comment only in column 0, trailing
 *   spaces go unless backslash-escaped, a NUL byte ends the line's pattern;
 * - matching as last_matching_pattern_from_list: a pattern without '/' (but
 *   a trailing one) matches the basename, any other matches the path
 *   relative to its .gitignore's directory with WM_PATHNAME, and the literal
 *   head of the pattern is compared before wildmatch sees the rest (which is
 *   why "a**" + "/b" behaves as git's does, not as the manual suggests);
 * - precedence as prep_exclude: every ancestor directory is checked first,
 *   against the .gitignore files above it, and an ignored one settles it;
 *   then the path, against deeper files first, last pattern first;
 * - wildmatch as git's wildmatch.c (rsync's, with WM_PATHNAME, and git's
 *   early aborts that keep "a*a*a*...b" linear), ASCII classes as git's
 *   sane ctype ([:space:] is " \t\n\r", not '\v' or '\f').
 * One departure: git's matcher is exponential on some patterns (ten "**"
 * segments against a path 40 directories deep keep git busy for minutes).
 * Here a match may nest WM_MAX_DEPTH stars and make WM_BUDGET steps; a
 * pattern that needs more does not match. No real .gitignore comes near.
 * Callers: the pusher (what to push), the tree cache and shim (where an
 * ignored file lives). Built once, then read-only: safe to share.
 */
#include "gitignore.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PF_NODIR 1u
#define PF_ENDSWITH 4u
#define PF_MUSTBEDIR 8u
#define PF_NEGATIVE 16u

#define WM_PATHNAME 2u
#define WM_MATCH 0
#define WM_NOMATCH 1
#define WM_ABORT_ALL -1
#define WM_ABORT_TO_STARSTAR -2
#define WM_MAX_DEPTH 256 /* nested stars */
#define WM_BUDGET 50000L /* dowild calls per match; real patterns need < 1000 */

typedef unsigned char uchar;

struct pattern {
    unsigned flags;
    size_t len;    /* without the trailing '/' of a directory pattern */
    size_t nowild; /* leading bytes free of glob characters */
    char text[];   /* NUL-terminated at len */
};

/* The patterns of the .gitignore in dir ("" for the root), in file order. */
struct list {
    char *dir;
    size_t dirlen;
    struct pattern **pats;
    size_t n, cap;
};

struct mesa_ignore {
    struct list *lists; /* sorted by dir */
    size_t n, cap;
};

/* ---------------------------------------------------------------- wildmatch */

static int is_glob_special(uchar c)
{
    return c == '*' || c == '?' || c == '[' || c == '\\';
}

static int is_alpha(uchar c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(uchar c)
{
    return c >= '0' && c <= '9';
}

static int is_graph(uchar c)
{
    return c > ' ' && c < 0x7f;
}

/* 1 or 0 for a known [:class:] (name of n bytes), -1 for an unknown one. */
static int class_match(const uchar *name, size_t n, uchar c)
{
    static const char *const names[] = {"alnum", "alpha", "blank", "cntrl", "digit", "graph",
                                        "lower", "print", "punct", "space", "upper", "xdigit"};
    const int in[] = {
        is_alpha(c) || is_digit(c),
        is_alpha(c),
        c == ' ' || c == '\t',
        c < ' ' || c == 0x7f,
        is_digit(c),
        is_graph(c),
        c >= 'a' && c <= 'z',
        is_graph(c) || c == ' ',
        is_graph(c) && !is_alpha(c) && !is_digit(c),
        c == ' ' || c == '\t' || c == '\n' || c == '\r',
        c >= 'A' && c <= 'Z',
        is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'),
    };
    size_t i;

    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == n && memcmp(names[i], name, n) == 0)
            return in[i];
    return -1;
}

/* The text byte at t, or 0 at its end (texts hold no NUL). */
static uchar tch(const uchar *t, const uchar *tend)
{
    return t < tend ? *t : 0;
}

/* A bracket expression at *pp ('[' already consumed) against t_ch.
 * Returns WM_MATCH / WM_NOMATCH / WM_ABORT_ALL; leaves *pp on its ']'. */
static int match_bracket(const uchar **pp, uchar t_ch, unsigned flags)
{
    const uchar *p = *pp;
    uchar p_ch = *p, prev_ch = 0;
    int negated, matched = 0;

    if (p_ch == '^')
        p_ch = '!';
    negated = p_ch == '!';
    if (negated)
        p_ch = *++p;
    do {
        if (!p_ch)
            return WM_ABORT_ALL;
        if (p_ch == '\\') {
            p_ch = *++p;
            if (!p_ch)
                return WM_ABORT_ALL;
            if (t_ch == p_ch)
                matched = 1;
        } else if (p_ch == '-' && prev_ch && p[1] && p[1] != ']') {
            p_ch = *++p;
            if (p_ch == '\\') {
                p_ch = *++p;
                if (!p_ch)
                    return WM_ABORT_ALL;
            }
            if (t_ch <= p_ch && t_ch >= prev_ch)
                matched = 1;
            p_ch = 0; /* a range is no start of another */
        } else if (p_ch == '[' && p[1] == ':') {
            const uchar *s = p += 2;
            int in;

            while ((p_ch = *p) && p_ch != ']')
                p++;
            if (!p_ch)
                return WM_ABORT_ALL;
            if (p == s || p[-1] != ':') { /* no ":]": a plain '[' */
                p = s - 2;
                p_ch = '[';
                if (t_ch == p_ch)
                    matched = 1;
                continue;
            }
            in = class_match(s, (size_t)(p - s - 1), t_ch);
            if (in < 0)
                return WM_ABORT_ALL;
            if (in)
                matched = 1;
            p_ch = 0;
        } else if (t_ch == p_ch) {
            matched = 1;
        }
    } while (prev_ch = p_ch, (p_ch = *++p) != ']');
    *pp = p;
    if (matched == negated || ((flags & WM_PATHNAME) && t_ch == '/'))
        return WM_NOMATCH;
    return WM_MATCH;
}

/* One wildmatch call: the text's end, the flags, and what is left of the
 * work it may do (git's matcher is exponential on patterns made of many
 * "**" segments against deep paths, where git itself never returns). */
struct wm {
    const uchar *tend;
    unsigned flags;
    long budget;
};

static int dowild(const uchar *p, const uchar *text, struct wm *wm, int depth);

#define STAR_SKIPPED 2  /* "*" took the text up to its next '/': go on */
#define SPAN_MATCHED -1 /* a whole-segment "**" matched as zero directories */

/* How far a "*" or "**" (at *pp) may reach: 1 if across '/', 0 if not.
 * Leaves *pp past the stars. */
static int star_span(const uchar **pp, const uchar *pattern, const uchar *text, struct wm *wm,
                     int depth)
{
    const uchar *p = *pp, *prev_p = p - 1;
    int span = !(wm->flags & WM_PATHNAME);

    if (*++p == '*') {
        while (*++p == '*')
            ;
        if (!(wm->flags & WM_PATHNAME)) {
            span = 1;
        } else if ((prev_p < pattern || *prev_p == '/') &&
                   (*p == '\0' || *p == '/' || (p[0] == '\\' && p[1] == '/'))) {
            /* "**" as a whole segment: first try it as zero directories */
            if (p[0] == '/' && dowild(p + 1, text, wm, depth + 1) == WM_MATCH)
                span = SPAN_MATCHED;
            else
                span = 1;
        } else {
            span = 0;
        }
    }
    *pp = p;
    return span;
}

/* Skip text to the next occurrence of the literal c that a star may reach.
 * Returns the text byte found there (0 at the end). */
static uchar star_skip(const uchar **tp, const struct wm *wm, int span, uchar c)
{
    const uchar *text = *tp;
    uchar t_ch;

    while ((t_ch = tch(text, wm->tend)) && (span || t_ch != '/') && t_ch != c)
        text++;
    *tp = text;
    return t_ch;
}

/* A star at *pp against text at *tp. Returns a WM_ result, or STAR_SKIPPED
 * with *pp on the '/' after the star and *tp on the text's next '/'. */
static int match_star(const uchar **pp, const uchar **tp, const uchar *pattern, struct wm *wm,
                      int depth)
{
    const uchar *text = *tp, *p = *pp, *slash;
    int span = star_span(&p, pattern, text, wm, depth), matched;
    size_t rest = (size_t)(wm->tend - text);
    uchar t_ch = tch(text, wm->tend);

    if (span == SPAN_MATCHED)
        return WM_MATCH;
    if (*p == '\0') /* a trailing "*" matches only if no '/' remains */
        return span || !memchr(text, '/', rest) ? WM_MATCH : WM_ABORT_TO_STARSTAR;
    if (!span && *p == '/') {
        slash = memchr(text, '/', rest);
        if (!slash)
            return WM_ABORT_ALL;
        *pp = p;
        *tp = slash;
        return STAR_SKIPPED;
    }
    while (t_ch) {
        if (!is_glob_special(*p) && (t_ch = star_skip(&text, wm, span, *p)) != *p)
            return span ? WM_ABORT_ALL : WM_ABORT_TO_STARSTAR;
        matched = dowild(p, text, wm, depth + 1);
        if (matched != WM_NOMATCH) {
            if (!span || matched != WM_ABORT_TO_STARSTAR)
                return matched;
        } else if (!span && t_ch == '/') {
            return WM_ABORT_TO_STARSTAR;
        }
        t_ch = tch(++text, wm->tend);
    }
    return WM_ABORT_ALL;
}

/* git's dowild() over text[0..tend); the pattern is NUL-terminated. */
static int dowild(const uchar *p, const uchar *text, struct wm *wm, int depth)
{
    const uchar *pattern = p;
    uchar p_ch, t_ch;
    int r;

    if (depth > WM_MAX_DEPTH || --wm->budget < 0)
        return WM_ABORT_ALL;
    for (; (p_ch = *p) != '\0'; text++, p++) {
        t_ch = tch(text, wm->tend);
        if (!t_ch && p_ch != '*')
            return WM_ABORT_ALL;
        switch (p_ch) {
        case '\\':
            p_ch = *++p;
            /* fallthrough */
        default:
            r = t_ch == p_ch ? WM_MATCH : WM_NOMATCH;
            break;
        case '?':
            r = (wm->flags & WM_PATHNAME) && t_ch == '/' ? WM_NOMATCH : WM_MATCH;
            break;
        case '[':
            ++p;
            r = match_bracket(&p, t_ch, wm->flags);
            break;
        case '*':
            r = match_star(&p, &text, pattern, wm, depth);
            if (r == STAR_SKIPPED)
                continue;
            return r;
        }
        if (r != WM_MATCH)
            return r;
    }
    return text < wm->tend ? WM_NOMATCH : WM_MATCH;
}

/* Does the NUL-terminated pattern match text[0..n)? */
static int wildmatch(const char *pattern, const char *text, size_t n, unsigned flags)
{
    struct wm wm = {(const uchar *)text + n, flags, WM_BUDGET};

    return dowild((const uchar *)pattern, (const uchar *)text, &wm, 0) == WM_MATCH;
}

/* ---------------------------------------------------------------- patterns */

static size_t simple_length(const char *s)
{
    size_t n = 0;

    while (s[n] && !is_glob_special((uchar)s[n]))
        n++;
    return n;
}

/* git's trim_trailing_spaces: drop trailing ' ' unless escaped. */
static void trim_trailing_spaces(char *s)
{
    char *last_space = NULL;

    for (; *s; s++) {
        if (*s == ' ') {
            if (!last_space)
                last_space = s;
            continue;
        }
        if (*s == '\\' && !*++s)
            return;
        last_space = NULL;
    }
    if (last_space)
        *last_space = '\0';
}

/* git's parse_path_pattern for one trimmed line; NULL on ENOMEM, and for
 * an empty pattern (which git keeps but which can never match). */
static struct pattern *pattern_new(const char *line, int *err)
{
    const char *p = line;
    unsigned flags = 0;
    struct pattern *pt;
    size_t len;

    if (*p == '!') {
        flags |= PF_NEGATIVE;
        p++;
    }
    len = strlen(p);
    if (len && p[len - 1] == '/') {
        len--;
        flags |= PF_MUSTBEDIR;
    }
    if (!len)
        return NULL;
    if (!memchr(p, '/', len))
        flags |= PF_NODIR;
    if (*p == '*' && !p[1 + simple_length(p + 1)])
        flags |= PF_ENDSWITH;
    pt = malloc(sizeof *pt + len + 1);
    if (!pt) {
        *err = -ENOMEM;
        return NULL;
    }
    pt->flags = flags;
    pt->len = len;
    pt->nowild = simple_length(p);
    if (pt->nowild > len)
        pt->nowild = len;
    memcpy(pt->text, p, len);
    pt->text[len] = '\0';
    return pt;
}

/* git's match_basename: patterns without a '/'. */
static int match_basename(const struct pattern *pt, const char *base, size_t n)
{
    size_t tail = pt->len - 1;

    if (pt->nowild == pt->len)
        return pt->len == n && memcmp(pt->text, base, n) == 0;
    if (pt->flags & PF_ENDSWITH)
        return tail <= n && memcmp(pt->text + 1, base + n - tail, tail) == 0;
    return wildmatch(pt->text, base, n, 0);
}

/* git's match_pathname: path[0..n) against a pattern relative to dir. */
static int match_pathname(const struct pattern *pt, const struct list *l, const char *path,
                          size_t n)
{
    const char *pat = pt->text, *name;
    size_t plen = pt->len, prefix = pt->nowild, namelen;

    if (*pat == '/') {
        pat++;
        plen--;
        if (prefix)
            prefix--;
    }
    if (n < l->dirlen + 1 || (l->dirlen && path[l->dirlen] != '/') ||
        memcmp(path, l->dir, l->dirlen))
        return 0;
    namelen = l->dirlen ? n - l->dirlen - 1 : n;
    name = path + n - namelen;
    if (prefix) {
        if (prefix > namelen || memcmp(pat, name, prefix))
            return 0;
        pat += prefix;
        plen -= prefix;
        name += prefix;
        namelen -= prefix;
        if (!plen && !namelen)
            return 1;
    }
    return wildmatch(pat, name, namelen, WM_PATHNAME);
}

static int pattern_matches(const struct pattern *pt, const struct list *l, const char *path,
                           size_t n, int is_dir)
{
    const char *base = path + n;

    if ((pt->flags & PF_MUSTBEDIR) && !is_dir)
        return 0;
    if (!(pt->flags & PF_NODIR))
        return match_pathname(pt, l, path, n);
    while (base > path && base[-1] != '/')
        base--;
    return match_basename(pt, base, (size_t)(path + n - base));
}

/* ---------------------------------------------------------------- lists */

static int dir_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);

    return c ? c : (an > bn) - (an < bn);
}

/* Index of dir's list, or where it would go (*found says which). */
static size_t list_find(const mesa_ignore_t *ig, const char *dir, size_t n, int *found)
{
    size_t lo = 0, hi = ig->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = dir_cmp(ig->lists[mid].dir, ig->lists[mid].dirlen, dir, n);

        if (!c) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

static struct list *list_get(mesa_ignore_t *ig, const char *dir, size_t n)
{
    int found;
    size_t i = list_find(ig, dir, n, &found);
    struct list *l;

    if (found)
        return &ig->lists[i];
    if (ig->n == ig->cap) {
        size_t cap = ig->cap ? 2 * ig->cap : 8;
        struct list *nl = realloc(ig->lists, cap * sizeof *nl);

        if (!nl)
            return NULL;
        ig->lists = nl;
        ig->cap = cap;
    }
    l = &ig->lists[i];
    memmove(l + 1, l, (ig->n - i) * sizeof *l);
    memset(l, 0, sizeof *l);
    l->dir = malloc(n + 1);
    if (!l->dir) {
        memmove(l, l + 1, (ig->n - i) * sizeof *l);
        return NULL;
    }
    memcpy(l->dir, dir, n);
    l->dir[n] = '\0';
    l->dirlen = n;
    ig->n++;
    return l;
}

static int list_push(struct list *l, struct pattern *pt)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 8;
        struct pattern **np = realloc(l->pats, cap * sizeof *np);

        if (!np)
            return -ENOMEM;
        l->pats = np;
        l->cap = cap;
    }
    l->pats[l->n++] = pt;
    return 0;
}

/* Add one line (NUL-terminated, '\r' and newline already cut). */
static int list_add_line(struct list *l, char *line)
{
    struct pattern *pt;
    int err = 0;

    if (line[0] == '#')
        return 0;
    trim_trailing_spaces(line);
    pt = pattern_new(line, &err);
    if (!pt)
        return err;
    if (list_push(l, pt)) {
        free(pt);
        return -ENOMEM;
    }
    return 0;
}

/* +1 ignored, -1 re-included by a '!' pattern, 0 no pattern matched. */
static int list_verdict(const struct list *l, const char *path, size_t n, int is_dir)
{
    size_t i = l->n;

    while (i--)
        if (pattern_matches(l->pats[i], l, path, n, is_dir))
            return l->pats[i]->flags & PF_NEGATIVE ? -1 : 1;
    return 0;
}

/* path[0..n) against the .gitignore files of its ancestors, deepest first. */
static int verdict(const mesa_ignore_t *ig, const char *path, size_t n, int is_dir)
{
    size_t d = n, i;
    int found, r;

    do {
        while (d && path[--d] != '/')
            ;
        i = list_find(ig, path, d, &found);
        r = found ? list_verdict(&ig->lists[i], path, n, is_dir) : 0;
    } while (!r && d);
    return r;
}

/* ---------------------------------------------------------------- API */

mesa_ignore_t *mesa_ignore_new(void)
{
    return calloc(1, sizeof(mesa_ignore_t));
}

void mesa_ignore_free(mesa_ignore_t *ig)
{
    size_t i, j;

    if (!ig)
        return;
    for (i = 0; i < ig->n; i++) {
        for (j = 0; j < ig->lists[i].n; j++)
            free(ig->lists[i].pats[j]);
        free(ig->lists[i].pats);
        free(ig->lists[i].dir);
    }
    free(ig->lists);
    free(ig);
}

/* Calling it twice for one dir appends (as one longer file would). A NULL
 * ig, or NULL text with len > 0, is -EINVAL. */
int mesa_ignore_add(mesa_ignore_t *ig, const char *dir, const char *text, size_t len)
{
    struct list *l;
    size_t dn, i, start = 0;
    char *buf;
    int ret = 0;

    if (!ig || (!text && len))
        return -EINVAL;
    for (dir = dir ? dir : ""; *dir == '/'; dir++)
        ;
    for (dn = strlen(dir); dn && dir[dn - 1] == '/'; dn--)
        ;
    l = list_get(ig, dir, dn);
    buf = malloc(len + 1);
    if (!l || !buf) {
        free(buf);
        return -ENOMEM;
    }
    if (len)
        memcpy(buf, text, len);
    buf[len] = '\0';
    if (len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3))
        start = 3;
    for (i = start; i <= len && !ret; i++) {
        if (i < len && buf[i] != '\n')
            continue;
        if (i > start) {
            buf[i - (buf[i - 1] == '\r')] = '\0';
            ret = list_add_line(l, buf + start);
        }
        start = i + 1;
    }
    free(buf);
    return ret;
}

static int has_dot_git(const char *path, size_t n)
{
    size_t i = 0, s;

    while (i < n) {
        for (s = i; i < n && path[i] != '/'; i++)
            ;
        if (i - s == 4 && !memcmp(path + s, ".git", 4))
            return 1;
        i++;
    }
    return 0;
}

/* A leading '/' is ignored; a trailing '/' says the path is a directory. */
int mesa_ignore_match(const mesa_ignore_t *ig, const char *path, int is_dir)
{
    size_t n, i;

    if (!path)
        return 0;
    while (*path == '/')
        path++;
    for (n = strlen(path); n && path[n - 1] == '/'; n--)
        is_dir = 1;
    if (!n)
        return 0;
    if (has_dot_git(path, n))
        return 1;
    if (!ig)
        return 0;
    for (i = 1; i < n; i++) /* an ignored ancestor settles it */
        if (path[i] == '/' && verdict(ig, path, i, 1) > 0)
            return 1;
    return verdict(ig, path, n, is_dir) > 0;
}
