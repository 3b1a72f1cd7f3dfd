/* tools/mesafs_trapexec.c - `mesafs-trapexec PATH ARGV0 [ARG...]`: exec PATH
 * with ARGV0 ARG... (docs/DECISIONS.md "--trap-raw: static programs handed to a seccomp
 * supervisor in mesarun").
 *
 * glibc's posix_spawn makes its execve inside libc, where the shim cannot
 * install mesarun's --trap-raw filter. For a statically linked target the
 * shim spawns this program instead (its file actions and attributes apply
 * to it, as they would to the target), and the shim loaded here sees the
 * execve below and traps the target. Exit 127 (126: not executable) if the
 * exec fails, as a shell would.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
    if (argc < 3) {
        fputs("usage: mesafs-trapexec PATH ARGV0 [ARG...]\n", stderr);
        return 2;
    }
    execve(argv[1], argv + 2, environ);
    int e = errno;
    fprintf(stderr, "mesafs-trapexec: %s: %s\n", argv[1], strerror(e));
    return e == ENOENT ? 127 : 126;
}
