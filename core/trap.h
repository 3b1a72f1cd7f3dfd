/* core/trap.h - the hand-off half of `mesarun --trap-raw` (DESIGN §6,
 * docs/DECISIONS.md "Programs that bypass libc"): a process about to exec
 * a statically linked program installs mesarun's seccomp user-notification
 * filter on itself and sends the listener to mesarun's supervisor, which
 * then answers the program's path calls under the prefix.
 *
 * Used by the shim's exec path (shim/trap.c) and by mesarun's own child
 * for COMMAND (tools/mesarun_trap.c). mesa_trap_handoff makes system calls
 * only, so it is safe in a child forked from a threaded process.
 */
#ifndef MESA_TRAP_H
#define MESA_TRAP_H

#include <linux/filter.h>
#include <stddef.h>

/* The file next to the socket that holds the filter (BPF). */
#define MESA_TRAP_BPF "trap.bpf"
/* Next to the socket too: a link to the helper program mesafs-trapexec
 * ("trap-exec PATH ARGV0 ARG..." execs PATH), which posix_spawn of a static
 * program starts instead, so that the shim's execve installs the filter. */
#define MESA_TRAP_EXEC "trap-exec"
#define MESA_TRAP_EXEC_NAME "mesafs-trapexec"

/* Is the file at path (as execve would run it) a statically linked ELF
 * program (no PT_INTERP)? For a "#!" script, its interpreter is checked
 * (one level). 1 static, 0 not (dynamic, not ELF, unreadable: left to
 * execve), never an error. Reads the file: call it before the filter. */
int mesa_trap_is_static(const char *path);

/* Read the filter from the file bpf_path into prog (prog->filter
 * malloc'd; free it). 0 or -errno. */
int mesa_trap_load(const char *bpf_path, struct sock_fprog *prog);

/* Connect to the supervisor at sock_path, set no_new_privs, install prog
 * with a new listener and send the listener (and our pid) to the
 * supervisor. System calls only. After the filter is installed no trapped
 * call is made before the listener is sent. 0 on success; -errno with
 * *installed = 0 when nothing changed (the program can run untrapped);
 * -errno with *installed = 1 when the filter is in place but the
 * supervisor did not get its listener (the trapped calls then fail with
 * ENOSYS). -EBUSY: a filter with a listener is already installed (an
 * ancestor was trapped; its supervisor serves us). */
int mesa_trap_handoff(const char *sock_path, const struct sock_fprog *prog, int *installed);

/* One message over a Unix socket: an int, and a descriptor (SCM_RIGHTS)
 * unless fd < 0. System calls only. 0 or -errno. */
int mesa_send_int_fd(int s, int val, int fd);
/* Receive such a message (flags: e.g. MSG_DONTWAIT; the descriptor comes
 * close-on-exec): 1 with *val (and *fd, else -1) set, 0 if none came. */
int mesa_recv_int_fd(int s, int flags, int *val, int *fd);

#endif
