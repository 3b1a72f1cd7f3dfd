/* server/auth.c - request authentication and authorization (see auth.h).
 *
 * Invariant: a credential is accepted only if its key exists, is not
 * revoked, and (for a token) verifies under HS256 with the key's stored
 * secret S; effective scopes never exceed the key's own.
 * Called by http.c for every /v1 request.
 */
#include "config.h"
#include "auth.h"
#include "token.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

void auth_principal_free(principal_t *p)
{
    strv_free(p->repos);
    strv_free(p->ro_repos);
    p->repos = p->ro_repos = NULL;
}

static unsigned scope_bits(char **scopes)
{
    unsigned bits = 0;
    for (size_t i = 0; scopes && scopes[i]; i++) {
        if (strcmp(scopes[i], "read") == 0)
            bits |= SCOPE_READ;
        else if (strcmp(scopes[i], "write") == 0)
            bits |= SCOPE_WRITE | SCOPE_READ;
        else if (strcmp(scopes[i], "admin") == 0)
            bits |= SCOPE_ADMIN;
    }
    return bits;
}

static int load_key(const char *key_id, principal_t *p, const char **why)
{
    if (db_key_get(key_id, &p->key) < 0) {
        *why = "unknown API key";
        return -EACCES;
    }
    if (p->key.revoked) {
        *why = "API key has been revoked";
        return -EACCES;
    }
    if (db_org_by_id(p->key.org_id, &p->org) < 0) {
        *why = "API key's organization no longer exists";
        return -EACCES;
    }
    return 0;
}

static int auth_raw_key(const char *cred, principal_t *p, const char **why)
{
    /* A raw key carries no id: find its record by the derived secret S,
     * which is unique and indexed. */
    char secret[MESA_TOKEN_SECRET_LEN + 1];
    mesa_token_derive_secret(cred, secret);
    char id[64];
    if (db_key_by_secret(secret, id, sizeof id) < 0) {
        *why = "unknown API key";
        return -EACCES;
    }
    int rc = load_key(id, p, why);
    if (rc < 0)
        return rc;
    p->scopes = p->key.scopes;
    return 0;
}

static int auth_token(const char *cred, principal_t *p, const char **why)
{
    char *kid = NULL;
    if (mesa_token_peek_kid(cred, &kid) < 0) {
        *why = "malformed access token";
        return -EACCES;
    }
    int rc = load_key(kid, p, why);
    if (rc < 0)
        goto out;
    mesa_token_claims_t c = {0};
    mesa_token_status_t st = mesa_token_verify(cred, p->key.secret, kid, (int64_t)time(NULL), &c);
    if (st != MESA_TOKEN_OK) {
        *why = mesa_token_status_str(st);
        rc = -EACCES;
        goto out;
    }
    p->is_token = 1;
    p->scopes = scope_bits(c.scopes) & p->key.scopes;
    p->repos = c.repos;
    p->ro_repos = c.ro_repos;
    c.repos = c.ro_repos = NULL;
    mesa_token_claims_free(&c);
out:
    free(kid);
    return rc;
}

int auth_authenticate(const char *authorization, principal_t *p, const char **why)
{
    memset(p, 0, sizeof *p);
    if (!authorization || !*authorization) {
        *why = "missing Authorization header";
        return -EACCES;
    }
    if (strncasecmp(authorization, "Bearer ", 7) != 0) {
        *why = "Authorization must be 'Bearer <token or API key>'";
        return -EACCES;
    }
    const char *cred = authorization + 7;
    while (*cred == ' ')
        cred++;
    if (strlen(cred) > 8192) {
        *why = "credential too long";
        return -EACCES;
    }
    if (strncmp(cred, "mesa_", 5) == 0 && !strchr(cred, '.'))
        return auth_raw_key(cred, p, why);
    return auth_token(cred, p, why);
}

static int in_list(char **v, const char *full)
{
    for (size_t i = 0; v && v[i]; i++)
        if (strcmp(v[i], full) == 0)
            return 1;
    return 0;
}

int auth_check(const principal_t *p, const char *org_slug, const char *repo, enum auth_access a,
               const char **why)
{
    if (strcmp(p->org.slug, org_slug) != 0) {
        *why = "credential belongs to another organization";
        return -EPERM;
    }
    char full[256];
    if (repo) {
        snprintf(full, sizeof full, "%s/%s", org_slug, repo);
        if (p->repos && !in_list(p->repos, full)) {
            *why = "repository is not in the token's scope";
            return -EPERM;
        }
    }
    switch (a) {
    case AUTH_READ:
        if (!(p->scopes & (SCOPE_READ | SCOPE_WRITE | SCOPE_ADMIN))) {
            *why = "credential lacks the read scope";
            return -EPERM;
        }
        return 0;
    case AUTH_WRITE:
        if (!(p->scopes & SCOPE_WRITE)) {
            *why = "credential is read-only (no write scope)";
            return -EROFS;
        }
        if (repo && in_list(p->ro_repos, full)) {
            *why = "repository is read-only for this token";
            return -EROFS;
        }
        return 0;
    case AUTH_ADMIN:
        if (!(p->scopes & SCOPE_ADMIN)) {
            *why = "credential lacks the admin scope";
            return -EPERM;
        }
        return 0;
    }
    return -EPERM;
}
