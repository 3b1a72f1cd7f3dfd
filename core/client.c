/* core/client.c - Mesa API client over libcurl (see client.h).
 *
 * Invariant: a request is retried only when it cannot have been processed
 * with a definitive answer: connection failures, 5xx and 429. 4xx answers
 * are final. Callers in the shim run in other people's processes: nothing
 * here prints, exits or installs signal handlers (CURLOPT_NOSIGNAL).
 * libcurl is loaded with dlopen on the first client, not linked: the shim
 * lives in every process of a mount, most of which never talk to the
 * server, and libcurl's dependencies are some thirty libraries (whose
 * constructors, e.g. p11-kit's, also deadlock under an ASan preload).
 * Called by the tools, mesarun and the shim's core.
 */
#include "config.h"
#include "client.h"
#include "errmap.h"
#include "jsondl.h"

#define CURL_DISABLE_TYPECHECK 1 /* the calls below go through pointers */
#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

struct mesa_client {
    char *base;   /* "http://host:port/v1" */
    char *socket; /* unix socket path or NULL */
    char *auth;   /* "Authorization: Bearer ...", or "Authorization:" (none) */
    int delegate_fills; /* mesa_client_delegates */
    long timeout_ms;
    int retries;
    CURL *curl;
    pid_t pid; /* the process that owns curl */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_ok;

/* The libcurl functions used here, resolved from the loaded library. */
static struct {
    CURLcode (*global_init)(long);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_perform)(CURL *);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    void (*easy_reset)(CURL *);
    void (*easy_cleanup)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
} cf;

#define curl_global_init (*cf.global_init)
#define curl_easy_init (*cf.easy_init)
#undef curl_easy_setopt
#undef curl_easy_getinfo
#define curl_easy_setopt (*cf.easy_setopt)
#define curl_easy_perform (*cf.easy_perform)
#define curl_easy_getinfo (*cf.easy_getinfo)
#define curl_easy_reset (*cf.easy_reset)
#define curl_easy_cleanup (*cf.easy_cleanup)
#define curl_easy_strerror (*cf.easy_strerror)
#define curl_slist_append (*cf.slist_append)
#define curl_slist_free_all (*cf.slist_free_all)

static int curl_load(void)
{
    void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return 0;
#define SYM(f, name) (*(void **)&cf.f = dlsym(h, name)) != NULL
    return SYM(global_init, "curl_global_init") && SYM(easy_init, "curl_easy_init") &&
           SYM(easy_setopt, "curl_easy_setopt") && SYM(easy_perform, "curl_easy_perform") &&
           SYM(easy_getinfo, "curl_easy_getinfo") && SYM(easy_reset, "curl_easy_reset") &&
           SYM(easy_cleanup, "curl_easy_cleanup") && SYM(easy_strerror, "curl_easy_strerror") &&
           SYM(slist_append, "curl_slist_append") && SYM(slist_free_all, "curl_slist_free_all");
#undef SYM
}

#ifdef MESA_JSON_DLOPEN
mesa_jsondl_t mesa_jsondl;

int mesa_jsondl_load(void)
{
    void *h = dlopen("libjansson.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return 0;
#define SYM(f, name) (*(void **)&mesa_jsondl.f = dlsym(h, name)) != NULL
    return SYM(loadb, "json_loadb") && SYM(dumps, "json_dumps") &&
           SYM(object_get, "json_object_get") && SYM(string_value, "json_string_value") &&
           SYM(integer_value, "json_integer_value") && SYM(array, "json_array") &&
           SYM(array_size, "json_array_size") && SYM(array_get, "json_array_get") &&
           SYM(array_append_new, "json_array_append_new") && SYM(string, "json_string") &&
           SYM(pack, "json_pack") && SYM(del, "json_delete") &&
           SYM(object_iter, "json_object_iter") &&
           SYM(object_iter_next, "json_object_iter_next") &&
           SYM(object_iter_key, "json_object_iter_key") &&
           SYM(object_iter_value, "json_object_iter_value");
#undef SYM
}
#else
static int mesa_jsondl_load(void)
{
    return 1; /* linked */
}
#endif

static void curl_init_once(void)
{
    curl_ok = mesa_jsondl_load() && curl_load() &&
              curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

int mesa_client_new(const mesa_client_opts_t *o, mesa_client_t **out)
{
    pthread_once(&curl_once, curl_init_once);
    if (!curl_ok)
        return -ENOMEM;
    if (!o->url || !o->bearer)
        return -EINVAL;
    mesa_client_t *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    int rc = -ENOMEM;
    if (strncmp(o->url, "unix:", 5) == 0) {
        c->socket = strdup(o->url + 5);
        c->base = strdup("http://mesad/v1");
    } else if (strncmp(o->url, "http://", 7) == 0 || strncmp(o->url, "https://", 8) == 0) {
        size_t n = strlen(o->url);
        while (n > 0 && o->url[n - 1] == '/')
            n--;
        if (asprintf(&c->base, "%.*s/v1", (int)n, o->url) < 0)
            c->base = NULL;
    } else {
        rc = -EINVAL;
        goto fail;
    }
    /* no bearer (mesarun's proxy adds it): "Name:" makes curl send none */
    if (asprintf(&c->auth, "Authorization:%s%s", o->bearer[0] ? " Bearer " : "", o->bearer) < 0)
        c->auth = NULL;
    c->delegate_fills = o->delegate_fills;
    if (!c->base || !c->auth || (strncmp(o->url, "unix:", 5) == 0 && !c->socket))
        goto fail;
    c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 30000;
    c->retries = o->retries >= 0 ? o->retries : 4;
    *out = c;
    return 0;
fail:
    mesa_client_free(c);
    return rc;
}

int mesa_client_clone(const mesa_client_t *c, mesa_client_t **out)
{
    mesa_client_t *n = calloc(1, sizeof *n);
    if (!n)
        return -ENOMEM;
    n->base = strdup(c->base);
    n->socket = c->socket ? strdup(c->socket) : NULL;
    n->auth = strdup(c->auth);
    n->delegate_fills = c->delegate_fills;
    n->timeout_ms = c->timeout_ms;
    n->retries = c->retries;
    if (!n->base || !n->auth || (c->socket && !n->socket)) {
        mesa_client_free(n);
        return -ENOMEM;
    }
    *out = n;
    return 0;
}

int mesa_client_delegates(const mesa_client_t *c)
{
    return c->delegate_fills;
}

void mesa_client_free(mesa_client_t *c)
{
    if (!c)
        return;
    if (c->curl && c->pid == getpid())
        curl_easy_cleanup(c->curl);
    free(c->base);
    free(c->socket);
    free(c->auth);
    free(c);
}

void mesa_resp_free(mesa_resp_t *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

/* The easy handle of this process: after fork the child leaves the
 * parent's handle alone (closing it could disturb a shared connection). */
static CURL *handle(mesa_client_t *c)
{
    if (c->curl && c->pid != getpid())
        c->curl = NULL; /* deliberately leaked in the child */
    if (!c->curl) {
        c->curl = curl_easy_init();
        c->pid = getpid();
    } else {
        curl_easy_reset(c->curl);
    }
    return c->curl;
}

typedef struct sink {
    mesa_resp_t *r;
    size_t cap;
    int oom;
} sink_t;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    sink_t *s = ud;
    size_t len = sz * n;
    if (s->r->len + len + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->r->len + len + 1)
            cap *= 2;
        char *nb = realloc(s->r->body, cap);
        if (!nb) {
            s->oom = 1;
            return 0;
        }
        s->r->body = nb;
        s->cap = cap;
    }
    memcpy(s->r->body + s->r->len, p, len);
    s->r->len += len;
    s->r->body[s->r->len] = '\0';
    return len;
}

/* Copy a header's value (trimmed) into dst if the line is "name: value". */
static void header_value(const char *line, size_t len, const char *name, char *dst, size_t n)
{
    size_t nl = strlen(name);
    if (len <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return;
    const char *v = line + nl + 1;
    size_t vl = len - nl - 1;
    while (vl && (*v == ' ' || *v == '\t'))
        v++, vl--;
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
        vl--;
    if (vl >= n)
        vl = n - 1;
    memcpy(dst, v, vl);
    dst[vl] = '\0';
}

typedef struct hdrs {
    mesa_resp_t *r;
    char retry_after[16];
} hdrs_t;

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    hdrs_t *h = ud;
    size_t len = sz * n;
    header_value(p, len, "ETag", h->r->etag, sizeof h->r->etag);
    header_value(p, len, "Content-Type", h->r->content_type, sizeof h->r->content_type);
    header_value(p, len, "Retry-After", h->retry_after, sizeof h->retry_after);
    return len;
}

static int transport_errno(CURLcode cc)
{
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_OUT_OF_MEMORY:
        return -ENOMEM;
    default:
        return -EIO;
    }
}

/* One attempt. Returns 0 (resp->status set) or a negative errno. */
static int attempt(mesa_client_t *c, const char *method, const char *url,
                   struct curl_slist *hl, const void *body, size_t len, mesa_resp_t *resp,
                   hdrs_t *h, mesa_error_t *e)
{
    CURL *cu = handle(c);
    if (!cu)
        return -ENOMEM;
    sink_t s = {.r = resp};
    mesa_resp_free(resp);
    memset(resp, 0, sizeof *resp);
    h->r = resp;
    h->retry_after[0] = '\0';
    curl_easy_setopt(cu, CURLOPT_URL, url);
    curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(cu, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(cu, CURLOPT_CONNECTTIMEOUT_MS, c->timeout_ms < 10000 ? c->timeout_ms : 10000L);
    curl_easy_setopt(cu, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(cu, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(cu, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(cu, CURLOPT_HEADERDATA, h);
    if (c->socket)
        curl_easy_setopt(cu, CURLOPT_UNIX_SOCKET_PATH, c->socket);
    if (strcmp(method, "GET") != 0)
        curl_easy_setopt(cu, CURLOPT_CUSTOMREQUEST, method);
    if (body || strcmp(method, "POST") == 0 || strcmp(method, "PATCH") == 0) {
        curl_easy_setopt(cu, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(cu, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    CURLcode cc = curl_easy_perform(cu);
    if (cc != CURLE_OK || s.oom) {
        if (e) {
            e->status = 0;
            e->code[0] = '\0';
            snprintf(e->message, sizeof e->message, "cannot reach %s: %s",
                     c->socket ? c->socket : c->base,
                     s.oom ? "out of memory" : curl_easy_strerror(cc));
        }
        return s.oom ? -ENOMEM : transport_errno(cc);
    }
    curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &resp->status);
    if (!resp->body) {
        resp->body = calloc(1, 1);
        if (!resp->body)
            return -ENOMEM;
    }
    return 0;
}

/* Milliseconds to wait before attempt n (1-based), from Retry-After or
 * exponential backoff (100 ms doubling, capped at 5 s). */
static long backoff_ms(int n, const char *retry_after)
{
    long ra = retry_after[0] ? strtol(retry_after, NULL, 10) * 1000 : 0;
    long ms = 100L << (n - 1 < 6 ? n - 1 : 6);
    if (ra > ms)
        ms = ra;
    return ms > 5000 ? 5000 : ms;
}

int mesa_client_request(mesa_client_t *c, const char *method, const char *path,
                        const char *const *headers, const void *body, size_t len,
                        mesa_resp_t *resp, mesa_error_t *e)
{
    char *url = NULL;
    struct curl_slist *hl = curl_slist_append(NULL, c->auth);
    int rc = -ENOMEM;
    memset(resp, 0, sizeof *resp);
    for (size_t i = 0; headers && headers[i] && hl; i++)
        hl = curl_slist_append(hl, headers[i]);
    hl = hl ? curl_slist_append(hl, "Expect:") : NULL; /* no 100-continue round trip */
    if (!hl || asprintf(&url, "%s%s", c->base, path) < 0) {
        url = NULL;
        goto out;
    }
    hdrs_t h = {0};
    for (int n = 0; n <= c->retries; n++) {
        if (n > 0) {
            struct timespec ts = {0, 0};
            long ms = backoff_ms(n, h.retry_after);
            ts.tv_sec = ms / 1000;
            ts.tv_nsec = (ms % 1000) * 1000000L;
            nanosleep(&ts, NULL);
        }
        rc = attempt(c, method, url, hl, body, len, resp, &h, e);
        if (rc == -ENOMEM)
            break;
        if (rc == 0 && resp->status < 500 && resp->status != 429)
            break;
    }
    if (rc < 0 && e)
        e->err = -rc;
out:
    free(url);
    curl_slist_free_all(hl);
    return rc;
}

int mesa_client_error_from(const mesa_resp_t *r, mesa_error_t *e)
{
    json_t *v = json_loadb(r->body, r->len, 0, NULL);
    json_t *err = json_object_get(v, "error");
    const char *code = json_string_value(json_object_get(err, "code"));
    const char *msg = json_string_value(json_object_get(err, "message"));
    int en = mesa_errmap_http(r->status, code);
    if (e) {
        e->err = en;
        e->status = r->status;
        snprintf(e->code, sizeof e->code, "%s", code ? code : "");
        snprintf(e->message, sizeof e->message, "%s", msg ? msg : "unexpected answer");
    }
    json_decref(v);
    return -en;
}

int mesa_client_json(mesa_client_t *c, const char *method, const char *path, json_t *body,
                     json_t **out, mesa_error_t *e)
{
    static const char *const jh[] = {"Content-Type: application/json",
                                     "Accept: application/json", NULL};
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    mesa_resp_t r = {0};
    *out = NULL;
    if (body && !text)
        return -ENOMEM;
    int rc = mesa_client_request(c, method, path, jh, text, text ? strlen(text) : 0, &r, e);
    free(text);
    if (rc < 0)
        return rc;
    if (r.status < 200 || r.status >= 300) {
        rc = mesa_client_error_from(&r, e);
    } else if (r.len) {
        json_error_t je;
        *out = json_loadb(r.body, r.len, 0, &je);
        if (!*out) {
            rc = -EIO;
            if (e) {
                e->err = EIO;
                e->status = r.status;
                snprintf(e->message, sizeof e->message, "malformed JSON answer: %s", je.text);
            }
        }
    }
    mesa_resp_free(&r);
    return rc;
}

int mesa_client_escape(const char *s, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || strchr("-._~/", *p);
        if (o + (plain ? 1 : 3) >= outlen)
            return -ENAMETOOLONG;
        if (plain) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
    return 0;
}

int mesa_error_set(mesa_error_t *e, int err, const char *fmt, ...)
{
    va_list ap;
    e->err = err;
    e->status = 0;
    e->code[0] = '\0';
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -err;
}
