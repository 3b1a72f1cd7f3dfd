/* tools/mesarun_sandbox.h - `mesarun --sandbox`: a seccomp deny list and a
 * Landlock ruleset for COMMAND and its descendants (tools/mesarun_sandbox.c).
 *
 * Everything that allocates is done in mesarun before it forks COMMAND
 * (mr_sandbox_prepare); the child only makes system calls
 * (mr_sandbox_apply), so it is safe after fork in a threaded process.
 */
#ifndef MESARUN_SANDBOX_H
#define MESARUN_SANDBOX_H

#include <stddef.h>

typedef struct mr_sandbox_conf {
    int allow_net;          /* sockets of every family, not only AF_UNIX */
    int verbose;            /* log each refused call (user notification) */
    const char *const *rw;  /* directories and files that stay writable */
    size_t nrw;
    /* canonical paths nothing in the sandbox may read (the embedded
     * server's data and key), unless beneath one of rw */
    const char *const *hidden;
    size_t nhidden;
} mr_sandbox_conf_t;

typedef struct mr_sandbox mr_sandbox_t;

/* Build the filter and the ruleset. 0 and *out (free with
 * mr_sandbox_free), or -errno with a one-line reason in err. Where the
 * kernel has no Landlock, the sandbox goes on without it and
 * mr_sandbox_landlock_abi says 0. */
int mr_sandbox_prepare(const mr_sandbox_conf_t *c, mr_sandbox_t **out, char *err, size_t errlen);
int mr_sandbox_landlock_abi(const mr_sandbox_t *s);
/* The Landlock ruleset COMMAND runs under, or -1 (--trap-raw opens a
 * mount symlink's outside target under it). */
int mr_sandbox_ruleset(const mr_sandbox_t *s);

/* In the forked child, just before exec: no_new_privs, Landlock, seccomp.
 * Only system calls (async-signal-safe). 0 or -errno. */
int mr_sandbox_apply(const mr_sandbox_t *s);

/* In mesarun after the fork: with verbose, receive the child's listener
 * and answer refused calls on a thread, logging each to stderr. 0 or
 * -errno. */
int mr_sandbox_start(mr_sandbox_t *s);

/* Is path p dir itself or beneath it? (Both canonical.) */
int mr_beneath(const char *p, const char *dir);

/* Stop the thread (if any) and free everything. */
void mr_sandbox_free(mr_sandbox_t *s);

#endif
