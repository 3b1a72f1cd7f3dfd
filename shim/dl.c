/* shim/dl.c - dlopen and dlmopen of files stored in the mount (DESIGN §6).
 *
 * The loader opens a library with raw system calls, so a path under the
 * prefix (absolute, or relative with a '/', against the virtual cwd) is
 * handed to it as the mirror that core/vfs_lib.c makes ($RUN/lib/...: the
 * content fetched if needed, same as open). A bare name is the loader's
 * search, which the LD_AUDIT module (shim/audit.c) serves; a mount path
 * that cannot be loaded goes to the real dlopen as it is, which fails on
 * it with the loader's own message naming the path.
 *
 * dlopen is caller-sensitive: the loader takes the caller's namespace and
 * its RPATH/RUNPATH ($ORIGIN) for a bare name from the return address. So
 * the wrappers are tail jumps, as vfork is (exec.c): a C function maps the
 * name, then the real function runs with our caller's return address.
 */
#include "config.h"
#include "shim.h"
#include "vfs_lib.h"

#include <limits.h>
#include <stdlib.h>

/* Called from the trampolines below (hence global). */
const char *shim_dl_file(const char *file);

void *(*shim_real_dlopen)(const char *, int)__attribute__((used));
void *(*shim_real_dlmopen)(Lmid_t, const char *, int)__attribute__((used));

/* The mirror paths handed to the loader, kept for the life of the process
 * (the loader copies a name after the wrapper has jumped into it; nothing
 * returns to us to free it): one string per path. Under the shim lock. */
typedef struct kept {
    struct kept *next;
    char path[];
} kept_t;
static kept_t *kept;

static const char *keep(const char *s)
{
    for (kept_t *k = kept; k; k = k->next)
        if (strcmp(k->path, s) == 0)
            return k->path;
    kept_t *k = malloc(sizeof *k + strlen(s) + 1);
    if (!k)
        return NULL;
    strcpy(k->path, s);
    k->next = kept;
    kept = k;
    return k->path;
}

static void *no_dlopen(const char *file, int mode)
{
    (void)file;
    (void)mode;
    return NULL;
}

static void *no_dlmopen(Lmid_t ns, const char *file, int mode)
{
    (void)ns;
    (void)file;
    (void)mode;
    return NULL;
}

static void resolve_real(void)
{
    if (!shim_real_dlopen) {
        void *m = dlsym(RTLD_NEXT, "dlmopen");
        shim_real_dlmopen = m ? (void *(*)(Lmid_t, const char *, int))m : no_dlmopen;
        void *o = dlsym(RTLD_NEXT, "dlopen");
        shim_real_dlopen = o ? (void *(*)(const char *, int))o : no_dlopen;
    }
}

/* What the real dlopen gets for file: the mirror of a mount file, or file. */
const char *shim_dl_file(const char *file)
{
    char abs[MESA_PATH_MAX], real[PATH_MAX];
    const char *out = file;
    shim_guard_t g;
    int saved = errno;
    resolve_real();
    if (!file || !strchr(file, '/') || !shim_begin(AT_FDCWD, file, abs, &g))
        return file;
    if (abs[0] && mesa_vfs_lib_path(shim_vfs, abs, real, sizeof real) == 0 && !(out = keep(real)))
        out = file;
    shim_end(0, &g);
    errno = saved;
    return out;
}

#if defined(__x86_64__)
/* push/sub keep the stack 16-byte aligned at the call */
SHIM_API __attribute__((naked)) void *dlopen(const char *file, int mode)
{
    __asm__ volatile("push %rsi\n\t"
                     "call shim_dl_file\n\t"
                     "mov %rax, %rdi\n\t"
                     "pop %rsi\n\t"
                     "jmp *shim_real_dlopen(%rip)");
}

SHIM_API __attribute__((naked)) void *dlmopen(Lmid_t ns, const char *file, int mode)
{
    __asm__ volatile("push %rdi\n\t"
                     "push %rdx\n\t"
                     "sub $8, %rsp\n\t"
                     "mov %rsi, %rdi\n\t"
                     "call shim_dl_file\n\t"
                     "mov %rax, %rsi\n\t"
                     "add $8, %rsp\n\t"
                     "pop %rdx\n\t"
                     "pop %rdi\n\t"
                     "jmp *shim_real_dlmopen(%rip)");
}
#elif defined(__aarch64__)
SHIM_API __attribute__((naked)) void *dlopen(const char *file, int mode)
{
    __asm__ volatile("stp x29, x30, [sp, #-32]!\n\t"
                     "mov x29, sp\n\t"
                     "str x1, [sp, #16]\n\t"
                     "bl shim_dl_file\n\t"
                     "ldr x1, [sp, #16]\n\t"
                     "ldp x29, x30, [sp], #32\n\t"
                     "adrp x16, shim_real_dlopen\n\t"
                     "ldr x16, [x16, #:lo12:shim_real_dlopen]\n\t"
                     "br x16");
}

SHIM_API __attribute__((naked)) void *dlmopen(Lmid_t ns, const char *file, int mode)
{
    __asm__ volatile("stp x29, x30, [sp, #-32]!\n\t"
                     "mov x29, sp\n\t"
                     "stp x0, x2, [sp, #16]\n\t"
                     "mov x0, x1\n\t"
                     "bl shim_dl_file\n\t"
                     "mov x1, x0\n\t"
                     "ldp x0, x2, [sp, #16]\n\t"
                     "ldp x29, x30, [sp], #32\n\t"
                     "adrp x16, shim_real_dlmopen\n\t"
                     "ldr x16, [x16, #:lo12:shim_real_dlmopen]\n\t"
                     "br x16");
}
#else
/* Elsewhere the real functions see the shim as their caller: a bare name
 * is searched with the shim's (empty) RPATH, in the base namespace. */
SHIM_API void *dlopen(const char *file, int mode)
{
    const char *f = shim_dl_file(file);
    return shim_real_dlopen(f, mode);
}

SHIM_API void *dlmopen(Lmid_t ns, const char *file, int mode)
{
    const char *f = shim_dl_file(file);
    return shim_real_dlmopen(ns, f, mode);
}
#endif
