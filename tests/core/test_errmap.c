/* tests/core/test_errmap.c - the HTTP status/code -> errno table (DESIGN §3). */
#include "config.h"
#include "errmap.h"
#include "tests/lib/ctest.h"

#include <errno.h>

int main(void)
{
    static const struct {
        long status;
        const char *code;
        int want;
        const char *what;
    } cases[] = {
        {200, NULL, 0, "2xx is no error"},
        {304, NULL, 0, "304 is no error"},
        {400, "BAD_REQUEST", EINVAL, "bad input -> EINVAL"},
        {400, "IMMUTABLE_CHANGE", EPERM, "rewriting the root -> EPERM"},
        {401, "UNAUTHORIZED", EACCES, "expired or bad token -> EACCES"},
        {403, "FORBIDDEN", EACCES, "out of scope -> EACCES"},
        {403, "READ_ONLY", EROFS, "read-only -> EROFS"},
        {404, "NOT_FOUND", ENOENT, "missing -> ENOENT"},
        {404, NULL, ENOENT, "missing without a body -> ENOENT"},
        {405, NULL, ENOTSUP, "wrong method -> ENOTSUP"},
        {406, "NOT_ACCEPTABLE", EISDIR, "raw bytes of a directory -> EISDIR"},
        {409, "ALREADY_EXISTS", EEXIST, "exists -> EEXIST"},
        {409, "STALE_BASE", ESTALE, "stale base -> ESTALE"},
        {409, "CONFLICT", ENOTDIR, "file in the way of a directory -> ENOTDIR"},
        {409, "MERGE_CONFLICT", EBUSY, "merge conflict -> EBUSY"},
        {409, "SOMETHING_NEW", EBUSY, "unknown 409 -> EBUSY"},
        {413, "PAYLOAD_TOO_LARGE", EFBIG, "too large -> EFBIG"},
        {429, "RATE_LIMITED", EAGAIN, "rate limited -> EAGAIN"},
        {418, NULL, EINVAL, "unknown 4xx -> EINVAL"},
        {500, "INTERNAL", EIO, "server error -> EIO"},
        {502, NULL, EIO, "bad gateway -> EIO"},
        {503, "UNAVAILABLE", EIO, "unavailable -> EIO"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK_EQ_INT(mesa_errmap_http(cases[i].status, cases[i].code), cases[i].want,
                     cases[i].what);
    return ctest_done();
}
