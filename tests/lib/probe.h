/* tests/lib/probe.h - what the programs that make libc calls for the shim
 * suites share (tests/shim/errno-probe.c, tests/conformance/conform.c):
 *   test_open_flags  open(2) flags from a comma list of words: r w rw creat
 *                    excl trunc append directory nofollow; -1 for an
 *                    unknown word
 *   errname          an errno's name (ENOENT...), or "E<number>"
 */
#ifndef MESA_TEST_PROBE_H
#define MESA_TEST_PROBE_H

#include <fcntl.h>
#include <stdio.h>
#include <string.h>

static const char *errname(int e)
{
    static char buf[32];
    const char *n = strerrorname_np(e);
    if (n)
        return n;
    snprintf(buf, sizeof buf, "E%d", e);
    return buf;
}

static int test_open_flags(const char *s)
{
    static const struct {
        const char *word;
        int flag;
    } words[] = {{"creat", O_CREAT},       {"excl", O_EXCL},         {"trunc", O_TRUNC},
                 {"append", O_APPEND},     {"directory", O_DIRECTORY}, {"nofollow", O_NOFOLLOW}};
    int fl = 0, acc = O_RDONLY;
    char buf[256], *save = NULL;
    snprintf(buf, sizeof buf, "%s", s);
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        size_t i, n = sizeof words / sizeof words[0];
        if (!strcmp(t, "r") || !strcmp(t, "w") || !strcmp(t, "rw")) {
            acc = !strcmp(t, "r") ? O_RDONLY : !strcmp(t, "w") ? O_WRONLY : O_RDWR;
            continue;
        }
        for (i = 0; i < n && strcmp(t, words[i].word) != 0; i++)
            ;
        if (i == n)
            return -1;
        fl |= words[i].flag;
    }
    return acc | fl;
}

#endif
