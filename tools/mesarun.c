/* tools/mesarun.c - the launcher: `mesarun [options] -- COMMAND [ARG...]`
 * (DESIGN §7). This file parses and checks the options and runs the
 * phases in order: connect, resolve the repos, sign the one token, prepare
 * $RUN and $CACHE, start the pusher and the event follower, run COMMAND,
 * reap stragglers, drain, clean up.
 *
 * Invariant: every invalid option is reported (one line, exit 2) before
 * COMMAND starts, and nothing is left on disk for it; once COMMAND has
 * started, $RUN is removed only after every write is acknowledged.
 */
#include "config.h"
#include "mesarun.h"
#include "env.h"
#include "mesarun_trap.h"
#include "path.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char usage_text[] =
    "usage: mesarun [options] -- COMMAND [ARG...]\n"
    "\n"
    "Run COMMAND with Mesa repositories mounted at PREFIX/ORG/REPO (default /mesa)\n"
    "by a preloaded library. Files that COMMAND writes are pushed to each repo's\n"
    "current change as they are closed; mesarun exits once every write is\n"
    "acknowledged by the server.\n"
    "\n"
    "Repositories (at least one; the options after --repo apply to it):\n"
    "  --repo NAME|ORG/NAME  mount a repository (repeatable)\n"
    "    --bookmark B        at bookmark B (default: the repo's default bookmark)\n"
    "    --change ID         at change ID (no bookmark follows the writes)\n"
    "    --read-only         every write in the repo fails with EROFS\n"
    "    --branched-from S   on a new change forked from S (a bookmark or a change\n"
    "                        id); writable repos only, not with --bookmark/--change\n"
    "    --as NAME           (with --branched-from) create bookmark NAME on it and\n"
    "                        mount at NAME; an existing NAME fails (exit 1)\n"
    "  --layout FILE         instead of --repo: mount the repos of a layout (the\n"
    "                        SDK's JSON path map) at its workspace paths\n"
    "Mount:\n"
    "  --ttl SECONDS         life of the mount's access token, 1..86400 (3600)\n"
    "  --cache-dir DIR       blob and tree cache (default $XDG_CACHE_HOME/mesa)\n"
    "  --cache-size BYTES    cache cap, K/M/G suffixes (default: auto-sized)\n"
    "  --memory-cache        a per-run cache in memory, removed at exit\n"
    "  --push-ignored        push files matched by .gitignore too\n"
    "  --prefix PATH         mount prefix (default /mesa)\n"
    "  --cwd PATH            start directory (default: the repo, or PREFIX/ORG)\n"
    "  --author \"NAME <EMAIL>\"  author of the commits the pushes make (default\n"
    "                        MESA_AUTHOR_NAME/MESA_AUTHOR_EMAIL, else git's user)\n"
    "  --grace SECONDS       after COMMAND exits, time left to its leftover\n"
    "                        processes between SIGTERM and SIGKILL, 0..86400 (5)\n"
    "Connection:\n"
    "  --url URL             server (default $MESA_URL, else the embedded mesad)\n"
    "  --org ORG             organization (default $MESA_ORG, else the key's)\n"
    "Sandbox:\n"
    "  --sandbox             confine COMMAND: seccomp deny list, the host read-only\n"
    "                        outside the mount and /tmp (Landlock, where the kernel\n"
    "                        has it), no sockets but AF_UNIX, no credential (the\n"
    "                        server only through mesarun's proxy)\n"
    "    --allow-net         sockets of every family\n"
    "    --private-tmp       a private TMPDIR; /tmp read-only too\n"
    "  --trap-raw[=all]      serve the mount to statically linked programs (on by\n"
    "                        default under --sandbox) through a seccomp supervisor;\n"
    "                        =all: to every process's raw system calls too\n"
    "  --unset-env NAME      remove NAME from COMMAND's environment (repeatable)\n"
    "  -v, --verbose         one line per push (and per refused call) on stderr\n"
    "  -h, --help            this text\n"
    "  --version             the version\n"
    "\n"
    "Environment: MESA_URL, MESA_API_KEY (or MESA_ACCESS_TOKEN), MESA_ORG;\n"
    "MESA_SHIM overrides the preload library, MESA_AUDIT the LD_AUDIT module\n"
    "(empty: none). COMMAND gets the mount's token, never the key. Exit status:\n"
    "COMMAND's (128+N if killed by signal N); 2 for a bad option; 1 if the\n"
    "mount cannot be set up; 75 if writes could not be pushed (they are kept:\n"
    "see mesa push-pending); 126/127 if COMMAND cannot be executed / is not\n"
    "found. See mesarun(1).\n";

/* ------------------------------------------------------------ messages */

int mr_usage(const char *what, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "mesarun: %s: ", what);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return MR_EXIT_USAGE;
}

int mr_fail(const char *fmt, ...)
{
    va_list ap;
    fputs("mesarun: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return MR_EXIT_FAIL;
}

int mr_fail_api(const char *what, const mesa_error_t *e)
{
    const char *msg = e->message[0] ? e->message : strerror(e->err ? e->err : EIO);
    if (e->status)
        return mr_fail("%s: %s (HTTP %ld%s%s)", what, msg, e->status, e->code[0] ? ", " : "",
                       e->code);
    return mr_fail("%s: %s", what, msg);
}

void mr_log(void *ctx, const char *line)
{
    (void)ctx;
    fprintf(stderr, "mesarun: %s\n", line);
}

int mr_path(char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, PATH_MAX, fmt, ap);
    va_end(ap);
    return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

/* ------------------------------------------------------------ values */

/* A decimal integer in min..max. 0 or -1. */
static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    if (s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* BYTES with an optional K, M or G suffix (powers of 1024), > 0. */
static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    if (s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    int shift = !*end                       ? 0
                : strcasecmp(end, "K") == 0 ? 10
                : strcasecmp(end, "M") == 0 ? 20
                : strcasecmp(end, "G") == 0 ? 30
                                            : -1;
    if (errno || shift < 0 || v == 0 || v > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

/* ------------------------------------------------------------ options */

enum opt_id {
    O_REPO,
    O_BOOKMARK,
    O_CHANGE,
    O_BRANCHED,
    O_AS,
    O_RO,
    O_TTL,
    O_CACHE_DIR,
    O_CACHE_SIZE,
    O_MEMORY,
    O_PUSH_IGNORED,
    O_GRACE,
    O_PREFIX,
    O_CWD,
    O_ORG,
    O_URL,
    O_VERBOSE,
    O_SANDBOX,
    O_ALLOW_NET,
    O_PRIVATE_TMP,
    O_UNSET_ENV,
    O_TRAP_RAW,
    O_AUTHOR,
    O_LAYOUT,
    O_HELP,
    O_VERSION,
};

static const struct option_def {
    const char *name;
    int has_arg;
    enum opt_id id;
} options[] = {
    {"--repo", 1, O_REPO},
    {"--bookmark", 1, O_BOOKMARK},
    {"--change", 1, O_CHANGE},
    {"--branched-from", 1, O_BRANCHED},
    {"--as", 1, O_AS},
    {"--read-only", 0, O_RO},
    {"--ttl", 1, O_TTL},
    {"--cache-dir", 1, O_CACHE_DIR},
    {"--cache-size", 1, O_CACHE_SIZE},
    {"--memory-cache", 0, O_MEMORY},
    {"--push-ignored", 0, O_PUSH_IGNORED},
    {"--grace", 1, O_GRACE},
    {"--prefix", 1, O_PREFIX},
    {"--cwd", 1, O_CWD},
    {"--org", 1, O_ORG},
    {"--url", 1, O_URL},
    {"-v", 0, O_VERBOSE},
    {"--verbose", 0, O_VERBOSE},
    {"--sandbox", 0, O_SANDBOX},
    {"--allow-net", 0, O_ALLOW_NET},
    {"--private-tmp", 0, O_PRIVATE_TMP},
    {"--unset-env", 1, O_UNSET_ENV},
    {"--trap-raw", 2, O_TRAP_RAW}, /* 2: an optional inline value (=all) */
    {"--author", 1, O_AUTHOR},
    {"--layout", 1, O_LAYOUT},
    {"-h", 0, O_HELP},
    {"--help", 0, O_HELP},
    {"--version", 0, O_VERSION},
};

static int add_repo(mr_opts_t *o, const char *arg)
{
    const char *slash = strchr(arg, '/'), *spec = arg;
    mr_repo_t *r = &o->repos[o->nrepos];
    if (o->nrepos == MR_MAX_REPOS)
        return mr_usage("--repo", "at most %d repositories", MR_MAX_REPOS);
    memset(r, 0, sizeof *r);
    if (slash) {
        size_t ol = (size_t)(slash - spec);
        if (ol >= sizeof r->org)
            return mr_usage("--repo", "'%s' is not ORG/NAME", spec);
        memcpy(r->org, spec, ol);
        r->org[ol] = '\0';
        if (!mesa_config_org_valid(r->org))
            return mr_usage("--repo", "'%s': ORG must be 1..64 of [a-z0-9-]", spec);
        spec = slash + 1;
    }
    if (!mesa_config_repo_valid(spec))
        return mr_usage("--repo", "'%s' is not a repository name (1..100 of [A-Za-z0-9._-])", arg);
    snprintf(r->name, sizeof r->name, "%s", spec);
    o->nrepos++;
    return 0;
}

/* --bookmark, --change, --read-only: they apply to the last --repo. */
static int repo_option(mr_opts_t *o, const char *name, enum opt_id id, const char *val)
{
    if (o->nrepos == 0)
        return mr_usage(name, "must follow a --repo (it applies to the --repo before it)");
    mr_repo_t *r = &o->repos[o->nrepos - 1];
    if (id == O_RO) {
        r->read_only = 1;
        return 0;
    }
    if ((id == O_BOOKMARK && r->want_bookmark) || (id == O_CHANGE && r->want_change))
        return mr_usage(name, "given twice for --repo %s", r->name);
    if (r->want_bookmark || r->want_change)
        return mr_usage(name, "--bookmark and --change are mutually exclusive (--repo %s)",
                        r->name);
    if (!val[0])
        return mr_usage(name, "must not be empty");
    if (id == O_BOOKMARK)
        r->want_bookmark = val;
    else
        r->want_change = val;
    return 0;
}

/* --branched-from, --as: they apply to the last --repo (docs/DECISIONS.md
 * "fork at mount"); what they exclude is checked in check_forks, once every
 * option of the repo is known. */
static int fork_option(mr_opts_t *o, const char *name, enum opt_id id, const char *val)
{
    if (o->nrepos == 0)
        return mr_usage(name, "must follow a --repo (it applies to the --repo before it)");
    mr_repo_t *r = &o->repos[o->nrepos - 1];
    const char **slot = id == O_BRANCHED ? &r->want_branched : &r->want_as;
    if (*slot)
        return mr_usage(name, "given twice for --repo %s", r->name);
    if (!val[0])
        return mr_usage(name, "must not be empty");
    *slot = val;
    return 0;
}

/* --branched-from: writable repos only, not with --bookmark/--change;
 * --as only with --branched-from. 0 or an exit status. */
static int check_forks(const mr_opts_t *o)
{
    for (size_t i = 0; i < o->nrepos; i++) {
        const mr_repo_t *r = &o->repos[i];
        if (r->want_as && !r->want_branched)
            return mr_usage("--as", "needs --branched-from (--repo %s)", r->name);
        if (!r->want_branched)
            continue;
        if (r->want_bookmark || r->want_change)
            return mr_usage("--branched-from",
                            "cannot be combined with %s (--repo %s): the mount starts on the "
                            "new change",
                            r->want_bookmark ? "--bookmark" : "--change", r->name);
        if (r->read_only)
            return mr_usage("--branched-from",
                            "needs a writable repository: --repo %s is --read-only", r->name);
    }
    return 0;
}

static int set_prefix(mr_opts_t *o, const char *val)
{
    char norm[MESA_PATH_MAX];
    if (val[0] != '/' || mesa_path_normalize(NULL, "/", val, norm, sizeof norm) < 0 ||
        strcmp(norm, "/") == 0 || strlen(norm) >= sizeof o->prefix)
        return mr_usage("--prefix", "must be an absolute path other than / (got '%s')", val);
    memcpy(o->prefix, norm, strlen(norm) + 1); /* fits: checked above */
    return 0;
}

static int set_number(mr_opts_t *o, const char *name, enum opt_id id, const char *val)
{
    if (id == O_TTL)
        o->ttl_given = 1;
    if (id == O_TTL && parse_long(val, 1, 86400, &o->ttl) < 0)
        return mr_usage(name, "must be an integer in 1..86400 (got '%s')", val);
    if (id == O_GRACE && parse_long(val, 0, 86400, &o->grace) < 0)
        return mr_usage(name, "must be an integer in 0..86400 (got '%s')", val);
    if (id == O_CACHE_SIZE && parse_size(val, &o->cache_size) < 0)
        return mr_usage(name,
                        "must be a number of bytes > 0, with an optional K, M or G suffix "
                        "(got '%s')",
                        val);
    return 0;
}

static int set_option(mr_opts_t *o, const char *name, enum opt_id id, const char *val)
{
    switch (id) {
    case O_REPO:
        return add_repo(o, val);
    case O_LAYOUT:
        if (o->layout_file)
            return mr_usage(name, "given twice");
        o->layout_file = val;
        return 0;
    case O_BOOKMARK:
    case O_CHANGE:
    case O_RO:
        return repo_option(o, name, id, val);
    case O_BRANCHED:
    case O_AS:
        return fork_option(o, name, id, val);
    case O_TTL:
    case O_GRACE:
    case O_CACHE_SIZE:
        return set_number(o, name, id, val);
    case O_CACHE_DIR:
        if (!val[0])
            return mr_usage(name, "must not be empty");
        o->cache_dir = val;
        return 0;
    case O_MEMORY:
        o->memory_cache = 1;
        return 0;
    case O_PUSH_IGNORED:
        o->push_ignored = 1;
        return 0;
    case O_PREFIX:
        o->prefix_given = 1;
        return set_prefix(o, val);
    case O_CWD:
        if (!val[0])
            return mr_usage(name, "must not be empty");
        o->cwd = val;
        return 0;
    case O_ORG:
        o->org = val;
        return mesa_config_org_valid(val)
                   ? 0
                   : mr_usage(name, "must be 1..64 of [a-z0-9-] (got '%s')", val);
    case O_URL:
        o->url = val;
        return mesa_config_url_valid(val)
                   ? 0
                   : mr_usage(name, "must start with http://, https:// or unix:/ (got '%s')", val);
    case O_VERBOSE:
        o->verbose = 1;
        return 0;
    case O_SANDBOX:
        o->sandbox = 1;
        return 0;
    case O_ALLOW_NET:
        o->allow_net = 1;
        return 0;
    case O_PRIVATE_TMP:
        o->private_tmp = 1;
        return 0;
    case O_AUTHOR: /* "Name <email>" */
        if (mr_parse_author(val, o->author_name, o->author_email) < 0)
            return mr_usage(name, "must be \"Name <email>\" (got '%s')", val);
        return 0;
    case O_UNSET_ENV:
        if (!val[0] || strchr(val, '='))
            return mr_usage(name, "must be a variable name (got '%s')", val);
        if (o->nunset == sizeof o->unset_env / sizeof o->unset_env[0])
            return mr_usage(name, "at most %zu variables", o->nunset);
        o->unset_env[o->nunset++] = val;
        return 0;
    case O_TRAP_RAW:
        if (val && strcmp(val, "all") != 0)
            return mr_usage(name, "the only value is 'all' (got '%s')", val);
        o->trap_raw = val ? 2 : 1;
        return 0;
    case O_HELP:
        fputs(usage_text, stdout);
        return -1;
    case O_VERSION:
        printf("mesarun %s\n", PACKAGE_VERSION);
        return -1;
    }
    return 0;
}

/* The option argv[*i] names; its value (inline "--x=v" or the next
 * argument) in *val. 0, or an exit status. */
static int find_option(int argc, char **argv, int *i, const struct option_def **def,
                       const char **val)
{
    const char *a = argv[*i], *eq = strchr(a, '=');
    size_t n = eq && a[1] == '-' ? (size_t)(eq - a) : strlen(a);
    for (size_t k = 0; k < sizeof options / sizeof options[0]; k++) {
        if (strlen(options[k].name) != n || strncmp(options[k].name, a, n) != 0)
            continue;
        *def = &options[k];
        *val = NULL;
        if (a[n] == '=' && !options[k].has_arg)
            return mr_usage(options[k].name, "takes no value");
        if (a[n] == '=')
            *val = a + n + 1;
        else if (options[k].has_arg == 1 && *i + 1 < argc && strcmp(argv[*i + 1], "--") != 0)
            *val = argv[++*i];
        else if (options[k].has_arg == 1)
            return mr_usage(options[k].name, "needs a value");
        return 0;
    }
    if (a[0] == '-')
        return mr_usage(a, "unknown option (see mesarun --help)");
    return mr_usage(a, "unexpected argument: COMMAND goes after -- (mesarun [options] -- "
                       "COMMAND)");
}

/* --layout FILE: validate it (core/layout.c) and mount each repo it names
 * once, as it declares it (docs/DECISIONS.md "Layouts"). 0 or exit 2. */
static int load_layout(mr_opts_t *o)
{
    char what[PATH_MAX + 16], err[1024];
    snprintf(what, sizeof what, "--layout %s", o->layout_file);
    if (o->nrepos)
        return mr_usage(what, "cannot be combined with --repo (the layout names the repos)");
    if (mesa_layout_load(o->layout_file, &o->layout, err, sizeof err) < 0)
        return mr_usage(what, "%s", err);
    for (size_t i = 0; i < o->layout.n; i++) {
        const mesa_layout_mount_t *lm = &o->layout.m[i];
        size_t k;
        if (mesa_path_under(o->prefix, lm->path) || mesa_path_under(lm->path, o->prefix))
            return mr_usage(what, "a mount path must not overlap the mount prefix %s (at %s)",
                            o->prefix, lm->path);
        for (k = 0; k < o->nrepos && strcmp(o->repos[k].name, lm->name) != 0; k++)
            ;
        if (k < o->nrepos)
            continue;
        if (o->nrepos == MR_MAX_REPOS)
            return mr_usage(what, "at most %d repositories (at %s)", MR_MAX_REPOS, lm->path);
        mr_repo_t *r = &o->repos[o->nrepos++];
        snprintf(r->name, sizeof r->name, "%s", lm->name);
        r->read_only = lm->read_only;
        r->want_bookmark = lm->bookmark[0] ? lm->bookmark : NULL;
        r->want_change = lm->change[0] ? lm->change : NULL;
    }
    return 0;
}

/* Parse argv into o: 0, -1 (help or version printed), or an exit status. */
static int parse_args(mr_opts_t *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    o->ttl = 3600;
    o->grace = 5;
    snprintf(o->prefix, sizeof o->prefix, "/mesa");
    int i;
    for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        const struct option_def *def = NULL;
        const char *val = NULL;
        int rc = find_option(argc, argv, &i, &def, &val);
        if (rc == 0)
            rc = set_option(o, def->name, def->id, val);
        if (rc)
            return rc;
    }
    int lrc = o->layout_file ? load_layout(o) : 0;
    if (lrc)
        return lrc;
    if (o->nrepos == 0)
        return mr_usage("--repo", "give at least one repository to mount");
    int frc = check_forks(o);
    if (frc)
        return frc;
    if (o->memory_cache && o->cache_dir)
        return mr_usage("--memory-cache", "cannot be combined with --cache-dir");
    if ((o->allow_net || o->private_tmp) && !o->sandbox)
        return mr_usage(o->allow_net ? "--allow-net" : "--private-tmp", "needs --sandbox");
    if (o->trap_raw && !mr_trap_available())
        return mr_usage("--trap-raw", "this kernel has no seccomp user notification "
                                      "(SECCOMP_RET_USER_NOTIF with ADDFD): programs that "
                                      "bypass libc cannot be served");
    if (i >= argc || i + 1 >= argc)
        return mr_usage("COMMAND", "missing: mesarun [options] -- COMMAND [ARG...]");
    o->argv = argv + i + 1;
    return 0;
}

/* ------------------------------------------------------------ main */

static void mr_free(mr_t *m)
{
    if (m->envp)
        for (char **e = m->envp; *e; e++)
            free(*e);
    free(m->envp);
    free(m->token);
    mesa_pusher_free(m->pusher);
    mesa_client_free(m->pclient);
    mesa_client_free(m->tclient);
    mesa_client_free(m->client);
    mesa_layout_free(&m->o.layout);
}

/* Everything before COMMAND: 0 or an exit status (nothing left on disk). */
static int setup(mr_t *m)
{
    int rc = mr_find_shim(m);
    if (rc == 0)
        rc = mr_connect(m);
    if (rc == 0)
        rc = mr_resolve(m);
    if (rc == 0)
        rc = mr_sign(m);
    if (rc == 0)
        rc = mr_prepare(m);
    if (rc == 0)
        rc = mr_trap_setup(m);
    if (rc == 0)
        rc = mr_build_env(m);
    if (rc == 0)
        rc = mr_signals_setup(m);
    if (rc == 0)
        rc = mr_pusher_start(m);
    return rc;
}

int main(int argc, char **argv)
{
    static mr_t m; /* large; one per process */
    m.sigfd = -1;
    mr_note_fds();
    int rc = parse_args(&m.o, argc, argv);
    if (rc)
        return rc < 0 ? 0 : rc;
    rc = setup(&m);
    if (rc) {
        mr_pusher_stop(&m); /* COMMAND never ran: nothing to push */
        mr_cleanup(&m, 0);
        mr_free(&m);
        return rc;
    }
    int status = mr_run_command(&m);
    mr_follow_stop(m.follow);
    rc = mr_drain(&m, status);
    mr_cleanup(&m, rc == MR_EXIT_PENDING);
    mr_free(&m);
    return rc ? rc : status;
}
