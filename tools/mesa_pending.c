/* tools/mesa_pending.c - `mesa push-pending DIR`: push the writes that a
 * mesarun could not push (it exited 75 and named DIR, its runtime
 * directory), with this command's own credential. Idempotent: what the
 * state file records as acknowledged is not sent again.
 */
#include "config.h"
#include "mesa.h"
#include "pusher.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char pending_help[] =
    "usage: mesa push-pending [-v] DIR\n"
    "Push the pending writes of the mount whose runtime directory is DIR (the one\n"
    "mesarun named when it exited 75), as a mount's pusher would. Running it again\n"
    "pushes nothing twice. Exit 0 when nothing is left pending, 1 otherwise.\n";

static void print_line(void *ctx, const char *line)
{
    (void)ctx;
    fprintf(stderr, "mesa push-pending: %s\n", line);
}

static void print_pending(void *ctx, const char *path)
{
    (void)ctx;
    fprintf(stderr, "  pending: %s\n", path);
}

int cmd_push_pending(mesa_ctx_t *ctx, int argc, char **argv)
{
    const char *dir = NULL;
    int verbose = 0;
    for (int i = 1; i < argc; i++) {
        if (mesa_is_help(argv[i]))
            return fputs(pending_help, stdout), EXIT_OK;
        if (strcmp(argv[i], "-v") == 0)
            verbose = 1;
        else if (argv[i][0] == '-' || dir)
            return mesa_usage("push-pending", "unexpected argument '%s'", argv[i]);
        else
            dir = argv[i];
    }
    if (!dir)
        return mesa_usage("push-pending", "give the mount's runtime directory");
    int rc = mesa_connect(ctx);
    if (rc != EXIT_OK)
        return rc;
    mesa_pusher_t *p = NULL;
    mesa_pusher_opts_t o = {.run_dir = dir, .client = ctx->client,
                            .log = verbose ? print_line : NULL};
    int err = mesa_pusher_new(&o, &p);
    if (err < 0) {
        fprintf(stderr, "mesa push-pending: %s is not a mount's runtime directory: %s\n", dir,
                strerror(-err));
        return EXIT_FAIL;
    }
    mesa_error_t e = {0};
    int batches;
    size_t before = 0;
    err = mesa_pusher_resume(p);
    if (err == 0 && (err = mesa_pusher_poll(p)) == 0)
        before = mesa_pusher_pending(p, NULL, NULL);
    if (err == 0)
        err = mesa_pusher_drain(p, 16, &e); /* nobody writes any more */
    batches = err == 0 && before > 0;
    size_t left = mesa_pusher_pending(p, print_pending, NULL);
    mesa_pusher_free(p);
    if (err < 0 && err != -EAGAIN) /* EAGAIN: pushed what it could, the rest is listed */
        mesa_fail("push-pending", &e);
    if (err < 0 || left) {
        fprintf(stderr, "mesa push-pending: %zu path(s) still pending in %s\n", left, dir);
        return EXIT_FAIL;
    }
    if (ctx->json)
        mesa_print_json(json_pack("{s:i, s:i}", "batches", batches, "pending", 0));
    else
        printf("%s\n", batches ? "pushed" : "nothing to push");
    return EXIT_OK;
}
