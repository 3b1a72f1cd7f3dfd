/* server/pathcheck.c - request path and name validation (see pathcheck.h).
 * Invariant: a path accepted here has no empty, ".", ".." or ".git" segment,
 * no leading '/', no NUL, and fits git's and the kernel's name limits.
 */
#include "config.h"
#include "pathcheck.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

/* ".git" in any case, and the spellings NTFS aliases to it (trailing dots
 * or spaces, an alternate data stream ".git:...", the short name "git~1"),
 * as git's own verify_path refuses them. */
static int is_dotgit(const char *s, size_t n)
{
    if (n >= 4 && strncasecmp(s, ".git", 4) == 0) {
        size_t i = 4;
        if (i < n && s[i] == ':')
            return 1;
        while (i < n && (s[i] == '.' || s[i] == ' '))
            i++;
        return i == n;
    }
    return n == 5 && strncasecmp(s, "git~1", 5) == 0;
}

static int check_segment(const char *s, size_t n, const char **why)
{
    if (n == 0) {
        *why = "empty path segment";
        return -EINVAL;
    }
    if (n > PATHCHECK_MAX_SEGMENT) {
        *why = "path segment longer than 255 bytes";
        return -EINVAL;
    }
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) {
        *why = "'.' and '..' segments are not allowed";
        return -EINVAL;
    }
    if (is_dotgit(s, n)) {
        *why = "'.git' segments (in any spelling a file system may alias) are not allowed";
        return -EINVAL;
    }
    return 0;
}

int pathcheck_file(const char *path, size_t len, const char **why)
{
    if (len == 0) {
        *why = "empty path";
        return -EINVAL;
    }
    if (len > PATHCHECK_MAX_PATH) {
        *why = "path longer than 4096 bytes";
        return -EINVAL;
    }
    if (memchr(path, '\0', len)) {
        *why = "NUL byte in path";
        return -EINVAL;
    }
    if (path[0] == '/') {
        *why = "absolute paths are not allowed";
        return -EINVAL;
    }
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && path[i] != '/')
            continue;
        int rc = check_segment(path + start, i - start, why);
        if (rc < 0)
            return rc;
        start = i + 1;
    }
    return 0;
}

int pathcheck_query(const char *path, char *out, const char **why)
{
    size_t len = strlen(path);
    if (len > 0 && path[len - 1] == '/')
        len--;
    memcpy(out, path, len);
    out[len] = '\0';
    if (len == 0)
        return 0;
    return pathcheck_file(out, len, why);
}

int pathcheck_repo_name(const char *name, const char **why)
{
    size_t n = strlen(name);
    if (n == 0 || n > 100) {
        *why = "repo name must be 1 to 100 characters";
        return -EINVAL;
    }
    if (name[0] == '.' || name[0] == '-') {
        *why = "repo name must not start with '.' or '-'";
        return -EINVAL;
    }
    if (n >= 4 && strcmp(name + n - 4, ".git") == 0) {
        *why = "repo name must not end in '.git'";
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            *why = "repo name may only contain letters, digits, '.', '_' and '-'";
            return -EINVAL;
        }
    }
    return 0;
}
