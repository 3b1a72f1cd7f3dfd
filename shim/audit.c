/* shim/audit.c - libmesafs_audit.so, the LD_AUDIT module of a mount
 * (DESIGN §6): it finds the shared libraries that the loader's own search
 * cannot, those in directories under the prefix that LD_LIBRARY_PATH or an
 * object's RPATH/RUNPATH name (directly or through $ORIGIN), and DT_NEEDED
 * paths under the prefix. The loader opens files and looks at directories
 * with raw system calls: a directory under the prefix that it tries itself
 * is missing, and marked so for the rest of the process (with a module that
 * links libc, before the module is even asked: DESIGN §6). So the answer is
 * given at the LA_SER_ORIG call, before the loader searches: the path of
 * the library's mirror (core/vfs_lib.c), or the name unchanged.
 *
 * The loader loads this module into a namespace of its own in every
 * process of the mount, before the program's libraries. So it links
 * nothing, not even libc (a second libc costs each exec ~0.15 ms), makes
 * raw system calls, and takes its fast path (the name unchanged) unless a
 * directory under the prefix is in the search. Then it runs the resolver,
 * mesafs-ldhelper (tools/mesafs_ldhelper.c: the mount's view on core,
 * fetching a blob the cache lacks), for every DT_NEEDED name of the
 * requesting object at once, and answers the object's next searches from
 * that until the loader is consistent again (la_activity).
 *
 * State is static and needs no lock: the loader calls audit functions
 * under its load lock. The mount's variables are read once, from the
 * environment the process (and the loader) started with: on the initial
 * stack, found through the loader's __libc_stack_end, else in
 * /proc/self/environ.
 */
#include "config.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>

#define API __attribute__((visibility("default")))

/* ------------------------------------------------------------ system calls */

#if defined(__x86_64__)
static long sys(long n, long a, long b, long c, long d)
{
    register long r10 __asm__("r10") = d;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10)
                     : "rcx", "r11", "memory");
    return ret;
}
#define HAVE_SYS 1
#elif defined(__aarch64__)
static long sys(long n, long a, long b, long c, long d)
{
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
    return x0;
}
#define HAVE_SYS 1
#else
#define HAVE_SYS 0 /* elsewhere the module answers nothing (see the README) */
static long sys(long n, long a, long b, long c, long d)
{
    (void)n, (void)a, (void)b, (void)c, (void)d;
    return -ENOSYS;
}
#endif

#define S(x) ((long)(x))

/* ------------------------------------------------------------ strings */

static size_t len(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

static int eq(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

/* Does s start with the n bytes of p? */
static int startn(const char *s, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != p[i])
            return 0;
    return 1;
}

static int starts(const char *s, const char *p)
{
    return startn(s, p, len(p));
}

/* ------------------------------------------------------------ ELF */

/* An address in l's dynamic section: relocated in place by the loader,
 * except in read-only dynamic sections. */
static uintptr_t dyn_ptr(const struct link_map *l, uintptr_t p)
{
    return p < l->l_addr ? p + l->l_addr : p;
}

static uint32_t gnu_hash(const char *s)
{
    uint32_t h = 5381;
    for (; *s; s++)
        h = h * 33 + (unsigned char)*s;
    return h;
}

/* The address of symbol name defined by l (GNU hash table), or 0. */
static const void *defined(const struct link_map *l, const char *name)
{
    const ElfW(Sym) *sym = 0;
    const char *str = 0;
    const uint32_t *gh = 0;
    for (const ElfW(Dyn) *d = l->l_ld; d && d->d_tag != DT_NULL; d++)
        if (d->d_tag == DT_SYMTAB)
            sym = (const ElfW(Sym) *)dyn_ptr(l, d->d_un.d_ptr);
        else if (d->d_tag == DT_STRTAB)
            str = (const char *)dyn_ptr(l, d->d_un.d_ptr);
        else if (d->d_tag == DT_GNU_HASH)
            gh = (const uint32_t *)dyn_ptr(l, d->d_un.d_ptr);
    if (!sym || !str || !gh || !gh[0])
        return 0;
    const uint32_t *buckets = (const uint32_t *)((const ElfW(Addr) *)(gh + 4) + gh[2]);
    const uint32_t *chain = buckets + gh[0] - gh[1];
    uint32_t h = gnu_hash(name);
    for (uint32_t i = buckets[h % gh[0]]; i >= gh[1]; i++) {
        if ((chain[i] | 1) == (h | 1) && eq(str + sym[i].st_name, name) &&
            sym[i].st_shndx != SHN_UNDEF)
            return (const void *)(l->l_addr + sym[i].st_value);
        if (chain[i] & 1)
            break;
    }
    return 0;
}

/* ------------------------------------------------------------ environment */

enum { UNKNOWN, OFF, ON };
static int state;
static char envbuf[1 << 17];
static const char *fwd[65]; /* the resolver's environment */
static const char *run, *prefix = "/mesa", *cache, *helper, *llp;
static size_t runlen, plen = 5, cachelen;

static int forwarded(const char *kv)
{
    return (starts(kv, "MESA_") && !starts(kv, "MESA_FDS=")) || starts(kv, "PATH=") ||
           starts(kv, "ASAN_OPTIONS=") || starts(kv, "UBSAN_OPTIONS=") ||
           starts(kv, "LSAN_OPTIONS=");
}

/* Take what this module needs from an environment entry. */
static void env_entry(const char *s, int *nf)
{
    if (starts(s, "MESA_MOUNT="))
        run = s + 11;
    else if (starts(s, "MESA_PREFIX=") && s[12] == '/')
        prefix = s + 12;
    else if (starts(s, "MESA_CACHE="))
        cache = s + 11;
    else if (starts(s, "MESA_LDHELPER="))
        helper = s + 14;
    else if (starts(s, "LD_LIBRARY_PATH="))
        llp = s + 16;
    if (forwarded(s) && *nf < 64)
        fwd[(*nf)++] = s;
}

/* Is l the dynamic loader ("/lib64/ld-linux-x86-64.so.2", "ld.so"...)? */
static int is_loader(const struct link_map *l)
{
    const char *base = l->l_name;
    for (const char *s = base; s && *s; s++)
        if (*s == '/')
            base = s + 1;
    return base && (starts(base, "ld-") || starts(base, "ld.so"));
}

/* The environment the process started with, from the initial stack that
 * the loader's __libc_stack_end points to (argc, argv, NULL, envp): no
 * system call. The loader is looked for first: each symbol lookup in an
 * object touches pages of it that nothing else may have (~5 µs each).
 * 0 if no object in who's list defines it. */
static int stack_env(const struct link_map *who)
{
    const struct link_map *head = who, *l;
    const void *p = 0;
    int nf = 0;
    while (head->l_prev)
        head = head->l_prev;
    for (l = head; l && !p; l = l->l_next)
        if (is_loader(l))
            p = defined(l, "__libc_stack_end");
    for (l = head; l && !p; l = l->l_next)
        p = defined(l, "__libc_stack_end");
    if (!p || !*(long *const *)p)
        return 0;
    const long *sp = *(long *const *)p;
    for (char *const *e = (char *const *)(sp + 1) + sp[0] + 1; *e; e++)
        env_entry(*e, &nf);
    fwd[nf] = 0;
    return 1;
}

/* The same from /proc/self/environ (one open, read, close). */
static void proc_env(void)
{
    long fd = sys(SYS_openat, AT_FDCWD, S("/proc/self/environ"), O_RDONLY | O_CLOEXEC, 0);
    size_t n = 0;
    int nf = 0;
    if (fd < 0)
        return;
    while (n < sizeof envbuf - 1) {
        long r = sys(SYS_read, fd, S(envbuf + n), (long)(sizeof envbuf - 1 - n), 0);
        if (r == -EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    sys(SYS_close, fd, 0, 0, 0);
    while (n && envbuf[n - 1]) /* a cut last entry (a huge environment) */
        n--;
    for (char *s = envbuf; s < envbuf + n; s += len(s) + 1)
        env_entry(s, &nf);
    fwd[nf] = 0;
}

static int on(const struct link_map *who)
{
    if (state != UNKNOWN)
        return state == ON;
    state = OFF;
    if (!stack_env(who))
        proc_env();
    if (!run || !*run || !helper || !*helper)
        return 0;
    runlen = len(run);
    plen = len(prefix);
    while (plen > 1 && prefix[plen - 1] == '/')
        plen--;
    cachelen = cache ? len(cache) : 0;
    state = ON;
    return 1;
}

/* ------------------------------------------------------------ paths */

static int under_prefix(const char *s, size_t n)
{
    return n >= plen && startn(s, prefix, plen) && (n == plen || s[plen] == '/');
}

/* Is path in $RUN/lib, the mirror of the mount? */
static int in_mirror(const char *path)
{
    return startn(path, run, runlen) && starts(path + runlen, "/lib/");
}

/* Is the main program a copy of a file of the mount ($RUN/exec or
 * $CACHE/exec)? Its $ORIGIN is then in the mount. */
static int exe_in_mount(void)
{
    static int known, yes;
    static char exe[4096];
    if (known)
        return yes;
    known = 1;
    long n = sys(SYS_readlinkat, AT_FDCWD, S("/proc/self/exe"), S(exe), sizeof exe - 1);
    if (n <= 0)
        return 0;
    exe[n] = '\0';
    yes = (startn(exe, run, runlen) && exe[runlen] == '/') ||
          (cachelen && startn(exe, cache, cachelen) && starts(exe + cachelen, "/exec/"));
    return yes;
}

static int origin_in_mount(const struct link_map *o)
{
    return o->l_name && o->l_name[0] ? in_mirror(o->l_name) : exe_in_mount();
}

/* Is an entry of owner's search path (n bytes at e) possibly in the mount? */
static int entry_mesa(const char *e, size_t n, const struct link_map *owner)
{
    if (under_prefix(e, n))
        return 1;
    return ((n >= 7 && startn(e, "$ORIGIN", 7)) || (n >= 9 && startn(e, "${ORIGIN}", 9))) &&
           origin_in_mount(owner);
}

static int list_mesa(const char *s, const struct link_map *owner)
{
    while (s && *s) {
        size_t n = 0;
        while (s[n] && s[n] != ':' && s[n] != ';')
            n++;
        if (entry_mesa(s, n, owner))
            return 1;
        s += n + (s[n] != '\0');
    }
    return 0;
}

/* ------------------------------------------------------------ objects */

typedef struct dyn {
    const char *strtab;
    const char *rpath, *runpath;
} dyn_t;

static const char *strtab_of(const struct link_map *l)
{
    for (const ElfW(Dyn) *d = l->l_ld; d && d->d_tag != DT_NULL; d++)
        if (d->d_tag == DT_STRTAB)
            return (const char *)dyn_ptr(l, d->d_un.d_ptr);
    return 0;
}

static void dyn_of(const struct link_map *l, dyn_t *out)
{
    out->strtab = strtab_of(l);
    out->rpath = out->runpath = 0;
    for (const ElfW(Dyn) *d = l->l_ld; out->strtab && d && d->d_tag != DT_NULL; d++) {
        if (d->d_tag == DT_RPATH)
            out->rpath = out->strtab + d->d_un.d_val;
        else if (d->d_tag == DT_RUNPATH)
            out->runpath = out->strtab + d->d_un.d_val;
    }
}

/* ------------------------------------------------------------ answers */

/* What the resolver said for a name asked by an object, until the loader
 * is consistent again: the path to load, or 0 (leave it to the loader). */
typedef struct ans {
    const struct link_map *who;
    const char *name, *path;
} ans_t;
static ans_t tab[128];
static int ntab;
static char pool[1 << 16];
static size_t npool;

static const char *pool_copy(const char *s, size_t n)
{
    if (npool + n + 1 > sizeof pool)
        return 0;
    char *p = pool + npool;
    for (size_t i = 0; i < n; i++)
        p[i] = s[i];
    p[n] = '\0';
    npool += n + 1;
    return p;
}

static int find(const struct link_map *who, const char *name, const char **path)
{
    for (int i = 0; i < ntab; i++)
        if (tab[i].who == who && eq(tab[i].name, name)) {
            *path = tab[i].path;
            return 1;
        }
    return 0;
}

/* line: the resolver's answer ("" or "-": leave it to the loader). */
static void remember(const struct link_map *who, const char *name, const char *line, size_t n)
{
    const char *path = 0, *nm;
    if (n && !(n == 1 && line[0] == '-') && !(path = pool_copy(line, n)))
        return; /* no room: no answer */
    if (ntab < (int)(sizeof tab / sizeof tab[0]) && (nm = pool_copy(name, len(name))))
        tab[ntab++] = (ans_t){who, nm, path};
}

/* ------------------------------------------------------------ resolver */

static const char *argv[256];
static int argc;
static char out[1 << 16];

static void arg(const char *s)
{
    if (argc < (int)(sizeof argv / sizeof argv[0]) - 1)
        argv[argc++] = s;
    argv[argc] = 0;
}

/* Run the resolver with argv; its output in out. Bytes read, or -1. */
static long resolve(void)
{
    int p[2];
    unsigned long all = ~0ul, old = 0;
    if (sys(SYS_pipe2, S(p), O_CLOEXEC, 0, 0) < 0)
        return -1;
    /* no handler of the program may run in the child before it execs */
    sys(SYS_rt_sigprocmask, SIG_SETMASK, S(&all), S(&old), sizeof all);
    long pid = sys(SYS_clone, SIGCHLD, 0, 0, 0);
    if (pid == 0) {
        if (p[1] == 1)
            sys(SYS_fcntl, 1, F_SETFD, 0, 0);
        else
            sys(SYS_dup3, p[1], 1, 0, 0);
        sys(SYS_execve, S(helper), S(argv), S(fwd), 0);
        sys(SYS_exit_group, 127, 0, 0, 0);
    }
    sys(SYS_rt_sigprocmask, SIG_SETMASK, S(&old), 0, sizeof old);
    sys(SYS_close, p[1], 0, 0, 0);
    long n = 0;
    while (pid > 0 && n < (long)sizeof out) {
        long r = sys(SYS_read, p[0], S(out + n), (long)sizeof out - n, 0);
        if (r == -EINTR)
            continue;
        if (r <= 0)
            break;
        n += r;
    }
    sys(SYS_close, p[0], 0, 0, 0);
    while (pid > 0 && sys(SYS_wait4, pid, 0, 0, 0) == -EINTR)
        ;
    return pid > 0 ? n : -1;
}

/* Record the resolver's lines, one per name of argv after "--". */
static void record(const struct link_map *who, int first, long n)
{
    long at = 0;
    for (int i = first; i < argc && at < n; i++) {
        long e = at;
        while (e < n && out[e] != '\n')
            e++;
        if (e == n)
            break; /* a cut line: no answer */
        remember(who, argv[i], out + at, (size_t)(e - at));
        at = e + 1;
    }
}

/* ------------------------------------------------------------ searches */

/* A DT_NEEDED path (or one given to dlopen past the shim) in the mount. */
static char *by_path(const struct link_map *who, const char *name)
{
    const char *path;
    if (name[0] == '/' && !under_prefix(name, len(name)))
        return (char *)name;
    argc = 0;
    arg(helper);
    arg("path");
    arg("--");
    arg(name);
    long n = resolve();
    if (n > 0)
        record(who, 3, n);
    return find(who, name, &path) && path ? (char *)path : (char *)name;
}

static void group(const struct link_map *owner, const char *dirs)
{
    arg("-o");
    arg(owner->l_name ? owner->l_name : "");
    arg("-p");
    arg(dirs);
}

/* The loader's order: RPATH (the object's unless it has a RUNPATH, then
 * the main program's), LD_LIBRARY_PATH, RUNPATH; the system directories
 * after them are never in the mount. */
static int groups(const struct link_map *who, const struct link_map *top)
{
    dyn_t d, m;
    dyn_of(who, &d);
    dyn_of(top, &m);
    int mesa = 0;
    argc = 0;
    arg(helper);
    arg("search");
    if (!d.runpath && d.rpath) {
        group(who, d.rpath);
        mesa |= list_mesa(d.rpath, who);
    }
    if (!d.runpath && top != who && m.rpath) {
        group(top, m.rpath);
        mesa |= list_mesa(m.rpath, top);
    }
    if (llp) {
        group(top, llp);
        mesa |= list_mesa(llp, top);
    }
    if (d.runpath) {
        group(who, d.runpath);
        mesa |= list_mesa(d.runpath, who);
    }
    return mesa;
}

/* The names to ask for: all of who's DT_NEEDED if name is one of them
 * (the loader asks for the others next), else name. */
static void names(const struct link_map *who, const char *name)
{
    const char *strtab = strtab_of(who);
    int needed = 0, first = argc;
    for (const ElfW(Dyn) *d = who->l_ld; strtab && d && d->d_tag != DT_NULL; d++)
        if (d->d_tag == DT_NEEDED)
            needed |= eq(strtab + d->d_un.d_val, name);
    for (const ElfW(Dyn) *d = who->l_ld; needed && d && d->d_tag != DT_NULL; d++)
        if (d->d_tag == DT_NEEDED && argc - first < 64)
            arg(strtab + d->d_un.d_val);
    if (!needed)
        arg(name);
}

static char *by_search(const struct link_map *who, const char *name)
{
    const struct link_map *top = who; /* the main program, in the base namespace */
    const char *path;
    while (top->l_prev)
        top = top->l_prev;
    if (!groups(who, top))
        return (char *)name;
    arg("--");
    int first = argc;
    names(who, name);
    long n = resolve();
    if (n > 0)
        record(who, first, n);
    return find(who, name, &path) && path ? (char *)path : (char *)name;
}

/* ------------------------------------------------------------ interface */

API unsigned int la_version(unsigned int version)
{
    return version < LAV_CURRENT ? version : LAV_CURRENT;
}

API char *la_objsearch(const char *name, uintptr_t *cookie, unsigned int flag)
{
    const struct link_map *who = (const struct link_map *)*cookie;
    const char *path;
    if (!HAVE_SYS || !on(who))
        return (char *)name;
    if (flag != LA_SER_ORIG) /* a mirror directory found by $ORIGIN: answered already */
        return in_mirror(name) ? 0 : (char *)name;
    if (find(who, name, &path))
        return path ? (char *)path : (char *)name;
    for (const char *s = name; *s; s++)
        if (*s == '/')
            return by_path(who, name);
    return by_search(who, name);
}

API void la_activity(uintptr_t *cookie, unsigned int flag)
{
    (void)cookie;
    if (flag == LA_ACT_CONSISTENT)
        ntab = 0, npool = 0;
}
