/* core/fdtab.c - the table of mesa descriptors (see fdtab.h).
 * Invariant: an entry is trusted only while the descriptor still has the
 * device and inode it had when registered. Called by the shim.
 */
#include "config.h"
#include "fdtab.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uthash.h>

typedef struct ent {
    mesa_fdent_t e;
    UT_hash_handle hh;
} ent_t;

static ent_t *tab;

int mesa_fdtab_empty(void)
{
    return tab == NULL;
}

static ent_t *find(int fd)
{
    ent_t *x;
    HASH_FIND_INT(tab, &fd, x);
    return x;
}

static int put(int fd, const char *path, int is_dir, dev_t dev, ino_t ino)
{
    ent_t *x = find(fd);
    char *p = strdup(path);
    if (!p)
        return -ENOMEM;
    if (!x) {
        if (!(x = calloc(1, sizeof *x))) {
            free(p);
            return -ENOMEM;
        }
        x->e.fd = fd;
        HASH_ADD_INT(tab, e.fd, x);
    } else {
        free(x->e.path);
    }
    x->e.path = p;
    x->e.is_dir = is_dir;
    x->e.dev = dev;
    x->e.ino = ino;
    return 0;
}

int mesa_fdtab_add(int fd, const char *path, int is_dir)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    return put(fd, path, is_dir, st.st_dev, st.st_ino);
}

const mesa_fdent_t *mesa_fdtab_peek(int fd)
{
    ent_t *x = tab ? find(fd) : NULL;
    return x ? &x->e : NULL;
}

const mesa_fdent_t *mesa_fdtab_get(int fd)
{
    ent_t *x = tab ? find(fd) : NULL;
    struct stat st;
    if (!x)
        return NULL;
    if (fstat(fd, &st) == 0 && st.st_dev == x->e.dev && st.st_ino == x->e.ino)
        return &x->e;
    mesa_fdtab_del(fd);
    return NULL;
}

void mesa_fdtab_del(int fd)
{
    ent_t *x = tab ? find(fd) : NULL;
    if (x) {
        HASH_DEL(tab, x);
        free(x->e.path);
        free(x);
    }
}

void mesa_fdtab_dup(int from, int to)
{
    ent_t *x = tab ? find(from) : NULL;
    if (from == to)
        return;
    if (x)
        put(to, x->e.path, x->e.is_dir, x->e.dev, x->e.ino);
    else
        mesa_fdtab_del(to);
}

void mesa_fdtab_rename(const char *from, const char *to)
{
    ent_t *x, *t;
    size_t fl = strlen(from);
    HASH_ITER(hh, tab, x, t)
    {
        const char *p = x->e.path;
        char *np;
        if (strncmp(p, from, fl) != 0 || (p[fl] != '\0' && p[fl] != '/'))
            continue;
        if (asprintf(&np, "%s%s", to, p + fl) < 0)
            continue; /* keeps the old path: fstat answers for the file anyway */
        free(x->e.path);
        x->e.path = np;
    }
}

void mesa_fdtab_clear(void)
{
    ent_t *x, *t;
    HASH_ITER(hh, tab, x, t)
    {
        HASH_DEL(tab, x);
        free(x->e.path);
        free(x);
    }
}

static int esc(char *out, size_t len, const char *s)
{
    size_t o = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        int need = (c < 0x21 || c == '%' || c == ';' || c == ',') ? 3 : 1;
        if (o + need >= len)
            return -1;
        if (need == 3)
            o += (size_t)snprintf(out + o, len - o, "%%%02X", c);
        else
            out[o++] = (char)c;
    }
    out[o] = '\0';
    return (int)o;
}

int mesa_fdtab_export(char *buf, size_t len)
{
    size_t o = 0;
    ent_t *x, *t;
    buf[0] = '\0';
    HASH_ITER(hh, tab, x, t)
    {
        int fl = fcntl(x->e.fd, F_GETFD);
        if (fl < 0 || (fl & FD_CLOEXEC))
            continue;
        char p[3 * 4096 + 1];
        if (esc(p, sizeof p, x->e.path) < 0)
            continue;
        int n = snprintf(buf + o, len - o, "%d,%llu,%llu,%d,%s;", x->e.fd,
                         (unsigned long long)x->e.dev, (unsigned long long)x->e.ino, x->e.is_dir,
                         p);
        if (n < 0 || (size_t)n >= len - o)
            return -ENAMETOOLONG;
        o += (size_t)n;
    }
    return (int)o;
}

static void unesc(char *s)
{
    char *o = s;
    for (; *s; s++) {
        if (*s == '%' && s[1] && s[2]) {
            char h[3] = {s[1], s[2], 0};
            *o++ = (char)strtol(h, NULL, 16);
            s += 2;
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
}

void mesa_fdtab_import(const char *s)
{
    char *copy = strdup(s), *save = NULL;
    if (!copy)
        return;
    for (char *rec = strtok_r(copy, ";", &save); rec; rec = strtok_r(NULL, ";", &save)) {
        int fd, is_dir;
        unsigned long long dev, ino;
        int off = 0;
        if (sscanf(rec, "%d,%llu,%llu,%d,%n", &fd, &dev, &ino, &is_dir, &off) != 4 || !off)
            continue;
        unesc(rec + off);
        struct stat st;
        if (fstat(fd, &st) == 0 && st.st_dev == (dev_t)dev && st.st_ino == (ino_t)ino)
            put(fd, rec + off, is_dir, (dev_t)dev, (ino_t)ino);
    }
    free(copy);
}
