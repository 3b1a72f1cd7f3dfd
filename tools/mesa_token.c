/* tools/mesa_token.c - `mesa token`: sign a repo-scoped access token from
 * MESA_API_KEY (what mesarun gives the programs of a mount), for scripts
 * and agents that should not hold the key itself.
 */
#include "config.h"
#include "mesa.h"
#include "mounttoken.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char token_help[] =
    "usage: mesa token [--ttl SECONDS] [--ro REPO]... REPO...\n"
    "Print an access token for the named repositories (REPO or ORG/REPO in your\n"
    "org), read-write except those given with --ro, valid for --ttl seconds\n"
    "(1..86400, default 3600). Needs MESA_API_KEY: a MESA_ACCESS_TOKEN is already\n"
    "signed, and no ttl or scope can be chosen for it.\n";

/* "repo" or "org/repo" in our org -> repo name; NULL (usage error) otherwise. */
static const char *repo_name(mesa_ctx_t *ctx, const char *arg)
{
    const char *slash = strchr(arg, '/');
    if (!slash)
        return arg[0] ? arg : NULL;
    size_t ol = (size_t)(slash - arg);
    if (ol != strlen(ctx->org) || strncmp(arg, ctx->org, ol) != 0 || !slash[1] ||
        strchr(slash + 1, '/'))
        return NULL;
    return slash + 1;
}

int cmd_token(mesa_ctx_t *ctx, int argc, char **argv)
{
    static const struct option opts[] = {{"ttl", required_argument, NULL, 't'},
                                         {"ro", required_argument, NULL, 'r'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *args[64];
    int ro[64] = {0}, n = 0, c;
    long ttl = 3600;
    char *end;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h')
            return fputs(token_help, stdout), EXIT_OK;
        if (c == 't') {
            ttl = strtol(optarg, &end, 10);
            if (*end || ttl < 1 || ttl > 86400)
                return mesa_usage("token", "--ttl must be 1..86400 seconds");
        } else if (c == 'r' && n < 64) {
            ro[n] = 1;
            args[n++] = optarg;
        } else {
            return mesa_usage("token", "unknown option '%s'", argv[optind - 1]);
        }
    }
    for (; optind < argc && n < 64; optind++)
        args[n++] = argv[optind];
    if (n == 0 || optind < argc)
        return mesa_usage("token", "name 1 to 64 repositories");
    int rc = mesa_connect(ctx);
    if (rc != EXIT_OK)
        return rc;
    if (!ctx->api_key[0])
        return mesa_usage("token", "MESA_ACCESS_TOKEN is already signed: no ttl or scope can "
                                   "be chosen for it (set MESA_API_KEY to sign a new token)");
    mesa_mount_repo_t repos[64];
    for (int i = 0; i < n; i++) {
        const char *name = repo_name(ctx, args[i]);
        if (!name)
            return mesa_usage("token", "'%s' is not a repository of org '%s'", args[i],
                              ctx->org);
        repos[i] = (mesa_mount_repo_t){ctx->org, name, ro[i]};
    }
    char *tok = NULL;
    mesa_error_t e = {0};
    if (mesa_mount_token(ctx->client, ctx->api_key, repos, (size_t)n, ttl, &tok, &e) < 0)
        return mesa_fail("token", &e);
    if (ctx->json)
        mesa_print_json(json_pack("{s:s, s:I}", "token", tok, "expires_at",
                                  (json_int_t)time(NULL) + ttl));
    else
        puts(tok);
    free(tok);
    return EXIT_OK;
}
