/* tests/core/test_token.c - access tokens: signing, verification, refusals.
 *
 * Checks the HMAC + base64url path against RFC 7515 A.1 and RFC 7519 §3.1,
 * the secret derivation against a known answer, the exact wire form of a
 * signed token, round trips, and one refusal per mesa_token_status_t value.
 * Hostile tokens are built here with OpenSSL directly (helper forge()), so a
 * test can give a token a valid signature and change just one thing.
 */
#include "core/b64.h"
#include "core/token.h"
#include "tests/lib/ctest.h"

#include <errno.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#define T0 1700000000LL /* "now" for every test */
#define KEY "mesa_test"
#define KEY_S "kkrebiTFuZK8iflnFd5EsWHQZHY51Cy7-3SLg9vULDY" /* openssl dgst | basenc */
#define HDR "{\"alg\":\"HS256\",\"typ\":\"mesa-at+jwt\",\"kid\":\"k1.v1\"}"

static const char *const scopes_rw[] = {"read", "write", NULL};
static const char *const repos_a[] = {"org/a", "org/b", NULL};
static const char *const ro_b[] = {"org/b", NULL};

/* base64url of a text, malloc'd. */
static char *b64u(const char *text)
{
    char *out = malloc(mesa_b64url_enclen(strlen(text)) + 1);

    mesa_b64url_encode(text, strlen(text), out);
    return out;
}

/* "h.p.sig" with sig = HMAC(md) keyed by key over "h.p"; h and p are used as
 * given (already base64url, canonical or not). Caller frees. */
static char *forge_raw(const char *h, const char *p, const EVP_MD *md, const char *key)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    size_t n = strlen(h) + 1 + strlen(p);
    char *jwt = malloc(n + 2 + mesa_b64url_enclen(sizeof mac));

    sprintf(jwt, "%s.%s", h, p);
    HMAC(md, key, (int)strlen(key), (unsigned char *)jwt, n, mac, &maclen);
    jwt[n] = '.';
    mesa_b64url_encode(mac, maclen, jwt + n + 1);
    return jwt;
}

/* A token with header and payload JSON texts, validly signed with KEY_S. */
static char *forge(const char *header, const char *payload)
{
    char *h = b64u(header), *p = b64u(payload), *jwt = forge_raw(h, p, EVP_sha256(), KEY_S);

    free(h);
    free(p);
    return jwt;
}

/* Verify a token against KEY_S / "k1" at T0, and free it. */
static mesa_token_status_t verify_free(char *jwt)
{
    mesa_token_claims_t c;
    mesa_token_status_t st = mesa_token_verify(jwt, KEY_S, "k1", T0, &c);

    mesa_token_claims_free(&c);
    free(jwt);
    return st;
}

/* A forged token whose payload has the given iat, exp and extra text. */
static mesa_token_status_t verify_times(long long iat, long long exp)
{
    char pl[256];

    snprintf(pl, sizeof pl,
             "{\"scopes\":[\"read\"],\"iss\":\"k1\",\"aud\":\"mesa-api\",\"iat\":%lld,"
             "\"exp\":%lld}",
             iat, exp);
    return verify_free(forge(HDR, pl));
}

/* A forged token whose payload is the standard one with `claims` spliced in. */
static mesa_token_status_t verify_payload(const char *claims)
{
    char pl[512];

    snprintf(pl, sizeof pl, "{%s}", claims);
    return verify_free(forge(HDR, pl));
}

#define GOOD_CLAIMS "\"iss\":\"k1\",\"iat\":1700000000,\"exp\":1700003600"

/* ---- RFC vectors ---- */

static void test_rfc7515_a1(void)
{
    static const char header[] = "{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}";
    static const char payload[] = "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n "
                                  "\"http://example.com/is_root\":true}";
    /* The JWK "k" of RFC 7515 A.1 (86 chars, 64 bytes). */
    static const char k[] = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iP"
                            "S4hcgUuTwjAzZr1Z9CAow";
    static const char input[] = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
                                ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt"
                                "cGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
    unsigned char *key = NULL, mac[32];
    unsigned int maclen = 0;
    size_t keylen = 0;
    char *h = b64u(header), *p = b64u(payload), sig[64];

    CHECK(strncmp(input, h, strlen(h)) == 0 && input[strlen(h)] == '.',
          "RFC 7515 A.1: header encodes to the RFC's first part");
    CHECK_EQ_STR(p, input + strlen(h) + 1, "RFC 7515 A.1: payload encodes to the RFC's part");
    CHECK_EQ_INT(mesa_b64url_decode(k, strlen(k), &key, &keylen), 0,
                 "RFC 7515 A.1: JWK key decodes");
    CHECK_EQ_INT(keylen, 64, "RFC 7515 A.1: JWK key is 64 bytes");
    HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)input, strlen(input), mac, &maclen);
    mesa_b64url_encode(mac, maclen, sig);
    CHECK_EQ_STR(sig, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
                 "RFC 7515 A.1: HS256 signature matches");
    free(key);
    free(h);
    free(p);
}

static void test_rfc7519_example(void)
{
    static const char jwt[] =
        "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
        ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0"
        "cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const char *p = strchr(jwt, '.') + 1;
    unsigned char *out = NULL;
    size_t outlen = 0;

    CHECK_EQ_INT(mesa_b64url_decode(p, (size_t)(strchr(p, '.') - p), &out, &outlen), 0,
                 "RFC 7519 3.1: payload decodes");
    CHECK_EQ_STR((char *)out,
                 "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n "
                 "\"http://example.com/is_root\":true}",
                 "RFC 7519 3.1: payload is the expected JSON text");
    free(out);
    /* Not our header (typ JWT, no kid): the verifier must not accept it. */
    CHECK_EQ_INT(mesa_token_verify(jwt, KEY_S, "k1", T0, NULL), MESA_TOKEN_MALFORMED,
                 "RFC 7519 example without kid is refused as malformed");
}

static void test_derive_secret(void)
{
    char s[MESA_TOKEN_SECRET_LEN + 1];

    mesa_token_derive_secret(KEY, s);
    CHECK_EQ_STR(s, KEY_S, "derive_secret(\"mesa_test\") = b64url(SHA-256) known answer");
    CHECK_EQ_INT(strlen(s), MESA_TOKEN_SECRET_LEN, "derived secret is 43 chars");
}

/* ---- signing ---- */

/* Decode part i (0 header, 1 payload) of jwt into a malloc'd string. */
static char *part_text(const char *jwt, int i)
{
    const char *a = jwt, *b;
    unsigned char *out = NULL;
    size_t outlen;

    while (i--)
        a = strchr(a, '.') + 1;
    b = strchr(a, '.');
    if (mesa_b64url_decode(a, (size_t)(b - a), &out, &outlen) < 0)
        return NULL;
    return (char *)out;
}

static void test_sign_wire_form(void)
{
    char *jwt = NULL, *h, *p, want[256];

    CHECK_EQ_INT(mesa_token_sign(KEY_S, "k1", scopes_rw, NULL, NULL, T0, 3600, &jwt), 0,
                 "sign without repos succeeds");
    h = part_text(jwt, 0);
    p = part_text(jwt, 1);
    CHECK_EQ_STR(h, HDR, "header is exactly alg, typ, kid in compact form");
    snprintf(want, sizeof want,
             "{\"scopes\":[\"read\",\"write\"],\"iss\":\"k1\",\"aud\":\"mesa-api\","
             "\"iat\":%lld,\"exp\":%lld,\"jti\":\"",
             T0, T0 + 3600);
    CHECK(p && strncmp(p, want, strlen(want)) == 0, "payload has claims in Mesa's order");
    CHECK(p && strlen(p) == strlen(want) + 36 + 2 && strcmp(p + strlen(p) - 2, "\"}") == 0,
          "payload ends with a 36-char jti");
    free(h);
    free(p);
    free(jwt);

    CHECK_EQ_INT(mesa_token_sign(KEY_S, "k1", scopes_rw, repos_a, ro_b, T0, 60, &jwt), 0,
                 "sign with repos and ro_repos succeeds");
    p = part_text(jwt, 1);
    CHECK(p && strstr(p, "\"write\"],\"repos\":[\"org/a\",\"org/b\"],\"ro_repos\":[\"org/b\"],"
                         "\"iss\":\"k1\""),
          "repos then ro_repos sit between scopes and iss, slashes unescaped");
    free(p);
    free(jwt);
}

static void test_sign_ttl(void)
{
    char *jwt = NULL;

    CHECK_EQ_INT(mesa_token_sign(KEY_S, "k1", scopes_rw, NULL, NULL, T0, 0, &jwt), -EINVAL,
                 "ttl 0 is -EINVAL");
    CHECK_EQ_INT(mesa_token_sign(KEY_S, "k1", scopes_rw, NULL, NULL, T0, -5, &jwt), -EINVAL,
                 "negative ttl is -EINVAL");
    CHECK_EQ_INT(mesa_token_sign(KEY_S, "k1", scopes_rw, NULL, NULL, T0, 86401, &jwt), -EINVAL,
                 "ttl 86401 is -EINVAL");
    CHECK(jwt == NULL, "a refused sign leaves *out alone");
    CHECK_EQ_INT(mesa_token_sign(KEY_S, "k1", scopes_rw, NULL, NULL, T0, 86400, &jwt), 0,
                 "ttl 86400 is accepted");
    CHECK_EQ_INT(mesa_token_verify(jwt, KEY_S, "k1", T0, NULL), MESA_TOKEN_OK,
                 "a 86400 s token verifies");
    free(jwt);
    jwt = NULL;
    CHECK_EQ_INT(mesa_token_sign(KEY_S, "k1", scopes_rw, NULL, NULL, T0, 1, &jwt), 0,
                 "ttl 1 is accepted");
    free(jwt);
    jwt = NULL;
    CHECK_EQ_INT(mesa_token_sign(NULL, "k1", scopes_rw, NULL, NULL, T0, 60, &jwt), -EINVAL,
                 "NULL secret is -EINVAL");
    CHECK_EQ_INT(mesa_token_sign(KEY_S, "", scopes_rw, NULL, NULL, T0, 60, &jwt), -EINVAL,
                 "empty key id is -EINVAL");
    CHECK_EQ_INT(mesa_token_sign(KEY_S, "k\xff", scopes_rw, NULL, NULL, T0, 60, &jwt), -EINVAL,
                 "non-UTF-8 key id is -EINVAL");
}

static void test_round_trip(void)
{
    mesa_token_claims_t c;
    char *jwt = NULL, *kid = NULL;

    mesa_token_sign(KEY_S, "k1", scopes_rw, repos_a, ro_b, T0, 3600, &jwt);
    CHECK_EQ_INT(mesa_token_verify(jwt, KEY_S, "k1", T0, &c), MESA_TOKEN_OK,
                 "signed token verifies");
    CHECK_EQ_STR(c.key_id, "k1", "claims carry the key id");
    CHECK(c.scopes && !strcmp(c.scopes[0], "read") && !strcmp(c.scopes[1], "write") && !c.scopes[2],
          "claims carry scopes in order, NULL-terminated");
    CHECK(c.repos && !strcmp(c.repos[0], "org/a") && !strcmp(c.repos[1], "org/b") && !c.repos[2],
          "claims carry repos");
    CHECK(c.ro_repos && !strcmp(c.ro_repos[0], "org/b") && !c.ro_repos[1], "claims carry ro_repos");
    CHECK_EQ_INT(c.iat, T0, "claims carry iat");
    CHECK_EQ_INT(c.exp, T0 + 3600, "claims carry exp = iat + ttl");
    CHECK(c.jti && strlen(c.jti) == 36 && c.jti[14] == '4', "jti is a uuid4");
    CHECK_EQ_INT(mesa_token_peek_kid(jwt, &kid), 0, "peek_kid reads the kid");
    CHECK_EQ_STR(kid, "k1", "peek_kid strips .v1");
    mesa_token_claims_free(&c);
    free(kid);
    free(jwt);

    mesa_token_sign(KEY_S, "k1", scopes_rw, NULL, NULL, T0, 3600, &jwt);
    CHECK_EQ_INT(mesa_token_verify(jwt, KEY_S, "k1", T0, &c), MESA_TOKEN_OK,
                 "token without repos verifies");
    CHECK(c.repos == NULL && c.ro_repos == NULL, "absent repos and ro_repos are NULL");
    mesa_token_claims_free(&c);
    free(jwt);

    CHECK_EQ_INT(verify_payload("\"scopes\":[]," GOOD_CLAIMS ",\"aud\":[\"x\",\"mesa-api\"]"),
                 MESA_TOKEN_OK, "aud as an array containing mesa-api is accepted");
}

/* ---- refusals ---- */

static void test_tampering(void)
{
    char *jwt = NULL, *evil, *p, *d1, *d2;

    mesa_token_sign(KEY_S, "k1", scopes_rw, NULL, NULL, T0, 3600, &jwt);
    d1 = strchr(jwt, '.');
    d2 = strchr(d1 + 1, '.');
    /* Same header and signature, a different (well-formed) payload. */
    p = b64u("{\"scopes\":[\"admin\"],\"iss\":\"k1\",\"aud\":\"mesa-api\","
             "\"iat\":1700000000,\"exp\":1700003600}");
    evil = malloc(strlen(jwt) + strlen(p) + 2);
    sprintf(evil, "%.*s.%s%s", (int)(d1 - jwt), jwt, p, d2);
    CHECK_EQ_INT(mesa_token_verify(evil, KEY_S, "k1", T0, NULL), MESA_TOKEN_BAD_SIGNATURE,
                 "tampered payload is BAD_SIGNATURE");
    free(evil);
    free(p);

    evil = strdup(jwt);
    evil[d2 - jwt + 1] = evil[d2 - jwt + 1] == 'A' ? 'B' : 'A';
    CHECK_EQ_INT(mesa_token_verify(evil, KEY_S, "k1", T0, NULL), MESA_TOKEN_BAD_SIGNATURE,
                 "tampered signature is BAD_SIGNATURE");
    free(evil);

    evil = strndup(jwt, (size_t)(d2 - jwt + 1));
    CHECK_EQ_INT(mesa_token_verify(evil, KEY_S, "k1", T0, NULL), MESA_TOKEN_BAD_SIGNATURE,
                 "HS256 header with an empty signature is BAD_SIGNATURE");
    free(evil);

    evil = strndup(jwt, strlen(jwt) - 3); /* 40 chars: canonical 30 bytes */
    CHECK_EQ_INT(mesa_token_verify(evil, KEY_S, "k1", T0, NULL), MESA_TOKEN_BAD_SIGNATURE,
                 "truncated (short) signature is BAD_SIGNATURE");
    free(evil);

    CHECK_EQ_INT(
        mesa_token_verify(jwt, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "k1", T0, NULL),
        MESA_TOKEN_BAD_SIGNATURE, "another secret is BAD_SIGNATURE");
    free(jwt);
}

static void test_alg(void)
{
    static const char pl[] = "{\"scopes\":[\"read\"]," GOOD_CLAIMS ",\"aud\":\"mesa-api\"}";
    char *h, *p, *jwt;

    h = b64u("{\"alg\":\"none\"}");
    p = b64u(pl);
    jwt = malloc(strlen(h) + strlen(p) + 3);
    sprintf(jwt, "%s.%s.", h, p);
    CHECK_EQ_INT(verify_free(jwt), MESA_TOKEN_BAD_ALG,
                 "alg none with an empty signature is BAD_ALG");
    free(h);

    h = b64u("{\"alg\":\"none\",\"typ\":\"mesa-at+jwt\",\"kid\":\"k1.v1\"}");
    jwt = malloc(strlen(h) + strlen(p) + 3);
    sprintf(jwt, "%s.%s.", h, p);
    CHECK_EQ_INT(verify_free(jwt), MESA_TOKEN_BAD_ALG, "alg none with a good kid is BAD_ALG");
    free(h);

    h = b64u("{\"alg\":\"HS512\",\"typ\":\"mesa-at+jwt\",\"kid\":\"k1.v1\"}");
    CHECK_EQ_INT(verify_free(forge_raw(h, p, EVP_sha512(), KEY_S)), MESA_TOKEN_BAD_ALG,
                 "alg HS512 with a valid HS512 signature is BAD_ALG");
    free(h);
    free(p);

    CHECK_EQ_INT(verify_free(forge("{\"typ\":\"mesa-at+jwt\",\"kid\":\"k1.v1\"}", pl)),
                 MESA_TOKEN_BAD_ALG, "missing alg is BAD_ALG");
    CHECK_EQ_INT(verify_free(forge("{\"alg\":\"hs256\",\"kid\":\"k1.v1\"}", pl)),
                 MESA_TOKEN_BAD_ALG, "alg in the wrong case is BAD_ALG");
    CHECK_EQ_INT(verify_free(forge("{\"alg\":[\"HS256\"],\"kid\":\"k1.v1\"}", pl)),
                 MESA_TOKEN_BAD_ALG, "alg that is not a string is BAD_ALG");
    CHECK_EQ_INT(verify_free(forge("{\"alg\":\"HS256\",\"kid\":\"k1.v1\"}", pl)), MESA_TOKEN_OK,
                 "minimal HS256 header with kid is accepted");
}

static void test_times(void)
{
    char *jwt = NULL;

    mesa_token_sign(KEY_S, "k1", scopes_rw, NULL, NULL, T0 - 3600 - 61, 3600, &jwt);
    CHECK_EQ_INT(verify_free(jwt), MESA_TOKEN_EXPIRED, "expired 61 s ago is EXPIRED");
    mesa_token_sign(KEY_S, "k1", scopes_rw, NULL, NULL, T0 - 3600 - 60, 3600, &jwt);
    CHECK_EQ_INT(verify_free(jwt), MESA_TOKEN_OK, "expired 60 s ago is within leeway");
    mesa_token_sign(KEY_S, "k1", scopes_rw, NULL, NULL, T0 + 61, 3600, &jwt);
    CHECK_EQ_INT(verify_free(jwt), MESA_TOKEN_NOT_YET_VALID,
                 "issued 61 s in the future is NOT_YET_VALID");
    mesa_token_sign(KEY_S, "k1", scopes_rw, NULL, NULL, T0 + 60, 3600, &jwt);
    CHECK_EQ_INT(verify_free(jwt), MESA_TOKEN_OK, "issued 60 s in the future is within leeway");

    CHECK_EQ_INT(verify_times(T0, T0 + 86401), MESA_TOKEN_LIFETIME, "lifetime 86401 s is LIFETIME");
    CHECK_EQ_INT(verify_times(T0, T0 + 86400), MESA_TOKEN_OK, "lifetime 86400 s is accepted");
    CHECK_EQ_INT(verify_times(T0, T0), MESA_TOKEN_LIFETIME, "exp == iat is LIFETIME");
    CHECK_EQ_INT(verify_times(T0, T0 - 10), MESA_TOKEN_LIFETIME, "exp < iat is LIFETIME");
    CHECK_EQ_INT(verify_times(-9223372036854775807LL - 1, 9223372036854775807LL),
                 MESA_TOKEN_LIFETIME, "extreme iat/exp do not overflow");
}

static void test_audience(void)
{
    CHECK_EQ_INT(verify_payload("\"scopes\":[]," GOOD_CLAIMS ",\"aud\":\"other\""),
                 MESA_TOKEN_AUDIENCE_MISMATCH, "wrong aud is AUDIENCE_MISMATCH");
    CHECK_EQ_INT(verify_payload("\"scopes\":[]," GOOD_CLAIMS ",\"aud\":[\"other\"]"),
                 MESA_TOKEN_AUDIENCE_MISMATCH, "aud array without mesa-api is AUDIENCE_MISMATCH");
    CHECK_EQ_INT(verify_payload("\"scopes\":[]," GOOD_CLAIMS ",\"aud\":\"MESA-API\""),
                 MESA_TOKEN_AUDIENCE_MISMATCH, "aud comparison is exact");
}

static void test_issuer(void)
{
    char *jwt = NULL;

    mesa_token_sign(KEY_S, "k1", scopes_rw, NULL, NULL, T0, 3600, &jwt);
    CHECK_EQ_INT(mesa_token_verify(jwt, KEY_S, "k2", T0, NULL), MESA_TOKEN_ISSUER_MISMATCH,
                 "token of another key id is ISSUER_MISMATCH");
    CHECK_EQ_INT(mesa_token_verify(jwt, KEY_S, "k", T0, NULL), MESA_TOKEN_ISSUER_MISMATCH,
                 "a prefix of the key id is ISSUER_MISMATCH");
    free(jwt);
    CHECK_EQ_INT(verify_payload("\"scopes\":[],\"iss\":\"k2\",\"iat\":1700000000,"
                                "\"exp\":1700003600,\"aud\":\"mesa-api\""),
                 MESA_TOKEN_ISSUER_MISMATCH, "iss differing from kid is ISSUER_MISMATCH");
    CHECK_EQ_INT(verify_free(forge("{\"alg\":\"HS256\",\"kid\":\"k1\"}",
                                   "{\"scopes\":[]," GOOD_CLAIMS ",\"aud\":\"mesa-api\"}")),
                 MESA_TOKEN_ISSUER_MISMATCH, "kid without .v1 is ISSUER_MISMATCH");
    CHECK_EQ_INT(verify_free(forge("{\"alg\":\"HS256\",\"kid\":\"k1.v2\"}",
                                   "{\"scopes\":[]," GOOD_CLAIMS ",\"aud\":\"mesa-api\"}")),
                 MESA_TOKEN_ISSUER_MISMATCH, "kid .v2 is ISSUER_MISMATCH");
}

/* Spaces appended to a JSON text until its length is 1 mod 3, so its
 * base64url ends in a char with 4 unused bits. */
static char *pad_json(const char *json)
{
    size_t n = strlen(json), k = (4 - n % 3) % 3;
    char *out = malloc(n + k + 1);

    sprintf(out, "%s%.*s", json, (int)k, "  ");
    return out;
}

/* The same bytes spelled non-canonically: set a stray low bit in the last
 * char (whose low bits are unused when the part's length % 4 is 2 or 3). */
static void spoil_last(char *b64)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *c = b64 + strlen(b64) - 1;

    *c = abc[(strchr(abc, *c) - abc) | 1];
}

static void test_noncanonical(void)
{
    static const char pl[] = "{\"scopes\":[\"read\"]," GOOD_CLAIMS ",\"aud\":\"mesa-api\"}";
    char *hj = pad_json(HDR), *pj = pad_json(pl), *h = b64u(hj), *p = b64u(pj), *jwt;
    char *d2;

    CHECK_EQ_INT(verify_free(forge_raw(h, p, EVP_sha256(), KEY_S)), MESA_TOKEN_OK,
                 "padded JSON, canonical base64url, is accepted");
    spoil_last(h);
    CHECK_EQ_INT(verify_free(forge_raw(h, p, EVP_sha256(), KEY_S)), MESA_TOKEN_MALFORMED,
                 "header with stray bits (validly signed) is MALFORMED");
    free(h);
    h = b64u(hj);
    spoil_last(p);
    CHECK_EQ_INT(verify_free(forge_raw(h, p, EVP_sha256(), KEY_S)), MESA_TOKEN_MALFORMED,
                 "payload with stray bits (validly signed) is MALFORMED");
    free(p);
    p = b64u(pj);

    jwt = forge_raw(h, p, EVP_sha256(), KEY_S);
    spoil_last(jwt); /* 32-byte signature: 43 chars, 2 unused bits */
    CHECK_EQ_INT(verify_free(jwt), MESA_TOKEN_MALFORMED, "signature with stray bits is MALFORMED");

    jwt = forge_raw(h, p, EVP_sha256(), KEY_S);
    d2 = realloc(jwt, strlen(jwt) + 2);
    strcat(d2, "=");
    CHECK_EQ_INT(verify_free(d2), MESA_TOKEN_MALFORMED, "padded signature is MALFORMED");

    jwt = forge_raw(h, p, EVP_sha256(), KEY_S);
    jwt[strlen(h) + 3] = '+';
    CHECK_EQ_INT(verify_free(jwt), MESA_TOKEN_MALFORMED,
                 "standard-alphabet char in the payload is MALFORMED");
    free(h);
    free(p);

    h = malloc(strlen(HDR) * 2);
    mesa_b64_encode(HDR, strlen(HDR), h); /* ends in "=" */
    p = b64u(pl);
    CHECK_EQ_INT(verify_free(forge_raw(h, p, EVP_sha256(), KEY_S)), MESA_TOKEN_MALFORMED,
                 "padded header is MALFORMED");
    free(h);
    free(p);
    free(hj);
    free(pj);
}

static void test_shape(void)
{
    char *jwt = NULL, *evil;

    mesa_token_sign(KEY_S, "k1", scopes_rw, NULL, NULL, T0, 3600, &jwt);
    evil = malloc(strlen(jwt) + 3);
    sprintf(evil, "%s.", jwt);
    CHECK_EQ_INT(mesa_token_verify(evil, KEY_S, "k1", T0, NULL), MESA_TOKEN_MALFORMED,
                 "a trailing extra dot is MALFORMED");
    sprintf(evil, "%s.x", jwt);
    CHECK_EQ_INT(mesa_token_verify(evil, KEY_S, "k1", T0, NULL), MESA_TOKEN_MALFORMED,
                 "four parts are MALFORMED");
    sprintf(evil, ".%s", jwt);
    CHECK_EQ_INT(mesa_token_verify(evil, KEY_S, "k1", T0, NULL), MESA_TOKEN_MALFORMED,
                 "a leading extra dot is MALFORMED");
    *strrchr(jwt, '.') = '\0';
    CHECK_EQ_INT(mesa_token_verify(jwt, KEY_S, "k1", T0, NULL), MESA_TOKEN_MALFORMED,
                 "two parts are MALFORMED");
    free(evil);
    free(jwt);

    CHECK_EQ_INT(mesa_token_verify("", KEY_S, "k1", T0, NULL), MESA_TOKEN_MALFORMED,
                 "empty string is MALFORMED");
    CHECK_EQ_INT(mesa_token_verify("..", KEY_S, "k1", T0, NULL), MESA_TOKEN_MALFORMED,
                 "\"..\" is MALFORMED");
    CHECK_EQ_INT(mesa_token_verify(NULL, KEY_S, "k1", T0, NULL), MESA_TOKEN_MALFORMED,
                 "NULL is MALFORMED");
    CHECK_EQ_INT(verify_free(forge("not json", "{}")), MESA_TOKEN_MALFORMED,
                 "non-JSON header is MALFORMED");
    CHECK_EQ_INT(verify_free(forge("[\"HS256\"]", "{}")), MESA_TOKEN_MALFORMED,
                 "non-object header is MALFORMED");
    CHECK_EQ_INT(verify_free(forge("{\"alg\":\"HS256\"}", "{}")), MESA_TOKEN_MALFORMED,
                 "header without kid is MALFORMED");
}

static void test_claim_types(void)
{
    static const struct {
        const char *claims, *what;
    } bad[] = {
        {"\"iss\":\"k1\",\"aud\":\"mesa-api\",\"iat\":1700000000,\"exp\":1700003600",
         "missing scopes is MALFORMED"},
        {"\"scopes\":\"read\"," GOOD_CLAIMS ",\"aud\":\"mesa-api\"",
         "scopes as a string is MALFORMED"},
        {"\"scopes\":[1]," GOOD_CLAIMS ",\"aud\":\"mesa-api\"", "scopes of numbers is MALFORMED"},
        {"\"scopes\":[],\"iat\":1700000000,\"exp\":1700003600,\"aud\":\"mesa-api\"",
         "missing iss is MALFORMED"},
        {"\"scopes\":[],\"iss\":7,\"iat\":1700000000,\"exp\":1700003600,\"aud\":\"mesa-api\"",
         "numeric iss is MALFORMED"},
        {"\"scopes\":[]," GOOD_CLAIMS, "missing aud is MALFORMED"},
        {"\"scopes\":[]," GOOD_CLAIMS ",\"aud\":5", "numeric aud is MALFORMED"},
        {"\"scopes\":[]," GOOD_CLAIMS ",\"aud\":[\"mesa-api\",5]",
         "aud array with a number is MALFORMED"},
        {"\"scopes\":[],\"iss\":\"k1\",\"exp\":1700003600,\"aud\":\"mesa-api\"",
         "missing iat is MALFORMED"},
        {"\"scopes\":[],\"iss\":\"k1\",\"iat\":1700000000.5,\"exp\":1700003600,"
         "\"aud\":\"mesa-api\"",
         "fractional iat is MALFORMED"},
        {"\"scopes\":[],\"iss\":\"k1\",\"iat\":1700000000,\"exp\":\"1700003600\","
         "\"aud\":\"mesa-api\"",
         "exp as a string is MALFORMED"},
        {"\"scopes\":[]," GOOD_CLAIMS ",\"aud\":\"mesa-api\",\"repos\":\"org/a\"",
         "repos as a string is MALFORMED"},
        {"\"scopes\":[]," GOOD_CLAIMS ",\"aud\":\"mesa-api\",\"ro_repos\":null",
         "ro_repos null is MALFORMED"},
        {"\"scopes\":[]," GOOD_CLAIMS ",\"aud\":\"mesa-api\",\"jti\":42",
         "numeric jti is MALFORMED"},
        {"\"scopes\":[]," GOOD_CLAIMS ",\"aud\":\"mesa-api\",\"iss\":\"k1\"",
         "duplicate claim is MALFORMED"},
    };
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ_INT(verify_payload(bad[i].claims), MESA_TOKEN_MALFORMED, bad[i].what);
    CHECK_EQ_INT(verify_free(forge(HDR, "[1,2]")), MESA_TOKEN_MALFORMED,
                 "non-object payload is MALFORMED");
    CHECK_EQ_INT(verify_free(forge(HDR, "{\"scopes\":[]")), MESA_TOKEN_MALFORMED,
                 "truncated JSON payload is MALFORMED");
}

static void test_peek_kid(void)
{
    char *kid = NULL, *jwt;

    CHECK_EQ_INT(mesa_token_peek_kid("", &kid), -EINVAL, "peek_kid of empty is -EINVAL");
    CHECK_EQ_INT(mesa_token_peek_kid("a.b", &kid), -EINVAL, "peek_kid of two parts is -EINVAL");
    jwt = forge("{\"alg\":\"HS256\",\"kid\":\"k1\"}", "{}");
    CHECK_EQ_INT(mesa_token_peek_kid(jwt, &kid), -EINVAL, "peek_kid needs .v1");
    free(jwt);
    jwt = forge("{\"alg\":\"HS256\",\"kid\":\".v1\"}", "{}");
    CHECK_EQ_INT(mesa_token_peek_kid(jwt, &kid), -EINVAL, "peek_kid refuses an empty key id");
    free(jwt);
    jwt = forge("{\"alg\":\"none\",\"kid\":\"org.key.v1\"}", "garbage");
    CHECK_EQ_INT(mesa_token_peek_kid(jwt, &kid), 0, "peek_kid reads only the header");
    CHECK_EQ_STR(kid, "org.key", "peek_kid strips only the final .v1");
    free(kid);
    free(jwt);
}

static void test_status_and_claims_free(void)
{
    mesa_token_claims_t c;
    int st, ok = 1;

    for (st = MESA_TOKEN_OK; st <= MESA_TOKEN_ISSUER_MISMATCH; st++)
        ok &= mesa_token_status_str((mesa_token_status_t)st) != NULL;
    CHECK(ok, "every status has a message");
    memset(&c, 0x5a, sizeof c);
    CHECK_EQ_INT(mesa_token_verify("x", KEY_S, "k1", T0, &c), MESA_TOKEN_MALFORMED,
                 "garbage is MALFORMED");
    CHECK(c.key_id == NULL && c.scopes == NULL, "claims are cleared on refusal");
    mesa_token_claims_free(&c);
    mesa_token_claims_free(NULL);
}

static void test_random(void)
{
    char u1[37], u2[37], r[33];
    size_t i;
    int ok = 1;

    CHECK_EQ_INT(mesa_uuid4(u1), 0, "uuid4 succeeds");
    mesa_uuid4(u2);
    CHECK_EQ_INT(strlen(u1), 36, "uuid4 is 36 chars");
    CHECK(u1[8] == '-' && u1[13] == '-' && u1[18] == '-' && u1[23] == '-',
          "uuid4 dashes are in place");
    CHECK(u1[14] == '4' && strchr("89ab", u1[19]), "uuid4 version and variant bits");
    CHECK(strcmp(u1, u2) != 0, "two uuid4s differ");
    CHECK_EQ_INT(mesa_random_base62(r, 32), 0, "random_base62 succeeds");
    for (i = 0; i < 32; i++)
        ok &= !!strchr("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", r[i]);
    CHECK(ok && r[32] == '\0', "random_base62 gives n base62 chars and a NUL");
    CHECK_EQ_INT(mesa_random_base62(r, 0), 0, "random_base62 of 0 chars");
    CHECK_EQ_STR(r, "", "random_base62 of 0 chars is empty");
}

int main(void)
{
    test_rfc7515_a1();
    test_rfc7519_example();
    test_derive_secret();
    test_sign_wire_form();
    test_sign_ttl();
    test_round_trip();
    test_tampering();
    test_alg();
    test_times();
    test_audience();
    test_issuer();
    test_noncanonical();
    test_shape();
    test_claim_types();
    test_peek_kid();
    test_status_and_claims_free();
    test_random();
    return ctest_done();
}
