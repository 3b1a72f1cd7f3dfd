/* core/gitignore.h - .gitignore matching with git's rules.
 *
 * Patterns come from .gitignore files at any directory of a repo; matching
 * follows gitignore(5): blank lines and '#' comments, '\' escapes, trailing
 * spaces trimmed unless escaped, '!' negation, a trailing '/' matches
 * directories only, a '/' at the start or in the middle anchors the pattern
 * to its .gitignore's directory, otherwise it matches a name at any depth
 * below; '*', '?', '[...]' do not match '/'; '**' per gitignore(5) (leading
 * "** /", trailing "/ **", middle "/ ** /"); the last matching pattern wins,
 * deeper .gitignore files take precedence over shallower ones; and a path
 * inside an ignored directory is ignored whatever the patterns say about it
 * (git cannot re-include a file whose parent directory is excluded).
 * ".git" is always ignored. Thread-compatible: build once, match from any
 * thread.
 */
#ifndef MESA_GITIGNORE_H
#define MESA_GITIGNORE_H

#include <stddef.h>

typedef struct mesa_ignore mesa_ignore_t;

/* A new, empty rule set (NULL on ENOMEM). Free with mesa_ignore_free. */
mesa_ignore_t *mesa_ignore_new(void);
void mesa_ignore_free(mesa_ignore_t *ig);

/* Add the contents of the .gitignore found in directory dir ("" for the
 * repo root, else "a/b" without trailing '/'). Returns 0 or -ENOMEM. */
int mesa_ignore_add(mesa_ignore_t *ig, const char *dir, const char *text, size_t len);

/* 1 if the repo-relative path ("a/b/c.o", no leading '/') is ignored,
 * 0 if not. is_dir says whether the path itself is a directory. */
int mesa_ignore_match(const mesa_ignore_t *ig, const char *path, int is_dir);

#endif
