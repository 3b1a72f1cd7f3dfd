/* tests/lib/mkmount.c - make a mount runtime directory by hand, for tests
 * of what reads one (mesa push-pending, later the shim):
 *   mkmount DIR ORG REPO CHANGE_ID COMMIT [BOOKMARK]
 * creates DIR/state (one slot), an empty DIR/journal and DIR/staging/.
 */
#include "config.h"
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 6 || argc > 7) {
        fprintf(stderr, "usage: mkmount DIR ORG REPO CHANGE_ID COMMIT [BOOKMARK]\n");
        return 2;
    }
    char path[4096];
    mesa_state_repo_t r = {0};
    snprintf(r.org, sizeof r.org, "%s", argv[2]);
    snprintf(r.repo, sizeof r.repo, "%s", argv[3]);
    snprintf(r.change_id, sizeof r.change_id, "%s", argv[4]);
    snprintf(r.commit, sizeof r.commit, "%s", argv[5]);
    snprintf(r.bookmark, sizeof r.bookmark, "%s", argc == 7 ? argv[6] : "");
    if (mkdir(argv[1], 0700) < 0 && errno != EEXIST)
        return perror(argv[1]), 1;
    snprintf(path, sizeof path, "%s/staging", argv[1]);
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return perror(path), 1;
    snprintf(path, sizeof path, "%s/journal", argv[1]);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return perror(path), 1;
    close(fd);
    snprintf(path, sizeof path, "%s/state", argv[1]);
    int rc = mesa_state_create(path, &r, 1);
    if (rc < 0) {
        fprintf(stderr, "mkmount: %s: %s\n", path, strerror(-rc));
        return 1;
    }
    return 0;
}
