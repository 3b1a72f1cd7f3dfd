/* tools/mesa.h - shared state of the `mesa` command: the connection, output
 * mode, and helpers each subcommand file uses (mesa_repo.c, mesa_files.c,
 * mesa_vc.c, mesa_watch.c).
 */
#ifndef MESA_TOOL_H
#define MESA_TOOL_H

#include <jansson.h>
#include <stdarg.h>

#include "client.h"

#define ROOT_CHANGE "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"

typedef struct mesa_ctx {
    mesa_client_t *client;
    char org[101];
    char prefix[256]; /* mount prefix for PATH arguments, default /mesa */
    int json;         /* --json */
    char api_key[256]; /* the raw key when the credential is one, else "" */
} mesa_ctx_t;

/* Exit codes. */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* Connect (env or embedded default); prints the reason and returns
 * EXIT_FAIL/EXIT_USAGE on failure. */
int mesa_connect(mesa_ctx_t *ctx);

/* Print "mesa: <what>: <message>" for an API error; returns EXIT_FAIL. */
int mesa_fail(const char *what, const mesa_error_t *e);
/* Print a usage error "mesa <cmd>: <msg>" and return EXIT_USAGE. */
int mesa_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* PATH as the file commands take it (PREFIX/ORG/REPO/path or REPO:path)
 * into repo and path (repo-relative, "" = the root, no trailing '/'). 0,
 * or EXIT_USAGE after a one-line message. (tools/mesa_files.c) */
int mesa_parse_path(mesa_ctx_t *ctx, const char *cmd, const char *arg, char repo[256],
                    char path[4097]);

/* JSON request to "/<org>/<rest...>" (printf-style path after the org);
 * body (may be NULL) is stolen. */
int mesa_call(mesa_ctx_t *ctx, const char *method, json_t *body, json_t **out, mesa_error_t *e,
              const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Read fd to its end into a malloc'd buffer (*data; *len bytes). 0 or -errno. */
int mesa_read_fd(int fd, char **data, size_t *len);

/* Print v as one JSON line (stolen). */
void mesa_print_json(json_t *v);

/* Does argv[i] ask for help? */
int mesa_is_help(const char *a);

/* A state of a repo named by --bookmark/--change (else the default bookmark):
 * resolves to the change id and its commit. */
typedef struct mesa_rev {
    const char *bookmark; /* NULL if none given */
    const char *change;   /* NULL if none given */
} mesa_rev_t;
/* The bookmark to use: rev->bookmark, or the repo's default when neither
 * --bookmark nor --change is given (NULL with --change). */
int mesa_rev_resolve(mesa_ctx_t *ctx, const char *repo, const mesa_rev_t *rev,
                     char change_id[33], char commit[41], char bookmark[256], mesa_error_t *e);

/* Inside a mesarun session (tools/mesa_session.c): the mount's slot of
 * repo (and its state in *r), or -1 when repo is not mounted here. */
#include "state.h"
int mesa_session_slot(mesa_ctx_t *ctx, const char *repo, mesa_state_repo_t *r);
/* change new|edit|current on the mount's slot. */
int mesa_session_change(mesa_ctx_t *ctx, const char *sub, const char *repo, int slot,
                        const mesa_state_repo_t *r, const mesa_rev_t *rev, const char *message);

/* change checkpoint: describe the mount's change (message NULL: keep
 * its description), make an empty change on top, move the mount's
 * bookmark there and switch the mount. An exit status. */
int mesa_session_checkpoint(mesa_ctx_t *ctx, const char *repo, const char *message);

/* bookmark move of the mount's own bookmark name: quiesce the mount,
 * check (unless allow_backwards) and move, then switch the mount to the
 * bookmark's new change. An exit status. */
int mesa_session_bookmark_move(mesa_ctx_t *ctx, const char *repo, int slot, const char *name,
                               const char *to, int allow_backwards);
/* (tools/mesa_vc.c) Is `to` a descendant of (or equal to) `from`? 1; 0
 * with e->message saying that the move of bookmark name would go
 * backwards (e->err EXDEV); -1 with e filled for an API error. */
int mesa_bookmark_forward(mesa_ctx_t *ctx, const char *repo, const char *name, const char *from,
                          const char *to, mesa_error_t *e);
/* Print the result of a move of name from -> to (v: the PATCH answer,
 * stolen). */
void mesa_bookmark_moved(mesa_ctx_t *ctx, const char *name, const char *from, const char *to,
                         json_t *v);

/* Subcommands: argc/argv start at the subcommand name. */
int cmd_whoami(mesa_ctx_t *ctx, int argc, char **argv);
int cmd_repo(mesa_ctx_t *ctx, int argc, char **argv);
int cmd_ls(mesa_ctx_t *ctx, int argc, char **argv);
int cmd_cat(mesa_ctx_t *ctx, int argc, char **argv);
int cmd_put(mesa_ctx_t *ctx, int argc, char **argv);
int cmd_rm(mesa_ctx_t *ctx, int argc, char **argv);
int cmd_change(mesa_ctx_t *ctx, int argc, char **argv);
int cmd_bookmark(mesa_ctx_t *ctx, int argc, char **argv);
int cmd_log(mesa_ctx_t *ctx, int argc, char **argv);
int cmd_watch(mesa_ctx_t *ctx, int argc, char **argv);
int cmd_token(mesa_ctx_t *ctx, int argc, char **argv);
int cmd_push_pending(mesa_ctx_t *ctx, int argc, char **argv);
int cmd_meta(mesa_ctx_t *ctx, int argc, char **argv);
int cmd_layout(mesa_ctx_t *ctx, int argc, char **argv);

#endif
