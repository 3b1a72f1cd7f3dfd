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
#include <stdint.h>
#include <sys/stat.h>
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
    "MESA_TRAP",       "MESA_LAYOUT",       NULL,
};

/* The layout (mesarun --layout): MESA_LAYOUT is "<workspace path> TAB
 * <canonical path> LF" per mount point. Sorted longest workspace path
 * first, so the first match is the longest prefix. roots: the mount
 * points not below another one (the lock-free test compares those). */
typedef struct lmap {
    char *l, *c;
    size_t ll, cl;
} lmap_t;
static lmap_t *lmaps;
static size_t nlmaps;
static const lmap_t **lroots;
static size_t nlroots;
/* "!hide": programs see the layout paths only, not PREFIX/ORG/REPO */
static int canonical_hidden;

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

static int under(const char *p, const char *root, size_t n)
{
    return strncmp(p, root, n) == 0 && (p[n] == '/' || !p[n]);
}

static int by_llen(const void *a, const void *b)
{
    const lmap_t *x = a, *y = b;
    return x->ll != y->ll ? (x->ll > y->ll ? -1 : 1) : strcmp(x->l, y->l);
}

/* Read MESA_LAYOUT once, at start-up (malformed lines are skipped). */
static void layout_parse(const char *s)
{
    size_t cap = 0;
    for (const char *q = s; q && *q; q++)
        cap += *q == '\n';
    if (!cap || !(lmaps = calloc(cap, sizeof *lmaps)) || !(lroots = calloc(cap, sizeof *lroots)))
        return;
    while (*s && nlmaps < cap) {
        size_t n = strcspn(s, "\n"), t = strcspn(s, "\t");
        if (n == 5 && strncmp(s, "!hide", 5) == 0)
            canonical_hidden = 1;
        if (t < n && s[0] == '/' && s[t + 1] == '/') {
            lmap_t *e = &lmaps[nlmaps];
            e->l = strndup(s, t);
            e->c = strndup(s + t + 1, n - t - 1);
            if (e->l && e->c) {
                e->ll = t;
                e->cl = n - t - 1;
                nlmaps++;
            }
        }
        s += n + (s[n] == '\n');
    }
    qsort(lmaps, nlmaps, sizeof *lmaps, by_llen);
    for (size_t i = 0; i < nlmaps; i++) {
        size_t k;
        for (k = 0; k < nlmaps && !(k != i && lmaps[k].ll < lmaps[i].ll &&
                                    under(lmaps[i].l, lmaps[k].l, lmaps[k].ll));
             k++)
            ;
        if (k == nlmaps)
            lroots[nlroots++] = &lmaps[i];
    }
}

/* Lock-free: is the absolute path p (not normalised) in a layout mount? */
static int in_layout(const char *p)
{
    for (size_t i = 0; i < nlroots; i++)
        if (under(p, lroots[i]->l, lroots[i]->ll))
            return 1;
    return 0;
}

/* The canonical path of the normalised workspace path lab, into out: 1,
 * or 0 when lab is in no layout mount. */
static int layout_map(const char *lab, char *out, size_t outlen)
{
    for (size_t i = 0; i < nlmaps; i++) {
        const lmap_t *e = &lmaps[i];
        if (under(lab, e->l, e->ll)) {
            int n = snprintf(out, outlen, "%s%s", e->c, lab + e->ll);
            return n > 0 && (size_t)n < outlen;
        }
    }
    return 0;
}

const char *shim_unmap(const char *canon, char *out, size_t outlen)
{
    const lmap_t *best = NULL;
    for (size_t i = 0; i < nlmaps; i++) { /* longest canonical path; first mount of a repo */
        const lmap_t *e = &lmaps[i];
        if (under(canon, e->c, e->cl) &&
            (!best || e->cl > best->cl || (e->cl == best->cl && e->ll < best->ll)))
            best = e;
    }
    if (!best)
        return canon;
    int n = snprintf(out, outlen, "%s%s", best->l, canon + best->cl);
    return n > 0 && (size_t)n < outlen ? out : canon;
}

int shim_layout_below(const char *canon, void (*fn)(void *, const char *, size_t), void *ctx)
{
    char ws[MESA_PATH_MAX];
    const char *w = nlmaps ? shim_unmap(canon, ws, sizeof ws) : canon;
    size_t wl = strlen(w);
    int count = 0;
    if (w == canon)
        return 0;
    for (size_t i = 0; i < nlmaps; i++) {
        const lmap_t *e = &lmaps[i];
        if (e->ll > wl && strncmp(e->l, w, wl) == 0 && e->l[wl] == '/') {
            count++;
            if (fn)
                fn(ctx, e->l + wl + 1, strcspn(e->l + wl + 1, "/"));
        }
    }
    return count;
}

int shim_layout_stat(const char *canon, struct stat *st)
{
    mesa_vpath_t vp;
    char root[MESA_PATH_MAX];
    if (!shim_layout_below(canon, NULL, NULL) ||
        mesa_path_split(shim_prefix, canon, &vp) != MESA_VP_REPO)
        return -ENOENT;
    snprintf(root, sizeof root, "%s/%s/%s", shim_prefix, vp.org, vp.repo);
    mesa_vnode_t *n = malloc(sizeof *n);
    int rc = n ? mesa_vfs_lookup(shim_vfs, root, 1, n) : -ENOMEM;
    if (rc == 0)
        rc = mesa_vfs_stat(shim_vfs, n, st);
    free(n);
    if (rc < 0)
        return rc;
    uint64_t h = 1469598103934665603ULL; /* FNV-1a of the path: a stable inode */
    for (const char *c = canon; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ULL;
    st->st_ino = (ino_t)h;
    st->st_nlink = 2;
    st->st_size = 0;
    return 0;
}

int shim_layout_dirfd(const char *canon)
{
    char real[PATH_MAX];
    if (!shim_layout_below(canon, NULL, NULL))
        return -ENOENT;
    int rc = mesa_vfs_placeholder(shim_vfs, canon, real, sizeof real);
    if (rc < 0)
        return rc;
    rc = REAL(open)(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return rc < 0 ? -errno : rc;
}

void shim_layout_prepare(const char *canon)
{
    char dir[MESA_PATH_MAX];
    mesa_vpath_t vp;
    char *slash;
    if (!nlmaps || snprintf(dir, sizeof dir, "%s", canon) >= (int)sizeof dir ||
        !(slash = strrchr(dir, '/')) || slash == dir)
        return;
    *slash = '\0';
    if (!shim_layout_below(dir, NULL, NULL) ||
        mesa_path_split(shim_prefix, dir, &vp) != MESA_VP_REPO || !*vp.rel)
        return;
    for (char *p = (char *)vp.rel;; p++) { /* each missing directory, top down */
        if (*p != '/' && *p)
            continue;
        char c = *p;
        *p = '\0';
        if (mesa_vfs_access(shim_vfs, dir, F_OK, 1) == -ENOENT)
            mesa_vfs_mkdir(shim_vfs, dir, 0755);
        *p = c;
        if (!c)
            break;
    }
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
    layout_parse(getenv("MESA_LAYOUT"));
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
        return has_prefix(path) || path[1] == '/' || strstr(path, "/..") || strstr(path, "/./") ||
               (nlroots && in_layout(path));
    if (dirfd == AT_FDCWD)
        return shim_vcwd != NULL || strstr(path, "..") != NULL;
    return !mesa_fdtab_empty();
}

/* A path in the layout's workspace: normalised there (lexically, from
 * the workspace view of cwd), then mapped to its canonical path. 1 with
 * abs set, or 0 (not in the layout: the canonical rules decide). */
static int layout_classify(const char *cwd, const char *path, char *abs)
{
    char lcwd[MESA_PATH_MAX], lab[MESA_PATH_MAX];
    if (path[0] != '/')
        cwd = shim_unmap(cwd, lcwd, sizeof lcwd);
    if (mesa_path_normalize(NULL, cwd, path, lab, sizeof lab) < 0)
        return 0;
    return layout_map(lab, abs, MESA_PATH_MAX);
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
    if (nlmaps && layout_classify(cwd, path, abs))
        return 1;
    if (canonical_hidden && path[0] == '/' && has_prefix(path))
        return 0; /* the layout replaces the canonical tree: the kernel answers */
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
