/* server/auth.h - who is calling: a raw API key or an HS256 access token
 * signed from one (core/token.h). The algorithm is fixed by the key record
 * (HS256), never taken from the token header.
 */
#ifndef MESA_AUTH_H
#define MESA_AUTH_H

#include "store_db.h"

typedef struct principal {
    db_key_t key;
    db_org_t org;
    unsigned scopes; /* effective: token scopes & key scopes */
    int is_token;
    char **repos;    /* NULL = every repo of the org; NULL-terminated "org/repo" */
    char **ro_repos; /* NULL-terminated or NULL */
} principal_t;

/* Authenticate an Authorization header value. 0, or -EACCES with a static
 * reason in *why (-> 401). */
int auth_authenticate(const char *authorization, principal_t *p, const char **why);
void auth_principal_free(principal_t *p);

enum auth_access { AUTH_READ, AUTH_WRITE, AUTH_ADMIN };
/* Is p allowed to do `access` on repo (NULL = org-level)? 0, or
 * -EPERM (403 FORBIDDEN) / -EROFS (403 READ_ONLY) with *why set. */
int auth_check(const principal_t *p, const char *org_slug, const char *repo, enum auth_access a,
               const char **why);

#endif
