/* tools/mesa_meta.c - `mesa meta get|set|clear PATH ...`: per-path file
 * metadata over the API (GET/PATCH /v1/{org}/{repo}/metadata, an extension
 * described in docs/PROTOCOL.md "File metadata"). The same values a mount
 * shows as user.* extended attributes.
 *
 * PATH is /<prefix>/<org>/<repo>/<path> or <repo>:<path>, as for the other
 * file commands. Exit 0 ok, 1 when the server refuses (its message is
 * printed), 2 for a usage error.
 */
#include "config.h"
#include "mesa.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char help[] =
    "usage: mesa meta get PATH [KEY]        print a path's metadata (KEY=VALUE lines), or one "
    "value\n"
    "       mesa meta set PATH KEY=VALUE... set keys (merged with the others)\n"
    "       mesa meta clear PATH [KEY...]   remove the given keys, or every key\n"
    "PATH is /mesa/ORG/REPO/path or REPO:path. 'org' and 'repo' are read-only keys.\n"
    "--json prints the server's answer {\"path\",\"metadata\":{...},\"read_only_keys\"}.\n";

typedef struct mtarget {
    char repo[256];
    char path[4097];
} mtarget_t;

static int parse_path(mesa_ctx_t *ctx, const char *cmd, const char *arg, mtarget_t *t)
{
    return mesa_parse_path(ctx, cmd, arg, t->repo, t->path);
}

/* One request on PATH's metadata; *out the answer (new reference). */
static int meta_call(mesa_ctx_t *ctx, const mtarget_t *t, const char *method, json_t *body,
                     json_t **out)
{
    char repo[800], path[13000];
    mesa_error_t e = {0};
    if (mesa_client_escape(t->repo, repo, sizeof repo) < 0 ||
        mesa_client_escape(t->path, path, sizeof path) < 0) {
        json_decref(body);
        fprintf(stderr, "mesa: meta: path too long\n");
        return EXIT_USAGE;
    }
    if (mesa_call(ctx, method, body, out, &e, "/%s/metadata?path=%s", repo, path) < 0)
        return mesa_fail(t->path[0] ? t->path : t->repo, &e);
    return EXIT_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int meta_get(mesa_ctx_t *ctx, const mtarget_t *t, const char *key)
{
    json_t *v = NULL;
    int rc = meta_call(ctx, t, "GET", NULL, &v);
    if (rc != EXIT_OK)
        return rc;
    json_t *m = json_object_get(v, "metadata");
    if (key && !json_object_get(m, key)) {
        fprintf(stderr, "mesa: meta get: '%s' has no key '%s'\n", t->path, key);
        json_decref(v);
        return EXIT_FAIL;
    }
    if (ctx->json) {
        mesa_print_json(v);
        return EXIT_OK;
    }
    if (key) {
        puts(json_string_value(json_object_get(m, key)));
    } else {
        const char **keys = calloc(json_object_size(m) + 1, sizeof *keys);
        const char *k;
        json_t *x;
        size_t n = 0;
        json_object_foreach(m, k, x)
        {
            if (keys)
                keys[n++] = k;
        }
        qsort(keys, n, sizeof *keys, cmp_str);
        for (size_t i = 0; i < n; i++)
            printf("%s=%s\n", keys[i], json_string_value(json_object_get(m, keys[i])));
        free(keys);
    }
    json_decref(v);
    return EXIT_OK;
}

static int meta_set(mesa_ctx_t *ctx, const mtarget_t *t, int argc, char **argv)
{
    json_t *set = json_object();
    for (int i = 0; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        if (!eq || eq == argv[i]) {
            json_decref(set);
            return mesa_usage("meta set", "'%s' is not KEY=VALUE", argv[i]);
        }
        char *k = strndup(argv[i], (size_t)(eq - argv[i]));
        json_t *val = json_string(eq + 1);
        if (!k || !val) {
            free(k);
            json_decref(val);
            json_decref(set);
            return mesa_usage("meta set", "'%s' is not valid UTF-8", argv[i]);
        }
        json_object_set_new(set, k, val);
        free(k);
    }
    json_t *v = NULL;
    int rc = meta_call(ctx, t, "PATCH", json_pack("{s:o}", "set", set), &v);
    json_decref(v);
    return rc;
}

static int meta_clear(mesa_ctx_t *ctx, const mtarget_t *t, int argc, char **argv)
{
    json_t *body;
    if (argc == 0) {
        body = json_pack("{s:b}", "clear", 1);
    } else {
        json_t *rm = json_array();
        for (int i = 0; i < argc; i++)
            json_array_append_new(rm, json_string(argv[i]));
        body = json_pack("{s:o}", "remove", rm);
    }
    json_t *v = NULL;
    int rc = meta_call(ctx, t, "PATCH", body, &v);
    json_decref(v);
    return rc;
}

int cmd_meta(mesa_ctx_t *ctx, int argc, char **argv)
{
    if (argc < 2 || mesa_is_help(argv[1])) {
        fputs(help, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    const char *sub = argv[1];
    int get = strcmp(sub, "get") == 0, set = strcmp(sub, "set") == 0;
    int clear = strcmp(sub, "clear") == 0;
    if (!get && !set && !clear)
        return mesa_usage("meta", "unknown subcommand '%s' (get, set, clear)", sub);
    for (int i = 2; i < argc; i++)
        if (mesa_is_help(argv[i])) {
            fputs(help, stdout);
            return EXIT_OK;
        }
    if (argc < 3)
        return mesa_usage("meta", "%s needs a PATH", sub);
    if (get && argc > 4)
        return mesa_usage("meta get", "takes PATH and at most one KEY");
    if (set && argc < 4)
        return mesa_usage("meta set", "needs at least one KEY=VALUE");
    int rc = mesa_connect(ctx);
    if (rc != EXIT_OK)
        return rc;
    mtarget_t t;
    if ((rc = parse_path(ctx, get ? "meta get" : set ? "meta set" : "meta clear", argv[2], &t)))
        return rc;
    if (get)
        return meta_get(ctx, &t, argc == 4 ? argv[3] : NULL);
    if (set)
        return meta_set(ctx, &t, argc - 3, argv + 3);
    return meta_clear(ctx, &t, argc - 3, argv + 3);
}
