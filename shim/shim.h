/* shim/shim.h - what the preload shim's wrappers share (DESIGN §6).
 *
 * Every wrapper has the same shape: a lock-free test that rules out most
 * calls (shim_maybe: not in a mount, or a path that cannot be under the
 * prefix), then under the shim lock (signals blocked, re-entry guarded) the
 * exact classification, one core call, and the errno conversion in
 * shim_end. Real libc functions come from dlsym(RTLD_NEXT) via REAL().
 */
#ifndef MESA_SHIM_H
#define MESA_SHIM_H

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <string.h>

#include "fdtab.h"
#include "path.h"
#include "vfs.h"

#define SHIM_API __attribute__((visibility("default")))

/* The real function f, resolved once. */
#define REAL(f)                                                                                    \
    (__extension__({                                                                               \
        static __typeof__(&f) real_;                                                               \
        if (__builtin_expect(!real_, 0))                                                           \
            real_ = (__typeof__(&f))dlsym(RTLD_NEXT, #f);                                          \
        real_;                                                                                     \
    }))

enum { SHIM_UNKNOWN = 0, SHIM_OFF = 1, SHIM_ON = 2 };
extern int shim_state;
extern __thread int shim_busy __attribute__((tls_model("initial-exec")));
extern mesa_vfs_t *shim_vfs;
extern const char *volatile shim_vcwd; /* virtual cwd, or NULL (immutable strings) */
extern char shim_prefix[256];
extern size_t shim_plen;

/* 1 if this process is in a mount (lazy, lock-free). */
int shim_init_state(void);
static inline int shim_on(void)
{
    if (__builtin_expect(shim_state == SHIM_OFF, 1))
        return 0;
    if (shim_state == SHIM_UNKNOWN)
        return shim_init_state();
    return !shim_busy;
}

/* Lock-free: 0 when path (relative to dirfd) certainly is not a mesa path. */
int shim_maybe(int dirfd, const char *path);

typedef struct shim_guard {
    sigset_t old;
} shim_guard_t;

/* Take the shim lock. 0, or -errno (the mount cannot be opened). */
int shim_lock(shim_guard_t *g);
void shim_unlock(shim_guard_t *g);

/* Under the lock: 1 and abs set if path (relative to dirfd) is under the
 * prefix, 0 if not, negative errno on a bad path. */
int shim_classify(int dirfd, const char *path, char *abs);

/* shim_maybe + lock + classify: 1 with the lock held and abs set, else 0
 * with the lock released (fall through to the real function). */
int shim_begin(int dirfd, const char *path, char *abs, shim_guard_t *g);
/* Release the lock; return rc as a libc call does (-1 + errno for < 0). */
long shim_end(long rc, shim_guard_t *g);
/* For descriptors: 1 with the lock held and *e set if fd is a mesa one. */
int shim_begin_fd(int fd, const mesa_fdent_t **e, shim_guard_t *g);

/* Run stmt on the descriptor table under the lock, when there is a table
 * (the bookkeeping of close, dup and friends). */
#define WITH_TABLE(stmt)                                                                           \
    do {                                                                                           \
        if (shim_state == SHIM_ON && !shim_busy && !mesa_fdtab_empty()) {                          \
            shim_guard_t g_;                                                                       \
            if (shim_lock(&g_) == 0) {                                                             \
                stmt;                                                                              \
                shim_unlock(&g_);                                                                  \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* Register a descriptor that core opened for a mount path. */
void shim_track(int fd, const char *abs, int is_dir);

/* The environment for a new program: envp plus the mount's variables
 * (LD_PRELOAD, LD_AUDIT, MESA_*, MESA_FDS). malloc'd array of malloc'd strings. */
char **shim_exec_env(char *const envp[]);
void shim_free_env(char **env);
/* shim/spawnfa.c: the errno of a file action on a mesa path that failed
 * when it was added (posix_spawn* returns it), or 0. */
int shim_spawn_fa_error(const posix_spawn_file_actions_t *fa);

/* Choose what vfork runs: fork in a mount, the real vfork otherwise. */
void shim_vfork_setup(int in_mount);

/* A mount variable as it was at start-up (MESA_MOUNT, MESA_TRAP, ...),
 * or NULL. */
const char *shim_mount_var(const char *name);

/* shim/trap.c: before the real execve of path, hand a statically linked
 * program to mesarun's seccomp supervisor (--trap-raw). Never fails. */
void shim_trap_exec(const char *path);
/* Does this mount trap static programs (MESA_TRAP)? */
int shim_trap_on(void);
/* posix_spawn of path: 1 if it is a static program to trap, with *out the
 * argv that runs it through the trampoline tramp (len bytes; *out
 * malloc'd, its strings borrowed from path, tramp and argv); else 0. */
int shim_trap_spawn(const char *path, char *const argv[], char ***out, char *tramp, size_t len);

/* The workspace path (mesarun --layout) of the canonical mount path
 * canon: out (outlen bytes), or canon itself when no layout mount holds it. */
const char *shim_unmap(const char *canon, char *out, size_t outlen);

/* A directory on the way to a nested layout mount point (/workspace/vendor
 * for /workspace/vendor/lib), given by its canonical path: the number of
 * mount points below it (0: not one), fn(ctx, name, len) for the next name
 * towards each (names may repeat). */
int shim_layout_below(const char *canon, void (*fn)(void *, const char *, size_t), void *ctx);
struct stat;
/* Lock held: stat of such a directory when its repo has none there (a
 * directory like the repo root's, with its own inode); else -ENOENT. */
int shim_layout_stat(const char *canon, struct stat *st);
/* Lock held: a descriptor on the placeholder of such a directory, or
 * -errno (-ENOENT: not one). */
int shim_layout_dirfd(const char *canon);
/* Lock held: before creating canon, make the directories on the way to a
 * nested mount point that its repo lacks (the parent of canon and above),
 * so that a file created in /workspace/vendor lands in app's vendor/. */
void shim_layout_prepare(const char *canon);

/* Called by the cwd wrappers when the virtual cwd changes. */
void shim_set_vcwd(const char *abs);

#endif
