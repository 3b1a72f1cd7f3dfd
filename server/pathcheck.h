/* server/pathcheck.h - validation of names that come from requests: file
 * paths inside a repo and repo names. Everything the storage layer receives
 * has passed through here, so nothing can escape a repo or touch .git.
 */
#ifndef MESA_PATHCHECK_H
#define MESA_PATHCHECK_H

#include <stddef.h>

#define PATHCHECK_MAX_PATH 4096
#define PATHCHECK_MAX_SEGMENT 255

/* 0 if path (len bytes, may contain NUL) is a valid repo-relative file path;
 * else -EINVAL with a static reason in *why. */
int pathcheck_file(const char *path, size_t len, const char **why);
/* Same for a path in a query (GET): "" (the root) and one trailing '/' are allowed
 * (the result, in out, has it stripped; out holds len + 1 bytes). */
int pathcheck_query(const char *path, char *out, const char **why);
/* Repo names: 1..100 of [A-Za-z0-9._-], not starting with '.' or '-', not
 * ending in ".git". */
int pathcheck_repo_name(const char *name, const char **why);

#endif
