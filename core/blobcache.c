/* core/blobcache.c - the content-addressed blob cache (see blobcache.h).
 *
 * Invariant: a file at <dir>/blobs/<xx>/<oid> is whole, read-only and hashes
 * to <oid> as a git blob. The bytes are checked before anything is written;
 * they go to a private temp file in <dir>/tmp (named blob.<pid>.XXXXXX),
 * which is fsync'd and renamed into place, so readers and concurrent
 * publishers only ever see whole blobs. All state lives in the handle or on
 * disk: no globals, no threads, no output.
 *
 * Durability: the directory of a new blob is not fsync'd. This is a cache:
 * after a crash a blob may be missing (it is fetched again), while the fsync
 * of the data before the rename means a blob that is present is whole.
 * A blob's directory blobs/<xx>/ is made only when the rename into it
 * finds it missing (eviction may have removed it): no mkdir per put.
 * put_many (a batch answer) fsyncs each blob too, then publishes them all;
 * one syncfs for the batch was tried and dropped: it waits for every dirty
 * page of the file system, other programs' too (a read took 122 s once
 * while a large file was being written elsewhere).
 *
 * Accounting: usage is the sum of the blobs' st_size (not disk blocks), found
 * by a scan of blobs/<xx>/. put keeps an estimate (last scan plus its own
 * puts) and evicts down to 90% of the cap only when the estimate would pass
 * the cap, so a put does not scan; the estimate is refreshed by a scan after
 * cap/16 bytes of puts, which bounds what other processes' puts can hide.
 * Eviction also removes temp files older than an hour (crashed writers).
 * Paths: <dir> plus at most SUFFIX_MAX bytes, checked once at open.
 *
 * Callers: core's open path (lookup; fetch and put on a miss), mesarun
 * (eviction, --cache-size), tests/core/test_blobcache.c.
 */
#include "blobcache.h"
#include "sha1.h"
#include "fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>


#define MIB (1024ULL * 1024)
#define AUTO_MIN (256 * MIB)
#define AUTO_MAX (10 * 1024 * MIB)
#define STALE_TMP_SEC 3600
#define OID_HEX 40
#define SUFFIX_MAX 64 /* longest of "/blobs/xx/<oid>" and "/tmp/blob.<pid>.XXXXXX" */

struct mesa_blobcache {
    char *dir;
    uint64_t cap;
    uint64_t est;   /* bytes cached: last scan plus own puts since */
    uint64_t since; /* bytes put since the last scan */
    int est_valid;
};

typedef struct blob_rec {
    struct timespec mtime;
    uint64_t size;
    char oid[OID_HEX + 1];
} blob_rec_t;

typedef struct blob_list {
    blob_rec_t *v;
    size_t n, cap;
} blob_list_t;

/* ---- small helpers ---- */

static int is_hex_lower(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* 40 lowercase hex digits: the only spelling of a cache key. */
static int valid_oid(const char *oid)
{
    return oid && strnlen(oid, OID_HEX + 1) == OID_HEX && is_hex_lower(oid, OID_HEX);
}

static int mkdir_ok(const char *path)
{
    return mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : -errno;
}

static int blob_path(const mesa_blobcache_t *c, const char *oid, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s/blobs/%.2s/%s", c->dir, oid, oid);

    return n < 0 || (size_t)n >= outlen ? -ERANGE : 0;
}

/* The git blob id of data into out (41 bytes). 0 or -EIO. */
static int blob_hash(const void *data, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[20];
    unsigned int mdlen = sizeof md;
    char hdr[32];
    int hl = snprintf(hdr, sizeof hdr, "blob %zu", len);
    mesa_sha1_t ctx;
    mesa_sha1_init(&ctx);
    mesa_sha1_update(&ctx, hdr, (size_t)hl + 1);
    mesa_sha1_update(&ctx, data, len);
    mesa_sha1_final(&ctx, md);
    out[0] = '\0';
    for (unsigned int i = 0; i < mdlen; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[OID_HEX] = '\0';
    return 0;
}

void mesa_blob_oid(const void *data, size_t len, char out[41])
{
    blob_hash(data, len, out); /* "" should SHA-1 be unavailable */
}

/* ---- open / close ---- */

/* 10% of the free space of dir's filesystem, clamped to [256 MiB, 10 GiB]. */
static int auto_cap(const char *dir, uint64_t *cap)
{
    struct statvfs sv;
    uint64_t tenth;

    if (statvfs(dir, &sv) != 0)
        return -errno;
    tenth = (uint64_t)sv.f_bavail * sv.f_frsize / 10;
    *cap = tenth < AUTO_MIN ? AUTO_MIN : tenth > AUTO_MAX ? AUTO_MAX : tenth;
    return 0;
}

static int make_dirs(const char *dir)
{
    char p[PATH_MAX];
    int rc = mkdir_ok(dir);

    if (rc == 0) {
        snprintf(p, sizeof p, "%s/blobs", dir);
        rc = mkdir_ok(p);
    }
    if (rc == 0) {
        snprintf(p, sizeof p, "%s/tmp", dir);
        rc = mkdir_ok(p);
    }
    return rc;
}

int mesa_blobcache_open(const char *dir, uint64_t max_bytes, mesa_blobcache_t **out)
{
    mesa_blobcache_t *c = NULL;
    int rc;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!dir || !*dir)
        return -EINVAL;
    if (strlen(dir) + SUFFIX_MAX >= PATH_MAX)
        return -ENAMETOOLONG;
    rc = make_dirs(dir);
    if (rc < 0)
        goto out;
    rc = -ENOMEM;
    c = calloc(1, sizeof *c);
    if (!c || !(c->dir = strdup(dir)))
        goto out;
    c->cap = max_bytes;
    rc = max_bytes ? 0 : auto_cap(dir, &c->cap);
out:
    if (rc < 0)
        mesa_blobcache_close(c);
    else
        *out = c;
    return rc;
}

void mesa_blobcache_close(mesa_blobcache_t *c)
{
    if (!c)
        return;
    free(c->dir);
    free(c);
}

uint64_t mesa_blobcache_cap(const mesa_blobcache_t *c)
{
    return c ? c->cap : 0;
}

/* ---- lookup ---- */

/* Mark path used (mtime = now). A cache shared with another user, or on a
 * read-only filesystem, cannot be touched: then only existence counts. */
static int touch(const char *path)
{
    const struct timespec now[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
    struct stat st;

    if (utimensat(AT_FDCWD, path, now, 0) == 0)
        return 0;
    if (errno == EPERM || errno == EROFS || errno == EACCES) {
        if (stat(path, &st) == 0)
            return S_ISREG(st.st_mode) ? 0 : -ENOENT;
    }
    return errno == ENOTDIR ? -ENOENT : -errno;
}

int mesa_blobcache_lookup(mesa_blobcache_t *c, const char *oid, char *out, size_t outlen)
{
    int rc;

    if (!c || !out || !valid_oid(oid))
        return -EINVAL;
    rc = blob_path(c, oid, out, outlen);
    return rc < 0 ? rc : touch(out);
}

/* ---- scanning ---- */

static int list_push(blob_list_t *l, const struct stat *st, const char *oid)
{
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 256;
        blob_rec_t *v = realloc(l->v, ncap * sizeof *v);
        if (!v)
            return -ENOMEM;
        l->v = v;
        l->cap = ncap;
    }
    l->v[l->n].mtime = st->st_mtim;
    l->v[l->n].size = (uint64_t)st->st_size;
    memcpy(l->v[l->n].oid, oid, OID_HEX + 1);
    l->n++;
    return 0;
}

static DIR *open_dir_at(int at, const char *name)
{
    int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);

    if (fd >= 0 && !d)
        close(fd);
    return d;
}

/* readdir that tells the end (NULL, errno 0) from an error (NULL, errno set). */
static struct dirent *next_ent(DIR *d, int *rc)
{
    struct dirent *e;

    errno = 0;
    e = readdir(d);
    if (!e && errno)
        *rc = -errno;
    return e;
}

/* Add the blobs of one blobs/<xx> directory to the totals (and to l). */
static int scan_sub(int blobs_fd, const char *xx, blob_list_t *l, uint64_t *bytes, uint64_t *count)
{
    DIR *d = open_dir_at(blobs_fd, xx);
    struct dirent *e;
    struct stat st;
    int rc = 0;

    if (!d)
        return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
    while (rc == 0 && (e = next_ent(d, &rc))) {
        if (!valid_oid(e->d_name) || memcmp(e->d_name, xx, 2) != 0)
            continue;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue; /* evicted meanwhile, or not ours */
        *bytes += (uint64_t)st.st_size;
        (*count)++;
        if (l)
            rc = list_push(l, &st, e->d_name);
    }
    closedir(d);
    return rc;
}

/* Walk blobs/<xx>/<oid>: totals, and every blob into l when l is not NULL. */
static int scan(mesa_blobcache_t *c, blob_list_t *l, uint64_t *bytes, uint64_t *count)
{
    char p[PATH_MAX];
    struct dirent *e;
    DIR *d;
    int rc = 0;

    *bytes = *count = 0;
    snprintf(p, sizeof p, "%s/blobs", c->dir);
    d = open_dir_at(AT_FDCWD, p);
    if (!d)
        return -errno;
    while (rc == 0 && (e = next_ent(d, &rc)))
        if (strlen(e->d_name) == 2 && is_hex_lower(e->d_name, 2))
            rc = scan_sub(dirfd(d), e->d_name, l, bytes, count);
    closedir(d);
    if (rc == 0) {
        c->est = *bytes;
        c->est_valid = 1;
        c->since = 0;
    }
    return rc;
}

int mesa_blobcache_usage(mesa_blobcache_t *c, uint64_t *bytes, uint64_t *count)
{
    uint64_t b, n;
    int rc;

    if (!c)
        return -EINVAL;
    rc = scan(c, NULL, &b, &n);
    if (rc == 0 && bytes)
        *bytes = b;
    if (rc == 0 && count)
        *count = n;
    return rc;
}

/* ---- eviction ---- */

static int by_mtime(const void *a, const void *b)
{
    const blob_rec_t *x = a, *y = b;

    if (x->mtime.tv_sec != y->mtime.tv_sec)
        return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
    if (x->mtime.tv_nsec != y->mtime.tv_nsec)
        return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
    return strcmp(x->oid, y->oid);
}

/* Remove temp files of writers that died (older than an hour). Best effort. */
static void clean_tmp(const mesa_blobcache_t *c)
{
    char p[PATH_MAX];
    struct dirent *e;
    struct stat st;
    time_t limit = time(NULL) - STALE_TMP_SEC;
    int rc = 0;
    DIR *d;

    snprintf(p, sizeof p, "%s/tmp", c->dir);
    d = open_dir_at(AT_FDCWD, p);
    if (!d)
        return;
    while ((e = next_ent(d, &rc)))
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
            st.st_mtim.tv_sec < limit)
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
}

/* Unlink the oldest blobs of l (sorted) while *total > target. Returns the
 * first unlink error, if any; a blob already gone counts as removed. */
static int drop_oldest(mesa_blobcache_t *c, const blob_list_t *l, uint64_t target, uint64_t *total,
                       uint64_t *freed)
{
    uint64_t left = *total;
    char p[PATH_MAX];
    int rc = 0;

    for (size_t i = 0; i < l->n && left > target; i++) {
        blob_path(c, l->v[i].oid, p, sizeof p);
        if (unlink(p) == 0)
            *freed += l->v[i].size;
        else if (errno != ENOENT) {
            rc = rc ? rc : -errno;
            continue;
        }
        left -= l->v[i].size;
    }
    *total = left;
    return rc;
}

int mesa_blobcache_evict(mesa_blobcache_t *c, uint64_t target, uint64_t *freed)
{
    blob_list_t l = {0};
    uint64_t total, count, gone = 0;
    int rc;

    if (freed)
        *freed = 0;
    if (!c)
        return -EINVAL;
    if (target > c->cap)
        target = c->cap;
    rc = scan(c, &l, &total, &count);
    if (rc < 0)
        goto out;
    if (l.n > 1)
        qsort(l.v, l.n, sizeof *l.v, by_mtime);
    rc = drop_oldest(c, &l, target, &total, &gone);
    if (total <= target)
        rc = 0;
    c->est = total;
    clean_tmp(c);
out:
    if (freed)
        *freed = gone;
    free(l.v);
    return rc;
}

/* ---- publishing ---- */

/* Before adding len bytes: if the estimate says the cap would be passed,
 * evict down to 90% of the cap (or lower, for a big blob). Best effort. */
static void make_room(mesa_blobcache_t *c, uint64_t len)
{
    uint64_t b, n, target = c->cap / 10 * 9;

    if (!c->est_valid && scan(c, NULL, &b, &n) < 0)
        return;
    if (c->est + len <= c->cap)
        return;
    if (len > c->cap - target)
        target = len < c->cap ? c->cap - len : 0;
    mesa_blobcache_evict(c, target, NULL);
}

/* Publish into blobs/<xx>/ (created on demand) through a temp file in tmp/. */
/* Lock-free accounting of a published blob. */
static void account(mesa_blobcache_t *c, size_t len)
{
    c->est += len;
    c->since += len;
    if (c->since > c->cap / 16)
        c->est_valid = 0;
}

/* rename tmp to dst, making blobs/<xx>/ first if it is missing (most
 * puts find it there: no mkdir per blob). 0 or -1 with errno. */
static int rename_into(const mesa_blobcache_t *c, const char *oid, const char *tmp, const char *dst)
{
    char sub[PATH_MAX];
    if (rename(tmp, dst) == 0)
        return 0;
    if (errno != ENOENT)
        return -1;
    snprintf(sub, sizeof sub, "%s/blobs/%.2s", c->dir, oid);
    if (mkdir_ok(sub) < 0)
        return -1;
    return rename(tmp, dst);
}

/* Write one blob (fsync'd) and rename it into place. 0 or -errno. */
static int publish(const mesa_blobcache_t *c, const char *oid, const void *data, size_t len,
                   const char *dst)
{
    char tmp[PATH_MAX], tmpdir[PATH_MAX];
    snprintf(tmpdir, sizeof tmpdir, "%s/tmp", c->dir);
    int rc = mesa_stage_file(tmpdir, "blob", data, len, 0444, tmp);
    if (rc == 0 && rename_into(c, oid, tmp, dst) != 0) {
        rc = -errno;
        unlink(tmp);
    }
    return rc;
}

int mesa_blobcache_put_many(mesa_blobcache_t *c, size_t n, const char *const *oids,
                            const void *const *data, const size_t *lens)
{
    char (*tmp)[PATH_MAX] = calloc(n ? n : 1, sizeof *tmp);
    char dst[PATH_MAX], got[OID_HEX + 1], tmpdir[PATH_MAX];
    int rc = tmp ? 0 : -ENOMEM;
    size_t i;
    if (!c || (n && (!oids || !data || !lens)))
        rc = -EINVAL;
    snprintf(tmpdir, sizeof tmpdir, "%s/tmp", c ? c->dir : "");
    /* write and fsync every new blob; none is published before all are */
    for (i = 0; rc == 0 && i < n; i++) {
        tmp[i][0] = '\0';
        if (!valid_oid(oids[i]) || (!data[i] && lens[i]))
            rc = -EINVAL;
        else if ((rc = blob_path(c, oids[i], dst, sizeof dst)) < 0 ||
                 (rc = blob_hash(data[i], lens[i], got)) < 0)
            break;
        else if (memcmp(got, oids[i], OID_HEX) != 0)
            rc = -EBADMSG;
        else if ((rc = touch(dst)) == -ENOENT) {
            make_room(c, lens[i]);
            rc = mesa_stage_file(tmpdir, "blob", data[i], lens[i], 0444, tmp[i]);
        }
    }
    /* every one written and fsync'd: publish them */
    for (size_t k = 0; k < i && tmp; k++) {
        if (!tmp[k][0])
            continue;
        if (rc == 0 && blob_path(c, oids[k], dst, sizeof dst) == 0 &&
            rename_into(c, oids[k], tmp[k], dst) == 0) {
            account(c, lens[k]);
            continue;
        }
        if (rc == 0)
            rc = -errno;
        unlink(tmp[k]);
    }
    free(tmp);
    return rc;
}

int mesa_blobcache_put(mesa_blobcache_t *c, const char *oid, const void *data, size_t len,
                       char *out, size_t outlen)
{
    char got[OID_HEX + 1];
    int rc;

    if (!c || !out || !valid_oid(oid) || (!data && len))
        return -EINVAL;
    rc = blob_path(c, oid, out, outlen);
    if (rc < 0)
        return rc;
    rc = blob_hash(data, len, got);
    if (rc < 0)
        return rc;
    if (memcmp(got, oid, OID_HEX) != 0)
        return -EBADMSG;
    rc = touch(out);
    if (rc != -ENOENT)
        return rc; /* already cached (0), or an error */
    make_room(c, len);
    rc = publish(c, oid, data, len, out);
    if (rc == 0)
        account(c, len);
    return rc;
}
