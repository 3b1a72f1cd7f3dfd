/* tests/lib/tmpdir.h - temporary directories for the C unit tests:
 * ctest_tmpdir("tag") makes ${TMPDIR:-/tmp}/tag.XXXXXX (malloc'd path, NULL
 * on failure); ctest_rmtree(dir) removes it with its contents and frees it;
 * ctest_count_files(dir, sub) counts the entries of dir/sub (-1 if absent).
 */
#ifndef MESA_CTEST_TMPDIR_H
#define MESA_CTEST_TMPDIR_H

#include <dirent.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline char *ctest_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    char buf[PATH_MAX];

    snprintf(buf, sizeof buf, "%s/%s.XXXXXX", base && *base ? base : "/tmp", tag);
    return mkdtemp(buf) ? strdup(buf) : NULL;
}

static inline int ctest_rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    return remove(p);
}

static inline void ctest_rmtree(char *dir)
{
    if (dir)
        nftw(dir, ctest_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

static inline long ctest_count_files(const char *dir, const char *sub)
{
    char p[PATH_MAX];
    long n = 0;
    DIR *d;
    struct dirent *e;

    snprintf(p, sizeof p, "%s/%s", dir, sub);
    d = opendir(p);
    if (!d)
        return -1;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

#endif
