/* core/env.h - client configuration from the environment.
 *
 * MESA_URL (http://, https:// or unix:/path; unset = the embedded default),
 * MESA_API_KEY or MESA_ACCESS_TOKEN (an already signed token: then no ttl or
 * scope can be chosen), MESA_ORG. Each mistake gets one clear message.
 */
#ifndef MESA_ENV_H
#define MESA_ENV_H

#include <stddef.h>

typedef struct mesa_config {
    char url[1024];           /* "" = embedded default */
    char api_key[256];        /* "" if not given */
    char access_token[8192];  /* "" if not given */
    char org[101];            /* "" if not given */
} mesa_config_t;

/* Read and validate the environment. 0, or -EINVAL with a one-line message
 * in err. */
int mesa_config_load(mesa_config_t *c, char *err, size_t errlen);

/* Validation helpers, also used for command-line values. 1 if valid. */
int mesa_config_url_valid(const char *url);
int mesa_config_org_valid(const char *org);
/* A repo name as the API takes it: 1..100 of [A-Za-z0-9._-], not starting
 * with '.' or '-', not ending in ".git". */
int mesa_config_repo_valid(const char *name);

#endif
