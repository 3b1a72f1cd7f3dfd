/* tools/mesarun_trap.c - `mesarun --trap-raw`: serve the mount to programs
 * that bypass libc (DESIGN §6; issue "Programs that bypass libc").
 *
 * A statically linked program never loads the shim. When one is about to
 * be executed (shim/trap.c, or COMMAND itself here), the exec path installs
 * the filter built here (path-taking calls -> user notification, openat2
 * -> ENOSYS, everything else allowed) and sends the listener to the
 * supervisor thread of this file over $RUN/trap.sock. For each
 * notification the thread reads the path from the caller's memory, makes
 * it absolute against the caller's cwd or dirfd (placeholders and
 * snapshots map back to mount paths) and, under the prefix, answers from
 * its own mesa_vfs_t: open -> mesa_vfs_open and the descriptor injected
 * into the caller (SECCOMP_IOCTL_NOTIF_ADDFD, ADDFD_FLAG_SEND); a directory
 * -> a snapshot directory under $RUN/trap/<n>/ with the entries' names and
 * types, so getdents lists them; stat/lstat/newfstatat/statx/readlink/
 * getcwd -> the result written into the caller's memory; access, mkdir,
 * unlink, rmdir, rename -> a return value. Anything else continues
 * (SECCOMP_USER_NOTIF_FLAG_CONTINUE): the kernel does it as the caller.
 *
 * Time of check, time of use. The trap is for function, not confinement:
 *  - /proc/<pid>/mem is opened, then the notification id is checked
 *    (SECCOMP_IOCTL_NOTIF_ID_VALID): from then on the descriptor is the
 *    caller's memory even if the pid is reused. The path is read, the
 *    cwd/dirfd links are read, and the id is checked again: if the caller
 *    died meanwhile (its pid maybe reused) nothing read is trusted.
 *  - Another thread of the caller may change the path after we read it.
 *    For a CONTINUE that is harmless: the kernel reads the memory again
 *    and applies the caller's own checks (Landlock, permissions). For a
 *    call we answer, the caller gets the answer for the path as it was
 *    when we read it, within the mount's own rules: the same as if the
 *    thread had changed it a moment later.
 *  - mesarun is not confined. It opens only files that back mount files
 *    (blob cache, staging, local store, exec copies: checked after the
 *    open) and snapshot directories it made. A mount symlink that leads
 *    out of the mount is opened by a helper process that applies the
 *    sandbox's Landlock ruleset first (no_new_privs, same user): it can
 *    open exactly what the sandboxed caller could. stat, access and
 *    readlink of such a target are made by mesarun (the sandbox does not
 *    restrict them).
 *  - A caller killed mid-call: every ioctl then fails with ENOENT and is
 *    ignored; a descriptor not injected is closed here.
 * vfs is not thread-safe: only this thread uses its mesa_vfs_t.
 */
#include "config.h"
#include "mesarun_trap.h"
#include "fsutil.h"
#include "mesarun.h"
#include "mesarun_sandbox.h"
#include "path.h"
#include "trap.h"
#include "vfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_MINE 8

/* Linux 6.6: wake the caller on the supervisor's CPU (the two run in
 * lockstep); newer than the build's headers maybe. Best effort. */
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

enum { E_CONN = 1, E_LISTENER = 2 };

struct mr_trap {
    int all, verbose;
    uint32_t arch; /* the native AUDIT_ARCH_*: other ABIs continue */
    char run[PATH_MAX], sock[PATH_MAX], snaps[PATH_MAX];
    struct sock_fprog prog;
    int lsock;   /* listening on sock */
    int stop[2]; /* a pipe that ends the thread */
    pthread_t thread;
    int running;
    /* the thread's */
    mesa_vfs_t *vfs;
    char prefix[256];
    char mine[MAX_MINE][PATH_MAX];
    size_t nmine;
    int ruleset;
    unsigned long snapseq;
    struct pollfd *pfd; /* [0] stop, [1] lsock, then connections and listeners */
    int *kind;
    size_t n, cap;
    struct seccomp_notif *req;
    struct seccomp_notif_resp *resp;
    mesa_vnode_t node; /* scratch (large) */
};

/* The path-taking calls the filter sends here. */
static const char *const trapped[] = {
    "open",    "creat",     "openat",     "stat",     "lstat",      "newfstatat", "statx",
    "access",  "faccessat", "faccessat2", "readlink", "readlinkat", "getcwd",     "mkdir",
    "mkdirat", "unlink",    "unlinkat",   "rmdir",    "rename",     "renameat",   "renameat2",
};

static int fail(char *err, size_t n, int rc, const char *what)
{
    snprintf(err, n, "%s: %s", what, strerror(-rc));
    return rc;
}

/* ------------------------------------------------------------ set-up */

int mr_trap_available(void)
{
    uint32_t action = SECCOMP_RET_USER_NOTIF;
    struct seccomp_notif_sizes sz;
    return syscall(__NR_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0 &&
           syscall(__NR_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sz) == 0;
}

static int add_rules(scmp_filter_ctx ctx)
{
    int rc;
    for (size_t i = 0; i < sizeof trapped / sizeof trapped[0]; i++) {
        int nr = seccomp_syscall_resolve_name(trapped[i]);
        if (nr < 0)
            continue; /* not on this architecture (open, stat... on arm64) */
        if ((rc = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, nr, 0)) < 0)
            return rc;
    }
    int nr = seccomp_syscall_resolve_name("openat2"); /* its how is behind a pointer */
    if (nr >= 0 && (rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0)) < 0)
        return rc;
    return 0;
}

/* Build the filter into the file bpf (mode 0444). */
static int export_filter(const char *bpf)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    int rc, fd = -1;
    if (!ctx)
        return -ENOMEM;
    /* no_new_privs is the hand-off's job; other ABIs (i386) are not trapped */
    if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)) < 0 ||
        (rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ALLOW)) < 0 ||
        (rc = add_rules(ctx)) < 0)
        goto out;
    if ((fd = open(bpf, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444)) < 0) {
        rc = -errno;
        goto out;
    }
    rc = seccomp_export_bpf(ctx, fd);
out:
    if (fd >= 0)
        close(fd);
    seccomp_release(ctx);
    return rc;
}

static int listen_on(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof a.sun_path)
        return -ENAMETOOLONG;
    strcpy(a.sun_path, path);
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0)
        return -errno;
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 128) < 0) {
        int e = errno;
        close(s);
        return -e;
    }
    return s;
}

int mr_trap_prepare(const char *run, int all, int verbose, char *sock, mr_trap_t **out, char *err,
                    size_t errlen)
{
    mr_trap_t *t = calloc(1, sizeof *t);
    char bpf[PATH_MAX];
    int rc;
    if (!t)
        return fail(err, errlen, -ENOMEM, "trap");
    t->lsock = t->stop[0] = t->stop[1] = t->ruleset = -1;
    t->all = all;
    t->verbose = verbose;
    snprintf(t->run, sizeof t->run, "%s", run);
    if (snprintf(t->sock, sizeof t->sock, "%s/trap.sock", run) >= (int)sizeof t->sock ||
        snprintf(bpf, sizeof bpf, "%s/%s", run, MESA_TRAP_BPF) >= (int)sizeof bpf ||
        snprintf(t->snaps, sizeof t->snaps, "%s/trap", run) >= (int)sizeof t->snaps) {
        rc = fail(err, errlen, -ENAMETOOLONG, run);
        goto bad;
    }
    if ((rc = export_filter(bpf)) < 0 || (rc = mesa_trap_load(bpf, &t->prog)) < 0) {
        fail(err, errlen, rc, "the seccomp filter");
        goto bad;
    }
    if ((t->lsock = listen_on(t->sock)) < 0) {
        rc = fail(err, errlen, t->lsock, t->sock);
        goto bad;
    }
    snprintf(sock, PATH_MAX, "%s", t->sock);
    *out = t;
    return 0;
bad:
    mr_trap_free(t);
    return rc;
}

/* A path search as execvpe makes it: the first executable candidate. */
static int find_command(const char *argv0, const char *kcwd, char *out, size_t len)
{
    if (strchr(argv0, '/')) {
        int n = argv0[0] == '/' ? snprintf(out, len, "%s", argv0)
                                : snprintf(out, len, "%s/%s", kcwd, argv0);
        return n > 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
    }
    const char *p = getenv("PATH");
    for (p = p ? p : "/bin:/usr/bin"; p;) {
        const char *end = strchrnul(p, ':');
        int n = end == p ? snprintf(out, len, "%s/%s", kcwd, argv0)
                         : snprintf(out, len, "%.*s/%s", (int)(end - p), p, argv0);
        if (n > 0 && (size_t)n < len && access(out, X_OK) == 0)
            return 0;
        p = *end ? end + 1 : NULL;
    }
    return -ENOENT;
}

int mr_trap_wants(const mr_trap_t *t, const char *argv0, const char *kcwd)
{
    char path[PATH_MAX];
    if (!t)
        return 0;
    if (t->all)
        return 1;
    return find_command(argv0, kcwd, path, sizeof path) == 0 && mesa_trap_is_static(path);
}

void mr_trap_apply(const mr_trap_t *t)
{
    static const char msg[] = "mesarun: --trap-raw: cannot trap COMMAND: it runs without "
                              "the mount for raw system calls\n";
    int installed;
    if (mesa_trap_handoff(t->sock, &t->prog, &installed) < 0)
        (void)!write(2, msg, sizeof msg - 1);
}

/* ------------------------------------------------------------ one call */

typedef struct call {
    mr_trap_t *t;
    int lfd; /* the listener */
    struct seccomp_notif *req;
    int mem; /* /proc/<pid>/mem */
    int answered;
} call_t;

static void respond(call_t *c, int64_t val, int err, uint32_t flags)
{
    struct seccomp_notif_resp *r = c->t->resp;
    memset(r, 0, sizeof *r);
    r->id = c->req->id;
    r->val = val;
    r->error = err;
    r->flags = flags;
    ioctl(c->lfd, SECCOMP_IOCTL_NOTIF_SEND, r); /* ENOENT: the caller is gone */
    c->answered = 1;
}

/* Answer rc: >= 0 a value, < 0 an errno. */
static void reply(call_t *c, long rc)
{
    respond(c, rc < 0 ? 0 : rc, rc < 0 ? (int)rc : 0, 0);
}

static void cont(call_t *c)
{
    respond(c, 0, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE);
}

static int id_valid(call_t *c)
{
    uint64_t id = c->req->id;
    return ioctl(c->lfd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

/* A NUL-terminated string at addr in the caller (at most PATH_MAX bytes,
 * read up to page boundaries so a string at the end of a mapping reads). */
static int read_str(call_t *c, uint64_t addr, char *out)
{
    size_t got = 0, page = 4096;
    while (got < PATH_MAX) {
        size_t chunk = page - (size_t)((addr + got) % page);
        if (chunk > PATH_MAX - got)
            chunk = PATH_MAX - got;
        ssize_t n = pread(c->mem, out + got, chunk, (off_t)(addr + got));
        if (n <= 0)
            return -EFAULT;
        char *z = memchr(out + got, '\0', (size_t)n);
        if (z)
            return 0;
        got += (size_t)n;
    }
    return -ENAMETOOLONG;
}

static int put(call_t *c, uint64_t addr, const void *buf, size_t len)
{
    if (!id_valid(c))
        return -ESRCH;
    return pwrite(c->mem, buf, len, (off_t)addr) == (ssize_t)len ? 0 : -EFAULT;
}

/* readlink of /proc/<pid>/<what> into out. */
static int proc_link(pid_t pid, const char *what, char *out, size_t len)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/%s", (int)pid, what);
    ssize_t n = readlink(p, out, len - 1);
    if (n < 0)
        return -errno;
    out[n] = '\0';
    return 0;
}

/* ------------------------------------------------------------ paths */

static int starts_dir(const char *s, const char *dir, size_t *len)
{
    size_t l = strlen(dir);
    *len = l;
    return strncmp(s, dir, l) == 0 && (s[l] == '/' || s[l] == '\0');
}

/* A snapshot directory ($RUN/trap/<n>/org/repo/...) as its mount path. */
static int from_snapshot(const mr_trap_t *t, const char *real, char *out, size_t len)
{
    size_t l;
    if (!starts_dir(real, t->snaps, &l) || real[l] != '/')
        return -ENOENT;
    const char *p = real + l + 1, *q = p;
    while (*q >= '0' && *q <= '9')
        q++;
    if (q == p || (*q != '/' && *q != '\0'))
        return -ENOENT;
    int n = snprintf(out, len, "%s%s", t->prefix, q);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* A real directory of ours as the mount directory it stands for. */
static int mount_of_real(const mr_trap_t *t, const char *real, char *out, size_t len)
{
    if (mesa_vfs_from_placeholder(t->vfs, real, out, len) == 0)
        return 0;
    return from_snapshot(t, real, out, len);
}

/* Can an absolute path name something under the prefix? */
static int maybe_mount(const mr_trap_t *t, const char *p)
{
    size_t l;
    return starts_dir(p, t->prefix, &l) || p[1] == '/' || strstr(p, "/..") || strstr(p, "/./");
}

/* The directory a relative path starts from (mount path when it is one). */
static int base_dir(call_t *c, int dirfd, char *out, size_t len, int *in_mount)
{
    char real[PATH_MAX], what[32];
    if (dirfd == AT_FDCWD)
        snprintf(what, sizeof what, "cwd");
    else
        snprintf(what, sizeof what, "fd/%d", dirfd);
    int rc = proc_link((pid_t)c->req->pid, what, real, sizeof real);
    if (rc < 0)
        return rc;
    *in_mount = mount_of_real(c->t, real, out, len) == 0;
    if (!*in_mount)
        snprintf(out, len, "%s", real);
    return 0;
}

/* The caller's path (dirfd, addr) as an absolute mount path in abs: 1 if
 * it is under the prefix, 0 if not (continue), or -errno to answer. */
static int resolve(call_t *c, int dirfd, uint64_t addr, char *abs)
{
    char path[PATH_MAX], base[PATH_MAX];
    const char *cwd = "/";
    int in_mount = 0, rc = read_str(c, addr, path);
    if (rc < 0)
        return rc;
    if (!path[0] || (path[0] == '/' && !maybe_mount(c->t, path)))
        return 0; /* AT_EMPTY_PATH and the like: the kernel's */
    if (path[0] != '/') {
        if (base_dir(c, dirfd, base, sizeof base, &in_mount) < 0)
            return 0; /* a bad dirfd: the kernel says EBADF */
        cwd = base;
    }
    if (!id_valid(c))
        return -ESRCH; /* the caller is gone: nothing read is trusted */
    rc = mesa_vfs_normalize(c->t->vfs, cwd, path, abs, MESA_PATH_MAX);
    if (rc < 0) {
        size_t l;
        return in_mount || starts_dir(path, c->t->prefix, &l) ? rc : 0;
    }
    return mesa_path_under(c->t->prefix, abs);
}

/* ------------------------------------------------------------ open */

/* Is fd a file that backs a mount file (in one of our directories)? */
static int backed(const mr_trap_t *t, int fd)
{
    char real[PATH_MAX];
    size_t l;
    char what[32];
    snprintf(what, sizeof what, "fd/%d", fd);
    if (proc_link(getpid(), what, real, sizeof real) < 0)
        return 0;
    for (size_t i = 0; i < t->nmine; i++)
        if (starts_dir(real, t->mine[i], &l))
            return 1;
    return 0;
}

static int recv_result(int s)
{
    int val = -EIO, fd;
    int got = mesa_recv_int_fd(s, 0, &val, &fd);
    return fd >= 0 ? fd : got && val < 0 ? val : -EIO;
}

/* Open a path outside the mount (a mount symlink's target) as the caller
 * could: in a child under no_new_privs and the sandbox's Landlock ruleset.
 * The child makes system calls only (we are a threaded process). */
static int outside_open(const mr_trap_t *t, const char *path, int flags, mode_t mode)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    pid_t p = fork();
    if (p == 0) {
        int fd = -EPERM;
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
            (t->ruleset < 0 || syscall(__NR_landlock_restrict_self, t->ruleset, 0) == 0))
            fd = open(path, flags | O_CLOEXEC, mode);
        (void)!mesa_send_int_fd(sv[1], fd < 0 ? -errno : 0, fd); /* the fd, or -errno */
        _exit(0);
    }
    close(sv[1]);
    int fd = p < 0 ? -errno : recv_result(sv[0]);
    close(sv[0]);
    if (p > 0)
        while (waitpid(p, NULL, 0) < 0 && errno == EINTR)
            ;
    return fd;
}

/* Make the snapshot's entry for d (in directory dir, mount path mpath). */
static void snap_entry(mr_trap_t *t, int dir, const char *mpath, const mesa_dirent_t *d)
{
    char child[MESA_PATH_MAX], target[PATH_MAX];
    if (d->type == DT_DIR) {
        mkdirat(dir, d->name, 0755);
    } else if (d->type == DT_LNK) {
        int n = snprintf(child, sizeof child, "%s/%s", mpath, d->name);
        int l = n > 0 && (size_t)n < sizeof child
                    ? mesa_vfs_readlink(t->vfs, child, target, sizeof target - 1)
                    : -1;
        /* the target is for show (calls relative to the snapshot are
         * trapped and answered from the mount): a link that cannot be
         * read now is still listed as one */
        if (l > 0)
            target[l] = '\0';
        else
            strcpy(target, "?");
        symlinkat(target, dir, d->name);
    } else {
        int fd = openat(dir, d->name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0)
            close(fd);
    }
}

/* A new snapshot of mount directory mpath: $RUN/trap/<n><path below the
 * prefix>, with an empty entry of the right type per name. Its
 * descriptor, opened with the caller's O_CLOEXEC/O_PATH. */
static int snapshot(mr_trap_t *t, const char *mpath, int flags)
{
    char dir[PATH_MAX];
    mesa_dirent_t *ents = NULL;
    size_t n = 0;
    int rc = mesa_vfs_list(t->vfs, mpath, &ents, &n);
    if (rc < 0)
        return rc;
    int len =
        snprintf(dir, sizeof dir, "%s/%lu%s", t->snaps, ++t->snapseq, mpath + strlen(t->prefix));
    if (len < 0 || (size_t)len >= sizeof dir)
        rc = -ENAMETOOLONG;
    else
        rc = mesa_mkdirs(dir, 0755);
    int dfd = rc < 0 ? rc : open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rc == 0 && dfd < 0)
        rc = -errno;
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (strcmp(ents[i].name, ".") != 0 && strcmp(ents[i].name, "..") != 0)
            snap_entry(t, dfd, mpath, &ents[i]);
    mesa_vfs_list_free(ents, n);
    if (dfd >= 0)
        close(dfd);
    if (rc < 0)
        return rc;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (flags & O_PATH));
    return fd < 0 ? -errno : fd;
}

/* Put fd into the caller as the call's result (with its O_CLOEXEC). */
static void inject(call_t *c, int fd, int flags)
{
    struct seccomp_notif_addfd a = {.id = c->req->id,
                                    .flags = SECCOMP_ADDFD_FLAG_SEND,
                                    .srcfd = (uint32_t)fd,
                                    .newfd_flags = (uint32_t)(flags & O_CLOEXEC)};
    if (ioctl(c->lfd, SECCOMP_IOCTL_NOTIF_ADDFD, &a) >= 0 || errno == ENOENT)
        c->answered = 1;
    else
        reply(c, -errno); /* EMFILE: the caller's table is full */
    close(fd);
}

static int open_follows(int flags)
{
    return !(flags & O_NOFOLLOW) && (flags & (O_CREAT | O_EXCL)) != (O_CREAT | O_EXCL);
}

static int open_mount(mr_trap_t *t, const char *abs, int flags, mode_t mode)
{
    mesa_vnode_t *n = &t->node;
    int is_dir = 0, rc = mesa_vfs_lookup(t->vfs, abs, open_follows(flags), n);
    if (rc == -EXDEV)
        return outside_open(t, n->path, flags, mode);
    if (rc == 0 && S_ISDIR(n->mode) && (flags & (O_CREAT | O_ACCMODE)) == O_RDONLY)
        return snapshot(t, n->path, flags);
    int fd = mesa_vfs_open(t->vfs, abs, flags, mode, &is_dir);
    if (fd >= 0 && is_dir) {
        close(fd);
        return snapshot(t, abs, flags);
    }
    if (fd >= 0 && !backed(t, fd)) { /* changed under us into something else */
        close(fd);
        return -EAGAIN;
    }
    return fd;
}

/* ------------------------------------------------------------ answers */

typedef struct op {
    int dirfd, dirfd2;
    uint64_t path, path2, buf, size;
    int flags;
    uint32_t mode;
} op_t;

static void stat_to_statx(const struct stat *st, struct statx *sx)
{
    memset(sx, 0, sizeof *sx);
    sx->stx_mask = STATX_BASIC_STATS;
    sx->stx_blksize = (uint32_t)st->st_blksize;
    sx->stx_nlink = (uint32_t)st->st_nlink;
    sx->stx_uid = st->st_uid;
    sx->stx_gid = st->st_gid;
    sx->stx_mode = (uint16_t)st->st_mode;
    sx->stx_ino = st->st_ino;
    sx->stx_size = (uint64_t)st->st_size;
    sx->stx_blocks = (uint64_t)st->st_blocks;
    sx->stx_atime = (struct statx_timestamp){st->st_atim.tv_sec, (uint32_t)st->st_atim.tv_nsec, 0};
    sx->stx_mtime = (struct statx_timestamp){st->st_mtim.tv_sec, (uint32_t)st->st_mtim.tv_nsec, 0};
    sx->stx_ctime = (struct statx_timestamp){st->st_ctim.tv_sec, (uint32_t)st->st_ctim.tv_nsec, 0};
    sx->stx_rdev_major = major(st->st_rdev);
    sx->stx_rdev_minor = minor(st->st_rdev);
    sx->stx_dev_major = major(st->st_dev);
    sx->stx_dev_minor = minor(st->st_dev);
}

/* stat of abs (follow or not) as the mount answers it. */
static int stat_mount(mr_trap_t *t, const char *abs, int follow, struct stat *st)
{
    mesa_vnode_t *n = &t->node;
    int rc = mesa_vfs_lookup(t->vfs, abs, follow, n);
    if (rc == -EXDEV) /* the target of a symlink out of the mount */
        return fstatat(AT_FDCWD, n->path, st, follow ? 0 : AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
    return rc < 0 ? rc : mesa_vfs_stat(t->vfs, n, st);
}

static long do_stat(call_t *c, const char *abs, const op_t *o, int is_statx)
{
    struct stat st;
    struct statx sx;
    int rc = stat_mount(c->t, abs, !(o->flags & AT_SYMLINK_NOFOLLOW), &st);
    if (rc < 0)
        return rc;
    if (!is_statx)
        return put(c, o->buf, &st, sizeof st);
    stat_to_statx(&st, &sx);
    return put(c, o->buf, &sx, sizeof sx);
}

static long do_access(call_t *c, const char *abs, const op_t *o)
{
    mesa_vnode_t *n = &c->t->node;
    int follow = !(o->flags & AT_SYMLINK_NOFOLLOW);
    if (mesa_vfs_lookup(c->t->vfs, abs, follow, n) == -EXDEV)
        return faccessat(AT_FDCWD, n->path, (int)o->mode, 0) < 0 ? -errno : 0;
    return mesa_vfs_access(c->t->vfs, abs, (int)o->mode, follow);
}

static long do_readlink(call_t *c, const char *abs, const op_t *o)
{
    char buf[PATH_MAX];
    if ((int64_t)o->size <= 0)
        return -EINVAL;
    size_t len = o->size < sizeof buf ? (size_t)o->size : sizeof buf;
    int rc = mesa_vfs_readlink(c->t->vfs, abs, buf, len);
    if (rc == -EXDEV && mesa_vfs_lookup(c->t->vfs, abs, 0, &c->t->node) == -EXDEV) {
        ssize_t r = readlink(c->t->node.path, buf, len);
        rc = r < 0 ? -errno : (int)r;
    }
    if (rc < 0)
        return rc;
    int w = put(c, o->buf, buf, (size_t)rc);
    return w < 0 ? w : rc;
}

static void do_getcwd(call_t *c, const op_t *o)
{
    char real[PATH_MAX], abs[MESA_PATH_MAX];
    if (proc_link((pid_t)c->req->pid, "cwd", real, sizeof real) < 0 ||
        mount_of_real(c->t, real, abs, sizeof abs) < 0 || !id_valid(c)) {
        cont(c);
        return;
    }
    size_t len = strlen(abs) + 1;
    int rc = len > o->size ? -ERANGE : put(c, o->buf, abs, len);
    reply(c, rc < 0 ? rc : (long)len);
}

/* rename, renameat, renameat2: both paths in the mount, or neither. */
static void do_rename(call_t *c, const op_t *o)
{
    char a1[MESA_PATH_MAX], a2[MESA_PATH_MAX];
    int r1 = resolve(c, o->dirfd, o->path, a1);
    int r2 = r1 < 0 ? 0 : resolve(c, o->dirfd2, o->path2, a2);
    if (r1 < 0 || r2 < 0)
        reply(c, r1 < 0 ? r1 : r2);
    else if (!r1 && !r2)
        cont(c);
    else if (!r1 || !r2)
        reply(c, -EXDEV);
    else
        reply(c, mesa_vfs_rename(c->t->vfs, a1, a2, (unsigned)o->flags));
}

enum kind {
    K_OPEN,
    K_STAT,
    K_STATX,
    K_ACCESS,
    K_READLINK,
    K_GETCWD,
    K_MKDIR,
    K_UNLINK,
    K_RMDIR,
    K_RENAME,
    K_NONE
};

/* Where a call keeps its arguments: argument numbers plus one (0: none),
 * so that a designated initializer leaves out what a call lacks. */
#define ARG(n) ((n) + 1)
static const struct shape {
    long nr;
    enum kind kind;
    signed char dirfd, path, dirfd2, path2, flags, mode, buf, size;
    int fixed; /* flags implied by the call (creat, lstat) */
} shapes[] = {
#ifdef __NR_open
    {__NR_open, K_OPEN, .path = ARG(0), .flags = ARG(1), .mode = ARG(2)},
    {__NR_creat, K_OPEN, .path = ARG(0), .mode = ARG(1), .fixed = O_CREAT | O_WRONLY | O_TRUNC},
    {__NR_stat, K_STAT, .path = ARG(0), .buf = ARG(1)},
    {__NR_lstat, K_STAT, .path = ARG(0), .buf = ARG(1), .fixed = AT_SYMLINK_NOFOLLOW},
    {__NR_access, K_ACCESS, .path = ARG(0), .mode = ARG(1)},
    {__NR_readlink, K_READLINK, .path = ARG(0), .buf = ARG(1), .size = ARG(2)},
    {__NR_mkdir, K_MKDIR, .path = ARG(0), .mode = ARG(1)},
    {__NR_unlink, K_UNLINK, .path = ARG(0)},
    {__NR_rmdir, K_RMDIR, .path = ARG(0)},
    {__NR_rename, K_RENAME, .path = ARG(0), .path2 = ARG(1)},
#endif
    {__NR_openat, K_OPEN, .dirfd = ARG(0), .path = ARG(1), .flags = ARG(2), .mode = ARG(3)},
    {__NR_newfstatat, K_STAT, .dirfd = ARG(0), .path = ARG(1), .buf = ARG(2), .flags = ARG(3)},
    {__NR_statx, K_STATX, .dirfd = ARG(0), .path = ARG(1), .flags = ARG(2), .buf = ARG(4)},
    {__NR_faccessat, K_ACCESS, .dirfd = ARG(0), .path = ARG(1), .mode = ARG(2)},
    {__NR_faccessat2, K_ACCESS, .dirfd = ARG(0), .path = ARG(1), .mode = ARG(2), .flags = ARG(3)},
    {__NR_readlinkat, K_READLINK, .dirfd = ARG(0), .path = ARG(1), .buf = ARG(2), .size = ARG(3)},
    {__NR_getcwd, K_GETCWD, .buf = ARG(0), .size = ARG(1)},
    {__NR_mkdirat, K_MKDIR, .dirfd = ARG(0), .path = ARG(1), .mode = ARG(2)},
    {__NR_unlinkat, K_UNLINK, .dirfd = ARG(0), .path = ARG(1), .flags = ARG(2)},
    {__NR_renameat, K_RENAME, .dirfd = ARG(0), .path = ARG(1), .dirfd2 = ARG(2), .path2 = ARG(3)},
    {__NR_renameat2, K_RENAME, .dirfd = ARG(0), .path = ARG(1), .dirfd2 = ARG(2), .path2 = ARG(3),
     .flags = ARG(4)},
};

/* Argument a (ARG-numbered) of the call, or dflt without one. */
static uint64_t arg(const struct seccomp_data *d, signed char a, uint64_t dflt)
{
    return a > 0 ? d->args[a - 1] : dflt;
}

/* The call's arguments in one shape. */
static enum kind decode(const struct seccomp_data *d, op_t *o)
{
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const struct shape *s = &shapes[i];
        if (s->nr != d->nr)
            continue;
        o->dirfd = (int)arg(d, s->dirfd, (uint64_t)AT_FDCWD);
        o->dirfd2 = (int)arg(d, s->dirfd2, (uint64_t)AT_FDCWD);
        o->path = arg(d, s->path, 0);
        o->path2 = arg(d, s->path2, 0);
        o->flags = (int)arg(d, s->flags, 0) | s->fixed;
        o->mode = (uint32_t)arg(d, s->mode, 0);
        o->buf = arg(d, s->buf, 0);
        o->size = arg(d, s->size, 0);
        return s->kind == K_UNLINK && (o->flags & AT_REMOVEDIR) ? K_RMDIR : s->kind;
    }
    return K_NONE;
}

/* A call on one path under the prefix (abs). */
static void answer_path(call_t *c, enum kind k, const op_t *o, const char *abs)
{
    mr_trap_t *t = c->t;
    int fd;
    switch (k) {
    case K_OPEN:
        if ((fd = open_mount(t, abs, o->flags, (mode_t)o->mode)) < 0)
            reply(c, fd);
        else
            inject(c, fd, o->flags);
        return;
    case K_STAT:
    case K_STATX:
        reply(c, do_stat(c, abs, o, k == K_STATX));
        return;
    case K_ACCESS:
        reply(c, do_access(c, abs, o));
        return;
    case K_READLINK:
        reply(c, do_readlink(c, abs, o));
        return;
    case K_MKDIR:
        reply(c, mesa_vfs_mkdir(t->vfs, abs, (mode_t)(o->mode & 07777)));
        return;
    case K_UNLINK:
        reply(c, mesa_vfs_unlink(t->vfs, abs));
        return;
    case K_RMDIR:
        reply(c, mesa_vfs_rmdir(t->vfs, abs));
        return;
    default:
        cont(c);
    }
}

static void answer(call_t *c)
{
    op_t o;
    char abs[MESA_PATH_MAX];
    enum kind k = c->req->data.arch == c->t->arch ? decode(&c->req->data, &o) : K_NONE;
    if (k == K_NONE) {
        cont(c);
        return;
    }
    if (k == K_GETCWD) {
        do_getcwd(c, &o);
        return;
    }
    if (k == K_RENAME) {
        do_rename(c, &o);
        return;
    }
    int rc = resolve(c, o.dirfd, o.path, abs);
    if (rc == 1)
        answer_path(c, k, &o, abs);
    else if (rc == 0)
        cont(c);
    else
        reply(c, rc);
}

/* One notification from listener lfd. */
static void handle(mr_trap_t *t, int lfd)
{
    char mem[64];
    call_t c = {.t = t, .lfd = lfd, .req = t->req, .mem = -1};
    memset(t->req, 0, sizeof *t->req);
    if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_RECV, t->req) < 0)
        return; /* ENOENT: the caller was killed meanwhile */
    snprintf(mem, sizeof mem, "/proc/%u/mem", t->req->pid);
    c.mem = open(mem, O_RDWR | O_CLOEXEC);
    if (c.mem < 0 || !id_valid(&c)) {
        if (c.mem < 0 && id_valid(&c))
            cont(&c); /* cannot read it: the kernel answers as without us */
    } else {
        answer(&c);
    }
    if (!c.answered && id_valid(&c))
        cont(&c);
    if (c.mem >= 0)
        close(c.mem);
}

/* ------------------------------------------------------------ thread */

static int add_entry(mr_trap_t *t, int fd, int kind)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct pollfd *p = realloc(t->pfd, cap * sizeof *p);
        if (p)
            t->pfd = p;
        int *k = p ? realloc(t->kind, cap * sizeof *k) : NULL;
        if (!k) {
            close(fd);
            return -ENOMEM;
        }
        t->kind = k;
        t->cap = cap;
    }
    t->pfd[t->n] = (struct pollfd){.fd = fd, .events = POLLIN};
    t->kind[t->n++] = kind;
    return 0;
}

static void drop_entry(mr_trap_t *t, size_t i)
{
    close(t->pfd[i].fd);
    t->pfd[i] = t->pfd[t->n - 1];
    t->kind[i] = t->kind[t->n - 1];
    t->n--;
}

/* A connection's message: the listener (and the sender's pid). */
static void take_listener(mr_trap_t *t, int conn)
{
    int pid = 0, fd;
    if (!mesa_recv_int_fd(conn, MSG_DONTWAIT, &pid, &fd) || fd < 0)
        return;
    ioctl(fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
    if (t->verbose)
        fprintf(stderr, "mesarun: trap: serving the raw system calls of pid %d\n", pid);
    add_entry(t, fd, E_LISTENER);
}

static void accept_all(mr_trap_t *t)
{
    int s;
    while ((s = accept4(t->pfd[1].fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0)
        add_entry(t, s, E_CONN);
}

/* Events on entry i (>= 2). 1 if the entry was dropped. */
static int service(mr_trap_t *t, size_t i)
{
    short ev = t->pfd[i].revents;
    if (t->kind[i] == E_CONN) {
        if (ev & POLLIN)
            take_listener(t, t->pfd[i].fd);
        if (ev) /* one message per connection */
            drop_entry(t, i);
        return ev != 0;
    }
    if (ev & POLLIN)
        handle(t, t->pfd[i].fd);
    if (ev & (POLLHUP | POLLERR | POLLNVAL)) { /* no process uses the filter any more */
        drop_entry(t, i);
        return 1;
    }
    return 0;
}

static void *supervise(void *arg)
{
    mr_trap_t *t = arg;
    for (;;) {
        for (size_t i = 0; i < t->n; i++)
            t->pfd[i].revents = 0;
        if (poll(t->pfd, t->n, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (t->pfd[0].revents)
            break;
        if (t->pfd[1].revents & POLLIN)
            accept_all(t);
        for (size_t i = 2; i < t->n;)
            if (!service(t, i))
                i++;
    }
    return NULL;
}

/* The getter over COMMAND's environment (one supervisor per process). */
static char **trap_envp;

static const char *env_get(const char *name)
{
    size_t l = strlen(name);
    for (char **e = trap_envp; e && *e; e++)
        if (strncmp(*e, name, l) == 0 && (*e)[l] == '=')
            return *e + l + 1;
    return NULL;
}

int mr_trap_start(mr_trap_t *t, const mr_trap_conf_t *c)
{
    trap_envp = c->envp;
    if (!(t->vfs = mesa_vfs_open_env(env_get)))
        return -EIO;
    snprintf(t->prefix, sizeof t->prefix, "%s", mesa_vfs_prefix(t->vfs));
    for (size_t i = 0; i < c->nmine && t->nmine < MAX_MINE; i++)
        if (c->mine[i] && c->mine[i][0] && realpath(c->mine[i], t->mine[t->nmine]))
            t->nmine++;
    t->ruleset = c->ruleset;
    t->arch = seccomp_arch_native();
    if (seccomp_notify_alloc(&t->req, &t->resp) < 0)
        return -ENOMEM;
    if (pipe2(t->stop, O_CLOEXEC) < 0)
        return -errno;
    if (add_entry(t, t->stop[0], 0) < 0 || add_entry(t, t->lsock, 0) < 0)
        return -ENOMEM;
    t->stop[0] = t->lsock = -1; /* owned by the poll set now */
    int rc = pthread_create(&t->thread, NULL, supervise, t);
    if (rc != 0)
        return -rc;
    t->running = 1;
    return 0;
}

void mr_trap_free(mr_trap_t *t)
{
    if (!t)
        return;
    if (t->running) {
        (void)!write(t->stop[1], "x", 1);
        pthread_join(t->thread, NULL);
    }
    for (size_t i = 0; i < t->n; i++)
        close(t->pfd[i].fd);
    int fds[] = {t->lsock, t->stop[0], t->stop[1]};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (t->sock[0])
        unlink(t->sock);
    if (t->vfs)
        mesa_vfs_close(t->vfs);
    if (t->req)
        seccomp_notify_free(t->req, t->resp);
    free(t->pfd);
    free(t->kind);
    free(t->prog.filter);
    free(t);
}

/* ------------------------------------------------------------ mesarun */

/* Which trapping this run gets: 0 none, 1 static programs, 2 all. Under
 * --sandbox -v the sandbox's listener (refused calls logged) is the one a
 * process may have: static programs are not trapped unless --trap-raw
 * says so (then refusals are not logged). */
static int trap_mode(const mr_t *m)
{
    if (m->o.trap_raw)
        return m->o.trap_raw;
    if (!m->o.sandbox)
        return 0;
    if (m->o.verbose) {
        mr_log(NULL, "sandbox: -v logs refused calls through the one seccomp listener a "
                     "process may have: static programs are not trapped (add --trap-raw)");
        return 0;
    }
    return mr_trap_available() ? 1 : 0;
}

/* posix_spawn runs its exec inside glibc, where the shim cannot install
 * the filter: the shim spawns $RUN/trap-exec (a link to mesafs-trapexec)
 * instead, whose execve it does see. Without the helper, say so (-v). */
static void link_trapexec(mr_t *m)
{
    char helper[PATH_MAX], link[PATH_MAX];
    if (mr_find_helper(MESA_TRAP_EXEC_NAME, helper) < 0) {
        if (m->o.verbose)
            mr_log(NULL, "no " MESA_TRAP_EXEC_NAME ": a static program started by "
                         "posix_spawn is not trapped");
        return;
    }
    if (mr_path(link, "%s/%s", m->run, MESA_TRAP_EXEC) == 0 && symlink(helper, link) < 0 &&
        m->o.verbose)
        mr_log(NULL, "cannot link " MESA_TRAP_EXEC ": a static program started by posix_spawn "
                     "is not trapped");
}

int mr_trap_setup(mr_t *m)
{
    char err[PATH_MAX + 100], sock[PATH_MAX];
    int mode = trap_mode(m);
    if (m->o.sandbox && !m->o.trap_raw && m->o.verbose && !mr_trap_available())
        mr_log(NULL, "sandbox: this kernel has no seccomp user notification: static programs "
                     "see no mount");
    if (!mode)
        return 0;
    if (mr_trap_prepare(m->run, mode == 2, m->o.verbose, sock, &m->trap, err, sizeof err) < 0) {
        if (m->o.trap_raw)
            return mr_fail("--trap-raw: %s", err);
        mr_log(NULL, "warning: static programs see no mount:");
        mr_log(NULL, err);
        return 0;
    }
    if (mode == 1) { /* with =all, COMMAND is trapped and everything inherits */
        snprintf(m->trap_sock, sizeof m->trap_sock, "%s", sock);
        link_trapexec(m);
    }
    return 0;
}

int mr_trap_begin(mr_t *m)
{
    if (!m->trap)
        return 0;
    const char *mine[] = {m->run, m->cache, m->memdir, m->execdir};
    mr_trap_conf_t c = {.envp = m->envp,
                        .mine = mine,
                        .nmine = 4,
                        .ruleset = m->sandbox ? mr_sandbox_ruleset(m->sandbox) : -1};
    int rc = mr_trap_start(m->trap, &c);
    if (rc == 0)
        return 0;
    fprintf(stderr, "mesarun: --trap-raw: cannot start the supervisor: %s\n", strerror(-rc));
    mr_trap_free(m->trap);
    m->trap = NULL;
    return m->o.trap_raw ? -rc : 0;
}
