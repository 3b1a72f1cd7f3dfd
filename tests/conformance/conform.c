/* tests/conformance/conform.c - a table of POSIX checks, run inside one
 * directory, that prints what it observed so that a local directory and a
 * mount directory can be compared line by line
 * (tests/conformance/conformance.bats).
 *
 *   conform ROOT                  set up and run every check
 *   conform --setup-only ROOT     only set up (a tree to import into a repo)
 *   conform --no-setup ROOT       run on a tree made by --setup-only (in a
 *                                 mount: files that come from the server)
 *
 * Every check runs in a fresh directory ROOT/<name> (created; removed
 * first if a previous run left it): a row of the table names the check,
 * what to create there (setup), the calls to make (or a function for the
 * checks that juggle descriptors) and what to look at afterwards. One line
 * per check on stdout: "NAME<TAB>RESULT", where RESULT is the calls'
 * results ("ok" or the errno's name, comma-separated) followed by the
 * observations ("cat(a)=abc", "type(b)=ENOENT", ...). Only relations and
 * relative paths are printed (never inode numbers, absolute times or ROOT),
 * so the lines do not depend on where the program ran.
 * The program reports and does not judge: exit 0, or 2 on a usage error.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "../lib/probe.h"

/* One check being run: its directory and the result being built. */
typedef struct ctx {
    char dir[PATH_MAX];
    char res[2048];
    size_t len;
} ctx_t;

typedef struct row {
    const char *name;
    const char *setup;    /* d:DIR f:FILE=DATA x:FILE=DATA (0755) l:LINK>TARGET */
    const char *calls;    /* "OP ARG... ; OP ARG..." (see call()), or NULL */
    const char *observe;  /* "OP:PATH ..." (see observe()), or NULL */
    void (*fn)(ctx_t *c); /* instead of calls: a check of its own */
} row_t;

static char g_root[PATH_MAX - 512];
static char g_start_cwd[PATH_MAX];

/* ------------------------------------------------------------ output */

__attribute__((format(printf, 2, 3))) static void add(ctx_t *c, const char *fmt, ...)
{
    va_list ap;
    if (c->len >= sizeof c->res - 1)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(c->res + c->len, sizeof c->res - c->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        c->len += (size_t)n < sizeof c->res - c->len ? (size_t)n : sizeof c->res - c->len - 1;
}

/* A separator before the next item of the result. */
static void sep(ctx_t *c, char s)
{
    if (c->len)
        add(c, "%c", s);
}

/* rc < 0: errno's name; else "ok". */
static const char *okerr(long rc)
{
    return rc < 0 ? errname(errno) : "ok";
}

/* Bytes as printable text: \n, \t, \\, \xNN. */
static void add_bytes(ctx_t *c, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)b[i];
        if (ch == '\n')
            add(c, "\\n");
        else if (ch == '\t')
            add(c, "\\t");
        else if (ch == '\\')
            add(c, "\\\\");
        else if (ch < 0x20 || ch >= 0x7f)
            add(c, "\\x%02x", ch);
        else
            add(c, "%c", ch);
    }
}

/* ------------------------------------------------------------ paths */

/* ROOT/<name>/rel, in one of a few rotating buffers. rel may climb
 * with "..". */
static const char *P(const ctx_t *c, const char *rel)
{
    static char buf[8][PATH_MAX + 64];
    static int i;
    char *b = buf[i++ % 8];
    if (rel[0] == '/')
        snprintf(b, sizeof buf[0], "%s", rel);
    else if (!strcmp(rel, "."))
        snprintf(b, sizeof buf[0], "%s", c->dir);
    else
        snprintf(b, sizeof buf[0], "%s/%s", c->dir, rel);
    return b;
}

/* Remove path and everything under it (opendir/lstat/unlink/rmdir only, so
 * that a mount sees every call). */
static int rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return unlink(path);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    struct dirent *e;
    char sub[PATH_MAX + 256];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        rm_rf(sub);
    }
    closedir(d);
    return rmdir(path);
}

static int write_file(const char *path, const char *data, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0)
        return -1;
    size_t n = strlen(data);
    ssize_t w = write(fd, data, n);
    int e = errno;
    close(fd);
    errno = e;
    return w == (ssize_t)n ? 0 : -1;
}

/* Read a whole file (up to len-1 bytes); its length, or -1. */
static ssize_t read_file(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    size_t got = 0;
    ssize_t r;
    while (got < len - 1 && (r = read(fd, buf + got, len - 1 - got)) > 0)
        got += (size_t)r;
    close(fd);
    buf[got] = '\0';
    return (ssize_t)got;
}

/* ------------------------------------------------------------ setup */

/* Split s at spaces into at most max words (in buf); their number. A
 * word's "\s" stands for a space; the word "\e" is the empty string. */
static int words(const char *s, char *buf, size_t len, char **w, int max)
{
    int n = 0;
    snprintf(buf, len, "%s", s);
    for (char *p = strtok(buf, " "); p && n < max; p = strtok(NULL, " ")) {
        for (char *q = p; (q = strstr(q, "\\s")); q++) /* "\s" is a space */
            *q = ' ', memmove(q + 1, q + 2, strlen(q + 2) + 1);
        if (!strcmp(p, "\\e")) /* "\e" is the empty string */
            *p = '\0';
        w[n++] = p;
    }
    return n;
}

/* Create what the row's setup names; 0, or -1 with a note in the result. */
static int setup(ctx_t *c, const char *spec)
{
    char buf[1024], *w[32];
    int n = words(spec ? spec : "", buf, sizeof buf, w, 32);
    for (int i = 0; i < n; i++) {
        char *item = w[i] + 2, *eq;
        int rc = -1;
        if (w[i][0] == 'd' && w[i][1] == ':') {
            rc = mkdir(P(c, item), 0755);
        } else if ((w[i][0] == 'f' || w[i][0] == 'x') && w[i][1] == ':' &&
                   (eq = strchr(item, '='))) {
            *eq = '\0';
            rc = write_file(P(c, item), eq + 1, 0644);
            if (rc == 0 && w[i][0] == 'x')
                rc = chmod(P(c, item), 0755);
        } else if (w[i][0] == 'l' && w[i][1] == ':' && (eq = strchr(item, '>'))) {
            *eq = '\0';
            rc = symlink(eq + 1, P(c, item));
        } else {
            errno = EINVAL;
        }
        if (rc < 0) {
            add(c, "setup-failed(%s):%s", w[i], errname(errno));
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------ calls */

static int open_flags(const char *s)
{
    int fl = test_open_flags(s);
    if (fl < 0) {
        fprintf(stderr, "conform: bad open flags '%s' in the table\n", s);
        exit(2);
    }
    return fl;
}

/* "now", "omit", or SEC[.FRACTION]. */
static struct timespec ts_arg(const char *s)
{
    struct timespec t = {0, 0};
    if (!strcmp(s, "now")) {
        t.tv_nsec = UTIME_NOW;
    } else if (!strcmp(s, "omit")) {
        t.tv_nsec = UTIME_OMIT;
    } else {
        char *end;
        t.tv_sec = strtol(s, &end, 10);
        for (int i = 1, scale = 100000000; *end == '.' && i <= 9; i++, scale /= 10) {
            if (end[i] < '0' || end[i] > '9')
                break;
            t.tv_nsec += (end[i] - '0') * scale;
        }
    }
    return t;
}

/* open PATH FLAGS [DATA] [mode=OCTAL]: open, write DATA if given, close. */
static long op_open(ctx_t *c, char **a, int n)
{
    mode_t mode = 0644;
    const char *data = NULL;
    for (int i = 2; i < n; i++) {
        if (!strncmp(a[i], "mode=", 5))
            mode = (mode_t)strtoul(a[i] + 5, NULL, 8);
        else
            data = a[i];
    }
    int fd = open(P(c, a[0]), n > 1 ? open_flags(a[1]) : O_RDONLY, mode);
    if (fd < 0)
        return -1;
    long rc = 0;
    if (data && write(fd, data, strlen(data)) != (ssize_t)strlen(data))
        rc = -1;
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* ftruncate PATH FLAGS LEN */
static long op_ftruncate(ctx_t *c, char **a)
{
    int fd = open(P(c, a[0]), open_flags(a[1]));
    if (fd < 0)
        return -1;
    long rc = ftruncate(fd, strtol(a[2], NULL, 10));
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

static long op_opendir(ctx_t *c, const char *path)
{
    DIR *d = opendir(P(c, path));
    if (!d)
        return -1;
    while (readdir(d))
        ;
    closedir(d);
    return 0;
}

/* One call; its rc (< 0 with errno set). PATH is relative to the check's
 * directory; FLAGS a comma list of r w rw creat excl trunc append directory
 * nofollow; times "now", "omit" or SEC.FRACTION.
 *   open PATH FLAGS [DATA] [mode=OCTAL]   open, write DATA, close
 *   rename A B | rename_noreplace A B | link A B | symlink TARGET PATH
 *   mkdir P | rmdir P | unlink P | mkfifo P | mknod P fifo|reg
 *   stat P | lstat P | readlink P | access P f|rwx... | opendir P
 *   truncate P LEN | ftruncate P FLAGS LEN | chmod P OCTAL
 *   chown_self P | lchown_self P | chdir P (and back)
 *   utimens P ATIME MTIME [nofollow] | utimens P null | sleep MS */
static long call(ctx_t *c, char **a, int n)
{
    const char *op = a[0];
    struct stat st;
    char buf[PATH_MAX];
    a++, n--;
#define NEED(k)                                                                                    \
    if (n < (k))                                                                                   \
    return errno = EINVAL, -1
    if (!strcmp(op, "open")) {
        NEED(1);
        return op_open(c, a, n);
    } else if (!strcmp(op, "rename")) {
        NEED(2);
        return rename(P(c, a[0]), P(c, a[1]));
    } else if (!strcmp(op, "rename_noreplace")) {
        NEED(2);
        return renameat2(AT_FDCWD, P(c, a[0]), AT_FDCWD, P(c, a[1]), RENAME_NOREPLACE);
    } else if (!strcmp(op, "mkdir")) {
        NEED(1);
        return mkdir(P(c, a[0]), 0755);
    } else if (!strcmp(op, "rmdir")) {
        NEED(1);
        return rmdir(P(c, a[0]));
    } else if (!strcmp(op, "unlink")) {
        NEED(1);
        return unlink(P(c, a[0]));
    } else if (!strcmp(op, "link")) {
        NEED(2);
        return link(P(c, a[0]), P(c, a[1]));
    } else if (!strcmp(op, "symlink")) {
        NEED(2);
        return symlink(a[0], P(c, a[1]));
    } else if (!strcmp(op, "mkfifo")) {
        NEED(1);
        return mkfifo(P(c, a[0]), 0644);
    } else if (!strcmp(op, "mknod")) {
        NEED(2);
        return mknod(P(c, a[0]), (!strcmp(a[1], "reg") ? S_IFREG : S_IFIFO) | 0644, 0);
    } else if (!strcmp(op, "stat")) {
        NEED(1);
        return stat(P(c, a[0]), &st);
    } else if (!strcmp(op, "lstat")) {
        NEED(1);
        return lstat(P(c, a[0]), &st);
    } else if (!strcmp(op, "readlink")) {
        NEED(1);
        return readlink(P(c, a[0]), buf, sizeof buf);
    } else if (!strcmp(op, "access")) {
        NEED(2);
        int m = 0;
        for (const char *p = a[1]; *p; p++)
            m |= *p == 'r' ? R_OK : *p == 'w' ? W_OK : *p == 'x' ? X_OK : F_OK;
        return access(P(c, a[0]), m);
    } else if (!strcmp(op, "truncate")) {
        NEED(2);
        return truncate(P(c, a[0]), strtol(a[1], NULL, 10));
    } else if (!strcmp(op, "ftruncate")) {
        NEED(3);
        return op_ftruncate(c, a);
    } else if (!strcmp(op, "chmod")) {
        NEED(2);
        return chmod(P(c, a[0]), (mode_t)strtoul(a[1], NULL, 8));
    } else if (!strcmp(op, "chown_self")) {
        NEED(1);
        return chown(P(c, a[0]), getuid(), getgid());
    } else if (!strcmp(op, "lchown_self")) {
        NEED(1);
        return lchown(P(c, a[0]), getuid(), getgid());
    } else if (!strcmp(op, "utimens")) { /* PATH ATIME MTIME [nofollow] | PATH null */
        NEED(2);
        if (!strcmp(a[1], "null"))
            return utimensat(AT_FDCWD, P(c, a[0]), NULL, 0);
        NEED(3);
        struct timespec ts[2] = {ts_arg(a[1]), ts_arg(a[2])};
        return utimensat(AT_FDCWD, P(c, a[0]), ts,
                         n > 3 && !strcmp(a[3], "nofollow") ? AT_SYMLINK_NOFOLLOW : 0);
    } else if (!strcmp(op, "opendir")) {
        NEED(1);
        return op_opendir(c, a[0]);
    } else if (!strcmp(op, "chdir")) { /* and back */
        NEED(1);
        long rc = chdir(P(c, a[0]));
        if (rc == 0 && chdir(g_start_cwd) < 0)
            return -1;
        return rc;
    } else if (!strcmp(op, "sleep")) { /* SLEEP MS: let the clock move */
        NEED(1);
        return usleep((useconds_t)strtoul(a[0], NULL, 10) * 1000);
    }
#undef NEED
    errno = ENOSYS;
    return -1;
}

/* Run "OP ARG... ; OP ARG..." and add the results, comma-separated. */
static void run_calls(ctx_t *c, const char *calls)
{
    char buf[1024], *save = NULL;
    snprintf(buf, sizeof buf, "%s", calls);
    int first = 1;
    for (char *one = strtok_r(buf, ";", &save); one; one = strtok_r(NULL, ";", &save)) {
        char wb[512], *w[16];
        int n = words(one, wb, sizeof wb, w, 16);
        if (!n)
            continue;
        errno = 0;
        long rc = call(c, w, n);
        if (!first)
            add(c, ",");
        add(c, "%s", okerr(rc));
        first = 0;
    }
}

/* ------------------------------------------------------------ observations */

static const char *type_name(mode_t m)
{
    return S_ISREG(m)    ? "file"
           : S_ISDIR(m)  ? "dir"
           : S_ISLNK(m)  ? "symlink"
           : S_ISFIFO(m) ? "fifo"
                         : "other";
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted names in a directory (without . and ..), comma-separated,
 * "-" if none; each with /TYPE from d_type when types is set. */
static void add_listing(ctx_t *c, const char *path, int types)
{
    DIR *d = opendir(path);
    if (!d) {
        add(c, "%s", errname(errno));
        return;
    }
    char *names[256];
    int n = 0, dots = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) {
            dots++;
            continue;
        }
        const char *t = e->d_type == DT_REG       ? "f"
                        : e->d_type == DT_DIR     ? "d"
                        : e->d_type == DT_LNK     ? "l"
                        : e->d_type == DT_UNKNOWN ? "?"
                                                  : "o";
        if (asprintf(&names[n], "%s%s%s", e->d_name, types ? "/" : "", types ? t : "") < 0)
            break;
        n++;
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_str);
    for (int i = 0; i < n; i++) {
        add(c, "%s%s", i ? "," : "", names[i]);
        free(names[i]);
    }
    if (!n)
        add(c, "-");
    if (dots != 2)
        add(c, "(dots=%d)", dots);
}

/* A time as "now" (within two minutes of the clock), else SEC.NSEC. */
static void add_time(ctx_t *c, struct timespec t)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (llabs((long long)(now.tv_sec - t.tv_sec)) < 120)
        add(c, "now");
    else
        add(c, "%lld.%09ld", (long long)t.tv_sec, t.tv_nsec);
}

/* One observation "OP:PATH", added as "OP(PATH)=VALUE":
 *   cat (content) type (lstat) mode (stat, octal permissions) size nlink
 *   ls (sorted names) lst (names/type) lnk (readlink) mtime atime; lsize
 *   and lmtime: of lstat */
static void observe(ctx_t *c, const char *item)
{
    char op[32], path[256];
    const char *colon = strchr(item, ':');
    if (!colon || (size_t)(colon - item) >= sizeof op)
        return;
    snprintf(op, sizeof op, "%.*s", (int)(colon - item), item);
    snprintf(path, sizeof path, "%s", colon + 1);
    const char *p = P(c, path);
    struct stat st;
    sep(c, ' ');
    add(c, "%s(%s)=", op, path);
    if (!strcmp(op, "cat")) {
        char buf[512];
        ssize_t n = read_file(p, buf, sizeof buf);
        if (n < 0)
            add(c, "%s", errname(errno));
        else
            add_bytes(c, buf, (size_t)n);
    } else if (!strcmp(op, "ls") || !strcmp(op, "lst")) {
        add_listing(c, p, op[2] == 't');
    } else if (!strcmp(op, "lnk")) {
        char buf[PATH_MAX];
        ssize_t n = readlink(p, buf, sizeof buf);
        if (n < 0)
            add(c, "%s", errname(errno));
        else
            add_bytes(c, buf, (size_t)n);
    } else if ((op[0] == 'l' || !strcmp(op, "type") ? lstat(p, &st) : stat(p, &st)) < 0) {
        add(c, "%s", errname(errno));
    } else if (!strcmp(op, "type")) {
        add(c, "%s", type_name(st.st_mode));
    } else if (!strcmp(op, "mode")) {
        add(c, "%o", (unsigned)(st.st_mode & 07777));
    } else if (!strcmp(op, "size") || !strcmp(op, "lsize")) {
        add(c, "%lld", (long long)st.st_size);
    } else if (!strcmp(op, "nlink")) {
        add(c, "%lu", (unsigned long)st.st_nlink);
    } else if (!strcmp(op, "mtime") || !strcmp(op, "lmtime")) {
        add_time(c, st.st_mtim);
    } else if (!strcmp(op, "atime")) {
        add_time(c, st.st_atim);
    } else {
        add(c, "?");
    }
}

static void run_observe(ctx_t *c, const char *spec)
{
    char buf[1024], *w[32];
    int n = words(spec, buf, sizeof buf, w, 32);
    for (int i = 0; i < n; i++)
        observe(c, w[i]);
}

/* ------------------------------------------------------------ checks of their own */

/* The *at calls relative to a directory descriptor, which keeps naming
 * the directory after a rename. */
static void fn_at_calls(ctx_t *c)
{
    struct stat st;
    char buf[32] = "";
    int dfd = open(P(c, "d"), O_RDONLY | O_DIRECTORY);
    if (dfd < 0) {
        add(c, "open=%s", errname(errno));
        return;
    }
    int fd = openat(dfd, "x", O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
    add(c, "openat=%s", n < 0 ? errname(errno) : buf);
    if (fd >= 0)
        close(fd);
    add(c, " fstatat=%s", okerr(fstatat(dfd, "x", &st, 0)));
    add(c, " mkdirat=%s", okerr(mkdirat(dfd, "n", 0755)));
    add(c, " renameat=%s", okerr(renameat(dfd, "x", dfd, "n/x2")));
    add(c, " unlinkat=%s", okerr(unlinkat(dfd, "n/x2", 0)));
    add(c, " rmdir-at=%s", okerr(unlinkat(dfd, "n", AT_REMOVEDIR)));
    add(c, " rename-dir=%s", okerr(rename(P(c, "d"), P(c, "e"))));
    fd = openat(dfd, "y", O_RDONLY);
    n = fd < 0 ? -1 : pread(fd, buf, sizeof buf - 1, 0);
    add(c, " openat-after=%s", n < 0 ? errname(errno) : (buf[n] = '\0', buf));
    if (fd >= 0)
        close(fd);
    fd = openat(dfd, "z", O_WRONLY | O_CREAT | O_EXCL, 0644);
    add(c, " creat-after=%s", okerr(fd));
    if (fd >= 0)
        close(fd);
    close(dfd);
}

/* fchmod, fchown to oneself and futimens through a descriptor. */
static void fn_fd_meta(ctx_t *c)
{
    struct timespec ts[2] = {{1000000000, 0}, {1300000000, 42}};
    int fd = open(P(c, "a"), O_RDONLY);
    if (fd < 0) {
        add(c, "open=%s", errname(errno));
        return;
    }
    add(c, "fchmod=%s", okerr(fchmod(fd, 0755)));
    add(c, " fchown=%s", okerr(fchown(fd, getuid(), getgid())));
    add(c, " futimens=%s", okerr(futimens(fd, ts)));
    close(fd);
}

/* Writing through a descriptor after its file was renamed: the data is
 * under the new name. */
static void fn_write_after_rename(ctx_t *c)
{
    int fd = open(P(c, "a"), O_WRONLY | O_APPEND);
    if (fd < 0) {
        add(c, "open=%s", errname(errno));
        return;
    }
    add(c, "rename=%s", okerr(rename(P(c, "a"), P(c, "b"))));
    add(c, " write=%s", okerr(write(fd, "X", 1) == 1 ? 0 : -1));
    close(fd);
}

/* Writing through a descriptor whose name was unlinked and made again:
 * two files. */
static void fn_unlink_recreate(ctx_t *c)
{
    int fd = open(P(c, "a"), O_RDWR);
    if (fd < 0) {
        add(c, "open=%s", errname(errno));
        return;
    }
    add(c, "unlink=%s", okerr(unlink(P(c, "a"))));
    add(c, " recreate=%s", okerr(write_file(P(c, "a"), "new", 0644)));
    add(c, " write=%s", okerr(pwrite(fd, "zz", 2, 0) == 2 ? 0 : -1));
    char buf[16] = "";
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    add(c, " fd-read=%s", n < 0 ? errname(errno) : buf);
    close(fd);
}

/* d_ino of readdir agrees with st_ino of lstat (ls -i, find -inum, fts). */
static void fn_dino(ctx_t *c)
{
    DIR *d = opendir(c->dir);
    struct dirent *e;
    int n = 0, bad = 0;
    if (!d) {
        add(c, "%s", errname(errno));
        return;
    }
    while ((e = readdir(d))) {
        struct stat st;
        if (!strcmp(e->d_name, "..")) /* the parent's may be another file system's */
            continue;
        n++;
        if (lstat(P(c, e->d_name), &st) < 0 || st.st_ino != e->d_ino)
            bad++;
    }
    closedir(d);
    add(c, "entries=%d mismatched=%d", n, bad);
}

/* O_TMPFILE: an unnamed file in a directory. */
static void fn_tmpfile(ctx_t *c)
{
    int fd = open(c->dir, O_TMPFILE | O_RDWR, 0644);
    add(c, "%s", okerr(fd));
    if (fd >= 0) {
        add(c, " write=%s", okerr(write(fd, "t", 1) == 1 ? 0 : -1));
        close(fd);
    }
    add(c, " ls(.)=");
    add_listing(c, c->dir, 0);
}

/* Two O_APPEND writers on one file interleave at the end. */
static void fn_append_two(ctx_t *c)
{
    const char *a = P(c, "a");
    int f1 = open(a, O_WRONLY | O_APPEND), f2 = open(a, O_WRONLY | O_APPEND);
    if (f1 < 0 || f2 < 0) {
        add(c, "open=%s", errname(errno));
        goto out;
    }
    int ok = write(f1, "1", 1) == 1 && write(f2, "22", 2) == 2 && write(f1, "333", 3) == 3;
    add(c, "%s", ok ? "ok" : errname(errno));
    add(c, " pos1=%lld pos2=%lld", (long long)lseek(f1, 0, SEEK_CUR),
        (long long)lseek(f2, 0, SEEK_CUR));
out:
    if (f1 >= 0)
        close(f1);
    if (f2 >= 0)
        close(f2);
}

/* A reader opened before a writer sees the writer's data. */
static void fn_reader_sees_write(ctx_t *c)
{
    const char *a = P(c, "a");
    char buf[64] = "";
    int r = open(a, O_RDONLY), w = open(a, O_WRONLY);
    if (r < 0 || w < 0) {
        add(c, "open=%s", errname(errno));
        goto out;
    }
    ssize_t n = -1;
    if (write(w, "NEW", 3) == 3)
        n = pread(r, buf, sizeof buf - 1, 0);
    add(c, "%s read=", n < 0 ? errname(errno) : "ok");
    add_bytes(c, buf, n > 0 ? (size_t)n : 0);
out:
    if (r >= 0)
        close(r);
    if (w >= 0)
        close(w);
}

/* The same file opened twice for writing: both descriptors write one file. */
static void fn_two_writers_one_file(ctx_t *c)
{
    const char *a = P(c, "a");
    int f1 = open(a, O_RDWR), f2 = open(a, O_RDWR);
    char buf[64] = "";
    if (f1 < 0 || f2 < 0) {
        add(c, "open=%s", errname(errno));
        goto out;
    }
    ssize_t n = -1;
    if (pwrite(f1, "X", 1, 0) == 1 && pwrite(f2, "Y", 1, 1) == 1)
        n = pread(f1, buf, sizeof buf - 1, 0);
    add(c, "%s read=", n < 0 ? errname(errno) : "ok");
    add_bytes(c, buf, n > 0 ? (size_t)n : 0);
out:
    if (f1 >= 0)
        close(f1);
    if (f2 >= 0)
        close(f2);
}

/* An unlinked open file stays readable and writable through its descriptor;
 * its name is gone. */
static void fn_unlink_open(ctx_t *c)
{
    const char *a = P(c, "a");
    char buf[64] = "";
    struct stat st, st2;
    int fd = open(a, O_RDWR);
    if (fd < 0) {
        add(c, "open=%s", errname(errno));
        return;
    }
    add(c, "%s", okerr(unlink(a)));
    add(c, " stat=%s", okerr(stat(a, &st2)));
    add(c, " write=%s", okerr(pwrite(fd, "++", 2, 3) == 2 ? 0 : -1));
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    add(c, " read=");
    if (n < 0)
        add(c, "%s", errname(errno));
    else
        add_bytes(c, buf, (size_t)n);
    if (fstat(fd, &st) < 0)
        add(c, " fstat=%s", errname(errno));
    else
        add(c, " fstat=%s,size=%lld,nlink=%lu", type_name(st.st_mode), (long long)st.st_size,
            (unsigned long)st.st_nlink);
    close(fd);
    add(c, " ls(.)=");
    add_listing(c, c->dir, 0);
}

/* ROOT/.. is ROOT's parent; ROOT/sub/../x is ROOT/x. */
static void fn_root_parent(ctx_t *c)
{
    char up[PATH_MAX + 8], parent[PATH_MAX];
    struct stat s1, s2;
    snprintf(up, sizeof up, "%s/..", g_root);
    snprintf(parent, sizeof parent, "%s", g_root);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent)
        *slash = '\0';
    else
        snprintf(parent, sizeof parent, "/");
    if (stat(up, &s1) < 0 || stat(parent, &s2) < 0) {
        add(c, "%s", errname(errno));
        return;
    }
    add(c, "ok %s %s", type_name(s1.st_mode),
        s1.st_ino == s2.st_ino && s1.st_dev == s2.st_dev ? "same-as-parent" : "NOT-the-parent");
    /* the check's own directory seen through ROOT/<name>/../<name> */
    char via[PATH_MAX + 300];
    const char *base = strrchr(c->dir, '/') + 1;
    snprintf(via, sizeof via, "%s/../%s/.", c->dir, base);
    add(c, " via-dotdot=%s", okerr(stat(via, &s1)));
    stat(c->dir, &s2);
    if (s1.st_ino != s2.st_ino)
        add(c, "(other-dir)");
}

/* lseek: SEEK_END, SEEK_CUR, and SEEK_DATA/SEEK_HOLE on a file without holes. */
static void fn_lseek(ctx_t *c)
{
    char buf[16] = "";
    int fd = open(P(c, "a"), O_RDONLY);
    if (fd < 0) {
        add(c, "open=%s", errname(errno));
        return;
    }
    off_t e = lseek(fd, 0, SEEK_END), e2 = lseek(fd, -2, SEEK_END);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    add(c, "end=%lld end-2=%lld read=%.*s", (long long)e, (long long)e2, (int)(n > 0 ? n : 0), buf);
    off_t h = lseek(fd, 0, SEEK_HOLE);
    add(c, " hole=%lld", (long long)h);
    off_t d = lseek(fd, 1, SEEK_DATA);
    add(c, " data(1)=%lld", (long long)d);
    off_t d2 = lseek(fd, 6, SEEK_DATA);
    add(c, " data(6)=%s", d2 < 0 ? errname(errno) : "ok");
    off_t bad = lseek(fd, -10, SEEK_SET);
    add(c, " neg=%s", bad < 0 ? errname(errno) : "ok");
    close(fd);
}

/* Writing past the end leaves a hole: the size grows, the gap reads zeroes. */
static void fn_seek_past_end(ctx_t *c)
{
    int fd = open(P(c, "a"), O_RDWR);
    if (fd < 0) {
        add(c, "open=%s", errname(errno));
        return;
    }
    lseek(fd, 5, SEEK_END);
    add(c, "%s", okerr(write(fd, "z", 1) == 1 ? 0 : -1));
    close(fd);
}

/* getcwd after chdir into a subdirectory, relative opens there, chdir "..",
 * fchdir. */
static void fn_cwd(ctx_t *c)
{
    char buf[PATH_MAX], rd[64];
    if (chdir(P(c, "sub")) < 0) {
        add(c, "chdir=%s", errname(errno));
        return;
    }
    if (!getcwd(buf, sizeof buf))
        add(c, "getcwd=%s", errname(errno));
    else
        add(c, "getcwd=%s", !strcmp(buf, P(c, "sub")) ? "sub" : "OTHER");
    ssize_t n = read_file("x", rd, sizeof rd);
    add(c, " read(x)=%s", n < 0 ? errname(errno) : rd);
    add(c, " creat(y)=%s", okerr(write_file("y", "why", 0644)));
    n = read_file("../top", rd, sizeof rd);
    add(c, " read(../top)=%s", n < 0 ? errname(errno) : rd);
    add(c, " chdir(..)=%s", okerr(chdir("..")));
    add(c, " getcwd=%s",
        getcwd(buf, sizeof buf) ? (!strcmp(buf, c->dir) ? "." : "OTHER") : errname(errno));
    int dfd = open(P(c, "sub"), O_RDONLY | O_DIRECTORY);
    add(c, " fchdir=%s", dfd < 0 ? errname(errno) : okerr(fchdir(dfd)));
    if (dfd >= 0)
        close(dfd);
    add(c, " getcwd=%s",
        getcwd(buf, sizeof buf) ? (!strcmp(buf, P(c, "sub")) ? "sub" : "OTHER") : errname(errno));
    if (chdir(g_start_cwd) < 0)
        add(c, " restore=%s", errname(errno));
    add(c, " cat(sub/y)=");
    n = read_file(P(c, "sub/y"), rd, sizeof rd);
    add(c, "%s", n < 0 ? errname(errno) : rd);
}

/* The working directory removed under us: getcwd fails with ENOENT. */
static void fn_cwd_removed(ctx_t *c)
{
    char buf[PATH_MAX];
    if (chdir(P(c, "sub")) < 0) {
        add(c, "chdir=%s", errname(errno));
        return;
    }
    add(c, "rmdir=%s", okerr(rmdir(P(c, "sub"))));
    add(c, " getcwd=%s", getcwd(buf, sizeof buf) ? "ok" : errname(errno));
    int fd = open("new", O_WRONLY | O_CREAT, 0644);
    add(c, " creat=%s", okerr(fd));
    if (fd >= 0)
        close(fd);
    if (chdir(g_start_cwd) < 0)
        add(c, " restore=%s", errname(errno));
}

/* The fields of two stats that differ, or "same". */
static void add_stat_diff(ctx_t *c, const struct stat *a, const struct stat *b)
{
    int n = 0;
#define F(field, nm)                                                                               \
    if (a->field != b->field)                                                                      \
    add(c, "%s%s", n++ ? "," : "", nm)
    F(st_dev, "dev");
    F(st_ino, "ino");
    F(st_mode, "mode");
    F(st_nlink, "nlink");
    F(st_uid, "uid");
    F(st_gid, "gid");
    F(st_size, "size");
    F(st_mtim.tv_sec, "mtime");
    F(st_mtim.tv_nsec, "mtime_ns");
    F(st_ctim.tv_sec, "ctime");
#undef F
    if (!n)
        add(c, "same");
}

/* fstat of a descriptor answers what stat of its path does. */
static void fstat_vs_stat(ctx_t *c, const char *rel, int flags, const char *data)
{
    struct stat a, b;
    int fd = open(P(c, rel), flags);
    if (fd < 0) {
        add(c, "open=%s", errname(errno));
        return;
    }
    if (data && write(fd, data, strlen(data)) < 0)
        add(c, "write=%s ", errname(errno));
    if (fstat(fd, &a) < 0 || stat(P(c, rel), &b) < 0)
        add(c, "%s", errname(errno));
    else
        add_stat_diff(c, &a, &b);
    close(fd);
    if (data && stat(P(c, rel), &b) == 0)
        add(c, " size-after-close=%lld", (long long)b.st_size);
}

static void fn_fstat_file(ctx_t *c)
{
    fstat_vs_stat(c, "a", O_RDONLY, NULL);
}

static void fn_fstat_written(ctx_t *c)
{
    fstat_vs_stat(c, "a", O_WRONLY | O_APPEND, "more");
}

static void fn_fstat_dir(ctx_t *c)
{
    fstat_vs_stat(c, "d", O_RDONLY | O_DIRECTORY, NULL);
}

static void fn_fstat_new(ctx_t *c)
{
    fstat_vs_stat(c, "new", O_WRONLY | O_CREAT | O_EXCL, "x");
}

/* An open file renamed: fstat still answers for it, as stat of its new name. */
static void fn_fstat_after_rename(ctx_t *c)
{
    struct stat a, b;
    int fd = open(P(c, "a"), O_RDONLY);
    if (fd < 0 || rename(P(c, "a"), P(c, "b")) < 0) {
        add(c, "%s", errname(errno));
        goto out;
    }
    if (fstat(fd, &a) < 0 || stat(P(c, "b"), &b) < 0)
        add(c, "%s", errname(errno));
    else
        add(c, "size=%lld nlink=%lu vs-stat=", (long long)a.st_size, (unsigned long)a.st_nlink);
    add_stat_diff(c, &a, &b);
out:
    if (fd >= 0)
        close(fd);
}

/* An open file replaced by a rename over its name: the descriptor still
 * reads and fstats the old file. */
static void fn_fstat_after_replace(ctx_t *c)
{
    struct stat a;
    char buf[32] = "";
    int fd = open(P(c, "a"), O_RDONLY);
    if (fd < 0 || rename(P(c, "b"), P(c, "a")) < 0) {
        add(c, "%s", errname(errno));
        goto out;
    }
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    add(c, "read=%s", n < 0 ? errname(errno) : buf);
    if (fstat(fd, &a) < 0)
        add(c, " fstat=%s", errname(errno));
    else
        add(c, " fstat.size=%lld", (long long)a.st_size);
out:
    if (fd >= 0)
        close(fd);
}

/* "same"/"differ" for the inode numbers of two paths (lstat). */
static void add_ino_rel(ctx_t *c, const char *label, const char *p1, const char *p2)
{
    struct stat a, b;
    if (lstat(P(c, p1), &a) < 0 || lstat(P(c, p2), &b) < 0) {
        add(c, "%s=%s", label, errname(errno));
        return;
    }
    add(c, "%s=%s", label, a.st_ino == b.st_ino ? "same" : "differ");
}

static void fn_ino(ctx_t *c)
{
    add_ino_rel(c, "twice", "a", "a");
    sep(c, ' ');
    add_ino_rel(c, "equal-content", "a", "b");
    sep(c, ' ');
    add_ino_rel(c, "file-vs-dir", "a", "d");
    sep(c, ' ');
    add_ino_rel(c, "via-symlink-dir", "d/x", "ld/x");
    struct stat a, b;
    if (stat(P(c, "a"), &a) == 0 && stat(P(c, "d"), &b) == 0)
        add(c, " dev=%s", a.st_dev == b.st_dev ? "same" : "differ");
}

/* The inode number across a rename: kept by a kernel filesystem. */
static void fn_ino_rename(ctx_t *c)
{
    struct stat a, b;
    if (lstat(P(c, "a"), &a) < 0 || rename(P(c, "a"), P(c, "b")) < 0 || lstat(P(c, "b"), &b) < 0) {
        add(c, "%s", errname(errno));
        return;
    }
    add(c, "ok ino=%s", a.st_ino == b.st_ino ? "kept" : "changed");
}

/* st_blocks of a small file with data: at least one block. */
static void fn_blocks(ctx_t *c)
{
    struct stat st;
    if (stat(P(c, "a"), &st) < 0) {
        add(c, "%s", errname(errno));
        return;
    }
    add(c, "blocks=%s blksize=%s", st.st_blocks > 0 ? "nonzero" : "zero",
        st.st_blksize > 0 ? "nonzero" : "zero");
}

/* Owner and group of a new file: the caller's. */
static void fn_owner(ctx_t *c)
{
    struct stat st;
    if (write_file(P(c, "a"), "x", 0644) < 0 || stat(P(c, "a"), &st) < 0) {
        add(c, "%s", errname(errno));
        return;
    }
    add(c, "uid=%s gid=%s", st.st_uid == getuid() ? "self" : "other",
        st.st_gid == getgid() ? "self" : "other");
}

/* chown to another user: EPERM unless privileged (as root it is the
 * kernel's business; the mount keeps the caller as owner). */
static void fn_chown_other(ctx_t *c)
{
    struct stat st;
    if (geteuid() != 0) {
        add(c, "n/a (not root)");
        return;
    }
    add(c, "%s", okerr(chown(P(c, "a"), 1, 1)));
    if (stat(P(c, "a"), &st) == 0)
        add(c, " uid=%s", st.st_uid == getuid() ? "self" : "other");
}

/* A write moves a file's mtime to now; a directory's mtime moves when an
 * entry is added. */
static void fn_mtime_on_write(ctx_t *c)
{
    struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
    struct stat st;
    utimensat(AT_FDCWD, P(c, "a"), old, 0);
    utimensat(AT_FDCWD, P(c, "d"), old, 0);
    int fd = open(P(c, "a"), O_WRONLY | O_APPEND);
    if (fd >= 0) {
        if (write(fd, "x", 1) != 1)
            add(c, "write=%s ", errname(errno));
        if (fstat(fd, &st) == 0) {
            add(c, "fstat-mtime=");
            add_time(c, st.st_mtim);
        }
        close(fd);
    }
    add(c, " file-mtime=");
    if (stat(P(c, "a"), &st) == 0)
        add_time(c, st.st_mtim);
    write_file(P(c, "d/new"), "n", 0644);
    add(c, " dir-mtime=");
    if (stat(P(c, "d"), &st) == 0)
        add_time(c, st.st_mtim);
}

/* 255-byte names are fine; 256 bytes are ENAMETOOLONG. */
static void fn_long_names(ctx_t *c)
{
    char n255[256], n256[257];
    memset(n255, 'n', 255);
    n255[255] = '\0';
    memset(n256, 'm', 256);
    n256[256] = '\0';
    add(c, "255=%s", okerr(write_file(P(c, n255), "x", 0644)));
    add(c, " 256=%s", okerr(write_file(P(c, n256), "x", 0644)));
    struct stat st;
    add(c, " stat256=%s", okerr(stat(P(c, n256), &st)));
    add(c, " mkdir256=%s", okerr(mkdir(P(c, n256), 0755)));
}

/* readdir through fdopendir and a rewinddir after a create. */
static void fn_rewinddir(ctx_t *c)
{
    int fd = open(c->dir, O_RDONLY | O_DIRECTORY);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        add(c, "%s", errname(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    int n1 = 0, n2 = 0;
    while (readdir(d))
        n1++;
    write_file(P(c, "later"), "l", 0644);
    rewinddir(d);
    while (readdir(d))
        n2++;
    closedir(d);
    add(c, "first=%d after-rewind=%d", n1, n2);
}

/* ------------------------------------------------------------ the table */

static const row_t table[] = {
    /* open */
    {"open.creat_excl.new", "", "open a w,creat,excl", "type:a", NULL},
    {"open.creat_excl.existing", "f:a=old", "open a w,creat,excl new", "cat:a", NULL},
    {"open.creat_excl.dangling_symlink", "l:l>t", "open l w,creat,excl", "type:t", NULL},
    {"open.creat_excl.symlink_to_file", "f:a=old l:l>a", "open l w,creat,excl", "cat:a", NULL},
    {"open.creat_excl.dir", "d:d", "open d r,creat,excl", "type:d", NULL},
    {"open.creat.existing_keeps_data", "f:a=old", "open a w,creat", "cat:a", NULL},
    {"open.excl_without_creat", "f:a=old", "open a r,excl", "cat:a", NULL},
    {"open.creat.through_dangling_symlink", "l:l>t", "open l w,creat x", "type:l cat:t", NULL},
    {"open.creat.mode_755", "", "open a w,creat mode=755", "mode:a", NULL},
    {"open.creat.mode_600", "", "open a w,creat mode=600", "mode:a", NULL},
    {"open.trunc", "f:a=abcdef", "open a w,trunc", "cat:a size:a", NULL},
    {"open.trunc.write", "f:a=abcdef", "open a w,trunc XY", "cat:a", NULL},
    {"open.trunc.rdonly", "f:a=abcdef", "open a r,trunc", "size:a", NULL},
    {"open.write_no_trunc", "f:a=abcdef", "open a w XY", "cat:a", NULL},
    {"open.append", "f:a=abc", "open a w,append de", "cat:a", NULL},
    {"open.append.two_writers", "f:a=0", NULL, "cat:a", fn_append_two},
    {"open.two_writers_one_file", "f:a=abc", NULL, "cat:a", fn_two_writers_one_file},
    {"open.reader_sees_later_write", "f:a=old", NULL, NULL, fn_reader_sees_write},
    {"open.write_after_rename", "f:a=abc", NULL, "cat:b type:a", fn_write_after_rename},
    {"open.write_after_unlink_recreate", "f:a=abc", NULL, "cat:a", fn_unlink_recreate},
    {"open.tmpfile", "", NULL, NULL, fn_tmpfile},
    {"open.at_calls", "d:d f:d/x=X f:d/y=Y", NULL, "ls:e", fn_at_calls},
    {"open.fd_meta", "f:a=x", NULL, "mode:a mtime:a", fn_fd_meta},
    {"open.directory.on_file", "f:a=x", "open a r,directory", NULL, NULL},
    {"open.directory.on_dir", "d:d", "open d r,directory", NULL, NULL},
    {"open.directory.on_symlink_to_dir", "d:d l:l>d", "open l r,directory", NULL, NULL},
    {"open.nofollow.on_symlink", "f:a=x l:l>a", "open l r,nofollow", NULL, NULL},
    {"open.nofollow.on_file", "f:a=x", "open a r,nofollow", NULL, NULL},
    {"open.creat.missing_dir", "", "open nodir/a w,creat", NULL, NULL},
    {"open.creat.under_file", "f:a=x", "open a/b w,creat", NULL, NULL},
    {"open.missing", "", "open nope r", NULL, NULL},
    {"open.under_file", "f:a=x", "open a/b r", NULL, NULL},
    {"open.wronly.dir", "d:d", "open d w", NULL, NULL},
    {"open.rdwr.dir", "d:d", "open d rw", NULL, NULL},
    {"open.creat.on_dir", "d:d", "open d r,creat", NULL, NULL},
    {"open.creat.trailing_slash", "", "open a/ w,creat", "type:a", NULL},
    {"open.file.trailing_slash", "f:a=x", "open a/ r", NULL, NULL},
    {"open.dot_after_file", "f:a=x", "open a/. r ; open nodir/. w,creat ; stat a/.", NULL, NULL},
    /* rename */
    {"rename.file_over_file", "f:a=A f:b=B", "rename a b", "cat:b type:a", NULL},
    {"rename.file_over_dir", "f:a=A d:d", "rename a d", "type:a type:d", NULL},
    {"rename.dir_over_file", "d:d f:a=A", "rename d a", "type:a type:d", NULL},
    {"rename.dir_over_empty_dir", "d:d f:d/x=X d:e", "rename d e", "ls:e type:d", NULL},
    {"rename.dir_over_nonempty_dir", "d:d d:e f:e/y=Y", "rename d e", "ls:e type:d", NULL},
    {"rename.dir_into_own_subdir", "d:d d:d/s", "rename d d/s/t", "ls:d/s", NULL},
    {"rename.dir_onto_itself_sub", "d:d d:d/s", "rename d/s d", "ls:d", NULL},
    {"rename.missing", "", "rename nope b", "type:b", NULL},
    {"rename.to_missing_dir", "f:a=A", "rename a nodir/b", "cat:a", NULL},
    {"rename.to_under_file", "f:a=A f:f=F", "rename a f/b", "cat:a", NULL},
    {"rename.same_file", "f:a=A", "rename a a", "cat:a", NULL},
    {"rename.symlink", "f:t=T l:l>t", "rename l m", "lnk:m cat:m type:l", NULL},
    {"rename.dir_with_content", "d:d d:d/s f:d/s/x=X f:d/y=Y", "rename d e",
     "ls:e ls:e/s cat:e/s/x type:d", NULL},
    {"rename.noreplace", "f:a=A f:b=B", "rename_noreplace a b", "cat:b", NULL},
    {"rename.file_trailing_slash", "f:a=A", "rename a/ b ; rename a b/", "cat:a type:b", NULL},
    {"rename.dir_trailing_slash", "d:d", "rename d/ e/", "type:e type:d", NULL},
    {"rename.file_dotdot_target", "d:d f:a=A", "rename a d/../b", "cat:b type:a", NULL},
    {"rename.then_recreate", "f:a=A", "rename a b ; open a w,creat,excl new", "cat:a cat:b", NULL},
    /* rmdir / unlink */
    {"rmdir.nonempty", "d:d f:d/x=X", "rmdir d", "ls:d", NULL},
    {"rmdir.file", "f:a=A", "rmdir a", "cat:a", NULL},
    {"rmdir.missing", "", "rmdir nope", NULL, NULL},
    {"rmdir.empty", "d:d", "rmdir d", "type:d ls:.", NULL},
    {"rmdir.symlink_to_dir", "d:d l:l>d", "rmdir l", "type:l", NULL},
    {"rmdir.dot", "d:d", "rmdir d/.", "type:d", NULL},
    {"rmdir.dotdot", "d:d d:d/s", "rmdir d/s/..", "type:d", NULL},
    {"rmdir.trailing_slash", "d:d", "rmdir d/", "type:d", NULL},
    {"rmdir.after_emptied", "d:d f:d/x=X", "unlink d/x ; rmdir d", "type:d", NULL},
    {"unlink.dir", "d:d", "unlink d", "type:d", NULL},
    {"unlink.missing", "", "unlink nope", NULL, NULL},
    {"unlink.symlink", "f:t=T l:l>t", "unlink l", "type:l cat:t", NULL},
    {"unlink.dangling_symlink", "l:l>nope", "unlink l", "type:l", NULL},
    {"unlink.trailing_slash", "f:a=A", "unlink a/", "type:a", NULL},
    {"unlink.open_file", "f:a=abc", NULL, NULL, fn_unlink_open},
    /* symlinks */
    {"symlink.loop.open", "l:a>b l:b>a", "open a r", NULL, NULL},
    {"symlink.loop.stat", "l:a>b l:b>a", "stat a", NULL, NULL},
    {"symlink.loop.lstat", "l:a>b l:b>a", "lstat a", NULL, NULL},
    {"symlink.self_loop.stat", "l:a>a", "stat a", NULL, NULL},
    {"symlink.loop.in_path", "l:a>b l:b>a", "stat a/x", NULL, NULL},
    {"symlink.dangling.stat", "l:l>nope", "stat l", NULL, NULL},
    {"symlink.dangling.lstat", "l:l>nope", "lstat l", "type:l lnk:l", NULL},
    {"symlink.dangling.open", "l:l>nope", "open l r", NULL, NULL},
    {"symlink.readlink.file", "f:a=x", "readlink a", NULL, NULL},
    {"symlink.readlink.dir", "d:d", "readlink d", NULL, NULL},
    {"symlink.readlink.missing", "", "readlink nope", NULL, NULL},
    {"symlink.create", "", "symlink ../some/where l", "type:l lnk:l", NULL},
    {"symlink.create.existing", "f:a=x", "symlink t a", "type:a", NULL},
    {"symlink.create.empty_target", "", "symlink \\e l", "type:l", NULL},
    {"symlink.to_dir.traverse", "d:d f:d/x=X l:l>d", "stat l/x", "cat:l/x type:l", NULL},
    {"symlink.trailing_slash", "d:d l:l>d", "lstat l/", "type:l/", NULL},
    {"symlink.absolute_target", "f:a=A", "symlink /nonexistent/zz l", "lnk:l type:l", NULL},
    {"symlink.lstat_size", "f:abcdefgh=x l:l>abcdefgh", "lstat l", "lsize:l size:l", NULL},
    /* .. */
    {"dotdot.root_parent", "", NULL, NULL, fn_root_parent},
    {"dotdot.sub_x", "f:x=top d:sub", "stat sub/../x", "cat:sub/../x", NULL},
    {"dotdot.after_file", "f:x=top", "stat x/../x", NULL, NULL},
    {"dotdot.after_missing", "f:x=top", "stat nosub/../x", NULL, NULL},
    {"dotdot.after_symlink_dir", "d:d d:d/e f:d/y=Y l:l>d/e", "stat l/../y", "cat:l/../y", NULL},
    {"dotdot.dot_components", "d:d f:d/x=X", "stat ./d/./x", "cat:d/./x", NULL},
    {"dotdot.double_slash", "d:d f:d/x=X", "stat d//x", "cat:d//x", NULL},
    /* mkdir */
    {"mkdir.existing", "d:d", "mkdir d", NULL, NULL},
    {"mkdir.existing_file", "f:a=x", "mkdir a", "type:a", NULL},
    {"mkdir.missing_parent", "", "mkdir no/d", NULL, NULL},
    {"mkdir.under_file", "f:a=x", "mkdir a/d", NULL, NULL},
    {"mkdir.dangling_symlink", "l:l>nope", "mkdir l", "type:l type:nope", NULL},
    {"mkdir.new", "", "mkdir d", "type:d ls:d mode:d", NULL},
    {"mkdir.trailing_slash", "", "mkdir d/", "type:d", NULL},
    /* truncate */
    {"truncate.shrink", "f:a=abcdef", "truncate a 3", "cat:a size:a", NULL},
    {"truncate.grow", "f:a=abc", "truncate a 5", "cat:a size:a", NULL},
    {"truncate.zero", "f:a=abc", "truncate a 0", "cat:a size:a", NULL},
    {"truncate.dir", "d:d", "truncate d 0", NULL, NULL},
    {"truncate.missing", "", "truncate nope 0", "type:nope", NULL},
    {"truncate.negative", "f:a=abc", "truncate a -1", "size:a", NULL},
    {"truncate.through_symlink", "f:a=abcdef l:l>a", "truncate l 2", "cat:a type:l", NULL},
    {"ftruncate.shrink", "f:a=abcdef", "ftruncate a rw 2", "cat:a", NULL},
    {"ftruncate.grow", "f:a=ab", "ftruncate a w 4", "cat:a", NULL},
    {"ftruncate.rdonly", "f:a=abcdef", "ftruncate a r 2", "cat:a", NULL},
    /* deliberate limits of a mount: hard links, special files, ownership */
    {"link.file", "f:a=A", "link a b", "cat:b nlink:a", NULL},
    {"link.existing", "f:a=A f:b=B", "link a b", "cat:b", NULL},
    {"mkfifo", "", "mkfifo p", "type:p", NULL},
    {"mknod.fifo", "", "mknod p fifo", "type:p", NULL},
    {"mknod.reg", "", "mknod r reg", "type:r size:r", NULL},
    {"mkfifo.existing", "f:a=x", "mkfifo a", "type:a", NULL},
    {"chown.self", "f:a=x", "chown_self a", NULL, NULL},
    {"chown.self.symlink", "l:l>nope", "lchown_self l", NULL, NULL},
    {"chown.self.missing", "", "chown_self nope", NULL, NULL},
    {"chown.other", "f:a=x", NULL, NULL, fn_chown_other},
    {"owner.new_file", "", NULL, NULL, fn_owner},
    /* chmod */
    {"chmod.x_on", "f:a=x", "chmod a 755", "mode:a", NULL},
    {"chmod.x_off", "x:a=x", "chmod a 644", "mode:a", NULL},
    {"chmod.x_kept_on_write", "x:a=x", "open a w,trunc y", "mode:a", NULL},
    {"chmod.x_kept_on_rename", "x:a=x", "rename a b", "mode:b", NULL},
    {"chmod.600", "f:a=x", "chmod a 600", "mode:a", NULL},
    {"chmod.dir_700", "d:d", "chmod d 700", "mode:d", NULL},
    {"chmod.missing", "", "chmod nope 644", NULL, NULL},
    {"chmod.through_symlink", "f:a=x l:l>a", "chmod l 755", "mode:a", NULL},
    /* times */
    {"utime.explicit_ns", "f:a=x", "utimens a 1000000000.123456789 1500000000.987654321",
     "mtime:a atime:a", NULL},
    {"utime.omit_mtime", "f:a=x",
     "utimens a 1000000000.5 1500000000.25 ; utimens a 1100000000.0 omit", "mtime:a atime:a", NULL},
    {"utime.omit_atime", "f:a=x",
     "utimens a 1000000000.5 1500000000.25 ; utimens a omit 1600000000.75", "mtime:a atime:a",
     NULL},
    {"utime.now", "f:a=x", "utimens a 1000000000.0 1000000000.0 ; utimens a now now",
     "mtime:a atime:a", NULL},
    {"utime.null", "f:a=x", "utimens a 1000000000.0 1000000000.0 ; utimens a null", "mtime:a",
     NULL},
    {"utime.dir", "d:d", "utimens d 1000000000.0 1400000000.000000001", "mtime:d", NULL},
    {"utime.nofollow", "f:a=x l:l>a",
     "utimens a 1000000000.0 1000000000.0 ; utimens l 1200000000.0 1200000000.5 nofollow",
     "lmtime:l mtime:a", NULL},
    {"utime.follow", "f:a=x l:l>a", "utimens l 1200000000.0 1200000000.5", "mtime:a", NULL},
    {"utime.missing", "", "utimens nope now now", NULL, NULL},
    {"utime.kept_on_rename", "f:a=x", "utimens a 1000000000.0 1300000000.5 ; rename a b", "mtime:b",
     NULL},
    {"mtime.on_write", "f:a=x d:d", NULL, NULL, fn_mtime_on_write},
    /* readdir */
    {"readdir.after_creates_deletes", "f:a=1 f:b=2 d:c d:e f:e/x=3",
     "open f w,creat ; unlink b ; rmdir c ; mkdir g ; rename a h ; unlink e/x", "ls:. ls:e", NULL},
    {"readdir.types", "f:a=1 d:d l:l>a x:x=2", NULL, "lst:.", NULL},
    {"readdir.empty_dir", "d:d", "opendir d", "ls:d", NULL},
    {"readdir.on_file", "f:a=1", "opendir a", NULL, NULL},
    {"readdir.missing", "", "opendir nope", NULL, NULL},
    {"readdir.odd_names", "", "open a\\sb w,creat ; open .hidden w,creat ; open -dash w,creat",
     "ls:.", NULL},
    {"readdir.rewind", "f:a=1", NULL, NULL, fn_rewinddir},
    {"readdir.d_ino", "f:a=1 d:d l:l>a", NULL, NULL, fn_dino},
    /* lseek */
    {"lseek.end_hole_data", "f:a=abcdef", NULL, NULL, fn_lseek},
    {"lseek.write_past_end", "f:a=ab", NULL, "size:a cat:a", fn_seek_past_end},
    /* access */
    {"access.r", "f:a=x", "access a r", NULL, NULL},
    {"access.w", "f:a=x", "access a w", NULL, NULL},
    {"access.x_on_644", "f:a=x", "access a x", NULL, NULL},
    {"access.x_on_755", "x:a=x", "access a x", NULL, NULL},
    {"access.rwx_dir", "d:d", "access d rwx", NULL, NULL},
    {"access.f", "f:a=x", "access a f", NULL, NULL},
    {"access.missing", "", "access nope f", NULL, NULL},
    {"access.under_file", "f:a=x", "access a/b f", NULL, NULL},
    {"access.dangling_symlink", "l:l>nope", "access l f", NULL, NULL},
    /* cwd */
    {"cwd.chdir_getcwd", "d:sub f:sub/x=ex f:top=tp", NULL, NULL, fn_cwd},
    {"cwd.removed", "d:sub", NULL, NULL, fn_cwd_removed},
    {"cwd.chdir_errors", "f:a=x d:d l:l>d", "chdir a ; chdir nope ; chdir l ; chdir a/b", NULL,
     NULL},
    /* stat */
    {"stat.fstat_eq.file", "f:a=abc", NULL, NULL, fn_fstat_file},
    {"stat.fstat_eq.written", "f:a=abc", NULL, NULL, fn_fstat_written},
    {"stat.fstat_eq.new", "", NULL, NULL, fn_fstat_new},
    {"stat.fstat_eq.dir", "d:d", NULL, NULL, fn_fstat_dir},
    {"stat.ino", "f:a=same f:b=same d:d f:d/x=X l:ld>d", NULL, NULL, fn_ino},
    {"stat.ino_across_rename", "f:a=x", NULL, NULL, fn_ino_rename},
    {"stat.nlink.dir", "d:d d:d/s1 d:d/s2 d:d/s3 f:d/f=x l:d/l>s1", NULL, "nlink:d", NULL},
    {"stat.nlink.empty_dir", "d:d", NULL, "nlink:d", NULL},
    {"stat.nlink.after_rmdir", "d:d d:d/s1 d:d/s2", "rmdir d/s1 ; mkdir d/s3 ; mkdir d/s4",
     "nlink:d", NULL},
    {"stat.nlink.file", "f:a=x", NULL, "nlink:a", NULL},
    {"stat.size", "f:a=abcdef d:d", NULL, "size:a type:d", NULL},
    {"stat.trailing_slash", "f:a=x d:d l:l>d l:m>a",
     "stat a/ ; lstat a/ ; stat d/ ; lstat m/ ; access a/ f ; access d/ f", "type:l/", NULL},
    {"stat.fstat_after_rename", "f:a=abc", NULL, NULL, fn_fstat_after_rename},
    {"stat.fstat_after_replace", "f:a=abc f:b=longer", NULL, NULL, fn_fstat_after_replace},
    {"stat.blocks", "f:a=abcdef", NULL, NULL, fn_blocks},
    {"stat.mode.new_dir", "", "mkdir d", "mode:d", NULL},
    {"names.long", "", NULL, NULL, fn_long_names},
};

/* ------------------------------------------------------------ main */

enum { RUN_ALL, SETUP_ONLY, NO_SETUP };

/* One row: its directory made fresh and set up (unless the setup is
 * there already, NO_SETUP), the calls, the observations, one line. */
static void run_row(const row_t *r, int mode)
{
    ctx_t c;
    memset(&c, 0, sizeof c);
    snprintf(c.dir, sizeof c.dir, "%s/%s", g_root, r->name);
    if (mode != NO_SETUP && (rm_rf(c.dir) < 0 || mkdir(c.dir, 0755) < 0)) {
        add(&c, "cannot-make-dir:%s", errname(errno));
    } else if (mode == NO_SETUP || setup(&c, r->setup) == 0) {
        if (mode == SETUP_ONLY)
            return;
        if (r->fn)
            r->fn(&c);
        else if (r->calls)
            run_calls(&c, r->calls);
        if (r->observe)
            run_observe(&c, r->observe);
    }
    printf("%s\t%s\n", r->name, c.len ? c.res : "-");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int mode = RUN_ALL;
    if (argc == 3 && !strcmp(argv[1], "--setup-only"))
        mode = SETUP_ONLY;
    else if (argc == 3 && !strcmp(argv[1], "--no-setup"))
        mode = NO_SETUP;
    if (argc != 2 + (mode != RUN_ALL) || argv[argc - 1][0] != '/') {
        fprintf(stderr, "usage: conform [--setup-only | --no-setup] ROOT   (ROOT absolute)\n");
        return 2;
    }
    snprintf(g_root, sizeof g_root, "%s", argv[argc - 1]);
    size_t l = strlen(g_root);
    while (l > 1 && g_root[l - 1] == '/')
        g_root[--l] = '\0';
    umask(022);
    if (mode != NO_SETUP && mkdir(g_root, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "conform: %s: %s\n", g_root, strerror(errno));
        return 2;
    }
    if (!getcwd(g_start_cwd, sizeof g_start_cwd))
        snprintf(g_start_cwd, sizeof g_start_cwd, "%s", g_root);
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        run_row(&table[i], mode);
    return 0;
}
