/* core/journal.c - the mount's journal of namespace operations (see journal.h,
 * docs/MOUNT.md "staging files and the journal").
 *
 * A record is one text line "<type>\t<slot>\t<mtime_ns>\t<arg>\t<path>\n":
 * type one letter of mesa_jtype_t, slot an unsigned decimal, mtime_ns a
 * signed decimal, arg and path at most FIELD_MAX bytes each before escaping,
 * with TAB, LF, '%' and every byte below 0x20 written as %XX (upper-case
 * hex); everything else, UTF-8 included, is verbatim.
 *
 * Invariant: every record reaches the file in one write(2) on an O_APPEND
 * descriptor, so concurrent appenders never interleave (Linux local file
 * systems hold the inode lock for the whole write) and a reader sees either a
 * whole line or a prefix without its LF. append formats on the stack (a
 * small frame for the common short record, the full MESA_JOURNAL_MAX_RECORD
 * only for long ones, in a separate frame), never allocates, never retries a
 * partial write (a retry could land after another process's record), and
 * keeps errno: it may run in a signal handler.
 *
 * The reader keeps a window of the file in its own buffer, at least twice the
 * longest record, and hands out a record only when its LF is there; the
 * decoded strings live in the reader. A malformed record (bad field, escape,
 * raw control byte, no LF within MESA_JOURNAL_MAX_RECORD bytes) is -EBADMSG
 * and is not consumed.
 *
 * Callers: the shim (append on every namespace operation; a reader to replay
 * other processes' records into its overlay), mesarun's pusher and
 * `mesa push-pending` (readers), tests/core/test_journal.c.
 */
#include "config.h"
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIELD_MAX 4096   /* bytes of arg or path, unescaped */
#define FIXED_MAX 36     /* type, slot (10), mtime (20), 4 TABs, LF */
#define SMALL_RECORD 512 /* records up to this long use the small frame */
#define READ_WINDOW (2 * MESA_JOURNAL_MAX_RECORD)

_Static_assert(FIXED_MAX + 2 * 3 * FIELD_MAX <= MESA_JOURNAL_MAX_RECORD, "record bound");

static const char hexdigits[] = "0123456789ABCDEF";

int mesa_journal_type_valid(int t)
{
    switch (t) {
    case MESA_J_WRITE:
    case MESA_J_UNLINK:
    case MESA_J_MKDIR:
    case MESA_J_RMDIR:
    case MESA_J_RENAME:
    case MESA_J_SYMLINK:
    case MESA_J_CHMOD:
    case MESA_J_UTIMES:
    case MESA_J_EPOCH:
        return 1;
    default:
        return 0;
    }
}

/* ---- append: no allocation, async-signal-safe ---- */

static int needs_escape(unsigned char c)
{
    return c < 0x20 || c == '%'; /* TAB and LF are below 0x20 */
}

static size_t escaped_len(const char *s)
{
    size_t n = 0;

    for (; *s; s++)
        n += needs_escape((unsigned char)*s) ? 3 : 1;
    return n;
}

static char *put_escaped(char *p, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (needs_escape(c)) {
            *p++ = '%';
            *p++ = hexdigits[c >> 4];
            *p++ = hexdigits[c & 15];
        } else {
            *p++ = (char)c;
        }
    }
    return p;
}

static char *put_u64(char *p, uint64_t v)
{
    char tmp[20];
    size_t n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

static char *put_i64(char *p, int64_t v)
{
    if (v >= 0)
        return put_u64(p, (uint64_t)v);
    *p++ = '-';
    return put_u64(p, 0 - (uint64_t)v);
}

/* Format r into buf (big enough: checked by the caller). Returns the length. */
static size_t format(char *buf, const mesa_jrec_t *r)
{
    char *p = buf;

    *p++ = (char)r->type;
    *p++ = '\t';
    p = put_u64(p, r->slot);
    *p++ = '\t';
    p = put_i64(p, r->mtime_ns);
    *p++ = '\t';
    p = put_escaped(p, r->arg);
    *p++ = '\t';
    p = put_escaped(p, r->path);
    *p++ = '\n';
    return (size_t)(p - buf);
}

/* One write(2) of the whole record: EINTR means nothing was written. */
static int write_record(int fd, const char *buf, size_t len)
{
    ssize_t w;

    do
        w = write(fd, buf, len);
    while (w < 0 && errno == EINTR);
    if (w < 0)
        return -errno;
    return (size_t)w == len ? 0 : -EIO;
}

static __attribute__((noinline)) int append_small(int fd, const mesa_jrec_t *r)
{
    char buf[SMALL_RECORD];

    return write_record(fd, buf, format(buf, r));
}

static __attribute__((noinline)) int append_large(int fd, const mesa_jrec_t *r)
{
    char buf[MESA_JOURNAL_MAX_RECORD];

    return write_record(fd, buf, format(buf, r));
}

int mesa_journal_append(int fd, const mesa_jrec_t *r)
{
    size_t need;
    int saved = errno, rc;

    if (!r || !r->arg || !r->path || !mesa_journal_type_valid(r->type))
        return -EINVAL;
    if (strnlen(r->arg, FIELD_MAX + 1) > FIELD_MAX || strnlen(r->path, FIELD_MAX + 1) > FIELD_MAX)
        return -ENAMETOOLONG;
    need = FIXED_MAX + escaped_len(r->arg) + escaped_len(r->path);
    rc = need <= SMALL_RECORD ? append_small(fd, r) : append_large(fd, r);
    errno = saved;
    return rc;
}

/* ---- reader ---- */

struct mesa_journal_reader {
    int fd;
    uint64_t base; /* file offset of buf[0] */
    size_t start;  /* buf index of the next unconsumed record */
    size_t len;    /* bytes of buf holding file data */
    char arg[FIELD_MAX + 1];
    char path[FIELD_MAX + 1];
    char buf[READ_WINDOW];
};

int mesa_journal_reader_open(const char *path, uint64_t offset, mesa_journal_reader_t **out)
{
    mesa_journal_reader_t *jr;
    int fd;

    if (!path || !out)
        return -EINVAL;
    do
        fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return -errno;
    jr = malloc(sizeof *jr);
    if (!jr) {
        close(fd);
        return -ENOMEM;
    }
    jr->fd = fd;
    jr->base = offset;
    jr->start = jr->len = 0;
    *out = jr;
    return 0;
}

void mesa_journal_reader_close(mesa_journal_reader_t *jr)
{
    if (!jr)
        return;
    close(jr->fd);
    free(jr);
}

uint64_t mesa_journal_offset(const mesa_journal_reader_t *jr)
{
    return jr->base + jr->start;
}

/* Drop consumed bytes and read what follows in the file. Bytes read, 0 at
 * the end of the file, or -errno. */
static ssize_t fill(mesa_journal_reader_t *jr)
{
    ssize_t n;

    memmove(jr->buf, jr->buf + jr->start, jr->len - jr->start);
    jr->base += jr->start;
    jr->len -= jr->start;
    jr->start = 0;
    do
        n = pread(jr->fd, jr->buf + jr->len, sizeof jr->buf - jr->len, (off_t)(jr->base + jr->len));
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    jr->len += (size_t)n;
    return n;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decode the escaped field s[0..n) into dst (FIELD_MAX + 1 bytes, NUL added).
 * 0, or -EBADMSG for a raw control byte, a bad or NUL escape, or a field
 * longer than FIELD_MAX. */
static int unescape(const char *s, size_t n, char *dst)
{
    size_t i = 0, o = 0;

    while (i < n) {
        unsigned char c = (unsigned char)s[i++];

        if (c < 0x20 || o == FIELD_MAX)
            return -EBADMSG;
        if (c == '%') {
            int hi = i + 2 <= n ? hexval(s[i]) : -1, lo = i + 2 <= n ? hexval(s[i + 1]) : -1;

            if (hi < 0 || lo < 0 || (hi | lo) == 0)
                return -EBADMSG;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        }
        dst[o++] = (char)c;
    }
    dst[o] = '\0';
    return 0;
}

/* Parse the decimal s[0..n) into *v, at most max. 0 or -EBADMSG. */
static int parse_u64(const char *s, size_t n, uint64_t max, uint64_t *v)
{
    uint64_t x = 0;

    if (n == 0 || n > 20)
        return -EBADMSG;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(s[i] - '0');

        if (d > 9 || x > (max - d) / 10)
            return -EBADMSG;
        x = x * 10 + d;
    }
    *v = x;
    return 0;
}

static int parse_i64(const char *s, size_t n, int64_t *v)
{
    int neg = n > 0 && s[0] == '-';
    uint64_t mag;

    if (parse_u64(s + neg, n - (size_t)neg, (uint64_t)INT64_MAX + (uint64_t)neg, &mag) != 0)
        return -EBADMSG;
    *v = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return 0;
}

/* Split line[0..n) (no LF) at its TABs into exactly 5 fields. */
static int split(const char *line, size_t n, const char *f[5], size_t flen[5])
{
    size_t k = 0, from = 0;

    for (size_t i = 0; i <= n; i++) {
        if (i < n && line[i] != '\t')
            continue;
        if (k == 5)
            return -EBADMSG;
        f[k] = line + from;
        flen[k++] = i - from;
        from = i + 1;
    }
    return k == 5 ? 0 : -EBADMSG;
}

/* Parse line[0..n) (no LF) into out; strings into the reader's buffers. */
static int parse(mesa_journal_reader_t *jr, const char *line, size_t n, mesa_jrec_t *out)
{
    const char *f[5];
    size_t flen[5];
    uint64_t slot;
    int64_t mtime;

    if (split(line, n, f, flen) != 0 || flen[0] != 1 || !mesa_journal_type_valid((unsigned char)f[0][0]))
        return -EBADMSG;
    if (parse_u64(f[1], flen[1], UINT_MAX, &slot) != 0 || parse_i64(f[2], flen[2], &mtime) != 0)
        return -EBADMSG;
    if (unescape(f[3], flen[3], jr->arg) != 0 || unescape(f[4], flen[4], jr->path) != 0)
        return -EBADMSG;
    out->type = (mesa_jtype_t)(unsigned char)f[0][0];
    out->slot = (unsigned)slot;
    out->mtime_ns = mtime;
    out->arg = jr->arg;
    out->path = jr->path;
    return 0;
}

int mesa_journal_next(mesa_journal_reader_t *jr, mesa_jrec_t *out)
{
    for (;;) {
        const char *line = jr->buf + jr->start;
        const char *lf = memchr(line, '\n', jr->len - jr->start);
        ssize_t got;

        if (lf) {
            size_t n = (size_t)(lf - line);

            if (parse(jr, line, n, out) != 0)
                return -EBADMSG;
            out->offset = mesa_journal_offset(jr);
            out->end = out->offset + n + 1;
            jr->start += n + 1;
            return 1;
        }
        if (jr->len - jr->start >= MESA_JOURNAL_MAX_RECORD)
            return -EBADMSG; /* no record is this long */
        got = fill(jr);
        if (got <= 0)
            return (int)got;
    }
}

int mesa_journal_reader_fd(const mesa_journal_reader_t *jr)
{
    return jr->fd;
}

void mesa_journal_reader_set_fd(mesa_journal_reader_t *jr, int fd)
{
    jr->fd = fd;
}
