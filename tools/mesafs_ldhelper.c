/* tools/mesafs_ldhelper.c - mesafs-ldhelper, the resolver of the mount's
 * LD_AUDIT module (shim/audit.c, DESIGN §6): which file the loader should
 * open for a library that a process of the mount asks for, when the
 * search involves directories under the prefix. The module links no libc
 * and cannot read the mount; it runs this program with the mount's
 * variables and reads one line per name. Not for users.
 *
 *   mesafs-ldhelper path -- NAME
 *   mesafs-ldhelper search [-o OBJECT -p DIRS]... -- NAME...
 *
 * path: NAME is a path, absolute or relative to the (virtual) cwd.
 * search: the groups are the loader's search path in its order (RPATH,
 * LD_LIBRARY_PATH, RUNPATH); DIRS is ':'-separated, and "$ORIGIN" in an
 * entry is OBJECT's directory (OBJECT: a loaded object's path, "" for the
 * main program). One line per NAME: the path to load (the mirror,
 * core/vfs_lib.c); "-" when a directory outside the mount comes first
 * and has NAME (the loader finds it there); "" when the mount has none.
 * Exit 0; 1 if the mount cannot be opened; 2 on a usage error.
 *
 * The main program of a process that runs a file of the mount is a copy
 * in the mount's exec directory: its $ORIGIN is found from argv[0] (and
 * PATH) and the virtual cwd, and trusted only if that file has the same
 * bytes as the copy.
 */
#include "config.h"
#include "vfs.h"
#include "vfs_lib.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct group {
    const char *obj;
    const char *dirs;
    int origin_done;
    char origin[MESA_PATH_MAX]; /* "" when unknown */
} group_t;

static mesa_vfs_t *v;
static char cwd[MESA_PATH_MAX]; /* virtual when the kernel cwd is a placeholder */

static const char *env(const char *name)
{
    return getenv(name);
}

/* "dir/name" normalised against cwd into out. */
static int join(const char *dir, const char *name, char *out, size_t len)
{
    char tmp[MESA_PATH_MAX];
    int n =
        dir ? snprintf(tmp, sizeof tmp, "%s/%s", dir, name) : snprintf(tmp, sizeof tmp, "%s", name);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return -ENAMETOOLONG;
    return mesa_vfs_normalize(v, cwd, tmp, out, len);
}

static void dirname_of(char *path)
{
    char *sl = strrchr(path, '/');
    if (sl && sl != path)
        *sl = '\0';
    else if (sl)
        sl[1] = '\0';
}

/* ------------------------------------------------------------ $ORIGIN */

/* Is real a copy in the mount's exec directory ($RUN/exec, or the one
 * named in $RUN/exec.path)? */
static int exec_copy(const char *real)
{
    char dir[PATH_MAX] = "", rec[PATH_MAX];
    snprintf(rec, sizeof rec, "%s/exec.path", mesa_vfs_run(v));
    FILE *f = fopen(rec, "re");
    if (f) {
        if (fgets(dir, sizeof dir, f))
            dir[strcspn(dir, "\n")] = '\0';
        fclose(f);
    }
    if (!dir[0])
        snprintf(dir, sizeof dir, "%s/exec", mesa_vfs_run(v));
    size_t n = strlen(dir);
    return strncmp(real, dir, n) == 0 && real[n] == '/';
}

/* Has the mount file at path the bytes of the real file exe? */
static int same_bytes(const char *path, const char *exe)
{
    int is_dir, same = 0;
    int a = mesa_vfs_open(v, path, O_RDONLY | O_CLOEXEC, 0, &is_dir);
    int b = open(exe, O_RDONLY | O_CLOEXEC);
    if (a >= 0 && b >= 0 && !is_dir) {
        static char x[65536], y[65536];
        ssize_t n, m;
        do {
            n = read(a, x, sizeof x);
            m = read(b, y, sizeof y);
            same = n == m && n >= 0 && memcmp(x, y, (size_t)(n > 0 ? n : 0)) == 0;
        } while (same && n > 0);
    }
    if (a >= 0)
        close(a);
    if (b >= 0)
        close(b);
    return same;
}

/* The mount path the main program was run as: argv[0] against the cwd or
 * PATH, checked against the copy exe. */
static int main_path(const char *exe, char *out, size_t len)
{
    char cmd[MESA_PATH_MAX], p[64], cand[MESA_PATH_MAX];
    snprintf(p, sizeof p, "/proc/%d/cmdline", (int)getppid());
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, cmd, sizeof cmd - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return -ENOENT;
    cmd[n] = '\0';
    const char *path = strchr(cmd, '/') ? "" : getenv("PATH");
    for (const char *s = path ? path : ""; s;) {
        const char *e = strchr(s, ':');
        char dir[MESA_PATH_MAX];
        snprintf(dir, sizeof dir, "%.*s", e ? (int)(e - s) : (int)strlen(s), s);
        if (join(dir[0] ? dir : NULL, cmd, cand, sizeof cand) == 0 &&
            mesa_path_under(mesa_vfs_prefix(v), cand) && same_bytes(cand, exe)) {
            mesa_vnode_t *nd = malloc(sizeof *nd);
            int rc = nd ? mesa_vfs_lookup(v, cand, 1, nd) : -ENOMEM;
            if (rc == 0)
                snprintf(out, len, "%s", nd->path);
            free(nd);
            return rc;
        }
        s = e ? e + 1 : NULL;
    }
    return -ENOENT;
}

/* The directory $ORIGIN stands for in g's entries. */
static const char *origin(group_t *g)
{
    char exe[PATH_MAX], p[64];
    if (g->origin_done)
        return g->origin[0] ? g->origin : NULL;
    g->origin_done = 1;
    if (g->obj[0]) {
        if (mesa_vfs_lib_origin(v, g->obj, g->origin, sizeof g->origin) < 0)
            snprintf(g->origin, sizeof g->origin, "%s", g->obj);
    } else {
        snprintf(p, sizeof p, "/proc/%d/exe", (int)getppid());
        ssize_t n = readlink(p, exe, sizeof exe - 1);
        if (n <= 0)
            return NULL;
        exe[n] = '\0';
        if (!exec_copy(exe))
            snprintf(g->origin, sizeof g->origin, "%s", exe);
        else if (main_path(exe, g->origin, sizeof g->origin) < 0)
            return NULL;
    }
    dirname_of(g->origin);
    return g->origin;
}

/* ------------------------------------------------------------ searches */

/* One entry (n bytes at e) of g for name: 1 and out set if found. */
static int try_entry(group_t *g, const char *e, size_t n, const char *name, char *out, size_t len)
{
    char dir[MESA_PATH_MAX], cand[MESA_PATH_MAX];
    size_t skip = n >= 7 && strncmp(e, "$ORIGIN", 7) == 0     ? 7
                  : n >= 9 && strncmp(e, "${ORIGIN}", 9) == 0 ? 9
                                                              : 0;
    const char *o = skip ? origin(g) : "";
    if (!n || !o || memchr(e + skip, '$', n - skip)) /* $LIB, $PLATFORM: not in the mount */
        return 0;
    snprintf(dir, sizeof dir, "%s%.*s", o, (int)(n - skip), e + skip);
    if (join(dir, name, cand, sizeof cand) < 0)
        return 0;
    if (!mesa_path_under(mesa_vfs_prefix(v), cand)) {
        if (access(cand, F_OK) < 0)
            return 0;
        snprintf(out, len, "-");
        return 1;
    }
    return mesa_vfs_lib_path(v, cand, out, len) == 0;
}

static void search(group_t *g, int ng, const char *name, char *out, size_t len)
{
    out[0] = '\0';
    for (int i = 0; i < ng; i++)
        for (const char *s = g[i].dirs; *s;) {
            size_t n = strcspn(s, ":;");
            if (try_entry(&g[i], s, n, name, out, len))
                return;
            s += n + (s[n] != '\0');
        }
}

static int usage(void)
{
    fprintf(stderr, "usage: mesafs-ldhelper path -- NAME\n"
                    "       mesafs-ldhelper search [-o OBJECT -p DIRS]... -- NAME...\n");
    return 2;
}

int main(int argc, char **argv)
{
    static group_t g[8];
    char real[PATH_MAX], out[PATH_MAX];
    sigset_t none;
    int ng = 0, i = 2;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL); /* the module blocked them all */
    if (argc < 3 || (strcmp(argv[1], "path") != 0 && strcmp(argv[1], "search") != 0))
        return usage();
    int search_mode = strcmp(argv[1], "search") == 0;
    for (; i + 3 < argc && strcmp(argv[i], "-o") == 0 && strcmp(argv[i + 2], "-p") == 0; i += 4)
        if (search_mode && ng < (int)(sizeof g / sizeof g[0]))
            g[ng++] = (group_t){.obj = argv[i + 1], .dirs = argv[i + 3]};
    if (i >= argc || strcmp(argv[i++], "--") != 0)
        return usage();
    if (!(v = mesa_vfs_open_env(env)))
        return 1;
    if (!getcwd(real, sizeof real))
        strcpy(real, "/");
    if (mesa_vfs_from_placeholder(v, real, cwd, sizeof cwd) < 0) /* not in the mount */
        snprintf(cwd, sizeof cwd, "%s", real);
    for (; i < argc; i++) {
        char path[MESA_PATH_MAX];
        if (search_mode)
            search(g, ng, argv[i], out, sizeof out);
        else if (join(NULL, argv[i], path, sizeof path) < 0 ||
                 !mesa_path_under(mesa_vfs_prefix(v), path) ||
                 mesa_vfs_lib_path(v, path, out, sizeof out) < 0)
            out[0] = '\0';
        printf("%s\n", out);
    }
    mesa_vfs_close(v);
    return fflush(stdout) == 0 ? 0 : 1;
}
