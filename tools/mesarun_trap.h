/* tools/mesarun_trap.h - `mesarun --trap-raw`: a seccomp user-notification
 * supervisor that answers the path calls of programs the shim cannot
 * serve (statically linked ones; raw system calls with --trap-raw=all)
 * under the prefix (tools/mesarun_trap.c; the hand-off is core/trap.c).
 *
 * Order: mr_trap_prepare before COMMAND's environment is built (it makes
 * $RUN/trap.bpf and listens on $RUN/trap.sock), mr_trap_start before
 * COMMAND is spawned, mr_trap_apply in COMMAND's forked child when
 * mr_trap_wants says so, mr_trap_free after the last process is gone.
 */
#ifndef MESARUN_TRAP_H
#define MESARUN_TRAP_H

#include <stddef.h>

typedef struct mr_trap mr_trap_t;

/* Does this kernel offer seccomp user notification (with ADDFD)? */
int mr_trap_available(void);

/* Build the filter into run/trap.bpf (read-only) and listen on
 * run/trap.sock (its path in sock, PATH_MAX bytes). all: --trap-raw=all.
 * 0 and *out, or -errno with a one-line reason in err. */
int mr_trap_prepare(const char *run, int all, int verbose, char *sock, mr_trap_t **out, char *err,
                    size_t errlen);

typedef struct mr_trap_conf {
    char **envp;             /* COMMAND's environment (the mount's variables) */
    const char *const *mine; /* directories whose files back mount files */
    size_t nmine;
    int ruleset; /* --sandbox: the Landlock ruleset COMMAND runs under, or -1 */
} mr_trap_conf_t;

/* Open the supervisor's own view of the mount and start its thread.
 * c's strings must live until mr_trap_free. 0 or -errno. */
int mr_trap_start(mr_trap_t *t, const mr_trap_conf_t *c);

/* Must COMMAND (argv0, started in directory kcwd) be trapped in the
 * child: --trap-raw=all, or a statically linked program? Before fork. */
int mr_trap_wants(const mr_trap_t *t, const char *argv0, const char *kcwd);

/* In the forked child: install the filter and hand the listener over.
 * System calls only; a failure leaves COMMAND untrapped (one line on
 * stderr). */
void mr_trap_apply(const mr_trap_t *t);

/* Stop the thread and free everything (NULL is fine). */
void mr_trap_free(mr_trap_t *t);

#endif
