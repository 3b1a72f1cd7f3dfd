/* server/cli.h - mesad's subcommands (init, key create|revoke|list, serve).
 * Each takes argc/argv after the subcommand name and returns the exit
 * status: 0 ok, 1 failure, 2 usage error.
 */
#ifndef MESA_CLI_H
#define MESA_CLI_H

int cli_init(int argc, char **argv);
int cli_key(int argc, char **argv);
int cli_serve(int argc, char **argv);

#endif
