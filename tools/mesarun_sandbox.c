/* tools/mesarun_sandbox.c - `mesarun --sandbox`: confine COMMAND and every
 * descendant (DESIGN §7; issue "Sandboxed agent executions").
 *
 *   seccomp (libseccomp): default allow; a deny list of calls a build or
 *     an agent has no business making (ptrace, mounts and namespaces,
 *     bpf, kernel modules, keyrings, ...), each answered with an errno,
 *     never a kill. Sockets other than AF_UNIX get EACCES unless
 *     allow_net. io_uring and clone3 get ENOSYS, so runtimes fall back to
 *     calls the shim and the filter can see (clone's flags are in a
 *     register; clone3's are behind a pointer). With verbose, the denials
 *     are user notifications instead: a thread here answers each with the
 *     same errno and logs one line.
 *   Landlock (when the kernel has it): the host filesystem is read-only
 *     but for the directories the run needs (its runtime and cache
 *     directories, /tmp or a private one, a few devices); abstract Unix
 *     sockets and signals are scoped to the sandbox (ABI >= 6).
 *
 * Called by tools/mesarun_child.c: mr_sandbox_prepare before the fork
 * (everything that allocates), mr_sandbox_apply in the child (system calls
 * only), mr_sandbox_start after the fork.
 */
#include "config.h"
#include "mesarun_sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

/* Landlock bits newer than the build's headers (the kernel decides). */
#define LL_TRUNCATE (1ULL << 14)           /* ABI 3 */
#define LL_SCOPE_ABSTRACT_UNIX (1ULL << 0) /* ABI 6 */
#define LL_SCOPE_SIGNAL (1ULL << 1)        /* ABI 6 */

struct ll_attr { /* struct landlock_ruleset_attr as of ABI 6 */
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

struct mr_sandbox {
    struct sock_fprog prog;
    int verbose;
    int ll_abi;     /* 0: no Landlock */
    int ruleset;    /* Landlock ruleset, or -1 */
    int sock[2];    /* verbose: the child sends its listener on sock[1] */
    int listener;   /* verbose: in mesarun after start */
    int stop[2];    /* a pipe that ends the thread */
    pthread_t thread;
    int running;
};

/* The deny list: name and errno. */
static const struct deny {
    const char *name;
    int err;
} deny_list[] = {
    {"ptrace", EPERM},           {"process_vm_readv", EPERM}, {"process_vm_writev", EPERM},
    {"mount", EPERM},            {"umount2", EPERM},          {"pivot_root", EPERM},
    {"setns", EPERM},            {"fsopen", EPERM},           {"fsconfig", EPERM},
    {"fsmount", EPERM},          {"fspick", EPERM},           {"move_mount", EPERM},
    {"open_tree", EPERM},        {"mount_setattr", EPERM},    {"bpf", EPERM},
    {"perf_event_open", EPERM},  {"kexec_load", EPERM},       {"kexec_file_load", EPERM},
    {"init_module", EPERM},      {"finit_module", EPERM},     {"delete_module", EPERM},
    {"reboot", EPERM},           {"swapon", EPERM},           {"swapoff", EPERM},
    {"keyctl", EPERM},           {"add_key", EPERM},          {"request_key", EPERM},
    {"userfaultfd", EPERM},      {"open_by_handle_at", EPERM}, {"io_uring_setup", ENOSYS},
    {"io_uring_enter", ENOSYS},  {"io_uring_register", ENOSYS}, {"clone3", ENOSYS},
};

/* Namespace flags refused in clone (arg 0) and unshare (arg 0). */
static const unsigned long ns_flags[] = {CLONE_NEWNS,  CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
                                         CLONE_NEWUTS, CLONE_NEWIPC,  CLONE_NEWCGROUP};

static int fail(char *err, size_t n, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return rc;
}

/* The errno the sandbox answers for a refused call (verbose mode). */
static int refused_errno(const char *name)
{
    for (size_t i = 0; i < sizeof deny_list / sizeof deny_list[0]; i++)
        if (strcmp(deny_list[i].name, name) == 0)
            return deny_list[i].err;
    return strcmp(name, "socket") == 0 || strcmp(name, "socketcall") == 0 ? EACCES : EPERM;
}

/* ------------------------------------------------------------ seccomp */

static uint32_t act(const mr_sandbox_conf_t *c, int err)
{
    return c->verbose ? SCMP_ACT_NOTIFY : SCMP_ACT_ERRNO((uint32_t)err);
}

static int add_rules(scmp_filter_ctx ctx, const mr_sandbox_conf_t *c, char *err, size_t n)
{
    int rc;
    for (size_t i = 0; i < sizeof deny_list / sizeof deny_list[0]; i++) {
        int nr = seccomp_syscall_resolve_name(deny_list[i].name);
        if (nr == __NR_SCMP_ERROR)
            continue; /* not on this architecture */
        if ((rc = seccomp_rule_add(ctx, act(c, deny_list[i].err), nr, 0)) < 0)
            return fail(err, n, rc, "seccomp rule for %s: %s", deny_list[i].name, strerror(-rc));
    }
    for (size_t i = 0; i < sizeof ns_flags / sizeof ns_flags[0]; i++) {
        const scmp_datum_t f = ns_flags[i];
        if ((rc = seccomp_rule_add(ctx, act(c, EPERM), SCMP_SYS(clone), 1,
                                   SCMP_A0(SCMP_CMP_MASKED_EQ, f, f))) < 0 ||
            (rc = seccomp_rule_add(ctx, act(c, EPERM), SCMP_SYS(unshare), 1,
                                   SCMP_A0(SCMP_CMP_MASKED_EQ, f, f))) < 0)
            return fail(err, n, rc, "seccomp rule for clone/unshare: %s", strerror(-rc));
    }
    if ((rc = seccomp_rule_add(ctx, act(c, EPERM), SCMP_SYS(unshare), 1,
                               SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWTIME, CLONE_NEWTIME))) < 0)
        return fail(err, n, rc, "seccomp rule for unshare: %s", strerror(-rc));
    if (!c->allow_net &&
        (rc = seccomp_rule_add(ctx, act(c, EACCES), SCMP_SYS(socket), 1,
                               SCMP_A0(SCMP_CMP_NE, AF_UNIX))) < 0)
        return fail(err, n, rc, "seccomp rule for socket: %s", strerror(-rc));
    return 0;
}

/* The filter as a BPF program (malloc'd into s->prog). */
static int build_filter(mr_sandbox_t *s, const mr_sandbox_conf_t *c, char *err, size_t n)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    int rc, mfd = -1;
    if (!ctx)
        return fail(err, n, -ENOMEM, "seccomp_init failed");
    /* the filter must not enable no_new_privs itself: apply does it; a
     * 32-bit (i386) process gets the same rules, an unknown ABI ENOSYS */
    if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)) < 0 ||
        (rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ERRNO(ENOSYS))) < 0)
        goto out;
#ifdef __x86_64__
    if ((rc = seccomp_arch_add(ctx, SCMP_ARCH_X86)) < 0 && rc != -EEXIST) {
        fail(err, n, rc, "seccomp_arch_add(x86): %s", strerror(-rc));
        goto out;
    }
#endif
    if ((rc = add_rules(ctx, c, err, n)) < 0)
        goto out;
    if ((mfd = memfd_create("mesarun-seccomp", MFD_CLOEXEC)) < 0) {
        rc = fail(err, n, -errno, "memfd_create: %s", strerror(errno));
        goto out;
    }
    if ((rc = seccomp_export_bpf(ctx, mfd)) < 0) {
        fail(err, n, rc, "seccomp_export_bpf: %s", strerror(-rc));
        goto out;
    }
    off_t len = lseek(mfd, 0, SEEK_END);
    struct sock_filter *f = len > 0 ? malloc((size_t)len) : NULL;
    if (!f || pread(mfd, f, (size_t)len, 0) != len) {
        free(f);
        rc = fail(err, n, -EIO, "reading the seccomp program back failed");
        goto out;
    }
    s->prog.filter = f;
    s->prog.len = (unsigned short)((size_t)len / sizeof *f);
    rc = 0;
out:
    if (mfd >= 0)
        close(mfd);
    seccomp_release(ctx);
    return rc;
}

/* ------------------------------------------------------------ Landlock */

static int ll_abi(void)
{
    long v = syscall(__NR_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    return v < 0 ? 0 : (int)v;
}

/* What the ruleset handles: writes of every kind, and reading files (so
 * that the hidden paths can be left out). Listing directories and
 * executing stay unrestricted. */
static uint64_t ll_handled(int abi)
{
    uint64_t a = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |
                 LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_CHAR |
                 LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
                 LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO |
                 LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SYM;
    if (abi >= 2)
        a |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3)
        a |= LL_TRUNCATE;
    return a;
}

/* A rule: access stays allowed beneath path (a file: only the file
 * accesses). A path that does not exist is skipped; nofollow: a symlink
 * gets the rule itself, which allows nothing through it. */
static int ll_allow(int ruleset, const char *path, uint64_t access, int nofollow)
{
    struct stat st;
    int fd = open(path, O_PATH | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0));
    if (fd < 0)
        return errno == ENOENT || errno == EACCES ? 0 : -errno;
    struct landlock_path_beneath_attr pb = {.parent_fd = fd, .allowed_access = access};
    if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
        pb.allowed_access &=
            LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE | LL_TRUNCATE;
    int rc = syscall(__NR_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0
                 ? -errno
                 : 0;
    close(fd);
    return rc;
}

int mr_beneath(const char *p, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(p, dir, n) == 0 && (p[n] == '\0' || p[n] == '/' || (n == 1 && dir[0] == '/'));
}

/* Reading allowed everywhere beneath dir except the hidden paths (which
 * are beneath dir): a rule per entry, recursing into the entries that
 * hold a hidden path. Landlock rules only add, so this is the only way to
 * leave a subtree out. */
static int ll_readable(int ruleset, const char *dir, const char *const *hidden, size_t nh,
                       int depth)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int rc = 0;
    if (!d || depth > 32)
        return d ? (closedir(d), -ELOOP) : 0; /* an unreadable directory stays so */
    while (rc == 0 && (e = readdir(d)) != NULL) {
        char p[PATH_MAX];
        int hide = 0, holds = 0;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            snprintf(p, sizeof p, "%s/%s", strcmp(dir, "/") ? dir : "", e->d_name) >= (int)sizeof p)
            continue;
        for (size_t i = 0; i < nh; i++) {
            hide |= strcmp(hidden[i], p) == 0;
            holds |= mr_beneath(hidden[i], p);
        }
        if (!hide)
            rc = holds ? ll_readable(ruleset, p, hidden, nh, depth + 1)
                       : ll_allow(ruleset, p, LANDLOCK_ACCESS_FS_READ_FILE, 1);
    }
    closedir(d);
    return rc;
}

static int build_ruleset(mr_sandbox_t *s, const mr_sandbox_conf_t *c, char *err, size_t n)
{
    static const char *const devices[] = {"/dev/null", "/dev/zero", "/dev/full", "/dev/tty",
                                          "/dev/pts", "/dev/ptmx", "/dev/shm"};
    if ((s->ll_abi = ll_abi()) < 1)
        return 0;
    struct ll_attr attr = {.handled_access_fs = ll_handled(s->ll_abi)};
    if (s->ll_abi >= 6)
        attr.scoped = LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL;
    size_t size = s->ll_abi >= 6 ? sizeof attr : s->ll_abi >= 4 ? 16 : 8;
    long fd = syscall(__NR_landlock_create_ruleset, &attr, size, 0);
    if (fd < 0)
        return fail(err, n, -errno, "landlock_create_ruleset: %s", strerror(errno));
    s->ruleset = (int)fd;
    fcntl(s->ruleset, F_SETFD, FD_CLOEXEC);
    for (size_t i = 0; i < c->nrw + sizeof devices / sizeof devices[0]; i++) {
        const char *p = i < c->nrw ? c->rw[i] : devices[i - c->nrw];
        int rc = ll_allow(s->ruleset, p, attr.handled_access_fs, 0);
        if (rc < 0)
            return fail(err, n, rc, "landlock rule for %s: %s", p, strerror(-rc));
    }
    int rc = c->nhidden ? ll_readable(s->ruleset, "/", c->hidden, c->nhidden, 0)
                        : ll_allow(s->ruleset, "/", LANDLOCK_ACCESS_FS_READ_FILE, 0);
    return rc < 0 ? fail(err, n, rc, "landlock read rules: %s", strerror(-rc)) : 0;
}

/* ------------------------------------------------------------ API */

int mr_sandbox_prepare(const mr_sandbox_conf_t *c, mr_sandbox_t **out, char *err, size_t errlen)
{
    mr_sandbox_t *s = calloc(1, sizeof *s);
    int rc;
    if (!s)
        return fail(err, errlen, -ENOMEM, "out of memory");
    s->ruleset = s->listener = s->sock[0] = s->sock[1] = s->stop[0] = s->stop[1] = -1;
    s->verbose = c->verbose;
    if ((rc = build_filter(s, c, err, errlen)) < 0 || (rc = build_ruleset(s, c, err, errlen)) < 0)
        goto bad;
    if (s->verbose && socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, s->sock) < 0) {
        rc = fail(err, errlen, -errno, "socketpair: %s", strerror(errno));
        goto bad;
    }
    *out = s;
    return 0;
bad:
    mr_sandbox_free(s);
    return rc;
}

int mr_sandbox_landlock_abi(const mr_sandbox_t *s)
{
    return s->ll_abi;
}

int mr_sandbox_ruleset(const mr_sandbox_t *s)
{
    return s ? s->ruleset : -1;
}

/* A one-byte message with room for one descriptor (SCM_RIGHTS). */
typedef struct fd_msg {
    char byte;
    struct iovec iov;
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr msg;
} fd_msg_t;

static void fd_msg_init(fd_msg_t *m)
{
    memset(m, 0, sizeof *m);
    m->byte = 'L';
    m->iov = (struct iovec){.iov_base = &m->byte, .iov_len = 1};
    m->msg = (struct msghdr){.msg_iov = &m->iov, .msg_iovlen = 1, .msg_control = m->u.buf,
                             .msg_controllen = sizeof m->u.buf};
}

/* Send fd over sock. System calls only. */
static int send_fd(int sock, int fd)
{
    fd_msg_t m;
    fd_msg_init(&m);
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m.msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    return sendmsg(sock, &m.msg, MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

int mr_sandbox_apply(const mr_sandbox_t *s)
{
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -errno;
    if (s->ruleset >= 0 && syscall(__NR_landlock_restrict_self, s->ruleset, 0) < 0)
        return -errno;
    unsigned long flags = s->verbose ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0;
    long fd = syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, flags, &s->prog);
    if (fd < 0)
        return -errno;
    if (s->verbose) {
        int rc = send_fd(s->sock[1], (int)fd);
        close((int)fd);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Receive the listener from the child: the descriptor, or -1. */
static int recv_fd(int sock)
{
    fd_msg_t m;
    ssize_t n;
    fd_msg_init(&m);
    while ((n = recvmsg(sock, &m.msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
        ;
    struct cmsghdr *cm = n == 1 ? CMSG_FIRSTHDR(&m.msg) : NULL;
    int fd = -1;
    if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
        memcpy(&fd, CMSG_DATA(cm), sizeof fd);
    return fd;
}

/* Answer one notification with its errno, and log it. */
static void answer(int listener, struct seccomp_notif *req, struct seccomp_notif_resp *resp)
{
    char *name = seccomp_syscall_resolve_num_arch(req->data.arch, req->data.nr);
    int e = refused_errno(name ? name : "");
    fprintf(stderr, "mesarun: sandbox refused %s (pid %u): %s\n", name ? name : "a system call",
            req->pid, strerror(e));
    free(name);
    memset(resp, 0, sizeof *resp);
    resp->id = req->id;
    resp->error = -e;
    seccomp_notify_respond(listener, resp); /* ENOENT: the caller is gone */
}

static void *supervise(void *arg)
{
    mr_sandbox_t *s = arg;
    struct seccomp_notif *req = NULL;
    struct seccomp_notif_resp *resp = NULL;
    if (seccomp_notify_alloc(&req, &resp) < 0)
        return NULL;
    for (;;) {
        struct pollfd p[2] = {{.fd = s->listener, .events = POLLIN}, {.fd = s->stop[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents)
            break;
        if (p[0].revents & POLLIN) {
            memset(req, 0, sizeof *req);
            if (seccomp_notify_receive(s->listener, req) == 0)
                answer(s->listener, req, resp);
        } else if (p[0].revents & (POLLHUP | POLLERR)) {
            break; /* every sandboxed process is gone */
        }
    }
    seccomp_notify_free(req, resp);
    return NULL;
}

int mr_sandbox_start(mr_sandbox_t *s)
{
    if (!s->verbose)
        return 0;
    close(s->sock[1]);
    s->sock[1] = -1;
    s->listener = recv_fd(s->sock[0]);
    if (s->listener < 0)
        return -ECHILD; /* the child failed before sending it */
    if (pipe2(s->stop, O_CLOEXEC) < 0)
        return -errno;
    int rc = pthread_create(&s->thread, NULL, supervise, s);
    if (rc != 0)
        return -rc;
    s->running = 1;
    return 0;
}

void mr_sandbox_free(mr_sandbox_t *s)
{
    if (!s)
        return;
    if (s->running) {
        (void)!write(s->stop[1], "x", 1);
        pthread_join(s->thread, NULL);
    }
    int fds[] = {s->ruleset, s->listener, s->sock[0], s->sock[1], s->stop[0], s->stop[1]};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(s->prog.filter);
    free(s);
}
