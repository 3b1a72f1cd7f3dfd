/* server/http.c - the HTTP front of mesad (see http.h).
 *
 * One libmicrohttpd daemon per listen address, thread per connection, so a
 * handler may block (event streams do). Every request is: body collected
 * (capped at max_body -> 413), rate-limited per credential (-> 429),
 * authenticated (-> 401), routed with its required access checked (-> 403),
 * its org and repo resolved (-> 404), then handed to one api_* handler.
 * Called by main.c (http_start/http_stop) and by every handler (responses).
 */
#include "config.h"
#include "http.h"
#include "api.h"
#include "events.h"
#include "util.h"
#include "utf8.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uthash.h>

http_config_t http_cfg = {.max_body = 64u << 20, .keepalive = 15};
volatile int http_stopping;

#define MAX_DAEMONS 8
static struct MHD_Daemon *daemons[MAX_DAEMONS];
static size_t ndaemons;

/* ------------------------------------------------------------ responses */

static int set_resp(req_t *r, unsigned status, struct MHD_Response *resp)
{
    if (r->resp)
        MHD_destroy_response(r->resp);
    r->status = status;
    r->resp = resp;
    return 0;
}

int http_bytes(req_t *r, unsigned status, const void *data, size_t len, const char *ctype)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (ctype)
        MHD_add_response_header(resp, "Content-Type", ctype);
    return set_resp(r, status, resp);
}

int http_json(req_t *r, unsigned status, json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(v);
    if (!s) {
        static const char oom[] = "{\"error\":{\"code\":\"INTERNAL\",\"message\":\"oom\"}}";
        return http_bytes(r, 500, oom, sizeof oom - 1, "application/json");
    }
    size_t n = strlen(s);
    s[n] = '\n';
    struct MHD_Response *resp = MHD_create_response_from_buffer(n + 1, s, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    return set_resp(r, status, resp);
}

static int error_v(req_t *r, unsigned status, const char *code, json_t *details, const char *fmt,
                   va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    mesa_utf8_sanitize(msg); /* messages echo request bytes; JSON needs UTF-8 */
    json_t *err = json_pack("{s:s, s:s}", "code", code, "message", msg);
    if (details)
        json_object_set_new(err, "details", details);
    return http_json(r, status, json_pack("{s:o}", "error", err));
}

int http_error(req_t *r, unsigned status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_v(r, status, code, NULL, fmt, ap);
    va_end(ap);
    return 0;
}

int http_error_details(req_t *r, unsigned status, const char *code, json_t *details,
                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_v(r, status, code, details, fmt, ap);
    va_end(ap);
    return 0;
}

int http_errno(req_t *r, int err, const char *what)
{
    switch (err) {
    case -ENOENT:
        return http_error(r, 404, "NOT_FOUND", "%s not found", what);
    case -EEXIST:
        return http_error(r, 409, "ALREADY_EXISTS", "%s already exists", what);
    case -EINVAL:
        return http_error(r, 400, "BAD_REQUEST", "invalid %s", what);
    case -ENOTDIR:
        return http_error(r, 409, "CONFLICT", "%s: a file is in the way of a directory", what);
    case -EISDIR:
        return http_error(r, 409, "CONFLICT", "%s: a directory is in the way", what);
    case -EAGAIN:
        return http_error(r, 409, "CONFLICT", "%s was changed concurrently", what);
    default:
        return http_error(r, 500, "INTERNAL", "%s: %s", what, strerror(-err));
    }
}

const char *http_arg(req_t *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_header(req_t *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

json_t *http_body_json(req_t *r)
{
    json_error_t e;
    if (!r->body || r->body_len == 0) {
        http_error(r, 400, "BAD_REQUEST", "request body must be a JSON object");
        return NULL;
    }
    json_t *v = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &e);
    if (!v) {
        http_error(r, 400, "BAD_REQUEST", "malformed JSON: %s (line %d)", e.text, e.line);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        http_error(r, 400, "BAD_REQUEST", "request body must be a JSON object");
        return NULL;
    }
    return v;
}

int http_page_args(req_t *r, long *off, int *limit)
{
    const char *cur = http_arg(r, "cursor");
    *off = 0;
    if (util_parse_limit(http_arg(r, "limit"), 50, limit) < 0)
        return http_error(r, 400, "BAD_REQUEST", "limit must be 1..100"), -1;
    if (cur && util_cursor_decode(cur, off) < 0)
        return http_error(r, 400, "BAD_REQUEST", "invalid cursor"), -1;
    return 0;
}

int http_page(req_t *r, const char *key, json_t *items, long off, int more)
{
    char next[32];
    util_cursor_encode(off + (long)json_array_size(items), next);
    return http_json(r, 200, json_pack("{s:o, s:o, s:b}", key, items, "next_cursor",
                                       more ? json_string(next) : json_null(), "has_more",
                                       more));
}

/* ------------------------------------------------------------ rate limit */

typedef struct bucket {
    char *key;
    double tokens;
    int64_t last_ns;
    UT_hash_handle hh;
} bucket_t;
static bucket_t *buckets;
static size_t nbuckets;
static pthread_mutex_t bucket_mu = PTHREAD_MUTEX_INITIALIZER;

/* 0 if allowed; else seconds to wait. Token bucket per credential string. */
static int rate_take(const char *cred)
{
    if (http_cfg.rate_limit <= 0)
        return 0;
    int wait = 0;
    int64_t now = util_now_ns();
    pthread_mutex_lock(&bucket_mu);
    bucket_t *b;
    HASH_FIND_STR(buckets, cred, b);
    if (!b) {
        if (nbuckets >= 10000) { /* bounded memory: forget everyone */
            bucket_t *t, *tmp;
            HASH_ITER(hh, buckets, t, tmp)
            {
                HASH_DEL(buckets, t);
                free(t->key);
                free(t);
            }
            nbuckets = 0;
        }
        b = calloc(1, sizeof *b);
        b->key = strdup(cred);
        b->tokens = http_cfg.rate_limit;
        b->last_ns = now;
        HASH_ADD_KEYPTR(hh, buckets, b->key, strlen(b->key), b);
        nbuckets++;
    }
    b->tokens += (double)(now - b->last_ns) / 1e9 * http_cfg.rate_limit;
    if (b->tokens > http_cfg.rate_limit)
        b->tokens = http_cfg.rate_limit;
    b->last_ns = now;
    if (b->tokens >= 1.0)
        b->tokens -= 1.0;
    else
        wait = (int)((1.0 - b->tokens) / http_cfg.rate_limit) + 1;
    pthread_mutex_unlock(&bucket_mu);
    return wait;
}

/* ------------------------------------------------------------ routing */

enum { A_NONE, A_READ, A_WRITE, A_ADMIN };

typedef struct route {
    const char *method;
    const char *pattern; /* segments after /v1: "{org}", "{repo}", "*" one, "**" rest */
    int access;
    int (*fn)(req_t *);
} route_t;

static const route_t routes[] = {
    {"GET", "whoami", A_NONE, api_whoami},
    {"GET", "{org}/repos", A_READ, api_repos_list},
    {"POST", "{org}/repos", A_ADMIN, api_repos_create},
    {"GET", "{org}/{repo}/changes", A_READ, api_changes_list},
    {"POST", "{org}/{repo}/changes", A_WRITE, api_changes_create},
    {"GET", "{org}/{repo}/changes/*", A_READ, api_change_get},
    {"PATCH", "{org}/{repo}/changes/*", A_WRITE, api_change_patch},
    {"GET", "{org}/{repo}/bookmarks", A_READ, api_bookmarks_list},
    {"POST", "{org}/{repo}/bookmarks", A_WRITE, api_bookmarks_create},
    {"POST", "{org}/{repo}/bookmarks/merge", A_WRITE, api_bookmarks_merge},
    {"GET", "{org}/{repo}/bookmarks/**", A_READ, api_bookmark_get},
    {"PATCH", "{org}/{repo}/bookmarks/**", A_WRITE, api_bookmark_patch},
    {"DELETE", "{org}/{repo}/bookmarks/**", A_WRITE, api_bookmark_delete},
    {"GET", "{org}/{repo}/content", A_READ, api_content_get},
    {"GET", "{org}/{repo}/tree", A_READ, api_tree_get},
    {"POST", "{org}/{repo}/blobs", A_WRITE, api_blob_upload},
    {"POST", "{org}/{repo}/blobs/batch", A_READ, api_blobs_batch},
    {"GET", "{org}/{repo}/blobs/*", A_READ, api_blob_get},
    {"GET", "{org}/{repo}/events", A_READ, api_events},
    {"GET", "{org}/{repo}/metadata", A_READ, api_meta_get},
    {"PATCH", "{org}/{repo}/metadata", A_WRITE, api_meta_patch},
    {"GET", "{org}", A_READ, api_org_get},
    {"GET", "{org}/{repo}", A_READ, api_repo_get},
    {"PATCH", "{org}/{repo}", A_ADMIN, api_repo_patch},
    {"DELETE", "{org}/{repo}", A_ADMIN, api_repo_delete},
};

/* Does the pattern match r->seg? Literal segments must be equal. */
static int pattern_match(const char *pat, req_t *r)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", pat);
    int i = 0;
    for (char *save, *p = strtok_r(buf, "/", &save); p; p = strtok_r(NULL, "/", &save), i++) {
        if (strcmp(p, "**") == 0)
            return i < r->nseg;
        if (i >= r->nseg)
            return 0;
        if (p[0] != '{' && p[0] != '*' && strcmp(p, r->seg[i]) != 0)
            return 0;
    }
    return i == r->nseg;
}

static int split_segments(req_t *r, const char *rest)
{
    r->segbuf = strdup(rest);
    r->nseg = 0;
    for (char *save, *p = strtok_r(r->segbuf, "/", &save); p; p = strtok_r(NULL, "/", &save)) {
        if (r->nseg == HTTP_MAX_SEG)
            return -1;
        r->seg[r->nseg++] = p;
    }
    return 0;
}

static int check_access(req_t *r, const route_t *rt)
{
    const char *why = NULL;
    const char *repo = strstr(rt->pattern, "{repo}") ? r->seg[1] : NULL;
    enum auth_access a = rt->access == A_ADMIN ? AUTH_ADMIN
                         : rt->access == A_WRITE ? AUTH_WRITE : AUTH_READ;
    int rc = auth_check(&r->who, r->seg[0], repo, a, &why);
    if (rc == -EROFS)
        return http_error(r, 403, "READ_ONLY", "%s", why), -1;
    if (rc < 0)
        return http_error(r, 403, "FORBIDDEN", "%s", why), -1;
    r->org = r->who.org;
    if (repo) {
        rc = db_repo_get(r->org.id, repo, &r->repo);
        if (rc < 0)
            return http_errno(r, rc, "repository"), -1;
    }
    return 0;
}

static void dispatch(req_t *r)
{
    if (strcmp(r->url, "/healthz") == 0) {
        http_json(r, 200, json_pack("{s:b}", "ok", 1));
        return;
    }
    if (strncmp(r->url, "/v1/", 4) != 0 || split_segments(r, r->url + 4) < 0 || r->nseg == 0) {
        http_error(r, 404, "NOT_FOUND", "no such endpoint: %s", r->url);
        return;
    }
    if (r->too_large) {
        http_error(r, 413, "PAYLOAD_TOO_LARGE", "request body exceeds %zu bytes",
                   http_cfg.max_body);
        return;
    }
    const char *authz = http_header(r, "Authorization");
    int wait = rate_take(authz ? authz : "");
    if (wait > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", wait);
        http_error(r, 429, "RATE_LIMITED", "too many requests; retry in %d s", wait);
        MHD_add_response_header(r->resp, "Retry-After", ra);
        return;
    }
    const char *why = NULL;
    if (auth_authenticate(authz, &r->who, &why) < 0) {
        http_error(r, 401, "UNAUTHORIZED", "%s", why);
        return;
    }
    int path_matched = 0;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const route_t *rt = &routes[i];
        if (!pattern_match(rt->pattern, r))
            continue;
        path_matched = 1;
        if (strcmp(rt->method, r->method) != 0)
            continue;
        if (rt->access != A_NONE && check_access(r, rt) < 0)
            return;
        rt->fn(r);
        return;
    }
    if (path_matched)
        http_error(r, 405, "METHOD_NOT_ALLOWED", "%s is not allowed on %s", r->method, r->url);
    else
        http_error(r, 404, "NOT_FOUND", "no such endpoint: %s", r->url);
}

/* ------------------------------------------------------------ daemon glue */

static int body_append(req_t *r, const char *data, size_t n)
{
    if (r->too_large)
        return 0;
    if (r->body_len + n > http_cfg.max_body) {
        r->too_large = 1;
        free(r->body);
        r->body = NULL;
        r->body_len = 0;
        return 0;
    }
    char *nb = realloc(r->body, r->body_len + n + 1);
    if (!nb)
        return -1;
    memcpy(nb + r->body_len, data, n);
    r->body = nb;
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls)
{
    req_t *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        r->conn = c;
        r->method = method;
        r->url = strdup(url);
        *con_cls = r;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > http_cfg.max_body)
            r->too_large = 1;
        return MHD_YES;
    }
    if (*upload_size) {
        if (body_append(r, upload_data, *upload_size) < 0)
            return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    if (http_stopping && !r->resp)
        http_error(r, 503, "UNAVAILABLE", "server is shutting down");
    else
        dispatch(r);
    if (!r->resp)
        http_error(r, 500, "INTERNAL", "handler produced no response");
    enum MHD_Result ret = MHD_queue_response(c, r->status, r->resp);
    MHD_destroy_response(r->resp);
    r->resp = NULL;
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    req_t *r = *con_cls;
    if (!r)
        return;
    if (r->resp)
        MHD_destroy_response(r->resp);
    auth_principal_free(&r->who);
    free(r->url);
    free(r->segbuf);
    free(r->body);
    free(r);
    *con_cls = NULL;
}

static void on_thread_end(void *cls, struct MHD_Connection *c, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode toe)
{
    if (toe == MHD_CONNECTION_NOTIFY_CLOSED)
        db_thread_close();
}

static int listen_unix(const char *path, char *desc, size_t desclen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path); /* stale: we hold the data directory's lock */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    mode_t old = umask(077);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (rc < 0 || listen(fd, 256) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    snprintf(desc, desclen, "unix:%s", path);
    return fd;
}

static int listen_tcp(const char *hostport, char *desc, size_t desclen)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    if (!colon || colon == hostport || (size_t)(colon - hostport) >= sizeof host)
        return -EINVAL;
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai;
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
        return -EINVAL;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1, rc = 0;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 256) < 0)
        rc = -errno;
    freeaddrinfo(ai);
    if (rc < 0) {
        if (fd >= 0)
            close(fd);
        return rc;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char h[INET6_ADDRSTRLEN] = "?", p[16] = "?";
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    getnameinfo((struct sockaddr *)&ss, sl, h, sizeof h, p, sizeof p,
                NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf(desc, desclen, "%s:%s", h, p);
    return fd;
}

int http_start(const char *const *listen, size_t n, const char *ready_file)
{
    char descs[MAX_DAEMONS][4200];
    if (n == 0 || n > MAX_DAEMONS)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        int fd = strncmp(listen[i], "unix:", 5) == 0
                     ? listen_unix(listen[i] + 5, descs[i], sizeof descs[i])
                     : listen_tcp(listen[i], descs[i], sizeof descs[i]);
        if (fd < 0) {
            fprintf(stderr, "mesad: cannot listen on %s: %s\n", listen[i], strerror(-fd));
            return fd;
        }
        daemons[ndaemons] = MHD_start_daemon(
            MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC, 0,
            NULL, NULL, on_request, NULL, MHD_OPTION_LISTEN_SOCKET, fd,
            MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_NOTIFY_CONNECTION,
            on_thread_end, NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)300,
            MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000, MHD_OPTION_END);
        if (!daemons[ndaemons]) {
            fprintf(stderr, "mesad: cannot start HTTP service on %s\n", listen[i]);
            close(fd);
            return -EIO;
        }
        ndaemons++;
        fprintf(stderr, "mesad: listening on %s\n", descs[i]);
    }
    if (ready_file) {
        char tmp[4200];
        snprintf(tmp, sizeof tmp, "%s.tmp", ready_file);
        FILE *f = fopen(tmp, "w");
        if (!f)
            return -errno;
        for (size_t i = 0; i < n; i++)
            fprintf(f, "%s\n", descs[i]);
        fclose(f);
        if (rename(tmp, ready_file) < 0)
            return -errno;
    }
    return 0;
}

void http_stop(void)
{
    http_stopping = 1;
    events_notify(); /* wake event streams so they end */
    for (size_t i = 0; i < ndaemons; i++) {
        MHD_socket fd = MHD_quiesce_daemon(daemons[i]);
        if (fd != MHD_INVALID_SOCKET)
            close(fd);
    }
    for (size_t i = 0; i < ndaemons; i++)
        MHD_stop_daemon(daemons[i]);
    ndaemons = 0;
}
