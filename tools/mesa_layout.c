/* tools/mesa_layout.c - `mesa layout check FILE`: validate a layout
 * document without mounting it (the rules of core/layout.c, shared with
 * `mesarun --layout`) and print its mount points, one per line:
 * PATH TAB REPO TAB ro|rw TAB bookmark:B|change:C|default [TAB alias:A].
 */
#include "config.h"
#include "layout.h"
#include "mesa.h"

#include <stdio.h>
#include <string.h>

static const char layout_usage[] =
    "usage: mesa layout check FILE\n"
    "Validate a layout (the SDK's JSON path map, as mesarun --layout takes it) and\n"
    "print its mount points: PATH, REPO, ro|rw, bookmark:B | change:C | default.\n";

static void print_mount(const mesa_layout_mount_t *m, int json)
{
    if (json) {
        json_t *o = json_pack("{s:s,s:s,s:s}", "path", m->path, "name", m->name, "mode",
                              m->read_only ? "ro" : "rw");
        if (m->bookmark[0])
            json_object_set_new(o, "bookmark", json_string(m->bookmark));
        if (m->change[0])
            json_object_set_new(o, "changeId", json_string(m->change));
        if (m->alias[0])
            json_object_set_new(o, "alias", json_string(m->alias));
        mesa_print_json(o);
        return;
    }
    printf("%s\t%s\t%s\t", m->path, m->name, m->read_only ? "ro" : "rw");
    if (m->bookmark[0])
        printf("bookmark:%s", m->bookmark);
    else if (m->change[0])
        printf("change:%s", m->change);
    else
        printf("default");
    if (m->alias[0])
        printf("\talias:%s", m->alias);
    putchar('\n');
}

int cmd_layout(mesa_ctx_t *ctx, int argc, char **argv)
{
    mesa_layout_t l;
    char err[1024];
    if (argc > 1 && mesa_is_help(argv[1])) {
        fputs(layout_usage, stdout);
        return EXIT_OK;
    }
    if (argc < 2 || strcmp(argv[1], "check") != 0)
        return mesa_usage("layout", "the only subcommand is 'check FILE'");
    if (argc > 2 && mesa_is_help(argv[2])) {
        fputs(layout_usage, stdout);
        return EXIT_OK;
    }
    if (argc != 3)
        return mesa_usage("layout check", "takes one FILE");
    if (mesa_layout_load(argv[2], &l, err, sizeof err) < 0) {
        fprintf(stderr, "mesa layout check: %s: %s\n", argv[2], err);
        return EXIT_USAGE;
    }
    for (size_t i = 0; i < l.n; i++)
        print_mount(&l.m[i], ctx->json);
    mesa_layout_free(&l);
    return EXIT_OK;
}
