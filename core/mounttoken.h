/* core/mounttoken.h - the one access token of a mount (DESIGN §2, §7).
 *
 * Signed locally from the API key, which never leaves the signer: scopes
 * read (+ write when any repo is writable), repos = every mounted repo as
 * "org/repo", ro_repos = the read-only ones, ttl 1..86400 s. No refresh.
 * The key id comes from GET /v1/whoami, asked once with the raw key.
 */
#ifndef MESA_MOUNTTOKEN_H
#define MESA_MOUNTTOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "client.h"

typedef struct mesa_mount_repo {
    const char *org;
    const char *repo;
    int read_only;
} mesa_mount_repo_t;

/* Sign the token for n repos (1..64) with ttl seconds. client carries the
 * raw API key as its bearer (for whoami). *token is malloc'd. 0, or a
 * negative errno with a one-line reason in e. */
int mesa_mount_token(mesa_client_t *client, const char *api_key, const mesa_mount_repo_t *repos,
                     size_t n, int64_t ttl, char **token, mesa_error_t *e);

#endif
