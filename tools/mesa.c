/* tools/mesa.c - the `mesa` command-line client: global options, connection
 * (MESA_URL + MESA_API_KEY/MESA_ACCESS_TOKEN, or the embedded default), and
 * dispatch to the subcommands. Exit 0 ok, 1 failed, 2 usage.
 */
#include "config.h"
#include "mesa.h"
#include "embedded.h"
#include "env.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: mesa [--json] COMMAND [ARGS]\n"
    "\n"
    "  whoami                                 who the credential is\n"
    "  repo list | create NAME | delete NAME  repositories\n"
    "  repo import NAME DIR [--all]           import a directory as a new change\n"
    "  ls [-l] PATH | cat PATH | put PATH | rm PATH\n"
    "                                         files over the API (PATH: /mesa/ORG/REPO/p or REPO:p)\n"
    "  change new|edit|list|current REPO      changes\n"
    "  change checkpoint REPO [-m MSG]        (in a session) save the change, go on in a new one\n"
    "  bookmark list|create|move|delete|merge REPO ...\n"
    "  log REPO                               history as a graph\n"
    "  watch PATH...                          print invalidations as they happen\n"
    "  token [--ttl S] [--ro REPO]... REPO... sign a repo-scoped access token\n"
    "  push-pending DIR                       push what a mesarun left pending (exit 75)\n"
    "  meta get|set|clear PATH ...            file metadata (user.* xattrs in a mount)\n"
    "  layout check FILE                      validate a layout (mesarun --layout), print its mounts\n"
    "\n"
    "Environment: MESA_URL (http://, https://, unix:/path; unset = the embedded default),\n"
    "MESA_API_KEY or MESA_ACCESS_TOKEN, MESA_ORG, MESA_PREFIX (default /mesa).\n"
    "Run 'mesa COMMAND --help' for a command's options.\n";

int mesa_is_help(const char *a)
{
    return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

int mesa_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "mesa %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_USAGE;
}

int mesa_fail(const char *what, const mesa_error_t *e)
{
    if (e->status)
        fprintf(stderr, "mesa: %s: %s (HTTP %ld%s%s)\n", what, e->message, e->status,
                e->code[0] ? ", " : "", e->code);
    else
        fprintf(stderr, "mesa: %s: %s\n", what, e->message[0] ? e->message : strerror(e->err));
    return EXIT_FAIL;
}

int mesa_read_fd(int fd, char **data, size_t *len)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int err = -errno;
            free(buf);
            return err;
        }
        if (r == 0) {
            *data = buf;
            *len = n;
            return 0;
        }
        n += (size_t)r;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb)
                free(buf);
            buf = nb;
            cap *= 2;
        }
    }
    return -ENOMEM;
}

void mesa_print_json(json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s)
        puts(s);
    free(s);
    json_decref(v);
}

int mesa_call(mesa_ctx_t *ctx, const char *method, json_t *body, json_t **out, mesa_error_t *e,
              const char *fmt, ...)
{
    char rest[8192], path[8400];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(rest, sizeof rest, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof rest) {
        json_decref(body);
        snprintf(e->message, sizeof e->message, "request path too long");
        e->err = ENAMETOOLONG;
        e->status = 0;
        return -ENAMETOOLONG;
    }
    snprintf(path, sizeof path, "/%s%s", ctx->org, rest);
    json_t *ignored = NULL;
    int rc = mesa_client_json(ctx->client, method, path, body, out ? out : &ignored, e);
    json_decref(ignored);
    json_decref(body);
    return rc;
}

int mesa_connect(mesa_ctx_t *ctx)
{
    mesa_config_t cfg;
    mesa_embedded_t emb;
    char err[512];
    const char *url, *bearer, *org;
    if (mesa_config_load(&cfg, err, sizeof err) < 0) {
        fprintf(stderr, "mesa: %s\n", err);
        return EXIT_USAGE;
    }
    if (cfg.url[0]) {
        url = cfg.url;
        bearer = cfg.api_key[0] ? cfg.api_key : cfg.access_token;
        org = cfg.org;
    } else {
        if (mesa_embedded_ensure(&emb, err, sizeof err) < 0) {
            fprintf(stderr, "mesa: %s\n", err);
            return EXIT_FAIL;
        }
        url = emb.url;
        bearer = emb.api_key;
        org = cfg.org[0] ? cfg.org : emb.org;
    }
    if (bearer != cfg.access_token)
        snprintf(ctx->api_key, sizeof ctx->api_key, "%s", bearer);
    mesa_client_opts_t o = {.url = url, .bearer = bearer, .retries = -1};
    if (mesa_client_new(&o, &ctx->client) < 0) {
        fprintf(stderr, "mesa: cannot use MESA_URL '%s'\n", url);
        return EXIT_USAGE;
    }
    if (org[0]) {
        snprintf(ctx->org, sizeof ctx->org, "%s", org);
        return EXIT_OK;
    }
    json_t *who = NULL;
    mesa_error_t e = {0};
    if (mesa_client_json(ctx->client, "GET", "/whoami", NULL, &who, &e) < 0)
        return mesa_fail("whoami", &e);
    const char *slug = json_string_value(json_object_get(json_object_get(who, "org"), "slug"));
    snprintf(ctx->org, sizeof ctx->org, "%s", slug ? slug : "");
    json_decref(who);
    return EXIT_OK;
}

int cmd_whoami(mesa_ctx_t *ctx, int argc, char **argv)
{
    if (argc > 1) {
        if (mesa_is_help(argv[1])) {
            puts("usage: mesa whoami [--json]\nPrint the organization, key and scopes of the "
                 "credential.");
            return EXIT_OK;
        }
        return mesa_usage("whoami", "unexpected argument '%s'", argv[1]);
    }
    int rc = mesa_connect(ctx);
    if (rc != EXIT_OK)
        return rc;
    json_t *who = NULL;
    mesa_error_t e = {0};
    if (mesa_client_json(ctx->client, "GET", "/whoami", NULL, &who, &e) < 0)
        return mesa_fail("whoami", &e);
    if (ctx->json) {
        mesa_print_json(who);
        return EXIT_OK;
    }
    char *scopes = json_dumps(json_object_get(who, "scopes"), JSON_COMPACT);
    printf("org:    %s\nkey:    %s (%s)\nscopes: %s\n",
           json_string_value(json_object_get(json_object_get(who, "org"), "slug")),
           json_string_value(json_object_get(who, "key_id")),
           json_string_value(json_object_get(who, "key_name")), scopes ? scopes : "[]");
    free(scopes);
    json_decref(who);
    return EXIT_OK;
}

static const struct {
    const char *name;
    int (*fn)(mesa_ctx_t *, int, char **);
} commands[] = {
    {"whoami", cmd_whoami}, {"repo", cmd_repo},         {"ls", cmd_ls},   {"cat", cmd_cat},
    {"put", cmd_put},       {"rm", cmd_rm},             {"change", cmd_change},
    {"bookmark", cmd_bookmark}, {"log", cmd_log},       {"watch", cmd_watch},
    {"token", cmd_token},       {"push-pending", cmd_push_pending},
    {"layout", cmd_layout},
    {"meta", cmd_meta},
};

int main(int argc, char **argv)
{
    mesa_ctx_t ctx = {0};
    const char *prefix = getenv("MESA_PREFIX");
    snprintf(ctx.prefix, sizeof ctx.prefix, "%s", prefix && prefix[0] == '/' ? prefix : "/mesa");
    /* --json is accepted anywhere before a "--" */
    int n = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            ctx.json = 1;
            continue;
        }
        argv[n++] = argv[i];
        if (strcmp(argv[i], "--") == 0)
            while (++i < argc)
                argv[n++] = argv[i];
    }
    argc = n;
    argv[argc] = NULL;
    if (argc < 2) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    if (mesa_is_help(argv[1])) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("mesa %s\n", PACKAGE_VERSION);
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            int rc = commands[i].fn(&ctx, argc - 1, argv + 1);
            mesa_client_free(ctx.client);
            return rc;
        }
    }
    fprintf(stderr, "mesa: unknown command '%s' (try 'mesa --help')\n", argv[1]);
    return EXIT_USAGE;
}
