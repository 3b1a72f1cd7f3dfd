/* core/token.h - Mesa access tokens: HS256 JWTs signed from an API key.
 *
 * Wire-compatible with Mesa's SDKs (shared/MESA-API.md): the signing secret is
 * S = base64url_nopad(SHA-256(api_key)), the HMAC key is the UTF-8 bytes of S,
 * header {"alg":"HS256","typ":"mesa-at+jwt","kid":"<key_id>.v1"}.
 * The client signs with mesa_token_sign(); the server verifies with
 * mesa_token_verify() using the S it stored, never trusting the header's alg.
 */
#ifndef MESA_TOKEN_H
#define MESA_TOKEN_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define MESA_TOKEN_SECRET_LEN 43 /* base64url of 32 bytes, no padding */
#define MESA_TOKEN_TTL_DEFAULT 3600
#define MESA_TOKEN_TTL_MAX 86400
#define MESA_TOKEN_LEEWAY 60
#define MESA_TOKEN_AUDIENCE "mesa-api"

/* S for an API key; out must hold MESA_TOKEN_SECRET_LEN + 1 bytes. */
void mesa_token_derive_secret(const char *api_key, char out[MESA_TOKEN_SECRET_LEN + 1]);

typedef struct mesa_token_claims {
    char *key_id;     /* iss, also kid without ".v1" */
    char **scopes;    /* NULL-terminated */
    char **repos;     /* NULL-terminated, "org/repo"; NULL when the claim is absent */
    char **ro_repos;  /* NULL-terminated; NULL when absent */
    int64_t iat, exp;
    char *jti;
} mesa_token_claims_t;

/* Sign a token. secret is S (from mesa_token_derive_secret or the server's
 * record). scopes/repos/ro_repos are NULL-terminated arrays (repos and
 * ro_repos may be NULL to omit the claim). ttl must be 1..86400.
 * On success *out is a malloc'd compact JWT (caller frees). Returns 0,
 * -EINVAL (bad ttl or arguments), -ENOMEM. */
int mesa_token_sign(const char *secret, const char *key_id, const char *const *scopes,
                    const char *const *repos, const char *const *ro_repos, int64_t now,
                    int64_t ttl, char **out);

/* Decode a token without verifying it, to learn its kid (the key id, with
 * ".v1" stripped) so the caller can find the secret. Returns 0 and a malloc'd
 * *key_id, or -EINVAL for anything malformed. */
int mesa_token_peek_kid(const char *jwt, char **key_id);

/* Why a token was refused (for the error message). */
typedef enum {
    MESA_TOKEN_OK = 0,
    MESA_TOKEN_MALFORMED,
    MESA_TOKEN_BAD_ALG,
    MESA_TOKEN_BAD_SIGNATURE,
    MESA_TOKEN_EXPIRED,
    MESA_TOKEN_NOT_YET_VALID, /* iat in the future beyond leeway */
    MESA_TOKEN_LIFETIME,      /* exp - iat > 86400 or <= 0 */
    MESA_TOKEN_AUDIENCE_MISMATCH,
    MESA_TOKEN_ISSUER_MISMATCH,
} mesa_token_status_t;

const char *mesa_token_status_str(mesa_token_status_t st);

/* Verify jwt with secret S, expecting kid/iss == key_id, at time now (with
 * MESA_TOKEN_LEEWAY). On MESA_TOKEN_OK fills *claims (free with
 * mesa_token_claims_free). The algorithm is always HS256: a header naming any
 * other alg (including "none") is MESA_TOKEN_BAD_ALG. */
mesa_token_status_t mesa_token_verify(const char *jwt, const char *secret, const char *key_id,
                                      int64_t now, mesa_token_claims_t *claims);

void mesa_token_claims_free(mesa_token_claims_t *claims);

/* Random ids. */
int mesa_uuid4(char out[37]);              /* "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" */
int mesa_random_base62(char *out, size_t n); /* n chars + NUL; out holds n + 1 */

#endif
