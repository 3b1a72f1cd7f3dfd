/* tests/core/test_gitignore.c - .gitignore matching, checked against git.
 *
 * First a table of cases from gitignore(5) that needs no git, and the API's
 * edges (".git", NULL and empty inputs, leading and trailing '/', a second
 * file for one directory, patterns built to blow up a naive matcher).
 * Then the real test: for each scenario (a set of .gitignore files) a fresh
 * repository holding every path of `paths` below is asked
 * `git check-ignore --no-index -v -n -z --stdin`, and mesa_ignore_match must
 * give git's answer for every path. Without git, those checks are skipped.
 */
#include "core/gitignore.h"
#include "tests/lib/ctest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- without git */

static const struct {
    const char *patterns, *path;
    int is_dir, want;
} rules[] = {
    {"*.o\n", "a/b.o", 0, 1},
    {"*.o\n", "a/b.c", 0, 0},
    {"/foo\n", "foo", 0, 1},
    {"/foo\n", "a/foo", 0, 0},
    {"foo\n", "a/b/foo", 0, 1},
    {"doc/frotz/\n", "doc/frotz", 1, 1},
    {"doc/frotz/\n", "doc/frotz", 0, 0},
    {"doc/frotz/\n", "a/doc/frotz", 1, 0},
    {"frotz/\n", "a/frotz", 1, 1},
    {"frotz/\n", "a/frotz/x", 0, 1},
    {"**/foo\n", "x/y/foo", 0, 1},
    {"**/foo/bar\n", "x/foo/bar", 0, 1},
    {"abc/**\n", "abc/x/y", 0, 1},
    {"abc/**\n", "abc", 1, 0},
    {"a/**/b\n", "a/b", 0, 1},
    {"a/**/b\n", "a/x/y/b", 0, 1},
    {"a/*/b\n", "a/x/y/b", 0, 0},
    {"a/*\n", "a/x/y", 0, 1},
    {"\\#x\n", "#x", 0, 1},
    {"#x\n", "#x", 0, 0},
    {"\\!x\n", "!x", 0, 1},
    {"!x\n", "x", 0, 0},
    {"a\\ \n", "a ", 0, 1},
    {"a\\ \n", "a", 0, 0},
    {"foo   \n", "foo", 0, 1},
    {"*.log\n!important.log\n", "important.log", 0, 0},
    {"*.log\n!important.log\n", "debug.log", 0, 1},
    {"!important.log\n*.log\n", "important.log", 0, 1},
    {"logs/\n!logs/keep.log\n", "logs/keep.log", 0, 1},
    {"logs/*\n!logs/keep.log\n", "logs/keep.log", 0, 0},
    {"[a-c]x\n", "bx", 0, 1},
    {"[a-c]x\n", "dx", 0, 0},
    {"[!a]x\n", "ax", 0, 0},
    {"[!a]x\n", "bx", 0, 1},
    {"[^a]x\n", "bx", 0, 1},
    {"[[:digit:]]*\n", "1.txt", 0, 1},
    {"[[:digit:]]*\n", "a1.txt", 0, 0},
    {"[[:space:]]x\n", "\vx", 0, 0},
    {"[[:space:]]x\n", "\tx", 0, 1},
    {"[[:bogus:]]x\n", "bx", 0, 0},
    {"a?c\n", "a/c", 0, 0},
    {"a[/]c\n", "a/c", 0, 0},
    {"*\n!*/\n!*.c\n", "src/a.c", 0, 0},
    {"*\n!*/\n!*.c\n", "src/a.h", 0, 1},
    {"*.o\r\n", "a.o", 0, 1},
    {"\xef\xbb\xbf*.o\n", "a.o", 0, 1},
    {"*.o", "a.o", 0, 1},
};

static void test_rules(void)
{
    char what[256];
    size_t i;

    for (i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        mesa_ignore_t *ig = mesa_ignore_new();

        CHECK_EQ_INT(mesa_ignore_add(ig, "", rules[i].patterns, strlen(rules[i].patterns)), 0,
                     "a .gitignore is added");
        snprintf(what, sizeof what, "rule %zu: \"%s\" %s ignored under \"%s\"", i, rules[i].path,
                 rules[i].want ? "is" : "is not", rules[i].patterns);
        CHECK_EQ_INT(mesa_ignore_match(ig, rules[i].path, rules[i].is_dir), rules[i].want, what);
        mesa_ignore_free(ig);
    }
}

static void test_dot_git(void)
{
    mesa_ignore_t *ig = mesa_ignore_new();

    CHECK(ig != NULL, "an empty rule set is created");
    CHECK_EQ_INT(mesa_ignore_match(ig, ".git", 1), 1, ".git is always ignored");
    CHECK_EQ_INT(mesa_ignore_match(ig, ".git/config", 0), 1, ".git/config is ignored");
    CHECK_EQ_INT(mesa_ignore_match(ig, "sub/.git", 0), 1, "a submodule's .git is ignored");
    CHECK_EQ_INT(mesa_ignore_match(ig, "a/.git/x", 0), 1, "a nested .git/x is ignored");
    CHECK_EQ_INT(mesa_ignore_match(NULL, ".git", 1), 1, ".git is ignored without rules");
    CHECK_EQ_INT(mesa_ignore_match(ig, ".gitx", 0), 0, ".gitx is not ignored");
    CHECK_EQ_INT(mesa_ignore_match(ig, "x.git", 0), 0, "x.git is not ignored");
    CHECK_EQ_INT(mesa_ignore_match(ig, ".github/x", 0), 0, ".github/x is not ignored");
    CHECK_EQ_INT(mesa_ignore_match(ig, "a/b", 0), 0, "nothing else is ignored without rules");
    mesa_ignore_free(ig);
}

static void test_api_edges(void)
{
    mesa_ignore_t *ig = mesa_ignore_new();
    const char nul[] = "*.o\0*.c\n*.h\n";

    CHECK_EQ_INT(mesa_ignore_add(NULL, "", "x", 1), -EINVAL, "adding to NULL is -EINVAL");
    CHECK_EQ_INT(mesa_ignore_add(ig, "", NULL, 1), -EINVAL, "NULL text with a length is -EINVAL");
    CHECK_EQ_INT(mesa_ignore_add(ig, "", NULL, 0), 0, "NULL empty text is an empty file");
    CHECK_EQ_INT(mesa_ignore_add(ig, "/src/", "*.o\n", 4), 0, "a dir with slashes is added");
    CHECK_EQ_INT(mesa_ignore_match(ig, "src/a.o", 0), 1, "\"/src/\" means src");
    CHECK_EQ_INT(mesa_ignore_match(ig, "a.o", 0), 0, "src's patterns stay below src");
    CHECK_EQ_INT(mesa_ignore_match(ig, "srcx/a.o", 0), 0, "src's patterns skip srcx");
    CHECK_EQ_INT(mesa_ignore_add(ig, "src", "!keep.o\n", 8), 0, "a second file for src is added");
    CHECK_EQ_INT(mesa_ignore_match(ig, "src/keep.o", 0), 0, "the second file comes after");
    CHECK_EQ_INT(mesa_ignore_match(ig, "/src/a.o", 0), 1, "a leading '/' is dropped");
    CHECK_EQ_INT(mesa_ignore_match(ig, "", 1), 0, "the root is never ignored");
    CHECK_EQ_INT(mesa_ignore_match(ig, "/", 1), 0, "\"/\" is never ignored");
    CHECK_EQ_INT(mesa_ignore_match(ig, NULL, 0), 0, "a NULL path is not ignored");
    CHECK_EQ_INT(mesa_ignore_add(ig, "", "build/\n", 7), 0, "a dir-only pattern is added");
    CHECK_EQ_INT(mesa_ignore_match(ig, "build", 0), 0, "a file does not match \"build/\"");
    CHECK_EQ_INT(mesa_ignore_match(ig, "build/", 0), 1, "a trailing '/' says directory");
    CHECK_EQ_INT(mesa_ignore_add(ig, "n", nul, sizeof nul - 1), 0, "a file with a NUL is added");
    CHECK_EQ_INT(mesa_ignore_match(ig, "n/a.o", 0), 1, "a NUL ends the line's pattern");
    CHECK_EQ_INT(mesa_ignore_match(ig, "n/a.c", 0), 0, "the rest of a line after NUL is lost");
    CHECK_EQ_INT(mesa_ignore_match(ig, "n/a.h", 0), 1, "the next line is read");
    mesa_ignore_free(ig);
    mesa_ignore_free(NULL);
}

static void test_hostile_patterns(void)
{
    mesa_ignore_t *ig = mesa_ignore_new();
    char *pat = malloc(4096), *path = malloc(4096);
    clock_t t0 = clock();
    size_t i;

    for (i = 0; i < 40; i++)
        memcpy(pat + 2 * i, "a*", 2);
    strcpy(pat + 80, "b\n");
    memset(path, 'a', 3000);
    path[3000] = '\0';
    CHECK_EQ_INT(mesa_ignore_add(ig, "", pat, strlen(pat)), 0, "an a*a*...*b pattern is added");
    CHECK_EQ_INT(mesa_ignore_match(ig, path, 0), 0, "a*a*...*b does not match 3000 a's");
    for (i = 0; i < 1000; i++)
        memcpy(pat + 2 * i, "*x", 2);
    strcpy(pat + 2000, "\n");
    CHECK_EQ_INT(mesa_ignore_add(ig, "", pat, strlen(pat)), 0, "1000 nested stars are added");
    path[2999] = 'x';
    CHECK_EQ_INT(mesa_ignore_match(ig, path, 0), 0, "*x*x...*x does not match one x");
    mesa_ignore_free(ig);

    ig = mesa_ignore_new();
    for (i = 0; i < 1000; i++)
        memcpy(path + 2 * i, "d/", 2);
    strcpy(path + 2000, "z");
    CHECK_EQ_INT(mesa_ignore_add(ig, "", "**/d/**/z\n", 10), 0, "\"**/d/**/z\" is added");
    CHECK_EQ_INT(mesa_ignore_match(ig, path, 0), 1, "\"**/d/**/z\" matches 1000 dirs deep");
    path[2000] = 'y';
    CHECK_EQ_INT(mesa_ignore_match(ig, path, 0), 0, "\"**/d/**/z\" does not match .../y");
    /* git itself takes forever on these: only ask for an answer in time */
    for (i = 0; i < 300; i++)
        memcpy(pat + 3 * i, "**/", 3);
    strcpy(pat + 900, "z\n");
    CHECK_EQ_INT(mesa_ignore_add(ig, "", pat, 3 * 50 + 2), 0, "50 \"**/\" are added");
    CHECK_EQ_INT(mesa_ignore_add(ig, "", pat, strlen(pat)), 0, "300 \"**/\" are added");
    mesa_ignore_match(ig, path, 0);
    CHECK((double)(clock() - t0) / CLOCKS_PER_SEC < 20.0, "hostile patterns finish in time");
    free(pat);
    free(path);
    mesa_ignore_free(ig);
}

/* ---------------------------------------------------------------- against git */

/* Every scenario's repository holds all of these; a trailing '/' makes a
 * directory. */
static const char *const paths[] = {
    "a/",
    "a/b/",
    "a/b/c/",
    "a/b/c/d/",
    "a/x/",
    "a/x/b/",
    "a/x/b/c/",
    "a/z.txt",
    "a/b/x.txt",
    "a/b/c/f.txt",
    "a/b/c/d/e.txt",
    "a/x/b/y.txt",
    "a/x/b/c/g.txt",
    "build/",
    "build/sub/",
    "build/out.bin",
    "build/keep.txt",
    "build/sub/k.o",
    "src/",
    "src/build/",
    "src/lib/",
    "src/lib/deep/",
    "src/lib/deep/er/",
    "src/a.c",
    "src/a.o",
    "src/b.h",
    "src/main.o",
    "src/build/x.o",
    "src/build/keep.txt",
    "src/lib/z.o",
    "src/lib/z.c",
    "src/lib/deep/y.o",
    "src/lib/deep/er/w.log",
    "src/lib/deep/er/v.c",
    "src/debug.log",
    "src/README.md",
    "docs/",
    "docs/api/",
    "docs/a.md",
    "docs/x.txt",
    "docs/api/b.md",
    "docs/api/x.txt",
    "docs/api/index.html",
    "logs/",
    "logs/old/",
    "logs/a.log",
    "logs/keep.log",
    "logs/old/b.log",
    "logs/old/keep.log",
    "logs/readme.txt",
    "foo/",
    "foo/bar/",
    "foo/bar/baz",
    "foo/bar.txt",
    "foo/x",
    "x/",
    "x/foo/",
    "x/foo/bar/",
    "x/foo/bar/y",
    "x/foo/z",
    "x/y/",
    "x/y/foo/",
    "x/y/foo/bar/",
    "x/y/foo/bar/w",
    "x/bar",
    "node_modules/",
    "node_modules/pkg/",
    "node_modules/pkg/index.js",
    "node_modules/x.js",
    "tmp/",
    "tmp/keep/",
    "tmp/t.o",
    "tmp/keep/k.txt",
    "sp ace/",
    "sp ace/f.o",
    "sp ace/g h.txt",
    "#dir/",
    "#dir/f",
    "!dir/",
    "!dir/f",
    "abc/",
    "abc/d/",
    "abc/d/e",
    "abc/x.o",
    ".hidden/",
    ".hidden/h.txt",
    ".hidden/.inner",
    "\xc3\xa9t\xc3\xa9/",
    "\xc3\xa9t\xc3\xa9/f.txt",
    "1dir/",
    "1dir/f.txt",
    "Upper/",
    "Upper/CASE.TXT",
    "b/",
    "b/a.o",
    "a.o",
    "b.c",
    "main.o",
    "main.c",
    "README.md",
    "readme.MD",
    "Makefile",
    "debug.log",
    "important.log",
    "notes.txt",
    "x.txt",
    "file.txt~",
    ".env",
    ".env.local",
    "#x",
    "!x",
    "xx",
    "back\\slash",
    "a ",
    "a  ",
    "c ",
    "c",
    "q?",
    "q*",
    "qx",
    "[ab]",
    "x]",
    "-",
    "ab",
    "ba",
    "abc.txt",
    "1.txt",
    "Z.txt",
    "z.txt",
    "\xc3\xa9.o",
    "\x80raw.o",
    "tab\tx",
    "v\vx",
    "cr\rx",
    "sp x",
    "**",
    "a*b",
    "a**b",
    "d.d/",
    "d.d/in",
};

#define NPATHS (sizeof paths / sizeof paths[0])

struct gi_file {
    const char *dir, *text;
    size_t len; /* 0: strlen(text) */
};

static const struct {
    const char *name;
    struct gi_file files[4];
} scenarios[] = {
    {"*.o", {{"", "*.o\n", 0}}},
    {"negation", {{"", "*.o\n!main.o\n", 0}}},
    {"dir only", {{"", "build/\n", 0}}},
    {"name at any depth", {{"", "build\n", 0}}},
    {"anchored", {{"", "/build\n/*.o\n", 0}}},
    {"middle slash anchors", {{"", "src/build\nlib/*.o\n", 0}}},
    {"leading **", {{"", "**/build\n**/foo/bar\n**/keep.log\n", 0}}},
    {"trailing **", {{"", "src/**\nlogs/**/\n", 0}}},
    {"middle **", {{"", "a/**/d\na/**/x.txt\nx/**/bar/\n", 0}}},
    {"** then glob", {{"", "**/lib/*.o\n**/*.md\n", 0}}},
    {"re-include", {{"", "*.log\n!important.log\n!logs/keep.log\n", 0}}},
    {"no re-include below an ignored dir", {{"", "logs/\n!logs/keep.log\n!logs/old/\n", 0}}},
    {"re-include below dir/*", {{"", "logs/*\n!logs/keep.log\n!logs/old/\n", 0}}},
    {"escapes", {{"", "\\#x\n\\!x\n\\#dir/\nback\\\\slash\n", 0}}},
    {"comments and negation", {{"", "#x\n!x\nxx\n!xx\n # not a comment\n", 0}}},
    {"trailing spaces", {{"", "a\\ \nc   \nsp\\ x\\ \\ \n", 0}}},
    {"bracket", {{"", "[ab]\n", 0}}},
    {"escaped brackets", {{"", "\\[ab\\]\nx\\]\nq\\?\nq\\*\n", 0}}},
    {"negated brackets", {{"", "[!a]*.txt\n[^fs]*/\n", 0}}},
    {"classes", {{"", "[[:digit:]]*\n*[[:upper:]].txt\n[[:alpha:]][[:alpha:]]\n", 0}}},
    {"space classes", {{"", "*[[:space:]]x\n[[:punct:]]*\n*[[:cntrl:]]*\n", 0}}},
    {"more classes", {{"", "[[:xdigit:]][[:lower:]]\n[[:alnum:]][[:blank:]]*\n", 0}}},
    {"bad classes", {{"", "[[:spaci:]]*\n[[:alpha:]\n[[:]x\n[]]\n", 0}}},
    {"ranges", {{"", "*.[oa]\n*.[!c]\n*[a-c].txt\n[z-a]*\n[-]\n[a-]b\n[-c]a\n", 0}}},
    {"question mark", {{"", "q?\n?\na?b\n", 0}}},
    {"whitelist", {{"", "*\n!*/\n!*.c\n", 0}}},
    {"root whitelist", {{"", "/*\n!/src\n!/docs/\n", 0}}},
    {"deeper negation wins", {{"", "*.o\n", 0}, {"src", "!a.o\n!lib/\n", 0}}},
    {"deeper ignore wins", {{"", "!*.log\n", 0}, {"logs", "*.log\n!keep.log\n", 0}}},
    {"anchored in a subdir", {{"src", "/build\n/lib/deep/\n", 0}, {"", "build/keep.txt\n", 0}}},
    {"nested dir patterns", {{"src/lib", "deep/\n", 0}, {"", "!src/lib/deep/er\n", 0}}},
    {"slash in a subdir", {{"a", "b/c\n", 0}, {"a/x", "b/*\n!b/c/\n", 0}}},
    {"everything in a subdir", {{"a/b", "*\n!c\n!c/d/\n", 0}, {"a", "!b/x.txt\n", 0}}},
    {"one level", {{"", "docs/*.txt\nfoo/*\n", 0}}},
    {"any level", {{"", "docs/**/*.txt\nx/**/foo/**/w\n", 0}}},
    {"all dirs", {{"", "*/\n!src/\n", 0}}},
    {"star quirk a**/b", {{"", "a**/b\n", 0}}},
    {"star quirks", {{"", "x/**foo\n***/y\nd**/e\n*/*/\nsrc/**.o\n**.md\n", 0}}},
    {"all dirs by **/", {{"", "**/\n!src/**/\n", 0}}},
    {"star star alone", {{"", "**\n!**/\n!*.md\n", 0}}},
    {"literal stars", {{"", "\\*\\*\na\\*b\na\\*\\*b\n", 0}}},
    {"crlf", {{"", "*.o\r\nbuild/\r\n\r\n#c\r\n", 0}}},
    {"bom, no final newline", {{"", "\xef\xbb\xbf*.log\n*.txt", 0}}},
    {"odd lines", {{"", "/\n!\n\n   \n\\\n//\n!/\n/sp ace/\n", 0}}},
    {"nul byte", {{"", "*.o\0*.c\n*.md\n", 13}}},
    {"dot files", {{"", ".*\n!.env\n", 0}, {".hidden", "!.inner\n", 0}}},
    {"non-ascii", {{"", "\xc3\xa9*\n*\x80*\n", 0}, {"\xc3\xa9t\xc3\xa9", "!*.txt\n", 0}}},
    {"ends with", {{"", "*.txt\n*~\n*.MD\n", 0}, {"docs", "*.md\n!api/\n", 0}}},
    {"prefix longer than the name", {{"", "node_modules/pkg/index.js/x\nnode_modules/\n", 0}}},
    {"dir-only with glob", {{"", "*.d/\nb*/\n!build/\n", 0}}},
};

#define NSCENARIOS (sizeof scenarios / sizeof scenarios[0])

static int run(const char *cmd)
{
    int st = system(cmd);

    return st == 0 ? 0 : -1;
}

/* mkdir -p of the parents of rel inside root, then the thing itself. */
static int make_path(const char *root, const char *rel)
{
    char full[4096];
    size_t n = strlen(rel), i;
    int fd;

    snprintf(full, sizeof full, "%s/%s", root, rel);
    for (i = strlen(root) + 1; full[i]; i++) {
        if (full[i] != '/')
            continue;
        full[i] = '\0';
        if (mkdir(full, 0755) && errno != EEXIST)
            return -1;
        full[i] = '/';
    }
    if (rel[n - 1] == '/')
        return 0;
    fd = open(full, O_WRONLY | O_CREAT, 0644);
    if (fd < 0)
        return -1;
    return close(fd);
}

static int write_file(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int ok = fd >= 0 && write(fd, data, len) == (ssize_t)len;

    if (fd >= 0)
        close(fd);
    return ok ? 0 : -1;
}

static size_t gi_len(const struct gi_file *f)
{
    return f->len ? f->len : strlen(f->text);
}

static int make_repo(const char *repo, size_t s)
{
    char cmd[8192], path[4096];
    size_t i;

    snprintf(cmd, sizeof cmd, "git init -q '%s' && rm -f '%s/.git/info/exclude'", repo, repo);
    if (run(cmd))
        return -1;
    for (i = 0; i < NPATHS; i++)
        if (make_path(repo, paths[i]))
            return -1;
    for (i = 0; i < 4 && scenarios[s].files[i].text; i++) {
        const struct gi_file *f = &scenarios[s].files[i];

        snprintf(path, sizeof path, "%s/%s%s.gitignore", repo, f->dir, *f->dir ? "/" : "");
        if (write_file(path, f->text, gi_len(f)))
            return -1;
    }
    return 0;
}

/* The query: every path, without its trailing '/', NUL-terminated. */
static int write_query(const char *file)
{
    char *q = malloc(NPATHS * 64), *w = q;
    size_t i, n;
    int ret;

    for (i = 0; i < NPATHS; i++) {
        n = strlen(paths[i]) - (paths[i][strlen(paths[i]) - 1] == '/');
        memcpy(w, paths[i], n);
        w += n;
        *w++ = '\0';
    }
    ret = write_file(file, q, (size_t)(w - q));
    free(q);
    return ret;
}

/* git's output: records of source, line, pattern, path, each NUL-ended. */
static char *git_check_ignore(const char *repo, const char *query, size_t *len)
{
    char cmd[8192], *out = NULL;
    size_t cap = 0;
    FILE *p;

    snprintf(cmd, sizeof cmd, "cd '%s' && git check-ignore --no-index -v -n -z --stdin < '%s'",
             repo, query);
    p = popen(cmd, "r");
    if (!p)
        return NULL;
    *len = 0;
    for (;;) {
        if (cap - *len < 4096) {
            cap = cap ? 2 * cap : 65536;
            out = realloc(out, cap);
        }
        size_t r = fread(out + *len, 1, cap - *len, p);

        if (!r)
            break;
        *len += r;
    }
    pclose(p);
    return out;
}

static int path_index(const char *path)
{
    size_t i, n = strlen(path);

    for (i = 0; i < NPATHS; i++)
        if (!strncmp(paths[i], path, n) && (!paths[i][n] || !strcmp(paths[i] + n, "/")))
            return (int)i;
    return -1;
}

static mesa_ignore_t *build_rules(size_t s)
{
    mesa_ignore_t *ig = mesa_ignore_new();
    size_t i;

    for (i = 0; i < 4 && scenarios[s].files[i].text; i++) {
        const struct gi_file *f = &scenarios[s].files[i];

        if (mesa_ignore_add(ig, f->dir, f->text, gi_len(f)))
            printf("# mesa_ignore_add failed in scenario %s\n", scenarios[s].name);
    }
    return ig;
}

/* Compare every record of git's answer with ours. */
static void compare(size_t s, const char *out, size_t len)
{
    mesa_ignore_t *ig = build_rules(s);
    const char *f[4], *end = out + len;
    char what[512];
    int seen[NPATHS] = {0}, k, idx, git, mine, records = 0;

    while (out < end) {
        for (k = 0; k < 4 && out < end; k++) {
            f[k] = out;
            out += strlen(out) + 1;
        }
        if (k < 4)
            break;
        idx = path_index(f[3]);
        if (idx < 0 || seen[idx]++)
            continue;
        records++;
        git = f[2][0] && f[2][0] != '!';
        mine = mesa_ignore_match(ig, f[3], paths[idx][strlen(paths[idx]) - 1] == '/');
        snprintf(what, sizeof what, "[%s] \"%s\" is%s ignored, as git says", scenarios[s].name,
                 f[3], git ? "" : " not");
        CHECK_EQ_INT(mine, git, what);
        if (mine != git)
            printf("# mismatch: path \"%s\": git %d (pattern \"%s\" from %s:%s), mesa %d\n", f[3],
                   git, f[2], f[0], f[1], mine);
    }
    snprintf(what, sizeof what, "[%s] git answered for all %zu paths", scenarios[s].name, NPATHS);
    CHECK_EQ_INT(records, NPATHS, what);
    mesa_ignore_free(ig);
}

static void skip(const char *why)
{
    ctest_n++;
    printf("ok %d # SKIP %s\n", ctest_n, why);
}

static void test_against_git(void)
{
    char root[] = "/tmp/mesa-gitignore-XXXXXX", repo[256], query[256], cmd[512];
    size_t s, len;
    char *out;

    if (system("git --version >/dev/null 2>&1") != 0 || !mkdtemp(root)) {
        for (s = 0; s < NSCENARIOS; s++)
            skip("git not installed");
        return;
    }
    setenv("HOME", root, 1);
    setenv("XDG_CONFIG_HOME", root, 1);
    setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
    setenv("GIT_CONFIG_GLOBAL", "/dev/null", 1);
    unsetenv("GIT_DIR");
    unsetenv("GIT_WORK_TREE");
    unsetenv("GIT_INDEX_FILE");
    snprintf(query, sizeof query, "%s/query", root);
    CHECK_EQ_INT(write_query(query), 0, "the query file is written");
    for (s = 0; s < NSCENARIOS; s++) {
        snprintf(repo, sizeof repo, "%s/s%02zu", root, s);
        if (make_repo(repo, s) || !(out = git_check_ignore(repo, query, &len))) {
            CHECK(0, "a scenario's repository is built and asked");
            continue;
        }
        compare(s, out, len);
        free(out);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (run(cmd))
        printf("# could not remove %s\n", root);
}

int main(void)
{
    test_rules();
    test_dot_git();
    test_api_edges();
    test_hostile_patterns();
    test_against_git();
    return ctest_done();
}
