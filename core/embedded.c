/* core/embedded.c - start or reuse the user's private mesad (embedded.h).
 *
 * Invariant: at most one `mesad init` and one `mesad serve` per data
 * directory, however many tools start at once: everything happens under an
 * exclusive flock, and a server that answers /healthz is reused. The
 * server is detached (its own session) and outlives the tool, like an agent.
 * Called by tools/mesa and mesarun; never by the shim.
 */
#include "config.h"
#include "embedded.h"
#include "client.h"
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int xdg_dir(const char *var, const char *fallback, char *out, size_t n)
{
    const char *v = getenv(var), *home = getenv("HOME");
    int len = v && v[0] == '/' ? snprintf(out, n, "%s/mesa", v)
              : home           ? snprintf(out, n, "%s/%s/mesa", home, fallback)
                               : -1;
    return len < 0 || (size_t)len >= n ? -ENAMETOOLONG : 0;
}

int mesa_embedded_dirs(char *data, char *conf, size_t n)
{
    int rc = xdg_dir("XDG_DATA_HOME", ".local/share", data, n);
    return rc < 0 ? rc : xdg_dir("XDG_CONFIG_HOME", ".config", conf, n);
}

/* out = a + b if it fits (n bytes); 0 or -ENAMETOOLONG. */
static int join(char *out, size_t n, const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la + lb + 1 > n)
        return -ENAMETOOLONG;
    memcpy(out, a, la);
    memcpy(out + la, b, lb + 1);
    return 0;
}

/* Locate the mesad binary. */
static int find_mesad(char *out, size_t n)
{
    const char *env = getenv("MESAD");
    if (env && *env) {
        snprintf(out, n, "%s", env);
        return access(out, X_OK) == 0 ? 0 : -ENOENT;
    }
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len > 0) {
        self[len] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            static const char *const rel[] = {"/mesad", "/../server/mesad"};
            for (size_t i = 0; i < 2; i++) {
                if (join(out, n, self, rel[i]) == 0 && access(out, X_OK) == 0)
                    return 0;
            }
        }
    }
    const char *path = getenv("PATH");
    for (const char *p = path; p && *p;) {
        size_t l = strcspn(p, ":");
        snprintf(out, n, "%.*s/mesad", (int)l, p);
        if (l && access(out, X_OK) == 0)
            return 0;
        p += l + (p[l] == ':');
    }
    return -ENOENT;
}

/* Run argv with stdin from /dev/null, stdout (and stderr when detached) to
 * out_path (NULL = /dev/null) and no other descriptor of ours. detach: the
 * program gets its own session and is not waited for. Returns the exit
 * status (0 for a detached start) or a negative errno. */
static int run(char *const argv[], const char *out_path, int detach)
{
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        int nul = open("/dev/null", O_RDWR);
        int out = out_path ? open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600) : nul;
        if (nul < 0 || out < 0)
            _exit(127);
        dup2(nul, 0);
        dup2(out, 1);
        dup2(detach ? out : nul, 2);
        close_range(3, ~0U, 0); /* the tool's descriptors stay the tool's */
        if (detach) {
            setsid();
            if (fork() != 0) /* the server is reparented away from us */
                _exit(0);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -EINTR;
}

static int load_credentials(const char *path, mesa_embedded_t *e)
{
    json_t *v = json_load_file(path, 0, NULL);
    const char *key = json_string_value(json_object_get(v, "api_key"));
    const char *org = json_string_value(json_object_get(v, "org"));
    int rc = key && org && strlen(key) < sizeof e->api_key && strlen(org) < sizeof e->org ? 0
                                                                                          : -EINVAL;
    if (rc == 0) {
        snprintf(e->api_key, sizeof e->api_key, "%s", key);
        snprintf(e->org, sizeof e->org, "%s", org);
    }
    json_decref(v);
    return rc;
}

static int healthy(const char *url)
{
    mesa_client_t *c;
    mesa_client_opts_t o = {.url = url, .bearer = "-", .timeout_ms = 2000, .retries = 0};
    if (mesa_client_new(&o, &c) < 0)
        return 0;
    mesa_resp_t r;
    /* /healthz lives beside /v1: "/../healthz" is resolved by curl */
    int ok = mesa_client_request(c, "GET", "/../healthz", NULL, NULL, 0, &r, NULL) == 0 &&
             r.status == 200;
    if (ok)
        mesa_resp_free(&r);
    mesa_client_free(c);
    return ok;
}

/* Under the start lock: init if needed, serve if not answering. */
static int ensure_locked(mesa_embedded_t *e, const char *conf, const char *mesad, char *err,
                         size_t errlen)
{
    char db[4200], cred[4200], sock[4200], ready[4200], log[4200];
    snprintf(db, sizeof db, "%s/mesa.db", e->data_dir);
    snprintf(cred, sizeof cred, "%s/credentials.json", conf);
    snprintf(sock, sizeof sock, "%s/mesad.sock", e->data_dir);
    snprintf(ready, sizeof ready, "%s/ready", e->data_dir);
    snprintf(log, sizeof log, "%s/mesad.log", e->data_dir);
    if (access(db, F_OK) != 0) {
        char *argv[] = {(char *)mesad, "init", "--data", e->data_dir, "--org", "local", "--json",
                        NULL};
        mode_t old = umask(077);
        int rc = run(argv, cred, 0);
        umask(old);
        if (rc != 0) {
            snprintf(err, errlen, "could not create the embedded mesad in %s", e->data_dir);
            return -EIO;
        }
    }
    if (load_credentials(cred, e) < 0) {
        snprintf(err, errlen, "cannot read the embedded key %s", cred);
        return -EACCES;
    }
    snprintf(e->url, sizeof e->url, "unix:%s", sock);
    if (healthy(e->url))
        return 0;
    unlink(ready);
    char *argv[] = {(char *)mesad, "serve", "--data", e->data_dir, "--listen", e->url,
                    "--ready-file", ready, NULL};
    if (run(argv, log, 1) < 0) {
        snprintf(err, errlen, "cannot start %s", mesad);
        return -EIO;
    }
    for (int i = 0; i < 200; i++) { /* up to 10 s */
        if (healthy(e->url))
            return 0;
        struct timespec ts = {0, 50000000L};
        nanosleep(&ts, NULL);
    }
    snprintf(err, errlen, "the embedded mesad did not start; see %s", log);
    return -EIO;
}

int mesa_embedded_ensure(mesa_embedded_t *e, char *err, size_t errlen)
{
    char conf[4096], mesad[4096], lock[4200];
    memset(e, 0, sizeof *e);
    if (xdg_dir("XDG_DATA_HOME", ".local/share", e->data_dir, sizeof e->data_dir) < 0 ||
        xdg_dir("XDG_CONFIG_HOME", ".config", conf, sizeof conf) < 0) {
        snprintf(err, errlen, "set HOME or XDG_DATA_HOME/XDG_CONFIG_HOME for the embedded mesad");
        return -EINVAL;
    }
    if (find_mesad(mesad, sizeof mesad) < 0) {
        snprintf(err, errlen, "no MESA_URL and no mesad to start (install mesad or set MESAD)");
        return -ENOENT;
    }
    if (mesa_mkdirs(e->data_dir, 0700) < 0 || mesa_mkdirs(conf, 0700) < 0) {
        snprintf(err, errlen, "cannot create %s or %s", e->data_dir, conf);
        return -EACCES;
    }
    snprintf(lock, sizeof lock, "%s/.start.lock", e->data_dir);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX) < 0) {
        snprintf(err, errlen, "cannot lock %s", lock);
        if (fd >= 0)
            close(fd);
        return -EACCES;
    }
    int rc = ensure_locked(e, conf, mesad, err, errlen);
    close(fd);
    return rc;
}
