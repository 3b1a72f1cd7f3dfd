/* tools/mesarun_setup.c - everything mesarun does before COMMAND starts
 * (docs/MOUNT.md "What mesarun exports"): find the shim, connect, resolve
 * each --repo to a change and commit, sign the mount's one token, create
 * $RUN (state, journal, staging/, cwd/, exec/) and $CACHE (blob cache,
 * every slot's tree listing, local/), and build COMMAND's environment.
 *
 * Invariant: option errors that need the server (unknown repo, bookmark,
 * change, a --cwd outside the mounted repos) are still exit 2, and are
 * found before COMMAND runs; directories made here are recorded in mr_t as
 * soon as they exist, so mr_cleanup removes exactly them.
 * Called by mesarun.c's main in the order of the prototypes in mesarun.h.
 */
#include "config.h"
#include "mesarun.h"
#include "blobcache.h"
#include "embedded.h"
#include "env.h"
#include "fetch.h"
#include "fsutil.h"
#include "mounttoken.h"
#include "path.h"
#include "state.h"
#include "treecache.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#ifndef PKGLIBDIR
#error "PKGLIBDIR must be defined by the build"
#endif

#ifndef PKGLIBEXECDIR
#error "PKGLIBEXECDIR must be defined by the build"
#endif

#define SHIM_NAME "libmesafs_preload.so"
#define AUDIT_NAME "libmesafs_audit.so"
#define HELPER_NAME "mesafs-ldhelper"

extern char **environ;

/* ------------------------------------------------------------ shim */

/* The directory of the running program. */
static int self_dir(char *out)
{
    ssize_t n = readlink("/proc/self/exe", out, PATH_MAX - 1);
    if (n <= 0)
        return -ENOENT;
    out[n] = '\0';
    char *slash = strrchr(out, '/');
    if (!slash)
        return -ENOENT;
    *slash = '\0';
    return 0;
}

/* A regular file at cand that we may access with mode: its absolute path
 * into out (PATH_MAX bytes). 0 or -errno. */
static int try_file(char *out, const char *cand, int mode)
{
    struct stat st;
    if (!realpath(cand, out) || stat(out, &st) < 0 || access(out, mode) < 0)
        return -errno;
    return S_ISREG(st.st_mode) ? 0 : -EISDIR;
}

/* The shim's absolute path into m->shim if cand is a readable file. 0 or -errno. */
static int try_shim(mr_t *m, const char *cand)
{
    return try_file(m->shim, cand, R_OK);
}

int mr_parse_author(const char *s, char *name, char *email)
{
    const char *lt = strrchr(s, '<'), *gt = strrchr(s, '>');
    size_t n = lt ? (size_t)(lt - s) : 0;
    while (n && s[n - 1] == ' ')
        n--;
    if (!lt || !gt || gt < lt || gt[1] || n == 0 || n >= 256 || gt - lt - 1 <= 0 ||
        gt - lt - 1 >= 256 || !memchr(lt, '@', (size_t)(gt - lt)))
        return -EINVAL;
    memcpy(name, s, n);
    name[n] = '\0';
    memcpy(email, lt + 1, (size_t)(gt - lt - 1));
    email[gt - lt - 1] = '\0';
    return 0;
}

/* `git config --get KEY` into out (trailing newline dropped); "" if none. */
static void git_config(const char *key, char *out, size_t len)
{
    char cmd[64];
    out[0] = '\0';
    snprintf(cmd, sizeof cmd, "git config --get %s 2>/dev/null", key);
    FILE *f = popen(cmd, "re");
    if (f && fgets(out, (int)len, f))
        out[strcspn(out, "\n")] = '\0';
    if (f)
        pclose(f);
}

void mr_default_author(mr_t *m)
{
    const char *n = getenv("MESA_AUTHOR_NAME"), *e = getenv("MESA_AUTHOR_EMAIL");
    if (m->o.author_name[0])
        return;
    if (n && n[0] && e && e[0]) {
        snprintf(m->o.author_name, sizeof m->o.author_name, "%s", n);
        snprintf(m->o.author_email, sizeof m->o.author_email, "%s", e);
        return;
    }
    git_config("user.name", m->o.author_name, sizeof m->o.author_name);
    git_config("user.email", m->o.author_email, sizeof m->o.author_email);
    if (!m->o.author_name[0] || !m->o.author_email[0])
        m->o.author_name[0] = m->o.author_email[0] = '\0';
}

int mr_find_helper(const char *name, char *out)
{
    char self[PATH_MAX], cand[PATH_MAX];
    if (self_dir(self) == 0 && mr_path(cand, "%s/%s", self, name) == 0 &&
        try_file(out, cand, X_OK) == 0)
        return 0;
    if (mr_path(cand, "%s/%s", PKGLIBEXECDIR, name) == 0 && try_file(out, cand, X_OK) == 0)
        return 0;
    return -ENOENT;
}

/* The LD_AUDIT module that serves library searches in the mount (DESIGN
 * §6): $MESA_AUDIT (empty: none), else next to the shim, next to mesarun
 * in a build tree, or in PKGLIBDIR; and its resolver: $MESA_LDHELPER, else
 * next to mesarun or in PKGLIBEXECDIR. A module or resolver that is not
 * found where mesarun looks by itself means a mount without the module
 * (said with -v): libraries are still loaded by dlopen of a mount path. */
static int find_audit(mr_t *m)
{
    const char *env = getenv("MESA_AUDIT"), *hel = getenv("MESA_LDHELPER");
    char cand[PATH_MAX], dir[PATH_MAX], self[PATH_MAX];
    int rc, have_self = self_dir(self) == 0;
    m->audit[0] = m->ldhelper[0] = '\0';
    if (env && !env[0])
        return 0;
    if (env && (rc = try_file(m->audit, env, R_OK)) < 0)
        return mr_fail("MESA_AUDIT=%s: %s", env, strerror(-rc));
    if (hel && hel[0] && (rc = try_file(m->ldhelper, hel, X_OK)) < 0)
        return mr_fail("MESA_LDHELPER=%s: %s", hel, strerror(-rc));
    snprintf(dir, sizeof dir, "%s", m->shim);
    *strrchr(dir, '/') = '\0';
    int found = env != NULL;
    found =
        found || (mr_path(cand, "%s/" AUDIT_NAME, dir) == 0 && try_file(m->audit, cand, R_OK) == 0);
    found = found || (have_self && mr_path(cand, "%s/../shim/.libs/" AUDIT_NAME, self) == 0 &&
                      try_file(m->audit, cand, R_OK) == 0);
    found = found || try_file(m->audit, PKGLIBDIR "/" AUDIT_NAME, R_OK) == 0;
    int helper = hel && hel[0];
    helper = helper || mr_find_helper(HELPER_NAME, m->ldhelper) == 0;
    if (found && helper && strchr(m->audit, ':'))
        return mr_fail("the audit library's path '%s' has a ':', which LD_AUDIT cannot hold",
                       m->audit);
    if (found && helper)
        return 0;
    if (env)
        return mr_fail("MESA_AUDIT=%s: cannot find its resolver %s (set MESA_LDHELPER)", env,
                       HELPER_NAME);
    if (m->o.verbose)
        mr_log(NULL, found ? "no " HELPER_NAME ": the mount has no LD_AUDIT module"
                           : "no " AUDIT_NAME ": the mount has no LD_AUDIT module");
    m->audit[0] = m->ldhelper[0] = '\0';
    return 0;
}

int mr_find_shim(mr_t *m)
{
    const char *env = getenv("MESA_SHIM");
    char cand[PATH_MAX], dir[PATH_MAX];
    int found, rc;
    if (env && env[0]) {
        if ((rc = try_shim(m, env)) < 0)
            return mr_fail("MESA_SHIM=%s: %s", env, strerror(-rc));
        found = 1;
    } else {
        found = self_dir(dir) == 0 && mr_path(cand, "%s/../shim/.libs/" SHIM_NAME, dir) == 0 &&
                try_shim(m, cand) == 0;
        found = found || try_shim(m, PKGLIBDIR "/" SHIM_NAME) == 0;
    }
    if (!found)
        return mr_fail("cannot find the preload library %s (looked in %s; set MESA_SHIM)",
                       SHIM_NAME, PKGLIBDIR);
    if (strpbrk(m->shim, ": \t"))
        return mr_fail("the preload library's path '%s' has a ':' or a space, which "
                       "LD_PRELOAD cannot hold",
                       m->shim);
    return find_audit(m);
}

/* ------------------------------------------------------------ connect */

/* URL and credential from the options, the environment or the embedded
 * default. */
static int pick_server(mr_t *m, const mesa_config_t *cfg, char *org, const char **bearer)
{
    static mesa_embedded_t emb;
    char err[512];
    const char *url = m->o.url ? m->o.url : cfg->url;
    snprintf(org, 101, "%s", m->o.org ? m->o.org : cfg->org);
    if (url[0]) {
        if (!cfg->api_key[0] && !cfg->access_token[0])
            return mr_usage("--url", "set MESA_API_KEY (or MESA_ACCESS_TOKEN) too");
        snprintf(m->url, sizeof m->url, "%s", url);
        snprintf(m->api_key, sizeof m->api_key, "%s", cfg->api_key);
        *bearer = cfg->api_key[0] ? cfg->api_key : cfg->access_token;
        return 0;
    }
    if (mesa_embedded_ensure(&emb, err, sizeof err) < 0)
        return mr_fail("%s", err);
    snprintf(m->url, sizeof m->url, "%s", emb.url);
    snprintf(m->api_key, sizeof m->api_key, "%s", emb.api_key);
    if (!org[0])
        snprintf(org, 101, "%s", emb.org);
    *bearer = emb.api_key;
    return 0;
}

/* Blank the credentials in this process's own environment block, which
 * every process of the user (COMMAND included) can read in
 * /proc/<pid>/environ; mesarun keeps its copies. */
static void scrub_environ(void)
{
    static const char *const secret[] = {"MESA_API_KEY=", "MESA_ACCESS_TOKEN="};
    for (char **e = environ; *e; e++)
        for (size_t i = 0; i < sizeof secret / sizeof secret[0]; i++)
            if (strncmp(*e, secret[i], strlen(secret[i])) == 0)
                explicit_bzero(*e + strlen(secret[i]), strlen(*e + strlen(secret[i])));
}

int mr_connect(mr_t *m)
{
    mesa_config_t cfg;
    char err[512], org[101];
    const char *bearer = NULL;
    if (mesa_config_load(&cfg, err, sizeof err) < 0) {
        fprintf(stderr, "mesarun: %s\n", err);
        return MR_EXIT_USAGE;
    }
    scrub_environ();
    int rc = pick_server(m, &cfg, org, &bearer);
    if (rc)
        return rc;
    if (!m->api_key[0] && !(m->token = strdup(bearer)))
        return mr_fail("out of memory");
    if (!m->api_key[0] && m->o.ttl_given) /* the SDK's rule for mounts with a token */
        return mr_usage("--ttl", "the lifetime of an existing access token cannot be changed");
    mesa_client_opts_t o = {.url = m->url, .bearer = bearer, .retries = -1};
    if (mesa_client_new(&o, &m->client) < 0)
        return mr_fail("cannot use the server URL '%s'", m->url);
    if (!org[0]) {
        json_t *who = NULL;
        mesa_error_t e = {0};
        if (mesa_client_json(m->client, "GET", "/whoami", NULL, &who, &e) < 0)
            return mr_fail_api("whoami", &e);
        const char *slug = json_string_value(json_object_get(json_object_get(who, "org"), "slug"));
        snprintf(org, sizeof org, "%s", slug ? slug : "");
        json_decref(who);
    }
    snprintf(m->org, sizeof m->org, "%s", org);
    return 0;
}

/* ------------------------------------------------------------ resolve */

/* GET a printf-formatted path (below /v1). */
static int api_get(mr_t *m, json_t **out, mesa_error_t *e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int api_get(mr_t *m, json_t **out, mesa_error_t *e, const char *fmt, ...)
{
    char path[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof path) {
        snprintf(e->message, sizeof e->message, "request path too long");
        e->err = ENAMETOOLONG;
        return -ENAMETOOLONG;
    }
    return mesa_client_json(m->client, "GET", path, NULL, out, e);
}

/* The newest event id of the repo, so that following starts before the
 * state is read (a write in between is seen). "now" if the server has no
 * event stream. */
static void event_cursor(mr_t *m, mr_repo_t *r)
{
    json_t *v = NULL;
    mesa_error_t e = {0};
    snprintf(r->after, sizeof r->after, "now");
    if (api_get(m, &v, &e, "/%s/%s/events?after=now&wait=0", r->org, r->name) == 0 &&
        json_is_integer(json_object_get(v, "last_event_id")))
        snprintf(r->after, sizeof r->after, "%lld",
                 (long long)json_integer_value(json_object_get(v, "last_event_id")));
    json_decref(v);
}

/* The change (id and current commit) named by id: a change id, or what
 * the server accepts in its place. */
static int get_change(mr_t *m, mr_repo_t *r, const char *id, mesa_error_t *e)
{
    char esc[1024];
    json_t *v = NULL;
    if (mesa_client_escape(id, esc, sizeof esc) < 0) {
        e->status = 404;
        return -ENOENT;
    }
    int rc = api_get(m, &v, e, "/%s/%s/changes/%s", r->org, r->name, esc);
    const char *cid = json_string_value(json_object_get(v, "id"));
    const char *commit = json_string_value(json_object_get(v, "current_commit_oid"));
    if (rc == 0 && (!cid || !commit || strlen(cid) != 32 || strlen(commit) != 40)) {
        snprintf(e->message, sizeof e->message, "malformed change object");
        e->status = 0;
        rc = -EPROTO;
    }
    if (rc == 0) {
        snprintf(r->change_id, sizeof r->change_id, "%s", cid);
        snprintf(r->commit, sizeof r->commit, "%s", commit);
    }
    json_decref(v);
    return rc;
}

/* The change a bookmark points at; a missing default bookmark (a new
 * repo) means the root change. */
static int get_bookmark(mr_t *m, mr_repo_t *r, const char *bm, const char *what)
{
    char esc[1024];
    json_t *v = NULL;
    mesa_error_t e = {0};
    int rc = mesa_client_escape(bm, esc, sizeof esc) < 0
                 ? -ENOENT
                 : api_get(m, &v, &e, "/%s/%s/bookmarks/%s", r->org, r->name, esc);
    const char *cid = json_string_value(json_object_get(v, "change_id"));
    snprintf(r->bookmark, sizeof r->bookmark, "%s", bm);
    if (rc == 0 && cid)
        snprintf(r->change_id, sizeof r->change_id, "%s", cid);
    json_decref(v);
    if (rc == -ENOENT && r->want_bookmark)
        return mr_usage("--bookmark", "%s: no such bookmark in %s", bm, what);
    if (rc == -ENOENT)
        snprintf(r->change_id, sizeof r->change_id, "%s", MR_ROOT_CHANGE);
    else if (rc < 0)
        return mr_fail_api(what, &e);
    if (get_change(m, r, r->change_id, &e) < 0)
        return mr_fail_api(what, &e);
    return 0;
}

static int resolve_repo(mr_t *m, mr_repo_t *r)
{
    char what[256], def[256];
    json_t *v = NULL;
    mesa_error_t e = {0};
    snprintf(what, sizeof what, "%s/%s", r->org, r->name);
    int rc = api_get(m, &v, &e, "/%s/%s", r->org, r->name);
    snprintf(def, sizeof def, "%s",
             json_string_value(json_object_get(v, "default_bookmark")) ?: "main");
    json_decref(v);
    if (rc == -ENOENT)
        return mr_usage("--repo", "%s: no such repository", what);
    if (rc < 0)
        return mr_fail_api(what, &e);
    event_cursor(m, r);
    if (r->want_branched) /* mesarun_fork.c; the fork is made in mr_resolve */
        return mr_fork_resolve(m, r, what);
    if (!r->want_change)
        return get_bookmark(m, r, r->want_bookmark ? r->want_bookmark : def, what);
    r->bookmark[0] = '\0';
    rc = get_change(m, r, r->want_change, &e);
    if (rc == -ENOENT)
        return mr_usage("--change", "%s: no such change in %s", r->want_change, what);
    return rc < 0 ? mr_fail_api(what, &e) : 0;
}

/* Give ORG-less repos the client's org; refuse other orgs and repeats. */
static int check_orgs(mr_t *m)
{
    for (size_t i = 0; i < m->o.nrepos; i++) {
        mr_repo_t *r = &m->o.repos[i];
        if (!r->org[0])
            snprintf(r->org, sizeof r->org, "%s", m->org);
        else if (strcmp(r->org, m->org) != 0)
            return mr_usage("--repo", "%s/%s: org '%s' is not the client's org '%s'", r->org,
                            r->name, r->org, m->org);
        for (size_t k = 0; k < i; k++)
            if (strcmp(m->o.repos[k].name, r->name) == 0)
                return mr_usage("--repo", "%s/%s: given twice", r->org, r->name);
    }
    return 0;
}

/* The start directory of a --layout run: --cwd (a workspace path, or a
 * canonical one with --prefix), else the layout's first path. */
static int layout_cwd(mr_t *m)
{
    char base[PATH_MAX], abs[PATH_MAX];
    const mesa_layout_t *l = &m->o.layout;
    if (!m->o.cwd)
        return mesa_layout_canonical(l, m->o.prefix, m->org, l->m[0].path, m->vcwd,
                                     sizeof m->vcwd) < 0
                   ? -ENAMETOOLONG
                   : 0;
    if (!getcwd(base, sizeof base))
        snprintf(base, sizeof base, "/");
    if (mesa_path_normalize(NULL, base, m->o.cwd, abs, sizeof abs) < 0)
        return mr_usage("--cwd", "'%s' is not a usable path", m->o.cwd);
    int rc = mesa_layout_canonical(l, m->o.prefix, m->org, abs, m->vcwd, sizeof m->vcwd);
    if (rc != 0)
        return rc < 0 ? -ENAMETOOLONG : 0;
    if (mesa_path_under(m->o.prefix, abs))
        return mr_path(m->vcwd, "%s", abs);
    if (!realpath(m->o.cwd, m->kcwd))
        return mr_usage("--cwd", "%s: %s", m->o.cwd, strerror(errno));
    return 0;
}

/* The start directory, lexically: virtual (under the prefix, in the
 * mount) or real (an existing directory). */
static int check_cwd(mr_t *m)
{
    char base[PATH_MAX], abs[PATH_MAX];
    mesa_vpath_t vp;
    struct stat st;
    const char *p = m->o.prefix;
    if (m->o.layout.n) /* --layout: its first (shortest) path, or --cwd in it */
        return layout_cwd(m);
    if (!m->o.cwd) {
        const mr_repo_t *r = &m->o.repos[0];
        return m->o.nrepos == 1 ? mr_path(m->vcwd, "%s/%s/%s", p, r->org, r->name)
                                : mr_path(m->vcwd, "%s/%s", p, m->org);
    }
    if (!getcwd(base, sizeof base))
        snprintf(base, sizeof base, "/");
    if (mesa_path_normalize(p, base, m->o.cwd, abs, sizeof abs) < 0)
        return mr_usage("--cwd", "'%s' is not a usable path", m->o.cwd);
    switch (mesa_path_split(p, abs, &vp)) {
    case MESA_VP_OUTSIDE: /* the kernel resolves it: ".." after a symlink is its target's */
        if (!realpath(m->o.cwd, m->kcwd) || access(m->kcwd, X_OK) < 0)
            return mr_usage("--cwd", "%s: %s", m->o.cwd, strerror(errno));
        if (stat(m->kcwd, &st) < 0 || !S_ISDIR(st.st_mode))
            return mr_usage("--cwd", "%s: %s", m->o.cwd, strerror(ENOTDIR));
        return 0;
    case MESA_VP_ORG:
    case MESA_VP_REPO:
        if (strcmp(vp.org, m->org) != 0)
            return mr_usage("--cwd", "%s: org '%s' is not mounted", abs, vp.org);
        for (size_t i = 0; vp.kind == MESA_VP_REPO && i < m->o.nrepos; i++)
            if (strcmp(m->o.repos[i].name, vp.repo) == 0)
                return mr_path(m->vcwd, "%s", abs);
        if (vp.kind == MESA_VP_REPO)
            return mr_usage("--cwd", "%s: repository '%s' is not mounted (add --repo %s)", abs,
                            vp.repo, vp.repo);
        /* fallthrough */
    case MESA_VP_PREFIX:
        return mr_path(m->vcwd, "%s", abs);
    }
    return 0;
}

int mr_resolve(mr_t *m)
{
    int rc = check_orgs(m);
    if (rc == 0 && (rc = check_cwd(m)) == -ENAMETOOLONG)
        return mr_usage("--cwd", "path too long");
    for (size_t i = 0; rc == 0 && i < m->o.nrepos; i++)
        rc = resolve_repo(m, &m->o.repos[i]);
    /* forks last: nothing is written while an option can still fail */
    for (size_t i = 0; rc == 0 && i < m->o.nrepos; i++)
        if (m->o.repos[i].want_branched)
            rc = mr_fork_create(m, &m->o.repos[i]);
    return rc;
}

/* ------------------------------------------------------------ token */

int mr_sign(mr_t *m)
{
    mesa_mount_repo_t rs[MR_MAX_REPOS];
    mesa_error_t e = {0};
    for (size_t i = 0; i < m->o.nrepos; i++)
        rs[i] = (mesa_mount_repo_t){.org = m->o.repos[i].org,
                                    .repo = m->o.repos[i].name,
                                    .read_only = m->o.repos[i].read_only};
    if (m->api_key[0]) {
        int rc = mesa_mount_token(m->client, m->api_key, rs, m->o.nrepos, m->o.ttl, &m->token, &e);
        if (rc < 0)
            return mr_fail_api("signing the mount's token", &e);
    }
    mesa_client_opts_t o = {.url = m->url, .bearer = m->token, .retries = -1};
    if (mesa_client_new(&o, &m->tclient) < 0)
        return mr_fail("out of memory");
    return 0;
}

/* ------------------------------------------------------------ $RUN */

/* dir exists, is ours and private (a shared /tmp must not hand us
 * someone else's directory). */
static int private_dir(const char *dir)
{
    struct stat st;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -errno;
    if (lstat(dir, &st) < 0)
        return -errno;
    if (!S_ISDIR(st.st_mode) || st.st_uid != getuid())
        return -EPERM;
    if ((st.st_mode & 077) && chmod(dir, 0700) < 0)
        return -errno;
    return 0;
}

/* ${XDG_RUNTIME_DIR:-/tmp}/mesa-<uid>/mount-<pid>[.<n>] (a directory
 * kept by an earlier mesarun of the same pid holds its pending writes). */
static int make_run_dir(mr_t *m)
{
    char base[PATH_MAX], dir[PATH_MAX];
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    int rc = mr_path(base, "%s/mesa-%u", xdg && xdg[0] == '/' ? xdg : "/tmp", (unsigned)getuid());
    if (rc == 0 && (rc = private_dir(base)) < 0)
        return mr_fail("runtime directory %s: %s", base, strerror(-rc));
    for (int n = 0; rc == 0 && n < 1000; n++) {
        rc = n ? mr_path(dir, "%s/mount-%d.%d", base, (int)getpid(), n)
               : mr_path(dir, "%s/mount-%d", base, (int)getpid());
        if (rc == 0 && mkdir(dir, 0700) == 0) {
            memcpy(m->run, dir, sizeof m->run); /* same size: fits */
            return 0;
        }
        if (rc == 0 && errno != EEXIST)
            rc = -errno;
    }
    return mr_fail("runtime directory in %s: %s", base, strerror(rc ? -rc : EEXIST));
}

static int make_state(mr_t *m)
{
    static mesa_state_repo_t slots[MR_MAX_REPOS];
    char path[PATH_MAX];
    for (size_t i = 0; i < m->o.nrepos; i++) {
        const mr_repo_t *r = &m->o.repos[i];
        mesa_state_repo_t *s = &slots[i];
        memset(s, 0, sizeof *s);
        snprintf(s->org, sizeof s->org, "%s", r->org);
        snprintf(s->repo, sizeof s->repo, "%s", r->name);
        snprintf(s->bookmark, sizeof s->bookmark, "%s", r->bookmark);
        snprintf(s->change_id, sizeof s->change_id, "%s", r->change_id);
        snprintf(s->commit, sizeof s->commit, "%s", r->commit);
        snprintf(s->base_commit, sizeof s->base_commit, "%s", r->commit);
        s->flags = r->read_only ? MESA_STATE_RO : 0;
    }
    int rc = mr_path(path, "%s/state", m->run);
    return rc < 0 ? rc : mesa_state_create(path, slots, m->o.nrepos);
}

static int make_journal(mr_t *m)
{
    char path[PATH_MAX];
    int rc = mr_path(path, "%s/journal", m->run);
    int fd = rc < 0 ? -1 : open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return rc < 0 ? rc : -errno;
    close(fd);
    return 0;
}

static int make_subdir(mr_t *m, const char *name, mode_t mode)
{
    char path[PATH_MAX];
    int rc = mr_path(path, "%s/%s", m->run, name);
    return rc < 0 ? rc : mkdir(path, mode) < 0 ? -errno : 0;
}

static int make_run(mr_t *m)
{
    int rc = make_run_dir(m);
    if (rc)
        return rc;
    if ((rc = make_state(m)) == 0 && (rc = make_journal(m)) == 0 &&
        (rc = make_subdir(m, "staging", 0700)) == 0)
        rc = make_subdir(m, "cwd", 0755);
    return rc < 0 ? mr_fail("%s: %s", m->run, strerror(-rc)) : 0;
}

/* ------------------------------------------------------------ $CACHE */

/* A private directory on a memory filesystem for --memory-cache. */
static int make_memdir(mr_t *m)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    const char *bases[] = {"/dev/shm", xdg && xdg[0] == '/' ? xdg : "/tmp", "/tmp"};
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
        if (mr_path(m->memdir, "%s/mesa-cache-%u-%d.XXXXXX", bases[i], (unsigned)getuid(),
                    (int)getpid()) == 0 &&
            mkdtemp(m->memdir))
            return mr_path(m->cache, "%s", m->memdir);
    }
    m->memdir[0] = '\0';
    return mr_fail("--memory-cache: cannot create a directory in /dev/shm or /tmp: %s",
                   strerror(errno));
}

static int pick_cache_dir(mr_t *m)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char cwd[PATH_MAX];
    if (m->o.memory_cache)
        return make_memdir(m);
    int rc =
        m->o.cache_dir && m->o.cache_dir[0] == '/' ? mr_path(m->cache, "%s", m->o.cache_dir)
        : m->o.cache_dir
            ? (getcwd(cwd, sizeof cwd) ? mr_path(m->cache, "%s/%s", cwd, m->o.cache_dir) : -errno)
        : xdg && xdg[0] == '/'   ? mr_path(m->cache, "%s/mesa", xdg)
        : home && home[0] == '/' ? mr_path(m->cache, "%s/.cache/mesa", home)
                                 : -ENOENT;
    if (rc == -ENOENT && !m->o.cache_dir)
        return mr_fail("no cache directory: set HOME or XDG_CACHE_HOME, or give --cache-dir");
    if (rc == 0)
        rc = mesa_mkdirs(m->cache, 0700);
    return rc < 0 ? mr_fail("cache directory %s: %s", m->cache, strerror(-rc)) : 0;
}

/* Open the blob cache once: the size is checked (or auto-sized) and an
 * explicit --cache-size is enforced now. */
static int open_blobcache(mr_t *m)
{
    mesa_blobcache_t *bc = NULL;
    int rc = mesa_blobcache_open(m->cache, m->o.cache_size, &bc);
    if (rc == 0 && m->o.cache_size)
        rc = mesa_blobcache_evict(bc, m->o.cache_size, NULL);
    mesa_blobcache_close(bc);
    return rc < 0 ? mr_fail("cache %s: %s", m->cache, strerror(-rc)) : 0;
}

/* Every slot's listing in $CACHE/trees and its local/ directory. */
static int fill_cache(mr_t *m)
{
    char local[PATH_MAX], what[256];
    for (size_t i = 0; i < m->o.nrepos; i++) {
        const mr_repo_t *r = &m->o.repos[i];
        mesa_tree_t *t = NULL;
        mesa_error_t e = {0};
        snprintf(what, sizeof what, "%s/%s: listing commit %.12s", r->org, r->name, r->commit);
        if (mesa_fetch_tree(m->tclient, m->cache, r->org, r->name, r->commit, &t, &e) < 0)
            return mr_fail_api(what, &e);
        mesa_tree_close(t);
        mesa_state_repo_t sr = {0};
        char key[sizeof sr.mount_key];
        snprintf(sr.bookmark, sizeof sr.bookmark, "%s", r->bookmark);
        snprintf(sr.change_id, sizeof sr.change_id, "%s", r->change_id);
        mesa_state_mount_key(&sr, key, sizeof key);
        int rc = mr_path(local, "%s/local/%s/%s/%s", m->cache, r->org, r->name, key);
        if (rc == 0)
            rc = mesa_mkdirs(local, 0700);
        if (rc < 0)
            return mr_fail("%s: %s", local, strerror(-rc));
    }
    return 0;
}

/* ------------------------------------------------------------ exec/ */

static int exec_allowed(const char *dir)
{
    struct statvfs sv;
    return statvfs(dir, &sv) == 0 && !(sv.f_flag & ST_NOEXEC);
}

/* exec/ under the cache dir, its path in $RUN/exec.path. */
static int make_cache_exec(mr_t *m)
{
    char parent[PATH_MAX], rec[PATH_MAX];
    int rc = mr_path(parent, "%s/exec", m->cache);
    if (rc == 0)
        rc = mesa_mkdirs(parent, 0700);
    if (rc == 0)
        rc = mr_path(m->execdir, "%s/mount-%d.XXXXXX", parent, (int)getpid());
    if (rc == 0 && !mkdtemp(m->execdir))
        rc = -errno;
    if (rc < 0) {
        m->execdir[0] = '\0';
        return rc;
    }
    size_t n = strlen(m->execdir);
    m->execdir[n] = '\n';
    rc = mr_path(rec, "%s/exec.path", m->run);
    if (rc == 0)
        rc = mesa_publish(m->run, "exec.path", m->execdir, n + 1, 0600, rec);
    m->execdir[n] = '\0';
    return rc;
}

/* Executables from the mount run from copies in exec/: it must be on a
 * filesystem that allows exec. */
static int make_exec(mr_t *m)
{
    if (!exec_allowed(m->run) && exec_allowed(m->cache)) {
        int rc = make_cache_exec(m);
        return rc < 0 ? mr_fail("exec directory under %s: %s", m->cache, strerror(-rc)) : 0;
    }
    if (!exec_allowed(m->run))
        mr_log(NULL, "warning: neither the runtime nor the cache directory allows exec: "
                     "programs stored in the mount cannot be run");
    int rc = make_subdir(m, "exec", 0700);
    return rc < 0 ? mr_fail("%s/exec: %s", m->run, strerror(-rc)) : 0;
}

/* ------------------------------------------------------------ start dir */

/* rel must be a directory of the slot's listing. */
static int cwd_in_tree(mr_t *m, const char *org, const char *repo, const char *rel)
{
    for (size_t i = 0; rel[0] && i < m->o.nrepos; i++) {
        const mr_repo_t *r = &m->o.repos[i];
        mesa_tree_t *t = NULL;
        mesa_tree_ent_t ent;
        if (strcmp(r->org, org) != 0 || strcmp(r->name, repo) != 0)
            continue;
        if (mesa_tree_open(m->cache, r->commit, &t) < 0)
            return mr_fail("%s/%s: cannot open the listing of %.12s", org, repo, r->commit);
        int rc = mesa_tree_lookup(t, rel, &ent);
        int dir = rc == 0 && ent.type == MESA_ENT_DIR;
        mesa_tree_close(t);
        if (!dir)
            return mr_usage("--cwd", "%s: %s", m->vcwd, strerror(rc == 0 ? ENOTDIR : ENOENT));
    }
    return 0;
}

/* The placeholder of the virtual start dir, kernel cwd of COMMAND. */
static int make_start_dir(mr_t *m)
{
    mesa_vpath_t vp;
    if (!m->vcwd[0])
        return 0; /* a real --cwd, checked already */
    mesa_vp_kind_t k = mesa_path_split(m->o.prefix, m->vcwd, &vp);
    int rc = k == MESA_VP_REPO ? cwd_in_tree(m, vp.org, vp.repo, vp.rel) : 0;
    if (rc)
        return rc;
    rc = k == MESA_VP_REPO  ? mr_path(m->kcwd, "%s/cwd/%s/%s%s%s", m->run, vp.org, vp.repo,
                                     vp.rel[0] ? "/" : "", vp.rel)
         : k == MESA_VP_ORG ? mr_path(m->kcwd, "%s/cwd/%s", m->run, vp.org)
                            : mr_path(m->kcwd, "%s/cwd", m->run);
    if (rc == 0)
        rc = mesa_mkdirs(m->kcwd, 0755);
    return rc < 0 ? mr_fail("start directory %s: %s", m->kcwd, strerror(-rc)) : 0;
}

int mr_prepare(mr_t *m)
{
    int rc = make_run(m);
    if (rc == 0)
        rc = pick_cache_dir(m);
    if (rc == 0)
        rc = open_blobcache(m);
    if (rc == 0)
        rc = fill_cache(m);
    if (rc == 0)
        rc = make_exec(m);
    if (rc == 0)
        rc = make_start_dir(m);
    return rc;
}

/* ------------------------------------------------------------ environment */

static const char *const dropped[] = {
    "LD_PRELOAD", "MESA_PRELOAD",      "MESA_MOUNT",   "MESA_CACHE",      "MESA_PREFIX",
    "MESA_URL",   "MESA_ACCESS_TOKEN", "MESA_API_KEY", "MESA_ORG",        "MESA_PUSH_IGNORED",
    "MESA_CWD",   "MESA_FDS",          "PWD",          "MESA_CACHE_SIZE", "LD_AUDIT",
    "MESA_AUDIT", "MESA_LDHELPER",     "MESA_SANDBOX", "MESA_TRAP",       "MESA_LAYOUT",
};

static int is_dropped(const char *kv)
{
    for (size_t i = 0; i < sizeof dropped / sizeof dropped[0]; i++) {
        size_t n = strlen(dropped[i]);
        if (strncmp(kv, dropped[i], n) == 0 && kv[n] == '=')
            return 1;
    }
    return 0;
}

#ifdef MESA_SANITIZERS
/* A sanitizer build's shim needs the ASan/UBSan runtimes loaded first in
 * every program it is preloaded into: ours are the ones mapped here. */
static void san_runtimes(char *out, size_t len)
{
    static const char *const libs[] = {"/libasan.so", "/libubsan.so"}; /* ASan first */
    char line[4600];
    out[0] = '\0';
    for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++) {
        FILE *f = fopen("/proc/self/maps", "re");
        while (f && fgets(line, sizeof line, f)) {
            char *p = strchr(line, '/');
            if (!p || !strstr(p, libs[i]))
                continue;
            p[strcspn(p, "\n")] = '\0';
            if (!strstr(out, p) && strlen(out) + strlen(p) + 2 < len)
                snprintf(out + strlen(out), len - strlen(out), "%s:", p);
        }
        if (f)
            fclose(f);
    }
}
#endif

/* The shim with what it needs before it: "[runtimes:]shim" (malloc'd). */
static char *preload_list(const char *shim)
{
    char rt[2 * PATH_MAX] = "";
#ifdef MESA_SANITIZERS
    san_runtimes(rt, sizeof rt);
#endif
    char *out = NULL;
    return asprintf(&out, "%s%s", rt, shim) < 0 ? NULL : out;
}

/* Is the n-byte entry e one of list's ':'-separated entries? */
static int listed(const char *list, const char *e, size_t n)
{
    for (const char *p = list; *p;) {
        size_t l = strcspn(p, ":");
        if (l == n && strncmp(p, e, n) == 0)
            return 1;
        p += l + (p[l] != '\0');
    }
    return 0;
}

/* "<var>=<list>[:<the old entries not in list>]" (malloc'd): LD_PRELOAD,
 * LD_AUDIT. */
static char *ld_list(const char *var, const char *list)
{
    const char *old = getenv(var);
    size_t cap = strlen(var) + strlen(list) + (old ? strlen(old) : 0) + 16;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    int len = snprintf(out, cap, "%s=%s", var, list);
    for (const char *p = old ? old : ""; *p;) {
        size_t n = strcspn(p, ": \t");
        if (n && !listed(list, p, n))
            len += snprintf(out + len, cap - (size_t)len, ":%.*s", (int)n, p);
        p += n + (p[n] != '\0');
    }
    return out;
}

static int add_var(char **envp, size_t *n, const char *name, const char *value)
{
    if (asprintf(&envp[*n], "%s=%s", name, value) < 0) {
        envp[*n] = NULL;
        return -ENOMEM;
    }
    (*n)++;
    return 0;
}

int mr_build_env(mr_t *m)
{
    size_t count = 0, n = 0;
    while (environ[count])
        count++;
    m->envp = calloc(count + 24, sizeof *m->envp);
    if (!m->envp)
        return mr_fail("out of memory");
    for (size_t i = 0; i < count; i++)
        if (!is_dropped(environ[i]) && (m->envp[n] = strdup(environ[i])) != NULL)
            n++;
    char *list = preload_list(m->shim);
    int rc = list && (m->envp[n] = ld_list("LD_PRELOAD", list)) ? (n++, 0) : -ENOMEM;
    if (rc == 0 && m->audit[0])
        rc = (m->envp[n] = ld_list("LD_AUDIT", m->audit)) ? (n++, 0) : -ENOMEM;
    const char *pwd = m->vcwd[0] ? m->vcwd : m->kcwd;
    char wpwd[PATH_MAX]; /* --layout: COMMAND sees the workspace path */
    char *layout = m->o.layout.n ? mesa_layout_export(&m->o.layout, m->o.prefix, m->org,
                                                      !m->o.prefix_given)
                                 : NULL;
    if (m->vcwd[0] && mesa_layout_workspace(&m->o.layout, m->o.prefix, m->org, m->vcwd, wpwd,
                                            sizeof wpwd) == 1)
        pwd = wpwd;
    if (m->o.sandbox && mr_path(m->proxy_url, "unix:%s/proxy.sock", m->run) < 0)
        return mr_fail("%s: the path is too long", m->run);
    const char *asan = NULL;
    char cache_size[32];
    snprintf(cache_size, sizeof cache_size, "%llu", (unsigned long long)m->o.cache_size);
#ifdef MESA_SANITIZERS
    if (!getenv("ASAN_OPTIONS")) /* make, gcc... were not written for leak checks */
        asan = "detect_leaks=0";
#endif
    const struct {
        const char *name, *value;
    } vars[] = {
        {"MESA_PRELOAD", list},
        {"ASAN_OPTIONS", asan},
        {"MESA_CACHE_SIZE", m->o.cache_size ? cache_size : NULL},
        {"MESA_MOUNT", m->run},
        {"MESA_CACHE", m->cache},
        {"MESA_PREFIX", m->o.prefix},
        /* --sandbox: the proxy, which holds the token (tools/mesarun_proxy.c) */
        {"MESA_URL", m->o.sandbox ? m->proxy_url : m->url},
        {"MESA_ACCESS_TOKEN", m->o.sandbox ? NULL : m->token},
        {"MESA_SANDBOX", m->o.sandbox ? "1" : NULL},
        {"MESA_ORG", m->org},
        {"PWD", pwd},
        {"MESA_PUSH_IGNORED", m->o.push_ignored ? "1" : NULL},
        {"MESA_CWD", m->vcwd[0] ? m->vcwd : NULL},
        {"MESA_AUDIT", m->audit[0] ? m->audit : NULL},
        {"MESA_LDHELPER", m->audit[0] ? m->ldhelper : NULL},
        {"MESA_TRAP", m->trap_sock[0] ? m->trap_sock : NULL},
        {"MESA_LAYOUT", layout},
    };
    for (size_t i = 0; rc == 0 && i < sizeof vars / sizeof vars[0]; i++)
        if (vars[i].value)
            rc = add_var(m->envp, &n, vars[i].name, vars[i].value);
    free(list);
    free(layout);
    return rc < 0 ? mr_fail("out of memory") : 0;
}

/* ------------------------------------------------------------ cleanup */

static int unlock_dir(const char *path, const struct stat *st, int type, struct FTW *f)
{
    (void)f;
    if (type == FTW_D && (st->st_mode & 0700) != 0700)
        chmod(path, (st->st_mode & 07777) | 0700);
    return 0;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *f)
{
    (void)st;
    (void)type;
    (void)f;
    return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

int mr_rmtree(const char *path)
{
    nftw(path, unlock_dir, 32, FTW_PHYS);
    if (nftw(path, remove_one, 32, FTW_PHYS | FTW_DEPTH) < 0)
        return errno == ENOENT ? 0 : -errno;
    return 0;
}

void mr_cleanup(mr_t *m, int keep_run)
{
    if (m->run[0] && !keep_run)
        mr_rmtree(m->run);
    if (m->execdir[0])
        mr_rmtree(m->execdir);
    if (m->memdir[0])
        mr_rmtree(m->memdir);
}
