/* shim/init.c - the shim's infrastructure: lazy start-up, the lock,
 * path classification, descriptor tracking, fork safety and the
 * environment handed to new programs (DESIGN §6).
 *
 * Invariant: a process that is not in a mount (no MESA_MOUNT) pays one
 * comparison per wrapper and is otherwise untouched: no threads, no
 * output, no network, no allocation. In a mount, the core is opened on the
 * first call that touches the prefix.
 */
#include "config.h"
#include "shim.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int shim_state;
__thread int shim_busy __attribute__((tls_model("initial-exec")));
mesa_vfs_t *shim_vfs;
const char *volatile shim_vcwd;
char shim_prefix[256] = "/mesa";
size_t shim_plen = 5;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int vfs_failed;
static char *saved_env[16]; /* "NAME=value" of the mount's variables */

static const char *const mount_vars[] = {
    "MESA_PRELOAD",    "MESA_MOUNT",        "MESA_CACHE",    "MESA_PREFIX",
    "MESA_URL",        "MESA_ACCESS_TOKEN", "MESA_ORG",      "MESA_PUSH_IGNORED",
    "MESA_CACHE_SIZE", "MESA_AUDIT",        "MESA_LDHELPER", "MESA_SANDBOX",
    "MESA_TRAP",       NULL,
};

/* The virtual cwd follows from the kernel cwd: a placeholder mirrors it. */
static void cwd_from_kernel(void)
{
    char real[PATH_MAX], abs[MESA_PATH_MAX];
    const char *run = getenv("MESA_MOUNT");
    size_t rl = run ? strlen(run) : 0;
    if (!run || !REAL(getcwd)(real, sizeof real))
        return;
    if (strncmp(real, run, rl) != 0 || strncmp(real + rl, "/cwd", 4) != 0 ||
        (real[rl + 4] != '/' && real[rl + 4] != '\0'))
        return;
    snprintf(abs, sizeof abs, "%s%s", shim_prefix, real + rl + 4);
    shim_vcwd = strdup(abs);
}

static void atfork_child(void)
{
    pthread_mutex_init(&lock, NULL);
    if (shim_vfs)
        mesa_vfs_atfork_child(shim_vfs);
}

int shim_init_state(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    void init_once(void);
    pthread_once(&once, init_once);
    return shim_state == SHIM_ON && !shim_busy;
}

void init_once(void)
{
    const char *mnt = getenv("MESA_MOUNT");
    shim_state = SHIM_OFF; /* wrappers called while starting fall through */
    shim_vfork_setup(mnt && *mnt);
    if (!mnt || !*mnt)
        return;
    const char *p = getenv("MESA_PREFIX");
    if (p && *p == '/' && strlen(p) < sizeof shim_prefix) {
        strcpy(shim_prefix, p);
        shim_plen = strlen(p);
        while (shim_plen > 1 && shim_prefix[shim_plen - 1] == '/')
            shim_prefix[--shim_plen] = '\0';
    }
    for (int i = 0, k = 0; mount_vars[i]; i++) {
        const char *val = getenv(mount_vars[i]);
        if (val && asprintf(&saved_env[k], "%s=%s", mount_vars[i], val) > 0)
            k++;
    }
    const char *fds = getenv("MESA_FDS");
    if (fds && *fds)
        mesa_fdtab_import(fds);
    cwd_from_kernel();
    pthread_atfork(NULL, NULL, atfork_child);
    shim_state = SHIM_ON;
}

__attribute__((constructor)) static void shim_ctor(void)
{
    shim_init_state();
}

/* ------------------------------------------------------------ lock */

/* The mount's variables as they were at start-up. */
static const char *saved_get(const char *name)
{
    for (int i = 0; saved_env[i]; i++) {
        size_t l = strcspn(saved_env[i], "=");
        if (strncmp(saved_env[i], name, l) == 0 && name[l] == '\0')
            return saved_env[i] + l + 1;
    }
    return NULL;
}

const char *shim_mount_var(const char *name)
{
    return saved_get(name);
}

int shim_lock(shim_guard_t *g)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &g->old);
    pthread_mutex_lock(&lock);
    shim_busy = 1;
    if (!shim_vfs && !vfs_failed) {
        int saved = errno;
        shim_vfs = mesa_vfs_open_env(saved_get);
        vfs_failed = !shim_vfs;
        errno = saved;
    }
    if (!shim_vfs) {
        shim_unlock(g);
        return -EIO;
    }
    return 0;
}

void shim_unlock(shim_guard_t *g)
{
    shim_busy = 0;
    pthread_mutex_unlock(&lock);
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* ------------------------------------------------------------ paths */

static int has_prefix(const char *p)
{
    return strncmp(p, shim_prefix, shim_plen) == 0 && (p[shim_plen] == '/' || !p[shim_plen]);
}

int shim_maybe(int dirfd, const char *path)
{
    if (!path || !shim_on())
        return 0;
    if (path[0] == '/')
        return has_prefix(path) || path[1] == '/' || strstr(path, "/..") || strstr(path, "/./");
    if (dirfd == AT_FDCWD)
        return shim_vcwd != NULL || strstr(path, "..") != NULL;
    return !mesa_fdtab_empty();
}

int shim_classify(int dirfd, const char *path, char *abs)
{
    char base[MESA_PATH_MAX];
    const char *cwd = base;
    int rc;
    if (path[0] == '/') {
        cwd = "/";
    } else if (dirfd == AT_FDCWD && shim_vcwd) {
        cwd = shim_vcwd;
    } else if (dirfd == AT_FDCWD) {
        if (!getcwd(base, sizeof base))
            return 0;
    } else {
        const mesa_fdent_t *e = mesa_fdtab_get(dirfd);
        if (!e)
            return 0;
        if (!e->is_dir)
            return *path ? -ENOTDIR : 0;
        cwd = e->path;
    }
    if (!*path)
        return 0; /* AT_EMPTY_PATH cases are the callers' */
    rc = mesa_vfs_normalize(shim_vfs, cwd, path, abs, MESA_PATH_MAX);
    if (rc < 0)
        return cwd == base || cwd == shim_vcwd || (path[0] == '/' && has_prefix(path)) ? rc : 0;
    /* "/mesa/.." names a real directory through a mount one: core answers
     * it from the real side (-EXDEV inside core) */
    return mesa_path_under(shim_prefix, abs) || (path[0] == '/' && has_prefix(path));
}

/* A path in the mount that is wrong before any lookup (a.txt/..): the
 * call runs on "" (which core rejects without effect) and shim_end
 * reports this error instead. */
static __thread int path_err __attribute__((tls_model("initial-exec")));

int shim_begin(int dirfd, const char *path, char *abs, shim_guard_t *g)
{
    if (!shim_maybe(dirfd, path) || shim_lock(g) < 0)
        return 0;
    int rc = shim_classify(dirfd, path, abs);
    if (rc == 1)
        return 1;
    if (rc < 0 && (path[0] == '/' || (dirfd == AT_FDCWD && shim_vcwd))) {
        abs[0] = '\0';
        path_err = rc;
        return 1;
    }
    shim_unlock(g);
    return 0;
}

long shim_end(long rc, shim_guard_t *g)
{
    if (path_err) {
        rc = path_err;
        path_err = 0;
    }
    shim_unlock(g);
    if (rc < 0) {
        errno = (int)-rc;
        return -1;
    }
    return rc;
}

int shim_begin_fd(int fd, const mesa_fdent_t **e, shim_guard_t *g)
{
    if (!shim_on() || mesa_fdtab_empty() || fd < 0 || shim_lock(g) < 0)
        return 0;
    *e = mesa_fdtab_get(fd);
    if (*e)
        return 1;
    shim_unlock(g);
    return 0;
}

void shim_track(int fd, const char *abs, int is_dir)
{
    if (fd >= 0)
        mesa_fdtab_add(fd, abs, is_dir);
}

void shim_set_vcwd(const char *abs)
{
    shim_vcwd = abs ? strdup(abs) : NULL; /* the old string may be in use: kept */
}

/* ------------------------------------------------------------ exec env */

static int var_is(const char *s, const char *name)
{
    size_t n = strlen(name);
    return strncmp(s, name, n) == 0 && s[n] == '=';
}

/* "<var>=..." for a new program: the mount's libraries (the value of
 * mesa_var, "" for none) first, then old (the program's value, or NULL).
 * LD_PRELOAD from MESA_PRELOAD, LD_AUDIT from MESA_AUDIT. */
static char *ld_value(const char *var, const char *mesa_var, const char *old)
{
    const char *lib = saved_get(mesa_var) ?: getenv(mesa_var);
    size_t vl = strlen(var) + 1;
    char *s = NULL;
    if (!lib || !*lib)
        return old ? strdup(old - vl) : NULL;
    if (old && strstr(old, lib))
        return strdup(old - vl);
    if (asprintf(&s, "%s=%s%s%s", var, lib, old && *old ? ":" : "", old ? old : "") < 0)
        return NULL;
    return s;
}

char **shim_exec_env(char *const envp[])
{
    size_t n = 0, k = 0;
    while (envp && envp[n])
        n++;
    char **out = calloc(n + 20, sizeof *out);
    const char *old_preload = NULL, *old_audit = NULL;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int skip = var_is(envp[i], "MESA_FDS") || var_is(envp[i], "LD_PRELOAD") ||
                   var_is(envp[i], "LD_AUDIT");
        for (int j = 0; saved_env[j] && !skip; j++) {
            size_t l = strcspn(saved_env[j], "=");
            skip = strncmp(envp[i], saved_env[j], l + 1) == 0;
        }
        if (var_is(envp[i], "LD_PRELOAD"))
            old_preload = envp[i] + strlen("LD_PRELOAD=");
        if (var_is(envp[i], "LD_AUDIT"))
            old_audit = envp[i] + strlen("LD_AUDIT=");
        if (!skip)
            out[k++] = strdup(envp[i]);
    }
    for (int j = 0; saved_env[j]; j++)
        out[k++] = strdup(saved_env[j]);
    if ((out[k] = ld_value("LD_PRELOAD", "MESA_PRELOAD", old_preload)) != NULL)
        k++;
    if ((out[k] = ld_value("LD_AUDIT", "MESA_AUDIT", old_audit)) != NULL)
        k++;
    char *fds = malloc(65536 + 10);
    if (fds) {
        strcpy(fds, "MESA_FDS=");
        if (mesa_fdtab_export(fds + 9, 65536) > 0)
            out[k++] = fds;
        else
            free(fds);
    }
    out[k] = NULL;
    return out;
}

void shim_free_env(char **env)
{
    for (size_t i = 0; env && env[i]; i++)
        free(env[i]);
    free(env);
}
