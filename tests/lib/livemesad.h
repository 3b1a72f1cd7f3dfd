/* tests/lib/livemesad.h - a real mesad for C tests that need a server:
 * `$MESAD init` + `$MESAD serve` on a unix socket in a mkdtemp directory,
 * clients for it, JSON calls, and cleanup (also of the temp directory).
 *
 *   int rc = live_start("name");   // 1: skip (MESAD unset), 0: ready, -1: failed
 *   ... g_c (a client), g_url, g_key, api(), make_repo() ...
 *   live_stop();
 *
 * Header-only (static functions): each test binary includes it once.
 */
#ifndef MESA_LIVEMESAD_H
#define MESA_LIVEMESAD_H

#include "core/client.h"
#include "tests/lib/ctest.h"

#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char g_tmp[1024];  /* mkdtemp */
static char g_data[1100]; /* mesad data dir */
static char g_url[1200];
static char g_key[128];
static pid_t g_srv = -1;
static mesa_client_t *g_c; /* "another client" */

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

static void cleanup(void)
{
    if (g_srv > 0) {
        kill(g_srv, SIGTERM);
        waitpid(g_srv, NULL, 0);
        g_srv = -1;
    }
    mesa_client_free(g_c);
    g_c = NULL;
    if (g_tmp[0])
        nftw(g_tmp, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    g_tmp[0] = 0;
}

static int run_init(const char *mesad)
{
    int pfd[2];
    if (pipe(pfd) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execl(mesad, mesad, "init", "--data", g_data, "--org", "acme", "--json", (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    char buf[4096];
    size_t n = 0;
    ssize_t k;
    while (n < sizeof buf - 1 && (k = read(pfd[0], buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)k;
    buf[n] = 0;
    close(pfd[0]);
    int st;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return -1;
    json_t *v = json_loads(buf, 0, NULL);
    const char *key = json_string_value(json_object_get(v, "api_key"));
    int rc = key ? 0 : -1;
    if (key)
        snprintf(g_key, sizeof g_key, "%s", key);
    json_decref(v);
    return rc;
}

static int start_server(const char *mesad)
{
    char listen[PATH_MAX + 16], ready[PATH_MAX + 16];
    snprintf(listen, sizeof listen, "unix:%s/s.sock", g_data);
    snprintf(ready, sizeof ready, "%s/ready", g_data);
    g_srv = fork();
    if (g_srv < 0)
        return -1;
    if (g_srv == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0)
            dup2(fd, 1);
        execl(mesad, mesad, "serve", "--data", g_data, "--listen", listen, "--ready-file", ready,
              (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 1000; i++) { /* 10 s */
        if (access(ready, F_OK) == 0)
            return 0;
        if (waitpid(g_srv, NULL, WNOHANG) == g_srv) {
            g_srv = -1;
            return -1;
        }
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

static mesa_client_t *client_at(const char *url, int retries)
{
    mesa_client_t *c = NULL;
    mesa_client_opts_t o = {.url = url, .bearer = g_key, .timeout_ms = 10000, .retries = retries};
    return mesa_client_new(&o, &c) == 0 ? c : NULL;
}

/* JSON call with the other client; NULL on any error. */
static json_t *api(const char *method, const char *path, json_t *body)
{
    json_t *v = NULL;
    mesa_error_t e;
    int rc = mesa_client_json(g_c, method, path, body, &v, &e);
    json_decref(body);
    if (rc < 0) {
        printf("# %s %s: %s\n", method, path, e.message);
        return NULL;
    }
    return v ? v : json_object();
}

static int make_repo(const char *name)
{
    json_t *v = api("POST", "/acme/repos", json_pack("{s:s}", "name", name));
    json_decref(v);
    return v ? 0 : -1;
}

/* The change's field (e.g. current_commit_oid) into out; "" if none. */
/* Start the server; 1 = skip (MESAD not set: the plan line is printed). */
static int live_start(const char *name)
{
    const char *mesad = getenv("MESAD");
    if (!mesad || !*mesad || access(mesad, X_OK) != 0) {
        printf("1..0 # SKIP MESAD not set\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    const char *tmp = getenv("TMPDIR");
    snprintf(g_tmp, sizeof g_tmp, "%s/mesa-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
    if (!mkdtemp(g_tmp)) {
        g_tmp[0] = 0;
        CHECK(0, "mkdtemp");
        return -1;
    }
    snprintf(g_data, sizeof g_data, "%s/d", g_tmp);
    int ok = run_init(mesad) == 0;
    CHECK(ok, "mesad init");
    if (ok) {
        ok = start_server(mesad) == 0;
        CHECK(ok, "mesad serve is ready");
    }
    if (ok) {
        snprintf(g_url, sizeof g_url, "unix:%s/s.sock", g_data);
        g_c = client_at(g_url, 2);
        ok = g_c != NULL;
        CHECK(ok, "a client");
    }
    return ok ? 0 : -1;
}

static void live_stop(void)
{
    cleanup();
}

#endif
