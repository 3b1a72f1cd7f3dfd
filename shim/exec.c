/* shim/exec.c - starting programs (DESIGN §4, §6): exec* and posix_spawn*
 * of files stored in the mount (a binary runs from an exec-able copy; a
 * "#!" script runs as its interpreter with the virtual script path, so $0
 * is /mesa/...), the mount's variables put back into any environment a
 * program hands over, the descriptor table passed on (MESA_FDS), and vfork
 * turned into fork (a vfork child shares our memory and locks).
 * glibc's exec* and posix_spawn* call execve internally without the PLT,
 * so every entry point is implemented here.
 */
#include "config.h"
#include "shim.h"

#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

typedef struct plan {
    char real[PATH_MAX];
    char **argv; /* malloc'd array (strings borrowed, except vpath) */
    char **envp; /* shim_exec_env */
    char *vpath;
} plan_t;

static void plan_free(plan_t *pl)
{
    free(pl->argv);
    free(pl->vpath);
    shim_free_env(pl->envp);
}

static size_t argc_of(char *const argv[])
{
    size_t n = 0;
    while (argv && argv[n])
        n++;
    return n;
}

/* Lock held. A script's argv: interp [arg] vpath argv[1..]. */
static int script_argv(plan_t *pl, const char *arg, char *const argv[])
{
    size_t n = argc_of(argv), k = 0;
    pl->argv = calloc(n + 4, sizeof *pl->argv);
    if (!pl->argv)
        return -ENOMEM;
    pl->argv[k++] = pl->real;
    if (*arg)
        pl->argv[k++] = (char *)arg;
    pl->argv[k++] = pl->vpath;
    for (size_t i = 1; i < n; i++)
        pl->argv[k++] = argv[i];
    return 0;
}

/* Lock held: what to run for path. */
static int plan_mesa(plan_t *pl, const char *abs, char *const argv[], char *arg, size_t arglen)
{
    int script = 0;
    int rc = mesa_vfs_exec_plan(shim_vfs, abs, pl->real, sizeof pl->real, arg, arglen, &script);
    if (rc < 0)
        return rc;
    if (!script) {
        size_t n = argc_of(argv);
        pl->argv = calloc(n + 1, sizeof *pl->argv);
        if (!pl->argv)
            return -ENOMEM;
        memcpy(pl->argv, argv, n * sizeof *argv);
        return 0;
    }
    char ws[MESA_PATH_MAX]; /* $0 is the --layout workspace path, if any */
    if (!(pl->vpath = strdup(shim_unmap(abs, ws, sizeof ws))))
        return -ENOMEM;
    if (mesa_path_under(shim_prefix, pl->real)) { /* the interpreter is in the mount too */
        char interp[MESA_PATH_MAX], a2[8];
        snprintf(interp, sizeof interp, "%s", pl->real);
        if ((rc = mesa_vfs_exec_plan(shim_vfs, interp, pl->real, sizeof pl->real, a2, sizeof a2,
                                     &script)) < 0)
            return rc;
        if (script)
            return -ENOEXEC;
    }
    return script_argv(pl, arg, argv);
}

/* Prepare an exec of path: 0 with *pl set, or -errno. */
static int plan(const char *path, char *const argv[], char *const envp[], plan_t *pl, char *arg,
                size_t arglen)
{
    char abs[MESA_PATH_MAX];
    shim_guard_t g;
    int rc = 0;
    memset(pl, 0, sizeof *pl);
    if (shim_lock(&g) < 0)
        return -EIO;
    if (shim_classify(AT_FDCWD, path, abs) == 1) {
        rc = plan_mesa(pl, abs, argv, arg, arglen);
    } else {
        snprintf(pl->real, sizeof pl->real, "%s", path);
        size_t n = argc_of(argv);
        pl->argv = calloc(n + 1, sizeof *pl->argv);
        if (pl->argv)
            memcpy(pl->argv, argv, n * sizeof *argv);
        else
            rc = -ENOMEM;
    }
    if (rc == 0 && !(pl->envp = shim_exec_env(envp)))
        rc = -ENOMEM;
    shim_unlock(&g);
    if (rc < 0)
        plan_free(pl);
    return rc;
}

SHIM_API int execve(const char *path, char *const argv[], char *const envp[])
{
    if (!shim_on())
        return REAL(execve)(path, argv, envp);
    plan_t pl;
    char arg[256];
    int rc = plan(path, argv, envp, &pl, arg, sizeof arg);
    if (rc < 0) {
        errno = -rc;
        return -1;
    }
    shim_trap_exec(pl.real); /* --trap-raw: a static program gets mesarun's filter */
    REAL(execve)(pl.real, pl.argv, pl.envp);
    int e = errno;
    plan_free(&pl);
    errno = e;
    return -1;
}

SHIM_API int execv(const char *path, char *const argv[])
{
    return execve(path, argv, environ);
}

/* The next candidate of a PATH search: "<entry>/file" (just file for an
 * empty entry) into full; *fits says whether it fit. Advances *p (NULL
 * after the last entry); 0 when there is none left. */
static int path_next(const char **p, const char *file, char *full, size_t len, int *fits)
{
    if (!*p)
        return 0;
    const char *s = *p, *end = strchrnul(s, ':');
    int n = end == s ? snprintf(full, len, "%s", file)
                     : snprintf(full, len, "%.*s/%s", (int)(end - s), s, file);
    *fits = n > 0 && (size_t)n < len;
    *p = *end ? end + 1 : NULL;
    return 1;
}

/* execve, and for a file the kernel cannot run (no "#!"): /bin/sh file. */
static int exec_or_sh(const char *path, char *const argv[], char *const envp[])
{
    execve(path, argv, envp);
    if (errno != ENOEXEC)
        return -1;
    size_t n = argc_of(argv);
    char **a = calloc(n + 2, sizeof *a);
    if (!a)
        return -1;
    a[0] = (char *)"/bin/sh";
    a[1] = (char *)path;
    for (size_t i = 1; i < n; i++)
        a[i + 1] = argv[i];
    execve("/bin/sh", a, envp);
    free(a);
    return -1;
}

SHIM_API int execvpe(const char *file, char *const argv[], char *const envp[])
{
    if (!shim_on())
        return REAL(execvpe)(file, argv, envp);
    if (!*file) {
        errno = ENOENT;
        return -1;
    }
    if (strchr(file, '/'))
        return exec_or_sh(file, argv, envp);
    const char *path = getenv("PATH");
    int eacces = 0;
    if (!path)
        path = "/bin:/usr/bin";
    char full[PATH_MAX];
    int fits;
    for (const char *p = path; path_next(&p, file, full, sizeof full, &fits);) {
        if (!fits)
            continue;
        exec_or_sh(full, argv, envp);
        if (errno == EACCES)
            eacces = 1;
        else if (errno != ENOENT && errno != ENOTDIR && errno != ESTALE && errno != ENODEV &&
                 errno != ETIMEDOUT)
            return -1;
    }
    errno = eacces ? EACCES : ENOENT;
    return -1;
}

SHIM_API int execvp(const char *file, char *const argv[])
{
    return execvpe(file, argv, environ);
}

/* The arguments of an execl-style call as an array on the heap. */
static char **list_args(const char *arg0, va_list ap, char ***envp)
{
    va_list cp;
    size_t n = 1;
    va_copy(cp, ap);
    while (va_arg(cp, char *))
        n++;
    va_end(cp);
    char **a = calloc(n + 1, sizeof *a);
    if (!a)
        return NULL;
    a[0] = (char *)arg0;
    for (size_t i = 1; i < n; i++)
        a[i] = va_arg(ap, char *);
    (void)va_arg(ap, char *); /* the NULL */
    if (envp)
        *envp = va_arg(ap, char **);
    return a;
}

#define EXECL(name, call, with_env)                                                                \
    SHIM_API int name(const char *path, const char *arg0, ...)                                     \
    {                                                                                              \
        va_list ap;                                                                                \
        char **envp = environ;                                                                     \
        va_start(ap, arg0);                                                                        \
        char **a = list_args(arg0, ap, with_env ? &envp : NULL);                                   \
        va_end(ap);                                                                                \
        if (!a)                                                                                    \
            return -1;                                                                             \
        call(path, a, envp);                                                                       \
        int e = errno;                                                                             \
        free(a);                                                                                   \
        errno = e;                                                                                 \
        return -1;                                                                                 \
    }

EXECL(execl, execve, 0)
EXECL(execle, execve, 1)
EXECL(execlp, execvpe, 0)

/* ------------------------------------------------------------ spawn */

SHIM_API int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                         const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    if (!shim_on())
        return REAL(posix_spawn)(pid, path, fa, attr, argv, envp);
    int rc = shim_spawn_fa_error(fa);
    if (rc)
        return rc;
    plan_t pl;
    char arg[256];
    rc = plan(path, argv, envp, &pl, arg, sizeof arg);
    if (rc < 0)
        return -rc;
    /* --trap-raw: a static program starts through the trampoline, whose
     * execve (ours) installs the filter */
    char tramp[PATH_MAX], **tav = NULL;
    int via = shim_trap_spawn(pl.real, pl.argv, &tav, tramp, sizeof tramp);
    rc = REAL(posix_spawn)(pid, via ? tramp : pl.real, fa, attr, via ? tav : pl.argv, pl.envp);
    free(tav);
    plan_free(&pl);
    return rc;
}

/* Is any PATH entry in the mount (then the search is ours)? */
static int path_in_mount(const char *path)
{
    char dir[PATH_MAX];
    int fits;
    for (const char *p = path; path_next(&p, ".", dir, sizeof dir, &fits);)
        if (fits && shim_maybe(AT_FDCWD, dir))
            return 1;
    return 0;
}

SHIM_API int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                          const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    if (!shim_on())
        return REAL(posix_spawnp)(pid, file, fa, attr, argv, envp);
    int err = shim_spawn_fa_error(fa);
    if (err)
        return err;
    const char *path = getenv("PATH");
    if (!path)
        path = "/bin:/usr/bin";
    if (strchr(file, '/'))
        return posix_spawn(pid, file, fa, attr, argv, envp);
    if (!path_in_mount(path) && !shim_trap_on()) { /* trapping: we must see the program */
        char **env = NULL;
        shim_guard_t g;
        if (shim_lock(&g) == 0) {
            env = shim_exec_env(envp);
            shim_unlock(&g);
        }
        int rc = REAL(posix_spawnp)(pid, file, fa, attr, argv, env ? env : envp);
        shim_free_env(env);
        return rc;
    }
    int eacces = 0, fits;
    char full[PATH_MAX];
    for (const char *p = path; path_next(&p, file, full, sizeof full, &fits);) {
        struct stat st;
        if (fits && stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
            if (access(full, X_OK) == 0)
                return posix_spawn(pid, full, fa, attr, argv, envp);
            eacces = 1;
        }
    }
    return eacces ? EACCES : ENOENT;
}

/* vfork. In a mount, a vfork child would run the exec wrappers (which
 * allocate and lock to plan the exec) in our memory: it becomes fork. Out
 * of a mount the shim does nothing in the child, and the real vfork keeps
 * its speed (gcc spawns cc1, as and collect2 with it). The real vfork
 * cannot be called from a C function (the child would return through our
 * frame and clobber it for the parent), so vfork is a tail jump to the
 * target chosen at start-up: no frame of ours is on the stack. */
pid_t (*shim_vfork_target)(void) __attribute__((used)) = fork;

void shim_vfork_setup(int in_mount)
{
    pid_t (*real)(void) = (pid_t(*)(void))dlsym(RTLD_NEXT, "vfork");
    shim_vfork_target = in_mount || !real ? fork : real;
}

#if defined(__x86_64__)
SHIM_API __attribute__((naked)) pid_t vfork(void)
{
    __asm__ volatile("jmp *shim_vfork_target(%rip)");
}
#elif defined(__aarch64__)
SHIM_API __attribute__((naked)) pid_t vfork(void)
{
    __asm__ volatile("adrp x16, shim_vfork_target\n"
                     "ldr x16, [x16, #:lo12:shim_vfork_target]\n"
                     "br x16");
}
#else
SHIM_API pid_t vfork(void)
{
    return fork();
}
#endif
