/* core/env.c - the environment's MESA_* variables, validated (env.h).
 * Called by the tools (mesa, mesarun); the shim reads the mount's own
 * variables, not these.
 */
#include "config.h"
#include "env.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mesa_config_url_valid(const char *url)
{
    if (strncmp(url, "unix:/", 6) == 0)
        return strlen(url) > 6 && strlen(url) < 108 + 5;
    const char *rest = strncmp(url, "http://", 7) == 0    ? url + 7
                       : strncmp(url, "https://", 8) == 0 ? url + 8
                                                          : NULL;
    return rest && *rest && *rest != '/' && !strpbrk(rest, " \t\r\n");
}

int mesa_config_repo_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 100 || s[0] == '.' || s[0] == '-' ||
        (n >= 4 && strcmp(s + n - 4, ".git") == 0))
        return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

int mesa_config_org_valid(const char *org)
{
    size_t n = strlen(org);
    if (n == 0 || n > 64 || org[0] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((org[i] >= 'a' && org[i] <= 'z') || (org[i] >= '0' && org[i] <= '9') ||
              org[i] == '-'))
            return 0;
    return 1;
}

/* Copy an environment variable into dst; -E2BIG if it does not fit. */
static int env_copy(const char *name, char *dst, size_t n)
{
    const char *v = getenv(name);
    dst[0] = '\0';
    if (!v)
        return 0;
    if (strlen(v) >= n)
        return -E2BIG;
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

int mesa_config_load(mesa_config_t *c, char *err, size_t errlen)
{
    static const struct {
        const char *name;
        size_t off, len;
    } vars[] = {
        {"MESA_URL", offsetof(mesa_config_t, url), sizeof c->url},
        {"MESA_API_KEY", offsetof(mesa_config_t, api_key), sizeof c->api_key},
        {"MESA_ACCESS_TOKEN", offsetof(mesa_config_t, access_token), sizeof c->access_token},
        {"MESA_ORG", offsetof(mesa_config_t, org), sizeof c->org},
    };
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        if (env_copy(vars[i].name, (char *)c + vars[i].off, vars[i].len) < 0) {
            snprintf(err, errlen, "%s is too long", vars[i].name);
            return -EINVAL;
        }
    }
    if (c->url[0] && !mesa_config_url_valid(c->url)) {
        snprintf(err, errlen, "MESA_URL must start with http://, https:// or unix:/ (got '%s')",
                 c->url);
        return -EINVAL;
    }
    if (c->api_key[0] && c->access_token[0]) {
        snprintf(err, errlen, "set MESA_API_KEY or MESA_ACCESS_TOKEN, not both");
        return -EINVAL;
    }
    /* in `mesarun --sandbox`, MESA_URL is mesarun's proxy, which adds the
     * mount's token: there is no credential to give */
    const char *sb = getenv("MESA_SANDBOX");
    if (c->url[0] && !c->api_key[0] && !c->access_token[0] && !(sb && strcmp(sb, "1") == 0)) {
        snprintf(err, errlen, "MESA_URL is set: set MESA_API_KEY (or MESA_ACCESS_TOKEN) too");
        return -EINVAL;
    }
    if (c->org[0] && !mesa_config_org_valid(c->org)) {
        snprintf(err, errlen, "MESA_ORG must be 1..64 of [a-z0-9-] (got '%s')", c->org);
        return -EINVAL;
    }
    return 0;
}
