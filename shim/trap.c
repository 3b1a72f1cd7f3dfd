/* shim/trap.c - the exec path's hook for `mesarun --trap-raw` (core/trap.h):
 * right before the real execve of a statically linked program (which will
 * not load the shim), install mesarun's seccomp filter and hand its
 * listener to mesarun, so the program's raw path calls under the prefix
 * are answered by mesarun's supervisor. Dynamically linked programs are
 * never trapped: the shim serves them. posix_spawn of one starts it through
 * $RUN/trap-exec (tools/mesafs_trapexec.c), whose execve comes back here.
 *
 * Invariant: the hook never fails the exec. If anything goes wrong, one
 * line on stderr ("mesafs: ...", once per process) and the program runs
 * untrapped (it sees no /mesa, as without --trap-raw).
 */
#include "config.h"
#include "shim.h"
#include "trap.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int warned;

static void warn_once(const char *path, const char *what, int err)
{
    if (warned)
        return;
    warned = 1;
    char line[PATH_MAX + 200];
    int n = snprintf(line, sizeof line,
                     "mesafs: cannot trap static program %s (%s: %s): it runs "
                     "without the mount\n",
                     path, what, strerror(err));
    if (n > 0)
        (void)!write(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

/* A file next to the socket: "<dir of sock>/<name>". */
static int next_to_sock(const char *sock, const char *name, char *out, size_t len)
{
    const char *sl = strrchr(sock, '/');
    if (!sl)
        return -EINVAL;
    int n = snprintf(out, len, "%.*s/%s", (int)(sl - sock), sock, name);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* The supervisor's socket when this mount traps static programs, else NULL. */
static const char *trap_sock(void)
{
    const char *sock = shim_mount_var("MESA_TRAP");
    return sock && sock[0] == '/' ? sock : NULL;
}

int shim_trap_on(void)
{
    return trap_sock() != NULL;
}

int shim_trap_spawn(const char *path, char *const argv[], char ***out, char *tramp, size_t len)
{
    const char *sock = trap_sock();
    size_t n = 0;
    if (!sock || !mesa_trap_is_static(path) ||
        next_to_sock(sock, MESA_TRAP_EXEC, tramp, len) < 0 || access(tramp, X_OK) < 0)
        return 0;
    while (argv[n])
        n++;
    char **av = calloc(n + 3, sizeof *av);
    if (!av)
        return 0;
    av[0] = tramp;
    av[1] = (char *)path;
    memcpy(av + 2, argv, n * sizeof *argv);
    *out = av;
    return 1;
}

void shim_trap_exec(const char *path)
{
    const char *sock = trap_sock();
    if (!sock || !mesa_trap_is_static(path))
        return;
    char bpf[PATH_MAX];
    struct sock_fprog prog = {0};
    int e = errno, installed = 0;
    int rc = next_to_sock(sock, MESA_TRAP_BPF, bpf, sizeof bpf);
    if (rc == 0)
        rc = mesa_trap_load(bpf, &prog);
    if (rc < 0) {
        warn_once(path, "filter", -rc);
    } else if ((rc = mesa_trap_handoff(sock, &prog, &installed)) == -EBUSY) {
        /* an ancestor is trapped already: its supervisor serves us */
    } else if (rc < 0) {
        warn_once(path, installed ? "hand-off" : "set-up", -rc);
    }
    free(prog.filter);
    errno = e;
}
