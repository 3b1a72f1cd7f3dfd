/* core/mounttoken.c - sign a mount's access token (mounttoken.h).
 * Called by `mesa token` and, later, mesarun.
 */
#include "config.h"
#include "mounttoken.h"
#include "token.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_REPOS 64

static int fail(mesa_error_t *e, int err, const char *msg)
{
    return mesa_error_set(e, err, "%s", msg);
}

int mesa_mount_token(mesa_client_t *client, const char *api_key, const mesa_mount_repo_t *repos,
                     size_t n, int64_t ttl, char **token, mesa_error_t *e)
{
    if (n == 0 || n > MAX_REPOS)
        return fail(e, EINVAL, "a mount needs 1 to 64 repositories");
    if (ttl < 1 || ttl > MESA_TOKEN_TTL_MAX)
        return fail(e, EINVAL, "the token's ttl must be 1..86400 seconds");
    json_t *who = NULL;
    int rc = mesa_client_json(client, "GET", "/whoami", NULL, &who, e);
    if (rc < 0)
        return rc;
    const char *key_id = json_string_value(json_object_get(who, "key_id"));
    char names[MAX_REPOS][256];
    const char *all[MAX_REPOS + 1], *ro[MAX_REPOS + 1];
    size_t nro = 0, nrw = 0;
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "%s/%s", repos[i].org, repos[i].repo);
        all[i] = names[i];
        if (repos[i].read_only)
            ro[nro++] = names[i];
        else
            nrw++;
    }
    all[n] = ro[nro] = NULL;
    const char *scopes[] = {"read", nrw ? "write" : NULL, NULL};
    char secret[MESA_TOKEN_SECRET_LEN + 1];
    mesa_token_derive_secret(api_key, secret);
    rc = key_id ? mesa_token_sign(secret, key_id, scopes, all, nro ? ro : NULL,
                                  (int64_t)time(NULL), ttl, token)
                : -EPROTO;
    json_decref(who);
    if (rc == -EPROTO)
        return fail(e, EPROTO, "whoami did not name the key (is MESA_API_KEY a raw key?)");
    if (rc < 0)
        return fail(e, -rc, "cannot sign the access token");
    return 0;
}
