/* tests/core/test_fetch.c - filling the blob cache from a real mesad:
 * batched small blobs, large blobs one by one, blobs already cached not
 * fetched again, and a missing blob reported as ENOENT.
 * Skipped (exit 0) when MESAD is not set.
 */
#include "config.h"
#include "core/b64.h"
#include "core/blobcache.h"
#include "core/fetch.h"
#include "tests/lib/ctest.h"
#include "tests/lib/livemesad.h"

#include <errno.h>

#define NSMALL 120

/* Upload len bytes as a raw blob; its oid into oid. */
static int upload(const void *data, size_t len, char oid[41])
{
    static const char *const h[] = {"Content-Type: application/octet-stream", NULL};
    mesa_resp_t r;
    mesa_error_t e;
    int rc = mesa_client_request(g_c, "POST", "/acme/f/blobs", h, data, len, &r, &e);
    if (rc < 0)
        return rc;
    json_t *v = json_loadb(r.body, r.len, 0, NULL);
    snprintf(oid, 41, "%s", json_string_value(json_object_get(v, "oid")) ?: "");
    json_decref(v);
    rc = r.status == 201 ? 0 : -EIO;
    mesa_resp_free(&r);
    return rc;
}

/* The cached bytes of oid equal data. */
static int cached_is(mesa_blobcache_t *bc, const char *oid, const void *data, size_t len)
{
    char path[4096];
    if (mesa_blobcache_lookup(bc, oid, path, sizeof path) < 0)
        return 0;
    FILE *f = fopen(path, "rb");
    char *buf = malloc(len + 1);
    size_t got = f && buf ? fread(buf, 1, len + 1, f) : 0;
    int ok = got == len && memcmp(buf, data, len) == 0;
    if (f)
        fclose(f);
    free(buf);
    return ok;
}

static void test_fetch(void)
{
    char dir[1200], oids[NSMALL + 2][41], data[NSMALL][64];
    const char *list[NSMALL + 2];
    uint64_t sizes[NSMALL + 2];
    mesa_blobcache_t *bc = NULL;
    mesa_error_t e = {0};
    size_t big_len = 3u << 20;
    char *big = malloc(big_len);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (char)(i * 2654435761u >> 13);
    CHECK(make_repo("f") == 0, "repo f");
    int ok = 1;
    for (int i = 0; i < NSMALL; i++) {
        int n = snprintf(data[i], sizeof data[i], "small file %d\n", i);
        ok &= upload(data[i], (size_t)n, oids[i]) == 0;
        list[i] = oids[i];
        sizes[i] = (uint64_t)n;
    }
    ok &= upload(big, big_len, oids[NSMALL]) == 0;
    list[NSMALL] = oids[NSMALL];
    sizes[NSMALL] = big_len;
    CHECK(ok, "blobs uploaded");
    snprintf(dir, sizeof dir, "%s/cache", g_tmp);
    CHECK_EQ_INT(mesa_blobcache_open(dir, 0, &bc), 0, "cache opened");
    CHECK_EQ_INT(mesa_fetch_blobs(g_c, bc, "acme", "f", list, sizes, NSMALL + 1, &e), 0,
                 "fetch of 120 small blobs and one of 3 MiB succeeds");
    int all = 1;
    for (int i = 0; i < NSMALL; i++)
        all &= cached_is(bc, oids[i], data[i], strlen(data[i]));
    CHECK(all, "every small blob is cached byte-exact");
    CHECK(cached_is(bc, oids[NSMALL], big, big_len), "the 3 MiB blob is cached byte-exact");
    CHECK_EQ_INT(mesa_fetch_blobs(g_c, bc, "acme", "f", list, NULL, NSMALL + 1, &e), 0,
                 "a second fetch (all cached, sizes unknown) succeeds");
    snprintf(oids[NSMALL + 1], 41, "%s", "0123456789abcdef0123456789abcdef01234567");
    list[NSMALL + 1] = oids[NSMALL + 1];
    CHECK_EQ_INT(mesa_fetch_blobs(g_c, bc, "acme", "f", list + NSMALL + 1, NULL, 1, &e), -ENOENT,
                 "a blob the server does not have is ENOENT");
    CHECK(strstr(e.message, oids[NSMALL + 1]) != NULL, "the error names the blob");
    mesa_blobcache_close(bc);
    free(big);
}

int main(void)
{
    int rc = live_start("fetch");
    if (rc == 1)
        return 0;
    if (rc == 0)
        test_fetch();
    live_stop();
    return ctest_done();
}
