/* server/main.c - mesad's entry point: dispatches to a subcommand (cli.c). */
#include "config.h"
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: mesad COMMAND [OPTIONS]\n"
    "\n"
    "The mesafs version-control server: Mesa's REST API over git storage.\n"
    "\n"
    "commands:\n"
    "  init --data DIR [--org ORG] [--json]       create a data directory, an org and an admin key\n"
    "  key create|revoke|list --data DIR --org ORG  manage API keys\n"
    "  serve --data DIR --listen ADDR...          serve the API (ADDR: HOST:PORT or unix:PATH)\n"
    "\n"
    "Run 'mesad COMMAND --help' for a command's options.\n";

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("mesad %s\n", PACKAGE_VERSION);
        return 0;
    }
    if (strcmp(cmd, "init") == 0)
        return cli_init(argc - 1, argv + 1);
    if (strcmp(cmd, "key") == 0)
        return cli_key(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0)
        return cli_serve(argc - 1, argv + 1);
    fprintf(stderr, "mesad: unknown command '%s' (try 'mesad --help')\n", cmd);
    return 2;
}
