/* tests/shim/errno-probe.c - perform libc calls on paths and print, one line
 * per call, "ok" or the errno's name (ENOENT, EROFS, EXDEV, ...), so that the
 * shim suites (the tests/shim bats files) can assert errno exactly.
 *
 *   errno-probe OP ARG... [-- OP ARG...]...
 *
 *   open PATH [FLAGS [MODE]]  FLAGS: comma list of r w rw creat excl trunc
 *                             append directory nofollow (default r); MODE
 *                             octal (default 644); opens, then closes
 *   creat PATH [MODE]         creat(2)
 *   write PATH DATA           open(O_WRONLY|O_CREAT|O_TRUNC, 0644), write, close
 *   read PATH                 open(O_RDONLY) and read to the end
 *   stat PATH | lstat PATH    stat(2) / lstat(2)
 *   access PATH MODE          MODE: f, or a combination of r w x
 *   readlink PATH             readlink(2)
 *   mkdir PATH [MODE]         mkdir(2), MODE octal (default 755)
 *   rmdir PATH | unlink PATH
 *   rename OLD NEW | link OLD NEW | symlink TARGET PATH
 *   chmod PATH MODE           MODE octal
 *   truncate PATH LEN
 *   utimensat PATH [now | SEC[.NSEC]]   both times; default now
 *   opendir PATH              opendir(3), readdir(3) to the end, closedir(3)
 *   chdir PATH
 *   fsync PATH                open(O_RDONLY), fsync(2), close
 *   mmap PATH                 open(O_RDONLY), mmap the whole file, compare
 *                             with read(2): "ok", or "MISMATCH"
 *   mkfifo PATH               mkfifo(3) with mode 644
 *
 * Exit status: 0 when every call succeeded, 1 when one failed, 2 on a usage
 * error. Nothing else is printed on stdout; diagnostics of the library under
 * test (the shim's one line about an expired token) go to stderr untouched.
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
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "../lib/probe.h"

static void usage(const char *why)
{
    fprintf(stderr, "errno-probe: %s\n"
                    "usage: errno-probe OP ARG... [-- OP ARG...]...\n"
                    "  OP: open creat write read stat lstat access readlink mkdir rmdir\n"
                    "      unlink rename link symlink chmod truncate utimensat opendir\n"
                    "      chdir fsync mmap mkfifo\n",
            why);
    exit(2);
}

static mode_t octal(const char *s)
{
    char *end;
    errno = 0;
    unsigned long m = strtoul(s, &end, 8);
    if (errno || *end || end == s || m > 07777)
        usage("bad octal mode");
    return (mode_t)m;
}

static int open_flags(const char *s)
{
    int fl = test_open_flags(s);
    if (fl < 0)
        usage("bad open flag");
    return fl;
}

static int read_all(int fd, char **out, size_t *len)
{
    size_t cap = 65536, n = 0;
    char *b = malloc(cap);
    if (!b)
        return -1;
    for (;;) {
        if (n == cap) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) {
                free(b);
                return -1;
            }
            b = nb;
        }
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(b);
            errno = e;
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *out = b;
    *len = n;
    return 0;
}

/* 0 with "ok" printed by the caller, or -1 with errno set; 1 for MISMATCH. */
static int do_mmap(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) < 0)
        goto fail;
    char *data;
    size_t len;
    if (read_all(fd, &data, &len) < 0)
        goto fail;
    if ((off_t)len != st.st_size) {
        free(data);
        close(fd);
        return 1;
    }
    int rc = 0;
    if (len > 0) {
        void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            free(data);
            close(fd);
            errno = e;
            return -1;
        }
        rc = memcmp(m, data, len) ? 1 : 0;
        munmap(m, len);
    }
    free(data);
    close(fd);
    return rc;
fail: {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}
}

#define NEED(k)                                                                                    \
    do {                                                                                           \
        if (argc < (k))                                                                            \
            usage("missing argument");                                                             \
    } while (0)

/* Run one call; argv[0] is the op. Returns 0 ok, 1 failed (printed). */
static int one(int argc, char **argv)
{
    const char *op = argv[0];
    int rc = -1;
    errno = 0;
    if (!strcmp(op, "open")) {
        NEED(2);
        int fl = argc > 2 ? open_flags(argv[2]) : O_RDONLY;
        mode_t m = argc > 3 ? octal(argv[3]) : 0644;
        int fd = open(argv[1], fl | O_CLOEXEC, m);
        if (fd >= 0)
            rc = close(fd);
    } else if (!strcmp(op, "creat")) {
        NEED(2);
        int fd = creat(argv[1], argc > 2 ? octal(argv[2]) : 0644);
        if (fd >= 0)
            rc = close(fd);
    } else if (!strcmp(op, "write")) {
        NEED(3);
        int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            size_t len = strlen(argv[2]);
            ssize_t w = write(fd, argv[2], len);
            if (w >= 0 && (size_t)w != len)
                errno = EIO;
            int e = errno;
            rc = close(fd);
            if (w < 0 || (size_t)w != len) {
                errno = e;
                rc = -1;
            }
        }
    } else if (!strcmp(op, "read")) {
        NEED(2);
        int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            char *data;
            size_t len;
            rc = read_all(fd, &data, &len);
            int e = errno;
            if (rc == 0)
                free(data);
            close(fd);
            errno = e;
        }
    } else if (!strcmp(op, "stat")) {
        NEED(2);
        struct stat st;
        rc = stat(argv[1], &st);
    } else if (!strcmp(op, "lstat")) {
        NEED(2);
        struct stat st;
        rc = lstat(argv[1], &st);
    } else if (!strcmp(op, "access")) {
        NEED(3);
        int m = 0;
        for (const char *p = argv[2]; *p; p++) {
            if (*p == 'r')
                m |= R_OK;
            else if (*p == 'w')
                m |= W_OK;
            else if (*p == 'x')
                m |= X_OK;
            else if (*p == 'f')
                m |= F_OK;
            else
                usage("bad access mode");
        }
        rc = access(argv[1], m);
    } else if (!strcmp(op, "readlink")) {
        NEED(2);
        char buf[4096];
        ssize_t n = readlink(argv[1], buf, sizeof buf);
        rc = n < 0 ? -1 : 0;
    } else if (!strcmp(op, "mkdir")) {
        NEED(2);
        rc = mkdir(argv[1], argc > 2 ? octal(argv[2]) : 0755);
    } else if (!strcmp(op, "rmdir")) {
        NEED(2);
        rc = rmdir(argv[1]);
    } else if (!strcmp(op, "unlink")) {
        NEED(2);
        rc = unlink(argv[1]);
    } else if (!strcmp(op, "rename")) {
        NEED(3);
        rc = rename(argv[1], argv[2]);
    } else if (!strcmp(op, "link")) {
        NEED(3);
        rc = link(argv[1], argv[2]);
    } else if (!strcmp(op, "symlink")) {
        NEED(3);
        rc = symlink(argv[1], argv[2]);
    } else if (!strcmp(op, "chmod")) {
        NEED(3);
        rc = chmod(argv[1], octal(argv[2]));
    } else if (!strcmp(op, "truncate")) {
        NEED(3);
        char *end;
        long long len = strtoll(argv[2], &end, 10);
        if (*end || end == argv[2])
            usage("bad length");
        rc = truncate(argv[1], (off_t)len);
    } else if (!strcmp(op, "utimensat")) {
        NEED(2);
        if (argc < 3 || !strcmp(argv[2], "now")) {
            rc = utimensat(AT_FDCWD, argv[1], NULL, 0);
        } else {
            struct timespec ts[2];
            char *end;
            long long sec = strtoll(argv[2], &end, 10);
            long nsec = 0;
            if (*end == '.') {
                char digits[10] = "000000000";
                size_t k = strlen(end + 1);
                if (k == 0 || k > 9 || strspn(end + 1, "0123456789") != k)
                    usage("bad time");
                memcpy(digits, end + 1, k);
                nsec = strtol(digits, NULL, 10);
            } else if (*end) {
                usage("bad time");
            }
            ts[0].tv_sec = ts[1].tv_sec = (time_t)sec;
            ts[0].tv_nsec = ts[1].tv_nsec = nsec;
            rc = utimensat(AT_FDCWD, argv[1], ts, 0);
        }
    } else if (!strcmp(op, "opendir")) {
        NEED(2);
        DIR *d = opendir(argv[1]);
        if (d) {
            errno = 0;
            while (readdir(d))
                ;
            int e = errno;
            closedir(d);
            errno = e;
            rc = e ? -1 : 0;
        }
    } else if (!strcmp(op, "chdir")) {
        NEED(2);
        rc = chdir(argv[1]);
    } else if (!strcmp(op, "fsync")) {
        NEED(2);
        int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            rc = fsync(fd);
            int e = errno;
            close(fd);
            errno = e;
        }
    } else if (!strcmp(op, "mmap")) {
        NEED(2);
        rc = do_mmap(argv[1]);
        if (rc == 1) {
            puts("MISMATCH");
            return 1;
        }
    } else if (!strcmp(op, "mkfifo")) {
        NEED(2);
        rc = mkfifo(argv[1], 0644);
    } else {
        usage("unknown operation");
    }
    if (rc == 0) {
        puts("ok");
        return 0;
    }
    puts(errname(errno ? errno : EIO));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage("no operation");
    setvbuf(stdout, NULL, _IOLBF, 0);
    int status = 0, i = 1;
    while (i < argc) {
        int j = i;
        while (j < argc && strcmp(argv[j], "--") != 0)
            j++;
        if (j == i)
            usage("empty operation");
        if (one(j - i, argv + i))
            status = 1;
        i = j + 1;
    }
    return status;
}
