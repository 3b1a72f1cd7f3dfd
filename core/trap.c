/* core/trap.c - handing a statically linked program to mesarun's seccomp
 * supervisor (`mesarun --trap-raw`; core/trap.h).
 *
 * A static program never loads the shim, so its path calls reach the
 * kernel, which knows nothing of /mesa. Just before such a program is
 * executed, the process that execs it installs a user-notification
 * filter (built by mesarun, read from $RUN/trap.bpf) and passes the
 * listener to the supervisor thread in mesarun over $RUN/trap.sock. The
 * filter survives execve and is inherited by every child.
 *
 * Invariant: between the seccomp(2) call and the hand-off nothing is done
 * that the filter traps (open, stat, ...): the supervisor does not hold the
 * listener yet, so such a call would wait for an answer that never comes.
 * The socket is connected before the filter is installed; sendmsg, close
 * and execve are not trapped.
 */
#include "config.h"
#include "trap.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

/* ------------------------------------------------------------ ELF */

#if UINTPTR_MAX == 0xffffffffffffffffULL
typedef Elf64_Ehdr ehdr_t;
typedef Elf64_Phdr phdr_t;
#define NATIVE_CLASS ELFCLASS64
#else
typedef Elf32_Ehdr ehdr_t;
typedef Elf32_Phdr phdr_t;
#define NATIVE_CLASS ELFCLASS32
#endif

/* 1 if the ELF file open on fd has no PT_INTERP (a native executable). */
static int elf_static(int fd, const ehdr_t *eh)
{
    if (eh->e_ident[EI_CLASS] != NATIVE_CLASS || eh->e_phentsize != sizeof(phdr_t) ||
        (eh->e_type != ET_EXEC && eh->e_type != ET_DYN) || eh->e_phnum == 0 || eh->e_phnum > 256)
        return 0;
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        phdr_t ph;
        off_t at = (off_t)eh->e_phoff + (off_t)i * (off_t)sizeof ph;
        if (pread(fd, &ph, sizeof ph, at) != (ssize_t)sizeof ph)
            return 0;
        if (ph.p_type == PT_INTERP)
            return 0;
    }
    return 1;
}

/* The interpreter of a "#!" line in buf (n bytes) into out, or "". */
static void shebang_interp(const char *buf, size_t n, char *out, size_t outlen)
{
    size_t i = 2, k = 0;
    out[0] = '\0';
    while (i < n && (buf[i] == ' ' || buf[i] == '\t'))
        i++;
    while (i < n && k + 1 < outlen && buf[i] != ' ' && buf[i] != '\t' && buf[i] != '\n')
        out[k++] = buf[i++];
    out[k] = '\0';
}

static int is_static_depth(const char *path, int depth)
{
    char buf[256];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return 0;
    ssize_t n = pread(fd, buf, sizeof buf, 0);
    int rc = 0;
    if (n >= (ssize_t)sizeof(ehdr_t) && memcmp(buf, ELFMAG, SELFMAG) == 0) {
        ehdr_t eh;
        memcpy(&eh, buf, sizeof eh);
        rc = elf_static(fd, &eh);
    } else if (n > 2 && buf[0] == '#' && buf[1] == '!' && depth == 0) {
        char interp[sizeof buf];
        shebang_interp(buf, (size_t)n, interp, sizeof interp);
        close(fd);
        return interp[0] == '/' ? is_static_depth(interp, 1) : 0;
    }
    close(fd);
    return rc;
}

int mesa_trap_is_static(const char *path)
{
    return path && *path ? is_static_depth(path, 0) : 0;
}

/* ------------------------------------------------------------ filter */

int mesa_trap_load(const char *bpf_path, struct sock_fprog *prog)
{
    struct stat st;
    int fd = open(bpf_path, O_RDONLY | O_CLOEXEC), rc = 0;
    if (fd < 0)
        return -errno;
    prog->filter = NULL;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
    } else if (st.st_size <= 0 || st.st_size % sizeof(struct sock_filter) ||
               st.st_size / sizeof(struct sock_filter) > BPF_MAXINSNS) {
        rc = -EINVAL;
    } else if (!(prog->filter = malloc((size_t)st.st_size))) {
        rc = -ENOMEM;
    } else if (pread(fd, prog->filter, (size_t)st.st_size, 0) != st.st_size) {
        rc = -EIO;
    }
    close(fd);
    if (rc < 0) {
        free(prog->filter);
        prog->filter = NULL;
        return rc;
    }
    prog->len = (unsigned short)(st.st_size / sizeof(struct sock_filter));
    return 0;
}

/* ------------------------------------------------------------ hand-off */

static int connect_to(const char *sock_path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(sock_path) >= sizeof a.sun_path)
        return -ENAMETOOLONG;
    strcpy(a.sun_path, sock_path);
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
        int e = errno;
        close(s);
        return -e;
    }
    return s;
}

int mesa_send_int_fd(int s, int val, int fd)
{
    struct iovec iov = {.iov_base = &val, .iov_len = sizeof val};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof u);
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        msg.msg_control = u.buf;
        msg.msg_controllen = sizeof u.buf;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    }
    return sendmsg(s, &msg, MSG_NOSIGNAL) == (ssize_t)sizeof val ? 0 : -errno;
}

int mesa_recv_int_fd(int s, int flags, int *val, int *fd)
{
    struct iovec iov = {.iov_base = val, .iov_len = sizeof *val};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    ssize_t n;
    *fd = -1;
    while ((n = recvmsg(s, &msg, MSG_CMSG_CLOEXEC | flags)) < 0 && errno == EINTR)
        ;
    struct cmsghdr *cm = n == (ssize_t)sizeof *val ? CMSG_FIRSTHDR(&msg) : NULL;
    if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
        memcpy(fd, CMSG_DATA(cm), sizeof *fd);
    return n == (ssize_t)sizeof *val;
}

int mesa_trap_handoff(const char *sock_path, const struct sock_fprog *prog, int *installed)
{
    *installed = 0;
    int s = connect_to(sock_path), rc;
    if (s < 0)
        return s;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        rc = -errno;
        close(s);
        return rc;
    }
    long l = syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, prog);
    if (l < 0) {
        rc = -errno;
        close(s);
        return rc;
    }
    *installed = 1;
    rc = mesa_send_int_fd(s, (int)getpid(), (int)l); /* the listener and our pid */
    close((int)l);
    close(s);
    return rc;
}
