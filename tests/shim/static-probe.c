/* tests/shim/static-probe.c - the test program of `mesarun --trap-raw`
 * (tests/shim/trap.bats, bench/trap-cost.sh). Built statically linked
 * (it never loads the shim); trap.bats also builds it dynamically.
 *
 * Each argument is one operation, "OP:PATH[:ARG]", and prints one line:
 * its result, or "ERR <errno name>".
 *   cat:P          open + read, the bytes (newlines as \n)
 *   stat:P lstat:P fstatat:P statx:P    "size=N mode=OOOOOO"
 *   access:P:rwxf  access with that mode
 *   readlink:P     the target
 *   getcwd         the cwd
 *   ls:P           opendir/readdir: "name/type ..." sorted (f, d, l)
 *   catat:D:N      open D (O_DIRECTORY), then openat(D, N): the bytes
 *   rawcat:P       syscall(SYS_openat) + read (for a dynamic build)
 *   write:P:TEXT   open O_WRONLY|O_CREAT|O_TRUNC + write
 *   mkdir:P unlink:P rmdir:P rename:P:Q
 *   seccomp        "filters=N" (Seccomp_filters of /proc/self/status)
 *   loopstat:P:N loopopen:P:N   N calls, "ns=<per call>"
 *   spin:P         stat and open+close P forever (until killed)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int err(void)
{
    const char *n = strerrorname_np(errno);
    printf("ERR %s\n", n ? n : "?");
    return 1;
}

static void print_bytes(const char *b, ssize_t n)
{
    for (ssize_t i = 0; i < n; i++)
        if (b[i] == '\n')
            fputs("\\n", stdout);
        else
            putchar(b[i]);
    putchar('\n');
}

static int cat_fd(int fd)
{
    char buf[65536];
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf);
    if (n < 0)
        return err();
    print_bytes(buf, n);
    close(fd);
    return 0;
}

static int show_stat(int rc, const struct stat *st)
{
    if (rc < 0)
        return err();
    printf("size=%lld mode=%06o\n", (long long)st->st_size, (unsigned)st->st_mode);
    return 0;
}

static int do_statx(const char *p)
{
    struct statx sx;
    if (statx(AT_FDCWD, p, 0, STATX_BASIC_STATS, &sx) < 0)
        return err();
    printf("size=%llu mode=%06o\n", (unsigned long long)sx.stx_size, (unsigned)sx.stx_mode);
    return 0;
}

static int access_mode(const char *m)
{
    int mode = 0;
    mode |= strchr(m, 'r') ? R_OK : 0;
    mode |= strchr(m, 'w') ? W_OK : 0;
    mode |= strchr(m, 'x') ? X_OK : 0;
    return mode;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int do_ls(const char *p)
{
    DIR *d = opendir(p);
    struct dirent *e;
    char *names[1024];
    size_t n = 0;
    if (!d)
        return err();
    while ((e = readdir(d)) != NULL && n < 1024) {
        char t = e->d_type == DT_DIR   ? 'd'
                 : e->d_type == DT_LNK ? 'l'
                 : e->d_type == DT_REG ? 'f'
                                       : '?';
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
            asprintf(&names[n], "%s/%c", e->d_name, t) > 0)
            n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp);
    for (size_t i = 0; i < n; i++) {
        printf("%s%s", i ? " " : "", names[i]);
        free(names[i]);
    }
    putchar('\n');
    return 0;
}

static int do_readlink(const char *p)
{
    char buf[4096];
    ssize_t n = readlink(p, buf, sizeof buf - 1);
    if (n < 0)
        return err();
    buf[n] = '\0';
    printf("%s\n", buf);
    return 0;
}

static int do_write(const char *p, const char *text)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, text, strlen(text)) < 0)
        return err();
    close(fd);
    printf("ok\n");
    return 0;
}

static int seccomp_filters(void)
{
    char line[256];
    FILE *f = fopen("/proc/self/status", "re");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "Seccomp_filters:", 16) == 0)
            printf("filters=%d\n", atoi(line + 16));
    if (f)
        fclose(f);
    return 0;
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int loop(const char *p, const char *count, int open_close)
{
    long n = atol(count);
    struct stat st;
    long long t0 = now_ns();
    for (long i = 0; i < n; i++) {
        if (open_close) {
            int fd = open(p, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                return err();
            close(fd);
        } else if (stat(p, &st) < 0) {
            return err();
        }
    }
    printf("ns=%lld\n", n > 0 ? (now_ns() - t0) / n : 0);
    return 0;
}

static void spin(const char *p)
{
    struct stat st;
    printf("spinning\n");
    fflush(stdout);
    for (;;) {
        stat(p, &st);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd >= 0)
            close(fd);
    }
}

static int rc_line(int rc)
{
    if (rc < 0)
        return err();
    printf("ok\n");
    return 0;
}

static int op(char *arg)
{
    struct stat st;
    char *p = strchr(arg, ':'), *x = NULL;
    if (p)
        *p++ = '\0';
    if (p && (x = strchr(p, ':')))
        *x++ = '\0';
    const char *o = arg;
    if (!strcmp(o, "getcwd")) {
        char buf[4096];
        return getcwd(buf, sizeof buf) ? printf("%s\n", buf), 0 : err();
    }
    if (!strcmp(o, "seccomp"))
        return seccomp_filters();
    if (!p)
        return printf("bad op %s\n", o), 2;
    if (!strcmp(o, "cat"))
        return cat_fd(open(p, O_RDONLY | O_CLOEXEC));
    if (!strcmp(o, "rawcat"))
        return cat_fd((int)syscall(SYS_openat, AT_FDCWD, p, O_RDONLY | O_CLOEXEC));
    if (!strcmp(o, "stat"))
        return show_stat(stat(p, &st), &st);
    if (!strcmp(o, "lstat"))
        return show_stat(lstat(p, &st), &st);
    if (!strcmp(o, "fstatat"))
        return show_stat(fstatat(AT_FDCWD, p, &st, AT_SYMLINK_NOFOLLOW), &st);
    if (!strcmp(o, "statx"))
        return do_statx(p);
    if (!strcmp(o, "access"))
        return rc_line(access(p, x ? access_mode(x) : F_OK));
    if (!strcmp(o, "readlink"))
        return do_readlink(p);
    if (!strcmp(o, "ls"))
        return do_ls(p);
    if (!strcmp(o, "catat") && x) {
        int d = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        return d < 0 ? err() : cat_fd(openat(d, x, O_RDONLY | O_CLOEXEC));
    }
    if (!strcmp(o, "write") && x)
        return do_write(p, x);
    if (!strcmp(o, "mkdir"))
        return rc_line(mkdir(p, 0755));
    if (!strcmp(o, "unlink"))
        return rc_line(unlink(p));
    if (!strcmp(o, "rmdir"))
        return rc_line(rmdir(p));
    if (!strcmp(o, "rename") && x)
        return rc_line(rename(p, x));
    if ((!strcmp(o, "loopstat") || !strcmp(o, "loopopen")) && x)
        return loop(p, x, o[4] == 'o');
    if (!strcmp(o, "spin"))
        spin(p);
    return printf("bad op %s\n", o), 2;
}

int main(int argc, char **argv)
{
    int rc = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++)
        rc |= op(argv[i]);
    return rc;
}
