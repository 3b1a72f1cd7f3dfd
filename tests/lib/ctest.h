/* tests/lib/ctest.h - a tiny TAP producer for the C unit tests.
 *
 * Each CHECK is one TAP line; a test binary prints its plan at the end
 * ("1..N"), so automake's tap-driver counts every assertion. Exit status is
 * non-zero when any check failed.
 *
 *   CHECK(cond, "what it shows");
 *   CHECK_EQ_INT(got, want, "what");  CHECK_EQ_STR(got, want, "what");
 *   return ctest_done();
 */
#ifndef MESA_CTEST_H
#define MESA_CTEST_H

#include <stdio.h>
#include <string.h>

static int ctest_n, ctest_failed;

static inline void ctest_ok(int ok, const char *file, int line, const char *what)
{
    ctest_n++;
    if (!ok)
        ctest_failed++;
    printf("%sok %d - %s\n", ok ? "" : "not ", ctest_n, what);
    if (!ok)
        printf("# failed at %s:%d\n", file, line);
    fflush(stdout);
}

#define CHECK(cond, what) ctest_ok(!!(cond), __FILE__, __LINE__, (what))
#define CHECK_EQ_INT(got, want, what)                                                     \
    do {                                                                                  \
        long long g_ = (long long)(got), w_ = (long long)(want);                          \
        ctest_ok(g_ == w_, __FILE__, __LINE__, (what));                                   \
        if (g_ != w_)                                                                     \
            printf("#   got %lld, want %lld\n", g_, w_);                                  \
    } while (0)
#define CHECK_EQ_STR(got, want, what)                                                     \
    do {                                                                                  \
        const char *g_ = (got), *w_ = (want);                                             \
        int ok_ = g_ && w_ && strcmp(g_, w_) == 0;                                        \
        ctest_ok(ok_, __FILE__, __LINE__, (what));                                        \
        if (!ok_)                                                                         \
            printf("#   got \"%s\", want \"%s\"\n", g_ ? g_ : "(null)", w_ ? w_ : "(null)"); \
    } while (0)

static inline int ctest_done(void)
{
    printf("1..%d\n", ctest_n);
    return ctest_failed ? 1 : 0;
}

#endif
