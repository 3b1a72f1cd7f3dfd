/* tests/core/test_b64.c - base64 and base64url codecs against RFC 4648.
 *
 * Covers the §10 test vectors in both alphabets, the two alphabets' differing
 * characters, round trips of every length up to 64 bytes, and the refusal of
 * every non-canonical spelling (padding, stray bits, foreign characters,
 * impossible lengths, whitespace).
 */
#include "core/b64.h"
#include "tests/lib/ctest.h"

#include <errno.h>
#include <stdlib.h>

static const struct {
    const char *plain, *std, *url;
} rfc4648[] = {
    {"", "", ""},
    {"f", "Zg==", "Zg"},
    {"fo", "Zm8=", "Zm8"},
    {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg==", "Zm9vYg"},
    {"fooba", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

/* 1 if decode(text) succeeds and yields exactly want (NUL-terminated too). */
static int decodes_to(int url, const char *text, const void *want, size_t wantlen)
{
    unsigned char *out = NULL;
    size_t outlen = 0;
    int ret = url ? mesa_b64url_decode(text, strlen(text), &out, &outlen)
                  : mesa_b64_decode(text, strlen(text), &out, &outlen);
    int ok = ret == 0 && outlen == wantlen && memcmp(out, want, wantlen) == 0 && !out[outlen];

    free(out);
    return ok;
}

static int refused(int url, const char *text)
{
    unsigned char *out = NULL;
    size_t outlen = 0;
    int ret = url ? mesa_b64url_decode(text, strlen(text), &out, &outlen)
                  : mesa_b64_decode(text, strlen(text), &out, &outlen);

    if (ret == 0)
        free(out);
    return ret == -EINVAL;
}

static void test_rfc4648_vectors(void)
{
    char buf[64], what[96];
    size_t i, n;

    for (i = 0; i < sizeof rfc4648 / sizeof rfc4648[0]; i++) {
        const char *p = rfc4648[i].plain;

        n = mesa_b64_encode(p, strlen(p), buf);
        snprintf(what, sizeof what, "base64 encodes \"%s\" as \"%s\"", p, rfc4648[i].std);
        CHECK_EQ_STR(buf, rfc4648[i].std, what);
        CHECK_EQ_INT(n, mesa_b64_enclen(strlen(p)), "base64 length matches enclen");
        n = mesa_b64url_encode(p, strlen(p), buf);
        snprintf(what, sizeof what, "base64url encodes \"%s\" as \"%s\"", p, rfc4648[i].url);
        CHECK_EQ_STR(buf, rfc4648[i].url, what);
        CHECK_EQ_INT(n, mesa_b64url_enclen(strlen(p)), "base64url length matches enclen");
        snprintf(what, sizeof what, "base64 decodes \"%s\"", rfc4648[i].std);
        CHECK(decodes_to(0, rfc4648[i].std, p, strlen(p)), what);
        snprintf(what, sizeof what, "base64url decodes \"%s\"", rfc4648[i].url);
        CHECK(decodes_to(1, rfc4648[i].url, p, strlen(p)), what);
    }
}

static void test_alphabets(void)
{
    static const unsigned char b[] = {0xfb, 0xff};
    char buf[8];

    mesa_b64_encode(b, sizeof b, buf);
    CHECK_EQ_STR(buf, "+/8=", "standard alphabet uses + and /");
    mesa_b64url_encode(b, sizeof b, buf);
    CHECK_EQ_STR(buf, "-_8", "url alphabet uses - and _");
    CHECK(decodes_to(0, "+/8=", b, sizeof b), "base64 decodes + and /");
    CHECK(decodes_to(1, "-_8", b, sizeof b), "base64url decodes - and _");
    CHECK(refused(0, "-_8="), "base64 refuses - and _");
    CHECK(refused(1, "+/8"), "base64url refuses + and /");
}

static void test_round_trips(void)
{
    unsigned char in[64], *out;
    char enc[100];
    size_t n, outlen;
    int url, bad = 0;

    for (n = 0; n < sizeof in; n++)
        in[n] = (unsigned char)(n * 37 + 11);
    for (url = 0; url < 2; url++) {
        for (n = 0; n <= sizeof in; n++) {
            size_t len = url ? mesa_b64url_encode(in, n, enc) : mesa_b64_encode(in, n, enc);
            int ret = url ? mesa_b64url_decode(enc, len, &out, &outlen)
                          : mesa_b64_decode(enc, len, &out, &outlen);

            if (ret != 0) {
                bad++;
                continue;
            }
            if (outlen != n || memcmp(out, in, n) != 0)
                bad++;
            free(out);
        }
    }
    CHECK_EQ_INT(bad, 0, "every length 0..64 round-trips in both alphabets");
}

static void test_url_refusals(void)
{
    CHECK(refused(1, "Zg=="), "base64url refuses '=' padding");
    CHECK(refused(1, "Zm8="), "base64url refuses a single '='");
    CHECK(refused(1, "Z"), "base64url refuses length % 4 == 1");
    CHECK(refused(1, "Zm9vY"), "base64url refuses length % 4 == 1 after a group");
    CHECK(refused(1, "A"), "base64url refuses a lone A (no stray bits, length alone)");
    CHECK(refused(1, "AAAAA"), "base64url refuses AAAAA (length % 4 == 1, zero bits)");
    CHECK(refused(1, "QR"), "base64url refuses QR (stray bits; QQ is canonical for A)");
    CHECK(decodes_to(1, "QQ", "A", 1), "base64url accepts QQ as A");
    CHECK(refused(1, "Zh"), "base64url refuses Zh (stray bits; Zg is canonical for f)");
    CHECK(refused(1, "Zm9"), "base64url refuses Zm9 (stray bits; Zm8 is canonical for fo)");
    CHECK(refused(1, "Zm9v!"), "base64url refuses a character outside the alphabet");
    CHECK(refused(1, "Zm9v Zm9v"), "base64url refuses a space");
    CHECK(refused(1, "Zm9v\n"), "base64url refuses a newline");
    CHECK(refused(1, "Zm\x80v"), "base64url refuses a non-ASCII byte");
}

static void test_std_refusals(void)
{
    CHECK(refused(0, "Zg"), "base64 refuses missing padding");
    CHECK(refused(0, "Zg="), "base64 refuses short padding");
    CHECK(refused(0, "Zh=="), "base64 refuses stray bits under two '='");
    CHECK(refused(0, "Zm9="), "base64 refuses stray bits under one '='");
    CHECK(refused(0, "Z==="), "base64 refuses three '='");
    CHECK(refused(0, "===="), "base64 refuses a group of '='");
    CHECK(refused(0, "Zg==Zm9v"), "base64 refuses padding in the middle");
    CHECK(refused(0, "Zm=v"), "base64 refuses '=' inside a group");
    CHECK(refused(0, "Zm9v\n"), "base64 refuses a trailing newline");
    CHECK(refused(0, "Zm9v Zm9v"), "base64 refuses a space");
    CHECK(refused(0, "Zm9v!A=="), "base64 refuses a character outside the alphabet");
}

static void test_enclen(void)
{
    CHECK_EQ_INT(mesa_b64url_enclen(32), 43, "base64url of 32 bytes is 43 chars");
    CHECK_EQ_INT(mesa_b64_enclen(32), 44, "base64 of 32 bytes is 44 chars");
    CHECK_EQ_INT(mesa_b64url_enclen(0), 0, "base64url of nothing is empty");
    CHECK_EQ_INT(mesa_b64_enclen(0), 0, "base64 of nothing is empty");
}

int main(void)
{
    test_rfc4648_vectors();
    test_alphabets();
    test_round_trips();
    test_url_refusals();
    test_std_refusals();
    test_enclen();
    return ctest_done();
}
