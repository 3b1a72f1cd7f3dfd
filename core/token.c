/* core/token.c - Mesa access tokens: HS256 JWTs signed from an API key.
 *
 * Invariant: a token is accepted only if its header names HS256, its kid and
 * iss name the expected key, its HMAC-SHA256 (keyed by the bytes of S) matches
 * in constant time, and its claims are well-typed and inside their time and
 * audience bounds. The algorithm never comes from the token: any other alg is
 * refused before the signature is looked at. Payload JSON is parsed only after
 * the signature holds.
 * Callers: the tools and shim sign (mesa_token_sign); mesad verifies
 * (mesa_token_peek_kid to find the key record, then mesa_token_verify).
 */
#include "token.h"
#include "b64.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#define KID_SUFFIX ".v1"
#define KID_SUFFIX_LEN 3
#define JSON_OUT_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER)
#define JSON_IN_FLAGS JSON_REJECT_DUPLICATES

void mesa_token_derive_secret(const char *api_key, char out[MESA_TOKEN_SECRET_LEN + 1])
{
    unsigned char md[SHA256_DIGEST_LENGTH];

    out[0] = '\0'; /* an empty S makes sign refuse, should SHA-256 fail */
    if (!SHA256((const unsigned char *)api_key, strlen(api_key), md))
        return;
    mesa_b64url_encode(md, sizeof md, out);
    OPENSSL_cleanse(md, sizeof md);
}

/* HMAC-SHA256 of msg keyed by the bytes of secret into mac[32]. Returns 0 or -EIO. */
static int hs256(const char *secret, const char *msg, size_t len, unsigned char *mac)
{
    unsigned int maclen = 0;

    if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)msg, len, mac,
              &maclen) ||
        maclen != SHA256_DIGEST_LENGTH)
        return -EIO;
    return 0;
}

/* ---- signing ---- */

/* JSON array of the NULL-terminated strs. NULL when a string is not UTF-8 or
 * memory runs out. */
static json_t *str_array(const char *const *strs)
{
    json_t *a = json_array();
    size_t i;

    if (!a)
        return NULL;
    for (i = 0; strs[i]; i++) {
        if (json_array_append_new(a, json_string(strs[i]))) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* Append base64url(json) to buf at *pos; buf is realloc'd to fit. */
static int append_json(json_t *j, char **buf, size_t *pos)
{
    char *text = json_dumps(j, JSON_OUT_FLAGS), *nbuf;
    size_t len, need;
    int ret = -ENOMEM;

    if (!text)
        goto out;
    len = strlen(text);
    need = *pos + mesa_b64url_enclen(len) + 1;
    nbuf = realloc(*buf, need);
    if (!nbuf)
        goto out;
    *buf = nbuf;
    *pos += mesa_b64url_encode(text, len, nbuf + *pos);
    ret = 0;
out:
    free(text);
    return ret;
}

static json_t *make_header(const char *key_id)
{
    json_t *h = json_object();
    char *kid = malloc(strlen(key_id) + KID_SUFFIX_LEN + 1);

    if (!h || !kid)
        goto fail;
    strcpy(kid, key_id);
    strcat(kid, KID_SUFFIX);
    if (json_object_set_new(h, "alg", json_string("HS256")) ||
        json_object_set_new(h, "typ", json_string("mesa-at+jwt")) ||
        json_object_set_new(h, "kid", json_string(kid)))
        goto fail;
    free(kid);
    return h;
fail:
    free(kid);
    json_decref(h);
    return NULL;
}

/* Set an optional string-array claim; absent (NULL) arrays are left out. */
static int set_array(json_t *p, const char *name, const char *const *strs)
{
    if (!strs)
        return 0;
    return json_object_set_new(p, name, str_array(strs));
}

static json_t *make_payload(const char *key_id, const char *const *scopes, const char *const *repos,
                            const char *const *ro_repos, int64_t iat, int64_t exp, const char *jti)
{
    json_t *p = json_object();

    if (!p)
        goto fail;
    if (set_array(p, "scopes", scopes) || set_array(p, "repos", repos) ||
        set_array(p, "ro_repos", ro_repos) || json_object_set_new(p, "iss", json_string(key_id)) ||
        json_object_set_new(p, "aud", json_string(MESA_TOKEN_AUDIENCE)) ||
        json_object_set_new(p, "iat", json_integer(iat)) ||
        json_object_set_new(p, "exp", json_integer(exp)) ||
        json_object_set_new(p, "jti", json_string(jti)))
        goto fail;
    return p;
fail:
    json_decref(p);
    return NULL;
}

/* Append "." and the signature of buf[0..*pos) to buf. */
static int append_signature(const char *secret, char **buf, size_t *pos)
{
    unsigned char mac[SHA256_DIGEST_LENGTH];
    char *nbuf = realloc(*buf, *pos + 1 + mesa_b64url_enclen(sizeof mac) + 1);
    int ret;

    if (!nbuf)
        return -ENOMEM;
    *buf = nbuf;
    ret = hs256(secret, nbuf, *pos, mac);
    if (ret < 0)
        return ret;
    nbuf[(*pos)++] = '.';
    *pos += mesa_b64url_encode(mac, sizeof mac, nbuf + *pos);
    return 0;
}

int mesa_token_sign(const char *secret, const char *key_id, const char *const *scopes,
                    const char *const *repos, const char *const *ro_repos, int64_t now, int64_t ttl,
                    char **out)
{
    json_t *header = NULL, *payload = NULL;
    char *buf = NULL, jti[37];
    size_t pos = 0;
    int ret = -EINVAL;

    if (!secret || !*secret || !key_id || !*key_id || !scopes || !out)
        goto out;
    if (ttl < 1 || ttl > MESA_TOKEN_TTL_MAX || now > INT64_MAX - ttl)
        goto out;
    ret = mesa_uuid4(jti);
    if (ret < 0)
        goto out;
    ret = -EINVAL;
    /* json_string() refuses non-UTF-8 text; that, not memory, is the likely
     * reason for a NULL here, so the caller hears -EINVAL. */
    header = make_header(key_id);
    payload = make_payload(key_id, scopes, repos, ro_repos, now, now + ttl, jti);
    if (!header || !payload)
        goto out;
    ret = append_json(header, &buf, &pos);
    if (ret < 0)
        goto out;
    buf[pos++] = '.'; /* the terminating NUL's room */
    ret = append_json(payload, &buf, &pos);
    if (ret < 0)
        goto out;
    ret = append_signature(secret, &buf, &pos);
    if (ret < 0)
        goto out;
    *out = buf;
    buf = NULL;
out:
    free(buf);
    json_decref(payload);
    json_decref(header);
    return ret;
}

/* ---- parsing ---- */

/* The three parts of a compact JWS, decoded. signing_len is the length of
 * "header.payload" in the original text. */
typedef struct jwt_parts {
    unsigned char *header, *payload, *sig;
    size_t header_len, payload_len, sig_len, signing_len;
} jwt_parts_t;

static void parts_free(jwt_parts_t *p)
{
    free(p->header);
    free(p->payload);
    free(p->sig);
    memset(p, 0, sizeof *p);
}

/* Split jwt on exactly two dots and decode each part canonically.
 * Returns 0, -EINVAL or -ENOMEM; on error p holds nothing. */
static int parts_split(const char *jwt, jwt_parts_t *p)
{
    const char *d1, *d2;
    int ret;

    memset(p, 0, sizeof *p);
    d1 = jwt ? strchr(jwt, '.') : NULL;
    d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d2 || strchr(d2 + 1, '.'))
        return -EINVAL;
    p->signing_len = (size_t)(d2 - jwt);
    ret = mesa_b64url_decode(jwt, (size_t)(d1 - jwt), &p->header, &p->header_len);
    if (ret == 0)
        ret = mesa_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), &p->payload, &p->payload_len);
    if (ret == 0)
        ret = mesa_b64url_decode(d2 + 1, strlen(d2 + 1), &p->sig, &p->sig_len);
    if (ret < 0)
        parts_free(p);
    return ret;
}

/* Parse JSON text that must be an object; NULL otherwise. */
static json_t *parse_object(const unsigned char *text, size_t len)
{
    json_t *j = json_loadb((const char *)text, len, JSON_IN_FLAGS, NULL);

    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* The kid of a parsed header with ".v1" stripped, malloc'd; NULL if absent,
 * not a string, empty before the suffix or without it. */
static char *header_key_id(json_t *header)
{
    const char *kid = json_string_value(json_object_get(header, "kid"));
    size_t len = kid ? strlen(kid) : 0;

    if (len <= KID_SUFFIX_LEN || strcmp(kid + len - KID_SUFFIX_LEN, KID_SUFFIX) != 0)
        return NULL;
    return strndup(kid, len - KID_SUFFIX_LEN);
}

int mesa_token_peek_kid(const char *jwt, char **key_id)
{
    jwt_parts_t p;
    json_t *header = NULL;
    int ret;

    if (!key_id)
        return -EINVAL;
    ret = parts_split(jwt, &p);
    if (ret < 0)
        return ret;
    ret = -EINVAL;
    header = parse_object(p.header, p.header_len);
    if (!header)
        goto out;
    *key_id = header_key_id(header);
    if (*key_id)
        ret = 0;
out:
    json_decref(header);
    parts_free(&p);
    return ret;
}

/* ---- verification ---- */

const char *mesa_token_status_str(mesa_token_status_t st)
{
    switch (st) {
    case MESA_TOKEN_OK:
        return "ok";
    case MESA_TOKEN_MALFORMED:
        return "malformed token";
    case MESA_TOKEN_BAD_ALG:
        return "token algorithm is not HS256";
    case MESA_TOKEN_BAD_SIGNATURE:
        return "bad token signature";
    case MESA_TOKEN_EXPIRED:
        return "token expired";
    case MESA_TOKEN_NOT_YET_VALID:
        return "token issued in the future";
    case MESA_TOKEN_LIFETIME:
        return "token lifetime out of range";
    case MESA_TOKEN_AUDIENCE_MISMATCH:
        return "token audience mismatch";
    case MESA_TOKEN_ISSUER_MISMATCH:
        return "token issuer mismatch";
    }
    return "unknown token status";
}

/* Check the header: alg first (so "none" never reaches the signature), then
 * that kid names key_id. */
static mesa_token_status_t check_header(json_t *header, const char *key_id)
{
    const char *alg = json_string_value(json_object_get(header, "alg"));
    char *kid_id;
    mesa_token_status_t st = MESA_TOKEN_ISSUER_MISMATCH;

    if (!alg || strcmp(alg, "HS256") != 0)
        return MESA_TOKEN_BAD_ALG;
    if (!json_is_string(json_object_get(header, "kid")))
        return MESA_TOKEN_MALFORMED;
    kid_id = header_key_id(header);
    if (kid_id && strcmp(kid_id, key_id) == 0)
        st = MESA_TOKEN_OK;
    free(kid_id);
    return st;
}

static mesa_token_status_t check_signature(const jwt_parts_t *p, const char *jwt,
                                           const char *secret)
{
    unsigned char mac[SHA256_DIGEST_LENGTH];

    if (!*secret || p->sig_len != sizeof mac)
        return MESA_TOKEN_BAD_SIGNATURE;
    if (hs256(secret, jwt, p->signing_len, mac) < 0)
        return MESA_TOKEN_BAD_SIGNATURE;
    if (CRYPTO_memcmp(mac, p->sig, sizeof mac) != 0)
        return MESA_TOKEN_BAD_SIGNATURE;
    return MESA_TOKEN_OK;
}

/* 1 if v is an array whose elements are all strings. */
static int is_str_array(json_t *v)
{
    size_t i;

    if (!json_is_array(v))
        return 0;
    for (i = 0; i < json_array_size(v); i++)
        if (!json_is_string(json_array_get(v, i)))
            return 0;
    return 1;
}

/* 1 if aud is a string or array of strings; *has says whether it names us. */
static int aud_ok(json_t *aud, int *has)
{
    size_t i;

    *has = 0;
    if (json_is_string(aud)) {
        *has = strcmp(json_string_value(aud), MESA_TOKEN_AUDIENCE) == 0;
        return 1;
    }
    if (!is_str_array(aud))
        return 0;
    for (i = 0; i < json_array_size(aud); i++)
        if (strcmp(json_string_value(json_array_get(aud, i)), MESA_TOKEN_AUDIENCE) == 0)
            *has = 1;
    return 1;
}

/* Type checks of the payload; MALFORMED unless every claim has its type. */
static mesa_token_status_t check_types(json_t *pl, int *aud_has)
{
    json_t *repos = json_object_get(pl, "repos"), *ro = json_object_get(pl, "ro_repos");
    json_t *jti = json_object_get(pl, "jti");

    if (!json_is_string(json_object_get(pl, "iss")) ||
        !aud_ok(json_object_get(pl, "aud"), aud_has) ||
        !json_is_integer(json_object_get(pl, "iat")) ||
        !json_is_integer(json_object_get(pl, "exp")) ||
        !is_str_array(json_object_get(pl, "scopes")) || (repos && !is_str_array(repos)) ||
        (ro && !is_str_array(ro)) || (jti && !json_is_string(jti)))
        return MESA_TOKEN_MALFORMED;
    return MESA_TOKEN_OK;
}

/* Time bounds. Differences are taken in uint64_t, after ordering the two
 * values, so no signed subtraction can overflow whatever the token holds. */
static mesa_token_status_t check_times(int64_t iat, int64_t exp, int64_t now)
{
    if (exp < now && (uint64_t)now - (uint64_t)exp > MESA_TOKEN_LEEWAY)
        return MESA_TOKEN_EXPIRED;
    if (iat > now && (uint64_t)iat - (uint64_t)now > MESA_TOKEN_LEEWAY)
        return MESA_TOKEN_NOT_YET_VALID;
    if (exp <= iat || (uint64_t)exp - (uint64_t)iat > MESA_TOKEN_TTL_MAX)
        return MESA_TOKEN_LIFETIME;
    return MESA_TOKEN_OK;
}

static mesa_token_status_t check_payload(json_t *pl, const char *key_id, int64_t now)
{
    mesa_token_status_t st;
    int aud_has;

    st = check_types(pl, &aud_has);
    if (st != MESA_TOKEN_OK)
        return st;
    if (strcmp(json_string_value(json_object_get(pl, "iss")), key_id) != 0)
        return MESA_TOKEN_ISSUER_MISMATCH;
    st = check_times(json_integer_value(json_object_get(pl, "iat")),
                     json_integer_value(json_object_get(pl, "exp")), now);
    if (st != MESA_TOKEN_OK)
        return st;
    return aud_has ? MESA_TOKEN_OK : MESA_TOKEN_AUDIENCE_MISMATCH;
}

/* NULL-terminated malloc'd copy of a string array (already type-checked). */
static char **dup_strs(json_t *a)
{
    size_t i, n = json_array_size(a);
    char **v = calloc(n + 1, sizeof *v);

    if (!v)
        return NULL;
    for (i = 0; i < n; i++) {
        v[i] = strdup(json_string_value(json_array_get(a, i)));
        if (!v[i])
            goto fail;
    }
    return v;
fail:
    while (i--)
        free(v[i]);
    free(v);
    return NULL;
}

/* Copy the verified claims out. Returns 0 or -ENOMEM (c then holds nothing). */
static int fill_claims(json_t *pl, mesa_token_claims_t *c)
{
    json_t *repos = json_object_get(pl, "repos"), *ro = json_object_get(pl, "ro_repos");
    json_t *jti = json_object_get(pl, "jti");

    c->key_id = strdup(json_string_value(json_object_get(pl, "iss")));
    c->scopes = dup_strs(json_object_get(pl, "scopes"));
    c->repos = repos ? dup_strs(repos) : NULL;
    c->ro_repos = ro ? dup_strs(ro) : NULL;
    c->jti = jti ? strdup(json_string_value(jti)) : NULL;
    c->iat = json_integer_value(json_object_get(pl, "iat"));
    c->exp = json_integer_value(json_object_get(pl, "exp"));
    if (!c->key_id || !c->scopes || (repos && !c->repos) || (ro && !c->ro_repos) ||
        (jti && !c->jti)) {
        mesa_token_claims_free(c);
        return -ENOMEM;
    }
    return 0;
}

mesa_token_status_t mesa_token_verify(const char *jwt, const char *secret, const char *key_id,
                                      int64_t now, mesa_token_claims_t *claims)
{
    jwt_parts_t p;
    json_t *header = NULL, *payload = NULL;
    mesa_token_status_t st = MESA_TOKEN_MALFORMED;

    if (claims)
        memset(claims, 0, sizeof *claims);
    if (!secret || !key_id || parts_split(jwt, &p) < 0)
        return MESA_TOKEN_MALFORMED;
    header = parse_object(p.header, p.header_len);
    if (!header)
        goto out;
    st = check_header(header, key_id);
    if (st != MESA_TOKEN_OK)
        goto out;
    st = check_signature(&p, jwt, secret);
    if (st != MESA_TOKEN_OK)
        goto out;
    st = MESA_TOKEN_MALFORMED;
    payload = parse_object(p.payload, p.payload_len);
    if (!payload)
        goto out;
    st = check_payload(payload, key_id, now);
    if (st == MESA_TOKEN_OK && claims && fill_claims(payload, claims) < 0)
        st = MESA_TOKEN_MALFORMED; /* out of memory: refuse rather than half-accept */
out:
    json_decref(payload);
    json_decref(header);
    parts_free(&p);
    return st;
}

static void strs_free(char **v)
{
    size_t i;

    for (i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

void mesa_token_claims_free(mesa_token_claims_t *claims)
{
    if (!claims)
        return;
    free(claims->key_id);
    strs_free(claims->scopes);
    strs_free(claims->repos);
    strs_free(claims->ro_repos);
    free(claims->jti);
    memset(claims, 0, sizeof *claims);
}

/* ---- random ids ---- */

int mesa_uuid4(char out[37])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    int i, o = 0;

    if (RAND_bytes(b, sizeof b) != 1)
        return -EIO;
    b[6] = (b[6] & 0x0f) | 0x40; /* version 4 */
    b[8] = (b[8] & 0x3f) | 0x80; /* variant 10xx (RFC 4122) */
    for (i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
    return 0;
}

int mesa_random_base62(char *out, size_t n)
{
    static const char abc[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    unsigned char b[64];
    size_t o = 0, i;

    while (o < n) {
        if (RAND_bytes(b, sizeof b) != 1)
            return -EIO;
        /* Keep bytes below 248 = 4 * 62 so every character is equally likely. */
        for (i = 0; i < sizeof b && o < n; i++)
            if (b[i] < 248)
                out[o++] = abc[b[i] % 62];
    }
    out[n] = '\0';
    return 0;
}
