/* server/util.c - clocks, time formats, strict JSON field checks, cursors and
 * small filesystem helpers for mesad. Pure helpers: no global state.
 */
#include "config.h"
#include "util.h"
#include "b64.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int64_t util_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t util_now_ms(void)
{
    return util_now_ns() / 1000000;
}

static void copy_trunc(char *dst, size_t n, const char *src)
{
    size_t l = strnlen(src, n - 1);
    memcpy(dst, src, l);
    dst[l] = '\0';
}

void util_fmt_time_ms(int64_t ms, char out[32])
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char buf[128]; /* wide enough for any int fields: keeps -Wformat-truncation quiet */
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    copy_trunc(out, 32, buf);
}

int util_parse_time(const char *s, int64_t *secs, int *offset_min)
{
    struct tm tm = {0};
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -EINVAL;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    int off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        /* exactly "+HH:MM": never read past the string */
        for (int i = 1; i <= 5; i++)
            if (!p[i] || (i == 3 ? p[i] != ':' : (p[i] < '0' || p[i] > '9')))
                return -EINVAL;
        int hh = (p[1] - '0') * 10 + (p[2] - '0'), mm = (p[4] - '0') * 10 + (p[5] - '0');
        if (hh > 23 || mm > 59)
            return -EINVAL;
        off = (hh * 60 + mm) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -EINVAL;
    }
    if (*p)
        return -EINVAL;
    int64_t t = (int64_t)timegm(&tm) - (int64_t)off * 60;
    if (t < 0 || t > 4294967295LL) /* what git's commit headers carry */
        return -ERANGE;
    *secs = t;
    *offset_min = off;
    return 0;
}

int util_json_only_keys(json_t *obj, const char *const *allowed, const char **bad)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        const char *const *a;
        for (a = allowed; *a; a++)
            if (strcmp(*a, key) == 0)
                break;
        if (!*a) {
            *bad = key;
            return -EINVAL;
        }
    }
    return 0;
}

void util_cursor_encode(long off, char out[32])
{
    char num[24];
    int n = snprintf(num, sizeof num, "o%ld", off);
    mesa_b64url_encode(num, (size_t)n, out);
}

int util_cursor_decode(const char *s, long *off)
{
    unsigned char *raw = NULL;
    size_t len;
    if (!s || strlen(s) > 30 || mesa_b64url_decode(s, strlen(s), &raw, &len) < 0)
        return -EINVAL;
    char *end;
    int rc = -EINVAL;
    if (len >= 2 && raw[0] == 'o') {
        long v = strtol((char *)raw + 1, &end, 10);
        if (*end == '\0' && v >= 0) {
            *off = v;
            rc = 0;
        }
    }
    free(raw);
    return rc;
}

int util_parse_limit(const char *s, int def, int *out)
{
    if (!s) {
        *out = def;
        return 0;
    }
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 1 || v > 100)
        return -EINVAL;
    *out = (int)v;
    return 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return (flag == FTW_DP ? rmdir(p) : unlink(p)) < 0 && errno != ENOENT ? -1 : 0;
}

int util_rmtree(const char *path)
{
    if (nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS) < 0)
        return errno == ENOENT ? 0 : -errno;
    return 0;
}

int util_fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}
