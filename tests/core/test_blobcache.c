/* tests/core/test_blobcache.c - the shared blob cache: publish, lookup, LRU.
 *
 * Checks git blob ids against known answers, the put/lookup round trip and
 * the on-disk layout, refusals (bad oids, a hash mismatch that leaves nothing
 * behind, a short buffer), usage accounting, eviction order (mtimes are set
 * explicitly so the order is certain), that lookup protects a blob from
 * eviction, that an open blob survives its eviction, that put evicts down to
 * 90% of the cap only when the cap would be passed, stale temp cleanup,
 * auto-sizing, and 8 processes publishing the same blobs at once.
 * Every test works in its own mkdtemp directory under ${TMPDIR:-/tmp}.
 */
#include "core/blobcache.h"
#include "tests/lib/ctest.h"
#include "tests/lib/tmpdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NPROC 8
#define NSHARED 50
#define NOWN 10

/* ---- helpers ---- */

/* Deterministic bytes: blob number k of len bytes. */
static unsigned char *make_data(unsigned k, size_t len)
{
    unsigned char *d = malloc(len ? len : 1);
    uint32_t x = 2463534242u ^ (k * 2654435761u);

    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        d[i] = (unsigned char)x;
    }
    return d;
}

/* Put blob k of len bytes; its oid into oid. Returns put's result. */
static int put_k(mesa_blobcache_t *c, unsigned k, size_t len, char oid[41], char *path)
{
    unsigned char *d = make_data(k, len);
    int rc;

    mesa_blob_oid(d, len, oid);
    rc = mesa_blobcache_put(c, oid, d, len, path, PATH_MAX);
    free(d);
    return rc;
}

/* Is the file at path exactly blob k of len bytes? */
static int file_is(const char *path, unsigned k, size_t len)
{
    unsigned char *want = make_data(k, len), *got = malloc(len + 1);
    int fd = open(path, O_RDONLY | O_CLOEXEC), ok = 0;

    if (fd >= 0)
        ok = read(fd, got, len + 1) == (ssize_t)len && memcmp(got, want, len) == 0;
    if (fd >= 0)
        close(fd);
    free(want);
    free(got);
    return ok;
}

static int set_mtime(const char *path, time_t sec)
{
    struct timespec ts[2] = {{sec, 0}, {sec, 0}};

    return utimensat(AT_FDCWD, path, ts, 0);
}

static int exists(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0;
}

/* ---- tests ---- */

static void test_oid(void)
{
    char oid[41];

    mesa_blob_oid("", 0, oid);
    CHECK_EQ_STR(oid, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391", "git id of the empty blob");
    mesa_blob_oid("hello\n", 6, oid);
    CHECK_EQ_STR(oid, "ce013625030ba8dba906f756967f9e9ca394464a", "git id of \"hello\\n\"");
}

static void test_roundtrip(void)
{
    char *dir = ctest_tmpdir("blobcache"), oid[41], path[PATH_MAX], look[PATH_MAX], want[PATH_MAX];
    mesa_blobcache_t *c = NULL;
    struct stat st;

    CHECK_EQ_INT(mesa_blobcache_open(dir, 1 << 20, &c), 0, "open a new cache");
    CHECK_EQ_INT(mesa_blobcache_cap(c), 1 << 20, "the cap is the one given");
    snprintf(want, sizeof want, "%s/blobs", dir);
    CHECK(stat(want, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700,
          "open creates blobs/ with mode 0700");
    snprintf(want, sizeof want, "%s/tmp", dir);
    CHECK(stat(want, &st) == 0 && S_ISDIR(st.st_mode), "open creates tmp/");

    mesa_blob_oid("hello\n", 6, oid);
    CHECK_EQ_INT(mesa_blobcache_lookup(c, oid, look, sizeof look), -ENOENT,
                 "lookup of an absent blob is ENOENT");
    CHECK_EQ_INT(mesa_blobcache_put(c, oid, "hello\n", 6, path, sizeof path), 0, "put a blob");
    snprintf(want, sizeof want, "%s/blobs/ce/%s", dir, oid);
    CHECK_EQ_STR(path, want, "put gives the path blobs/<xx>/<oid>");
    CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0444 &&
              st.st_size == 6,
          "the blob is a 0444 file of the right size");
    CHECK_EQ_INT(mesa_blobcache_lookup(c, oid, look, sizeof look), 0, "lookup finds it");
    CHECK_EQ_STR(look, want, "lookup gives the same path");
    CHECK_EQ_INT(mesa_blobcache_put(c, oid, "hello\n", 6, path, sizeof path), 0,
                 "a second put of the same blob succeeds");
    CHECK_EQ_INT(put_k(c, 1, 0, oid, path), 0, "put the empty blob");
    CHECK(file_is(path, 1, 0), "the empty blob reads back empty");
    CHECK_EQ_INT(put_k(c, 2, 100000, oid, path), 0, "put a 100 kB blob");
    CHECK(file_is(path, 2, 100000), "it reads back byte-exact");
    CHECK_EQ_INT(ctest_count_files(dir, "tmp"), 0, "tmp/ is empty after puts");
    CHECK_EQ_INT(mesa_blobcache_lookup(c, oid, look, 10), -ERANGE,
                 "lookup into a short buffer is ERANGE");
    mesa_blobcache_close(c);

    CHECK_EQ_INT(mesa_blobcache_open(dir, 1 << 20, &c), 0, "reopen the cache");
    CHECK_EQ_INT(mesa_blobcache_lookup(c, oid, look, sizeof look), 0, "blobs survive a reopen");
    mesa_blobcache_close(c);
    mesa_blobcache_close(NULL);
    ctest_rmtree(dir);
}

/* put_many: a batch answer published together; a bad blob publishes none */
static void test_put_many(void)
{
    char *dir = ctest_tmpdir("blobcache"), oid[3][41], look[PATH_MAX];
    const char *oids[3] = {oid[0], oid[1], oid[2]};
    const void *data[3] = {"one\n", "two\n", "three\n"};
    size_t lens[3] = {4, 4, 6};
    mesa_blobcache_t *c = NULL;

    CHECK_EQ_INT(mesa_blobcache_open(dir, 1 << 20, &c), 0, "open a new cache");
    for (int i = 0; i < 3; i++)
        mesa_blob_oid(data[i], lens[i], oid[i]);
    CHECK_EQ_INT(mesa_blobcache_put_many(c, 0, NULL, NULL, NULL), 0, "put_many of nothing");
    CHECK_EQ_INT(mesa_blobcache_put_many(c, 2, oids + 1, data + 1, lens + 1), 0,
                 "put_many of two blobs");
    CHECK_EQ_INT(mesa_blobcache_put_many(c, 3, oids, data, lens), 0,
                 "put_many with two of three already cached");
    int all = 1;
    for (int i = 0; i < 3; i++)
        all &= mesa_blobcache_lookup(c, oid[i], look, sizeof look) == 0;
    CHECK(all, "every blob of the batches is cached");
    CHECK_EQ_INT(ctest_count_files(dir, "tmp"), 0, "tmp/ is empty after put_many");

    char fresh[41];
    const void *bad_data[2] = {"four\n", "fivE\n"};
    mesa_blob_oid("four\n", 5, fresh);
    const char *bad_oids[2] = {fresh, oid[0]}; /* the second does not match its bytes */
    size_t bad_lens[2] = {5, 5};
    CHECK_EQ_INT(mesa_blobcache_put_many(c, 2, bad_oids, bad_data, bad_lens), -EBADMSG,
                 "put_many with a blob that does not hash to its id is EBADMSG");
    CHECK_EQ_INT(mesa_blobcache_lookup(c, fresh, look, sizeof look), -ENOENT,
                 "then no new blob of that batch is published");
    CHECK_EQ_INT(ctest_count_files(dir, "tmp"), 0, "and nothing is left in tmp/");
    mesa_blobcache_close(c);
    ctest_rmtree(dir);
}

static void test_refusals(void)
{
    static const char *const bad[] = {
        "",
        "ce013625030ba8dba906f756967f9e9ca394464",   /* 39 */
        "ce013625030ba8dba906f756967f9e9ca394464aa", /* 41 */
        "CE013625030BA8DBA906F756967F9E9CA394464A",  /* upper case */
        "ce013625030ba8dba906f756967f9e9ca394464g",  /* not hex */
        "../13625030ba8dba906f756967f9e9ca394464a",
    };
    char *dir = ctest_tmpdir("blobcache"), path[PATH_MAX], oid[41], p[PATH_MAX];
    mesa_blobcache_t *c = NULL, *none = NULL;
    int all = 1;

    CHECK_EQ_INT(mesa_blobcache_open(dir, 1 << 20, &c), 0, "open");
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        all &= mesa_blobcache_lookup(c, bad[i], path, sizeof path) == -EINVAL;
        all &= mesa_blobcache_put(c, bad[i], "hello\n", 6, path, sizeof path) == -EINVAL;
    }
    CHECK(all, "lookup and put refuse malformed oids with EINVAL");
    CHECK_EQ_INT(mesa_blobcache_lookup(c, NULL, path, sizeof path), -EINVAL, "NULL oid: EINVAL");

    mesa_blob_oid("hello\n", 6, oid);
    CHECK_EQ_INT(mesa_blobcache_put(c, oid, "hellO\n", 6, path, sizeof path), -EBADMSG,
                 "put of bytes that do not hash to the oid is EBADMSG");
    snprintf(p, sizeof p, "%s/blobs/ce/%s", dir, oid);
    CHECK(!exists(p), "no blob is published on a mismatch");
    CHECK_EQ_INT(ctest_count_files(dir, "tmp"), 0, "and nothing is left in tmp/");
    CHECK_EQ_INT(mesa_blobcache_put(c, oid, "hello\n", 6, path, 20), -ERANGE,
                 "put into a short buffer is ERANGE");
    CHECK_EQ_INT(mesa_blobcache_open(NULL, 0, &none), -EINVAL, "open(NULL) is EINVAL");
    CHECK(none == NULL, "and gives no handle");
    mesa_blobcache_close(c);
    ctest_rmtree(dir);
}

/* Put n blobs of size len (numbers base..base+n-1), oids into oids. */
static int put_many(mesa_blobcache_t *c, unsigned base, int n, size_t len, char (*oids)[41])
{
    char path[PATH_MAX];
    int ok = 1;

    for (int i = 0; i < n; i++)
        ok &= put_k(c, base + (unsigned)i, len, oids[i], path) == 0;
    return ok;
}

static void blob_file(const char *dir, const char *oid, char *out)
{
    snprintf(out, PATH_MAX, "%s/blobs/%.2s/%s", dir, oid, oid);
}

static void test_usage_and_order(void)
{
    /* mtime rank of blob i: i=0 is the 3rd oldest, i=3 the oldest, ... */
    static const time_t when[5] = {3000, 5000, 4000, 1000, 2000};
    char *dir = ctest_tmpdir("blobcache"), oids[5][41], p[PATH_MAX];
    mesa_blobcache_t *c = NULL;
    uint64_t bytes = 0, count = 0, freed = 0;

    CHECK_EQ_INT(mesa_blobcache_open(dir, 1 << 20, &c), 0, "open");
    CHECK_EQ_INT(mesa_blobcache_usage(c, &bytes, &count), 0, "usage of an empty cache");
    CHECK(bytes == 0 && count == 0, "an empty cache holds nothing");
    CHECK(put_many(c, 10, 5, 100, oids), "put 5 blobs of 100 bytes");
    CHECK_EQ_INT(mesa_blobcache_usage(c, &bytes, &count), 0, "usage");
    CHECK(bytes == 500 && count == 5, "usage counts 500 bytes in 5 blobs");
    for (int i = 0; i < 5; i++) {
        blob_file(dir, oids[i], p);
        set_mtime(p, when[i]);
    }
    CHECK_EQ_INT(mesa_blobcache_evict(c, 250, &freed), 0, "evict down to 250 bytes");
    CHECK_EQ_INT(freed, 300, "300 bytes were freed");
    for (int i = 0; i < 5; i++) {
        blob_file(dir, oids[i], p);
        CHECK(exists(p) == (when[i] >= 4000),
              when[i] >= 4000 ? "a newest blob stays" : "an oldest blob is evicted");
    }
    CHECK_EQ_INT(mesa_blobcache_usage(c, &bytes, &count), 0, "usage after eviction");
    CHECK(bytes == 200 && count == 2, "usage is 200 bytes in 2 blobs");
    CHECK_EQ_INT(mesa_blobcache_evict(c, UINT64_MAX, &freed), 0, "evict to more than the cap");
    CHECK_EQ_INT(freed, 0, "a target above the cap (clamped) frees nothing here");
    mesa_blobcache_close(c);
    ctest_rmtree(dir);
}

static void test_lookup_protects(void)
{
    char *dir = ctest_tmpdir("blobcache"), oids[4][41], p[PATH_MAX];
    mesa_blobcache_t *c = NULL;
    uint64_t freed = 0;
    int fd;

    CHECK_EQ_INT(mesa_blobcache_open(dir, 1 << 20, &c), 0, "open");
    CHECK(put_many(c, 20, 4, 1000, oids), "put 4 blobs");
    for (int i = 0; i < 4; i++) {
        blob_file(dir, oids[i], p);
        set_mtime(p, 1000 + i);
    }
    CHECK_EQ_INT(mesa_blobcache_lookup(c, oids[0], p, sizeof p), 0, "lookup the oldest blob");
    fd = open(p, O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0, "open it");
    CHECK_EQ_INT(mesa_blobcache_evict(c, 1000, &freed), 0, "evict down to one blob");
    CHECK_EQ_INT(freed, 3000, "three blobs are freed");
    CHECK(exists(p), "the looked-up blob is the one that stays");
    CHECK_EQ_INT(mesa_blobcache_evict(c, 0, &freed), 0, "evict everything");
    CHECK(!exists(p), "the blob is gone from the cache");
    if (fd >= 0) {
        unsigned char *want = make_data(20, 1000), buf[1001];
        CHECK(pread(fd, buf, sizeof buf, 0) == 1000 && memcmp(buf, want, 1000) == 0,
              "an evicted blob stays readable through an open descriptor");
        free(want);
        close(fd);
    }
    mesa_blobcache_close(c);
    ctest_rmtree(dir);
}

static void test_put_evicts(void)
{
    char *dir = ctest_tmpdir("blobcache"), oids[22][41], p[PATH_MAX];
    mesa_blobcache_t *c = NULL;
    uint64_t bytes = 0, count = 0;
    int ok = 1;

    CHECK_EQ_INT(mesa_blobcache_open(dir, 1000, &c), 0, "open with a cap of 1000 bytes");
    for (int i = 0; i < 20; i++) {
        ok &= put_k(c, 100 + (unsigned)i, 50, oids[i], p) == 0;
        set_mtime(p, 1000 + i);
    }
    CHECK(ok, "put 20 blobs of 50 bytes: exactly the cap");
    CHECK_EQ_INT(mesa_blobcache_usage(c, &bytes, &count), 0, "usage");
    CHECK(bytes == 1000 && count == 20, "all 20 are there");
    CHECK_EQ_INT(put_k(c, 120, 50, oids[20], p), 0, "put a 21st blob");
    CHECK_EQ_INT(mesa_blobcache_usage(c, &bytes, &count), 0, "usage");
    CHECK(bytes == 950 && count == 19, "put evicted down to 90% of the cap, then added");
    blob_file(dir, oids[0], p);
    CHECK(!exists(p), "the oldest blob was evicted");
    blob_file(dir, oids[1], p);
    CHECK(!exists(p), "and the second oldest");
    blob_file(dir, oids[2], p);
    CHECK(exists(p), "the third oldest stays");
    CHECK_EQ_INT(put_k(c, 121, 50, oids[21], p), 0, "put a 22nd blob");
    CHECK_EQ_INT(mesa_blobcache_usage(c, &bytes, &count), 0, "usage");
    CHECK(bytes == 1000 && count == 20, "no eviction while under the cap");
    mesa_blobcache_close(c);
    ctest_rmtree(dir);
}

static void test_stale_tmp(void)
{
    char *dir = ctest_tmpdir("blobcache"), old[PATH_MAX], fresh[PATH_MAX];
    mesa_blobcache_t *c = NULL;
    int fd;

    CHECK_EQ_INT(mesa_blobcache_open(dir, 1 << 20, &c), 0, "open");
    snprintf(old, sizeof old, "%s/tmp/blob.1.aaaaaa", dir);
    snprintf(fresh, sizeof fresh, "%s/tmp/blob.2.bbbbbb", dir);
    fd = open(old, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    close(fd);
    fd = open(fresh, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    close(fd);
    set_mtime(old, time(NULL) - 7200);
    CHECK_EQ_INT(mesa_blobcache_evict(c, 0, NULL), 0, "evict");
    CHECK(!exists(old), "a temp file older than an hour is removed");
    CHECK(exists(fresh), "a recent temp file (a writer at work) stays");
    mesa_blobcache_close(c);
    ctest_rmtree(dir);
}

static void test_autosize(void)
{
    char *dir = ctest_tmpdir("blobcache");
    mesa_blobcache_t *c = NULL;
    struct statvfs sv;
    uint64_t cap, want, mib = 1024 * 1024;

    CHECK_EQ_INT(mesa_blobcache_open(dir, 0, &c), 0, "open with an automatic cap");
    cap = mesa_blobcache_cap(c);
    statvfs(dir, &sv);
    want = (uint64_t)sv.f_bavail * sv.f_frsize / 10;
    want = want < 256 * mib ? 256 * mib : want > 10240 * mib ? 10240 * mib : want;
    CHECK(cap >= 256 * mib && cap <= 10240 * mib, "the automatic cap is in [256 MiB, 10 GiB]");
    CHECK(cap + 64 * mib >= want && cap <= want + 64 * mib,
          "the automatic cap is 10% of the free space, clamped");
    printf("# automatic cap %llu MiB\n", (unsigned long long)(cap / mib));
    mesa_blobcache_close(c);
    ctest_rmtree(dir);
}

/* A child: publish the shared blobs and its own, in an order of its own. */
static int child_publish(const char *dir, int id)
{
    mesa_blobcache_t *c = NULL;
    char oid[41], path[PATH_MAX];
    int bad = 0;

    if (mesa_blobcache_open(dir, 64 << 20, &c) != 0)
        return 1;
    for (int i = 0; i < NSHARED; i++) {
        int k = (i * 7 + id * 11) % NSHARED;
        bad |= put_k(c, 1000 + (unsigned)k, 1000 + (size_t)k * 997, oid, path) != 0;
    }
    for (int i = 0; i < NOWN; i++)
        bad |= put_k(c, 2000 + (unsigned)(id * NOWN + i), 3000, oid, path) != 0;
    mesa_blobcache_close(c);
    return bad;
}

static void test_concurrent(void)
{
    char *dir = ctest_tmpdir("blobcache"), oid[41], path[PATH_MAX];
    mesa_blobcache_t *c = NULL;
    pid_t pids[NPROC];
    uint64_t bytes = 0, count = 0, want_bytes = 0;
    int ok = 1;

    CHECK_EQ_INT(mesa_blobcache_open(dir, 64 << 20, &c), 0, "open");
    for (int i = 0; i < NPROC; i++) {
        pids[i] = fork();
        if (pids[i] == 0)
            _exit(child_publish(dir, i));
    }
    for (int i = 0; i < NPROC; i++) {
        int st = 0;
        ok &= pids[i] > 0 && waitpid(pids[i], &st, 0) == pids[i] && WIFEXITED(st) &&
              WEXITSTATUS(st) == 0;
    }
    CHECK(ok, "8 processes publish 50 shared and 10 own blobs each, all succeed");
    ok = 1;
    for (int k = 0; k < NSHARED; k++) {
        size_t len = 1000 + (size_t)k * 997;
        unsigned char *d = make_data(1000 + (unsigned)k, len);
        mesa_blob_oid(d, len, oid);
        free(d);
        ok &= mesa_blobcache_lookup(c, oid, path, sizeof path) == 0 &&
              file_is(path, 1000 + (unsigned)k, len);
        want_bytes += len;
    }
    CHECK(ok, "every shared blob is present and byte-exact");
    ok = 1;
    for (int k = 0; k < NPROC * NOWN; k++) {
        unsigned char *d = make_data(2000 + (unsigned)k, 3000);
        mesa_blob_oid(d, 3000, oid);
        free(d);
        ok &= mesa_blobcache_lookup(c, oid, path, sizeof path) == 0 &&
              file_is(path, 2000 + (unsigned)k, 3000);
        want_bytes += 3000;
    }
    CHECK(ok, "every distinct blob is present and byte-exact");
    CHECK_EQ_INT(ctest_count_files(dir, "tmp"), 0, "tmp/ is empty afterwards");
    CHECK_EQ_INT(mesa_blobcache_usage(c, &bytes, &count), 0, "usage");
    CHECK_EQ_INT(count, NSHARED + NPROC * NOWN, "usage counts each blob once");
    CHECK_EQ_INT(bytes, want_bytes, "usage counts each blob's bytes once");
    mesa_blobcache_close(c);
    ctest_rmtree(dir);
}

int main(void)
{
    test_oid();
    test_roundtrip();
    test_put_many();
    test_refusals();
    test_usage_and_order();
    test_lookup_protects();
    test_put_evicts();
    test_stale_tmp();
    test_autosize();
    test_concurrent();
    return ctest_done();
}
