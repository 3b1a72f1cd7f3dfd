/* tests/core/test_journal.c - the mount's journal: format, escaping, reader.
 *
 * Checks the exact bytes of a record, that every record type round-trips
 * (TAB, LF, '%', control bytes, UTF-8, 4096-byte fields, extreme numbers),
 * the refusals of append (too long, bad type, a short write), that the
 * reader stops before an incomplete line and resumes when the rest arrives,
 * record offsets and resuming from them, malformed lines (-EBADMSG, not
 * consumed), and 8 processes appending 2000 records each to one journal
 * through their own O_APPEND descriptors: every record present, none torn.
 * Every test works in its own mkdtemp directory under ${TMPDIR:-/tmp}.
 */
#include "core/journal.h"
#include "tests/lib/ctest.h"
#include "tests/lib/tmpdir.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NPROC 8
#define NREC 2000

/* ---- helpers ---- */

static int open_append(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
}

static mesa_jrec_t rec(mesa_jtype_t type, unsigned slot, int64_t mtime, const char *arg,
                       const char *path)
{
    mesa_jrec_t r = {.type = type, .slot = slot, .mtime_ns = mtime, .arg = arg, .path = path};

    return r;
}

static off_t file_size(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* The whole file in a malloc'd NUL-terminated buffer, its length in *len. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
            buf[n] = '\0';
            *len = (size_t)n;
        } else {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    return buf;
}

static int write_bytes(const char *path, const char *bytes, size_t len)
{
    int fd = open_append(path);
    int ok = fd >= 0 && write(fd, bytes, len) == (ssize_t)len;

    if (fd >= 0)
        close(fd);
    return ok ? 0 : -1;
}

static int same(const mesa_jrec_t *a, const mesa_jrec_t *b)
{
    return a->type == b->type && a->slot == b->slot && a->mtime_ns == b->mtime_ns &&
           strcmp(a->arg, b->arg) == 0 && strcmp(a->path, b->path) == 0;
}

/* ---- format and round trip ---- */

static void test_exact_bytes(void)
{
    char *dir = ctest_tmpdir("journal"), path[PATH_MAX], *bytes;
    mesa_jrec_t r = rec(MESA_J_RENAME, 3, -12, "old\tname%", "dir/new\nname\x01");
    size_t len = 0;
    int fd;

    snprintf(path, sizeof path, "%s/journal", dir);
    fd = open_append(path);
    CHECK_EQ_INT(mesa_journal_append(fd, &r), 0, "append a rename");
    close(fd);
    bytes = slurp(path, &len);
    CHECK_EQ_STR(bytes, "N\t3\t-12\told%09name%25\tdir/new%0Aname%01\n",
                 "a record is type, slot, mtime, arg, path; TAB, LF, % and controls escaped");
    free(bytes);
    ctest_rmtree(dir);
}

static char *long_field(size_t n, char c)
{
    char *s = malloc(n + 1);

    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static void test_round_trip(void)
{
    char *dir = ctest_tmpdir("journal"), path[PATH_MAX], what[128];
    char *pct = long_field(4096, '%'), *tabs = long_field(4096, '\t'),
         *plain = long_field(4096, 'p');
    char ctl[40];
    mesa_journal_reader_t *jr = NULL;
    mesa_jrec_t got,
        in[] = {
            rec(MESA_J_WRITE, 0, 1700000000123456789LL, "0123456789abcdef", "src/main.c"),
            rec(MESA_J_UNLINK, 1, 5, "-", "a b/c\td\ne%f"),
            rec(MESA_J_MKDIR, 2, 0, "-", "caf\xc3\xa9/\xe2\x9c\x93/\xf0\x9f\x98\x80"),
            rec(MESA_J_RMDIR, 63, -1, "-", "dir"),
            rec(MESA_J_RENAME, 4, 7, "old/\x7f\xff", "new/%41"),
            rec(MESA_J_SYMLINK, 5, 8, "../target with\ttab", "link"),
            rec(MESA_J_CHMOD, 6, 9, "1", "bin/run"),
            rec(MESA_J_UTIMES, UINT_MAX, INT64_MIN, "-", "t"),
            rec(MESA_J_EPOCH, 7, INT64_MAX, "znwqpzxkvuuumwlqmxnyqswtvqxkrwvl", ""),
            rec(MESA_J_SYMLINK, 8, 10, pct, plain),
            rec(MESA_J_RENAME, 9, 11, tabs, pct),
            rec(MESA_J_WRITE, 10, 12, "id", ctl),
        };
    size_t n = sizeof in / sizeof in[0], i;
    int fd, ok = 1;

    for (i = 1; i < 32; i++)
        ctl[i - 1] = (char)i;
    ctl[31] = '%';
    ctl[32] = '\0';
    snprintf(path, sizeof path, "%s/journal", dir);
    fd = open_append(path);
    for (i = 0; i < n; i++)
        ok &= mesa_journal_append(fd, &in[i]) == 0;
    close(fd);
    CHECK(ok, "append every record type, 4096-byte and fully escaped fields included");
    CHECK_EQ_INT(mesa_journal_reader_open(path, 0, &jr), 0, "open a reader");
    for (i = 0; jr && i < n; i++) {
        int rc = mesa_journal_next(jr, &got);

        snprintf(what, sizeof what, "record %zu (type %c) reads back the same", i, in[i].type);
        CHECK(rc == 1 && same(&got, &in[i]), what);
    }
    if (jr)
        CHECK_EQ_INT(mesa_journal_next(jr, &got), 0, "then the reader is at the end");
    mesa_journal_reader_close(jr);
    free(pct);
    free(tabs);
    free(plain);
    ctest_rmtree(dir);
}

/* ---- refusals ---- */

static void test_refusals(void)
{
    char *dir = ctest_tmpdir("journal"), path[PATH_MAX];
    char *over = long_field(4097, 'x'), *max = long_field(4096, 'x');
    mesa_jrec_t r = rec(MESA_J_WRITE, 0, 0, "id", over);
    int fd, p[2];

    snprintf(path, sizeof path, "%s/journal", dir);
    fd = open_append(path);
    CHECK_EQ_INT(mesa_journal_append(fd, &r), -ENAMETOOLONG, "a 4097-byte path: -ENAMETOOLONG");
    r = rec(MESA_J_SYMLINK, 0, 0, over, "link");
    CHECK_EQ_INT(mesa_journal_append(fd, &r), -ENAMETOOLONG, "a 4097-byte arg: -ENAMETOOLONG");
    r = rec((mesa_jtype_t)'Q', 0, 0, "-", "x");
    CHECK_EQ_INT(mesa_journal_append(fd, &r), -EINVAL, "an unknown type: -EINVAL");
    r = rec(MESA_J_UNLINK, 0, 0, NULL, "x");
    CHECK_EQ_INT(mesa_journal_append(fd, &r), -EINVAL, "a NULL arg: -EINVAL");
    CHECK_EQ_INT(file_size(path), 0, "refused records write nothing");
    close(fd);
    r = rec(MESA_J_UNLINK, 0, 0, "-", "x");
    errno = EDOM;
    CHECK_EQ_INT(mesa_journal_append(fd, &r), -EBADF, "a closed descriptor: -EBADF");
    CHECK_EQ_INT(errno, EDOM, "append leaves errno alone");

    /* A non-blocking pipe with one page of room takes a part of a long record. */
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0) {
        fcntl(p[1], F_SETPIPE_SZ, 4096);
        r = rec(MESA_J_RENAME, 0, 0, max, max);
        CHECK_EQ_INT(mesa_journal_append(p[1], &r), -EIO, "a short write is -EIO, not retried");
        close(p[0]);
        close(p[1]);
    }
    free(over);
    free(max);
    ctest_rmtree(dir);
}

/* ---- incomplete records and offsets ---- */

static void test_incomplete(void)
{
    char *dir = ctest_tmpdir("journal"), path[PATH_MAX], other[PATH_MAX], *line;
    mesa_jrec_t got, first = rec(MESA_J_WRITE, 1, 2, "aaaa", "first"),
                     second = rec(MESA_J_SYMLINK, 2, 3, "tar\tget", "sec%ond");
    mesa_journal_reader_t *jr = NULL;
    size_t len = 0, half;
    uint64_t first_end;
    int fd;

    snprintf(path, sizeof path, "%s/journal", dir);
    snprintf(other, sizeof other, "%s/scratch", dir);
    fd = open_append(path);
    mesa_journal_append(fd, &first);
    close(fd);
    fd = open_append(other);
    mesa_journal_append(fd, &second);
    close(fd);
    line = slurp(other, &len);
    half = len / 2;
    write_bytes(path, line, half);

    CHECK_EQ_INT(mesa_journal_reader_open(path, 0, &jr), 0, "open a reader");
    if (!jr)
        goto out;
    CHECK(mesa_journal_next(jr, &got) == 1 && same(&got, &first), "the whole first record");
    first_end = got.end;
    CHECK_EQ_INT(mesa_journal_next(jr, &got), 0, "half a record: 0, nothing consumed");
    CHECK_EQ_INT(mesa_journal_next(jr, &got), 0, "asked again: still 0");
    CHECK_EQ_INT(mesa_journal_offset(jr), first_end, "the offset stays before the partial line");
    write_bytes(path, line + half, len - half - 1);
    CHECK_EQ_INT(mesa_journal_next(jr, &got), 0, "all but the LF: still 0");
    write_bytes(path, "\n", 1);
    CHECK(mesa_journal_next(jr, &got) == 1 && same(&got, &second),
          "once the rest is appended, the record reads whole");
    CHECK_EQ_INT(mesa_journal_offset(jr), file_size(path), "the reader is at the end of the file");
out:
    mesa_journal_reader_close(jr);
    free(line);
    ctest_rmtree(dir);
}

static void test_offsets(void)
{
    char *dir = ctest_tmpdir("journal"), path[PATH_MAX], p[64], *big = long_field(3000, '\n');
    mesa_journal_reader_t *jr = NULL;
    mesa_jrec_t got;
    uint64_t offs[40], ends[40];
    int fd, i, ok = 1, rc;

    snprintf(path, sizeof path, "%s/journal", dir);
    fd = open_append(path);
    for (i = 0; i < 40; i++) {
        mesa_jrec_t r;

        snprintf(p, sizeof p, "file-%d", i);
        r = rec(MESA_J_WRITE, (unsigned)i, i, i % 7 ? "id" : big, p);
        ok &= mesa_journal_append(fd, &r) == 0;
    }
    close(fd);
    CHECK(ok, "append 40 records, some of them 9000 bytes long");
    mesa_journal_reader_open(path, 0, &jr);
    for (i = 0; jr && i < 40 && mesa_journal_next(jr, &got) == 1; i++) {
        offs[i] = got.offset;
        ends[i] = got.end;
        ok &= (unsigned)i == got.slot && (i == 0 ? got.offset == 0 : got.offset == ends[i - 1]) &&
              mesa_journal_offset(jr) == got.end;
    }
    CHECK_EQ_INT(i, 40, "read them all back");
    CHECK(ok, "each record starts where the last ended; the reader's offset is its end");
    CHECK_EQ_INT(ends[39], file_size(path), "the last record ends at the end of the file");
    mesa_journal_reader_close(jr);
    jr = NULL;

    ok = 1;
    for (int k = 0; k < 40; k += 13) {
        rc = mesa_journal_reader_open(path, offs[k], &jr);
        for (i = k; rc == 0 && i < 40; i++)
            ok &= mesa_journal_next(jr, &got) == 1 && got.slot == (unsigned)i &&
                  got.offset == offs[i] && got.end == ends[i];
        ok &= rc == 0 && mesa_journal_next(jr, &got) == 0;
        mesa_journal_reader_close(jr);
        jr = NULL;
    }
    CHECK(ok, "a reader opened at a record's offset resumes exactly there");
    rc = mesa_journal_reader_open(path, ends[39] + 100, &jr);
    CHECK(rc == 0 && mesa_journal_next(jr, &got) == 0, "an offset past the end reads nothing");
    mesa_journal_reader_close(jr);
    free(big);
    ctest_rmtree(dir);
}

/* ---- malformed ---- */

/* A journal of one good record then bad; 1 if the reader returns the good
 * record, then -EBADMSG twice without moving. */
static int rejects(const char *dir, const char *bad, size_t badlen)
{
    char path[PATH_MAX];
    mesa_journal_reader_t *jr = NULL;
    mesa_jrec_t got;
    uint64_t at;
    int ok;

    snprintf(path, sizeof path, "%s/journal", dir);
    unlink(path);
    if (write_bytes(path, "D\t0\t0\t-\tgood\n", 13) != 0 || write_bytes(path, bad, badlen) != 0 ||
        mesa_journal_reader_open(path, 0, &jr) != 0)
        return 0;
    ok = mesa_journal_next(jr, &got) == 1 && strcmp(got.path, "good") == 0;
    at = mesa_journal_offset(jr);
    ok &= mesa_journal_next(jr, &got) == -EBADMSG && mesa_journal_next(jr, &got) == -EBADMSG;
    ok &= mesa_journal_offset(jr) == at;
    mesa_journal_reader_close(jr);
    return ok;
}

#define REJECTS(dir, lit, what) CHECK(rejects(dir, lit, sizeof lit - 1), what)

static void test_malformed(void)
{
    char *dir = ctest_tmpdir("journal"), *huge = long_field(MESA_JOURNAL_MAX_RECORD + 10, 'x');
    char *field = malloc(4200);

    REJECTS(dir, "\n", "an empty line");
    REJECTS(dir, "Q\t0\t0\t-\tx\n", "an unknown type");
    REJECTS(dir, "WW\t0\t0\t-\tx\n", "a two-letter type");
    REJECTS(dir, "W\t0\t0\t-\n", "four fields");
    REJECTS(dir, "W\t0\t0\t-\tx\ty\n", "six fields");
    REJECTS(dir, "W\t\t0\t-\tx\n", "an empty slot");
    REJECTS(dir, "W\t-1\t0\t-\tx\n", "a negative slot");
    REJECTS(dir, "W\t4294967296\t0\t-\tx\n", "a slot over UINT_MAX");
    REJECTS(dir, "W\t0\t9223372036854775808\t-\tx\n", "an mtime over INT64_MAX");
    REJECTS(dir, "W\t0\t1x\t-\tx\n", "a non-numeric mtime");
    REJECTS(dir, "W\t0\t-\t-\tx\n", "a lone minus as mtime");
    REJECTS(dir, "W\t0\t0\t-\tbad%G1\n", "a bad escape");
    REJECTS(dir, "W\t0\t0\t-\tbad%4\n", "a truncated escape");
    REJECTS(dir, "W\t0\t0\t-\tbad%00\n", "an escaped NUL");
    REJECTS(dir, "W\t0\t0\t-\tcr\r\n", "a raw control byte");
    REJECTS(dir, "W\t0\t0\t-\tn\0ul\n", "a raw NUL");
    memcpy(field, "W\t0\t0\t-\t", 8);
    memset(field + 8, 'y', 4097);
    field[8 + 4097] = '\n';
    CHECK(rejects(dir, field, 8 + 4098), "a path over 4096 bytes");
    CHECK(rejects(dir, huge, strlen(huge)), "a line longer than any record, without LF");
    free(field);
    free(huge);
    ctest_rmtree(dir);
}

static void test_missing(void)
{
    mesa_journal_reader_t *jr = NULL;

    CHECK_EQ_INT(mesa_journal_reader_open("/nonexistent/journal", 0, &jr), -ENOENT,
                 "a reader of a missing journal: -ENOENT");
}

/* ---- concurrent appenders ---- */

/* Path of record i of process p: long enough now and then to cross pages. */
static void conc_path(int p, int i, char *buf, size_t cap)
{
    int pad = i % 97 == 0 ? 3000 : i % 5;

    snprintf(buf, cap, "p%d/f%d/%0*d", p, i, pad, 0);
}

static void appender(const char *path, int p)
{
    char buf[4096];
    int fd = open_append(path), rc = fd < 0;

    for (int i = 0; i < NREC && rc == 0; i++) {
        mesa_jrec_t r = rec(MESA_J_WRITE, (unsigned)p, i, "tab\there", buf);

        conc_path(p, i, buf, sizeof buf);
        rc = mesa_journal_append(fd, &r);
    }
    _exit(rc == 0 ? 0 : 1);
}

/* Check one record of the concurrent test and mark it seen. */
static int conc_check(const mesa_jrec_t *r, unsigned char *seen)
{
    char want[4096];
    int p = (int)r->slot, i = (int)r->mtime_ns;

    if (r->type != MESA_J_WRITE || p < 0 || p >= NPROC || i < 0 || i >= NREC)
        return 0;
    conc_path(p, i, want, sizeof want);
    if (strcmp(r->path, want) != 0 || strcmp(r->arg, "tab\there") != 0 || seen[p * NREC + i])
        return 0;
    seen[p * NREC + i] = 1;
    return 1;
}

static void test_concurrent(void)
{
    char *dir = ctest_tmpdir("journal"), path[PATH_MAX];
    unsigned char *seen = calloc(NPROC * NREC, 1);
    mesa_journal_reader_t *jr = NULL;
    mesa_jrec_t got;
    pid_t pids[NPROC];
    int ok = 1, n = 0, good = 0, rc, st;

    snprintf(path, sizeof path, "%s/journal", dir);
    for (int p = 0; p < NPROC; p++) {
        pids[p] = fork();
        if (pids[p] == 0)
            appender(path, p);
    }
    for (int p = 0; p < NPROC; p++)
        ok &= waitpid(pids[p], &st, 0) == pids[p] && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    CHECK(ok, "8 processes appended 2000 records each");
    mesa_journal_reader_open(path, 0, &jr);
    while (jr && (rc = mesa_journal_next(jr, &got)) == 1) {
        n++;
        good += conc_check(&got, seen);
    }
    CHECK_EQ_INT(n, NPROC * NREC, "the reader reads exactly 16000 records");
    CHECK_EQ_INT(good, NPROC * NREC, "every record is whole, distinct and expected");
    CHECK(jr && rc == 0 && mesa_journal_offset(jr) == (uint64_t)file_size(path),
          "and stops at the end of the file");
    mesa_journal_reader_close(jr);
    free(seen);
    ctest_rmtree(dir);
}

int main(void)
{
    test_exact_bytes();
    test_round_trip();
    test_refusals();
    test_incomplete();
    test_offsets();
    test_malformed();
    test_missing();
    test_concurrent();
    return ctest_done();
}
