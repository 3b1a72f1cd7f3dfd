/* tools/mesarun_proxy.c - `mesarun --sandbox`: the sandbox's only way to the
 * server, and the only credential (issue "Sandboxed agent executions").
 *
 * Sandboxed processes hold neither the API key nor the mount's token: their
 * MESA_URL is this proxy's Unix socket ($RUN/proxy.sock) and MESA_SANDBOX=1
 * tells their core so. The proxy speaks HTTP/1.1 on that socket (one thread
 * per connection, keep-alive, responses chunked so the event stream
 * streams), adds the token, and forwards only the mount's own operations:
 *
 *   reads   GET .../tree and .../content at a state the mount has been at
 *           (its change ids, bookmarks and commits), GET .../blobs/{oid} and
 *           POST .../blobs/batch of blobs in those trees, GET .../changes/{id}
 *           of the mounted change, GET .../events, GET {org}/{repo}, /whoami;
 *   writes  POST .../blobs and PATCH .../changes/{id} of a writable slot's
 *           current change;
 *   fills   POST /v1/_mesarun/blobs and /v1/_mesarun/tree: the caches are
 *           read-only to the sandbox (Landlock), so its core asks the proxy
 *           to fetch; the proxy verifies every blob against its id
 *           (core/fetch.c) and writes the cache itself.
 *
 * Anything else (bookmark moves and deletes, new changes, repos, keys,
 * other repos) is answered 403 SANDBOX_DENIED, which the shim reports as
 * EACCES. What the mount has been at is learnt from mesarun's own state
 * writes (mesa_state_observe), never from $RUN/state, which the sandbox can
 * reach.
 */
#include "config.h"
#include "mesarun_proxy.h"
#include "fetch.h"
#include "state.h"
#include "treecache.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <sys/un.h>
#include <unistd.h>
#include <uthash.h>

#define HEAD_MAX (16 << 10)
#define BODY_MAX ((size_t)64 << 20)
#define MAX_WORKERS 64
#define MAX_COMMITS 4096 /* per slot; the oldest are forgotten after */
#define SETS 4           /* blob sets kept per slot */
#define SET_DEPTH 16     /* newest commits searched for a blob */

typedef struct oidset {
    char oid[41];
    UT_hash_handle hh;
} oidset_t;

typedef struct pslot {
    char org[101], repo[101], bookmark[256];
    int writable;
    char change[33];     /* the current change */
    char (*seen)[74];    /* "<change id> <commit>" the mount has been at, oldest first */
    size_t nseen;
    oidset_t *set[SETS]; /* blob ids of the trees of setc[k] */
    char setc[SETS][41];
    unsigned next_set;
} pslot_t;

struct mr_proxy {
    mr_proxy_conf_t c;
    char sock[108];
    int lfd;
    int stop[2];
    pthread_t th;
    int started;
    pthread_mutex_t mu; /* slot[], workers */
    pthread_cond_t idle;
    int workers;
    pslot_t slot[MR_PROXY_MAX_SLOTS];
    size_t nslots;
};

typedef struct conn {
    mr_proxy_t *p;
    int fd;
    char *buf; /* bytes read and not consumed yet */
    size_t len, cap;
    mesa_client_t *client;
    mesa_blobcache_t *bc;
} conn_t;

typedef struct req {
    char method[16];
    char target[4096];
    char *path, *query; /* into target: after "/v1/", after '?' ("" if none) */
    char ctype[128], accept[128], inm[128];
    int close;
    char *body;
    size_t blen;
} req_t;

/* ------------------------------------------------------------ what the mount has been at */

static void remember(pslot_t *s, const char *change, const char *commit)
{
    char key[74];
    snprintf(key, sizeof key, "%s %s", change, commit);
    for (size_t i = s->nseen; i-- > 0;)
        if (strcmp(s->seen[i], key) == 0)
            return;
    if (s->nseen == MAX_COMMITS) {
        memmove(s->seen, s->seen + 1, (MAX_COMMITS - 1) * sizeof *s->seen);
        s->nseen--;
    }
    memcpy(s->seen[s->nseen++], key, sizeof key);
    snprintf(s->change, sizeof s->change, "%s", change);
}

static void observer(void *ctx, size_t slot, const char *change_id, const char *commit)
{
    mr_proxy_t *p = ctx;
    pthread_mutex_lock(&p->mu);
    if (slot < p->nslots)
        remember(&p->slot[slot], change_id, commit);
    pthread_mutex_unlock(&p->mu);
}

/* Has slot s been at change (a change id, or its bookmark name) / commit? */
static int been_at_change(const pslot_t *s, const char *change)
{
    if (s->bookmark[0] && strcmp(change, s->bookmark) == 0)
        return 1;
    for (size_t i = 0; i < s->nseen; i++)
        if (strncmp(s->seen[i], change, 32) == 0 && strlen(change) == 32)
            return 1;
    return 0;
}

static int been_at_commit(const pslot_t *s, const char *commit)
{
    for (size_t i = 0; i < s->nseen; i++)
        if (strlen(commit) == 40 && strcmp(s->seen[i] + 33, commit) == 0)
            return 1;
    return 0;
}

static void set_free(oidset_t **set)
{
    oidset_t *e, *tmp;
    HASH_ITER(hh, *set, e, tmp)
    {
        HASH_DEL(*set, e);
        free(e);
    }
}

/* The blob set of commit, if made (p->mu held). */
static oidset_t *find_set(const pslot_t *s, const char *commit)
{
    for (int k = 0; k < SETS; k++)
        if (s->set[k] && strcmp(s->setc[k], commit) == 0)
            return s->set[k];
    return NULL;
}

/* The blob (and symlink) ids of commit's tree, fetched into the cache if
 * needed: a new set, NULL if the tree cannot be had. No lock: it may
 * take a round trip. */
static oidset_t *make_set(conn_t *cn, const pslot_t *s, const char *commit)
{
    mesa_tree_t *t = NULL;
    mesa_error_t e = {0};
    if (mesa_fetch_tree(cn->client, cn->p->c.cache, s->org, s->repo, commit, &t, &e) < 0)
        return NULL;
    oidset_t *set = NULL;
    for (uint32_t i = 0; i < mesa_tree_count(t); i++) {
        mesa_tree_ent_t te;
        mesa_tree_at(t, i, &te);
        oidset_t *x;
        if ((te.type != MESA_ENT_FILE && te.type != MESA_ENT_LINK) || !te.oid[0])
            continue;
        HASH_FIND_STR(set, te.oid, x);
        if (!x && (x = calloc(1, sizeof *x)) != NULL) {
            memcpy(x->oid, te.oid, sizeof x->oid);
            HASH_ADD_STR(set, oid, x);
        }
    }
    mesa_tree_close(t);
    return set;
}

/* Is oid in commit's set? The set is made (outside the lock) and kept,
 * replacing the oldest, when missing. */
static int in_set(conn_t *cn, pslot_t *s, const char *commit, const char *oid)
{
    mr_proxy_t *p = cn->p;
    oidset_t *set, *x = NULL;
    pthread_mutex_lock(&p->mu);
    if ((set = find_set(s, commit)) != NULL)
        HASH_FIND_STR(set, oid, x);
    pthread_mutex_unlock(&p->mu);
    if (set)
        return x != NULL;
    oidset_t *made = make_set(cn, s, commit);
    if (!made)
        return 0;
    pthread_mutex_lock(&p->mu);
    if ((set = find_set(s, commit)) == NULL) { /* else another thread made it meanwhile */
        unsigned k = s->next_set++ % SETS;
        set_free(&s->set[k]);
        s->set[k] = set = made;
        memcpy(s->setc[k], commit, 41);
        made = NULL;
    }
    HASH_FIND_STR(set, oid, x);
    pthread_mutex_unlock(&p->mu);
    set_free(&made);
    return x != NULL;
}

/* Is blob oid in one of the trees the mount has been at (the newest
 * SET_DEPTH)? */
static int has_blob(conn_t *cn, pslot_t *s, const char *oid)
{
    char commits[SET_DEPTH][41];
    size_t n = 0;
    pthread_mutex_lock(&cn->p->mu);
    for (size_t i = s->nseen; i-- > 0 && n < SET_DEPTH;)
        memcpy(commits[n++], s->seen[i] + 33, 41);
    pthread_mutex_unlock(&cn->p->mu);
    for (size_t i = 0; i < n; i++)
        if (in_set(cn, s, commits[i], oid))
            return 1;
    return 0;
}

/* been_at_change / been_at_commit / the current change, under the lock. */
static int locked_check(mr_proxy_t *p, int (*fn)(const pslot_t *, const char *),
                        const pslot_t *s, const char *v)
{
    pthread_mutex_lock(&p->mu);
    int r = fn(s, v);
    pthread_mutex_unlock(&p->mu);
    return r;
}

static int is_current(const pslot_t *s, const char *change)
{
    return strcmp(s->change, change) == 0;
}

/* ------------------------------------------------------------ HTTP */

static int send_all(int fd, const void *buf, size_t len)
{
    const char *b = buf;
    while (len) {
        ssize_t w = send(fd, b, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        len -= (size_t)w;
    }
    return 0;
}

static const char *reason(long status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 431: return "Request Header Fields Too Large";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    default: return "Status";
    }
}

/* A whole response with a JSON body. */
static int send_json(int fd, long status, const char *body)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %ld %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     status, reason(status), strlen(body));
    return send_all(fd, head, (size_t)n) < 0 ? -1 : send_all(fd, body, strlen(body));
}

/* {"error":{"code","message"}}, the API's form. */
static int send_error(int fd, long status, const char *code, const char *message)
{
    json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    int rc = send_json(fd, status, s ? s : "{}");
    free(s);
    json_decref(j);
    return rc;
}

static int deny(conn_t *cn, const req_t *r, const char *why)
{
    char msg[600];
    snprintf(msg, sizeof msg, "mesarun --sandbox: %s /v1/%.300s is not an operation of this mount: %s",
             r->method, r->path, why);
    if (cn->p->c.verbose)
        fprintf(stderr, "mesarun: proxy refused %s /v1/%.300s: %s\n", r->method, r->path, why);
    return send_error(cn->fd, 403, "SANDBOX_DENIED", msg);
}

/* More bytes from the socket into cn->buf. 0, or -1 on EOF/error. */
static int fill(conn_t *cn, size_t want_cap)
{
    if (cn->cap < want_cap) {
        char *b = realloc(cn->buf, want_cap);
        if (!b)
            return -1;
        cn->buf = b;
        cn->cap = want_cap;
    }
    if (cn->len == cn->cap)
        return -1;
    ssize_t got;
    do
        got = recv(cn->fd, cn->buf + cn->len, cn->cap - cn->len, 0);
    while (got < 0 && errno == EINTR);
    if (got <= 0)
        return -1;
    cn->len += (size_t)got;
    return 0;
}

static void header_value(const char *line, const char *name, char *out, size_t outlen)
{
    size_t n = strlen(name);
    if (strncasecmp(line, name, n) != 0 || line[n] != ':')
        return;
    line += n + 1;
    line += strspn(line, " \t");
    snprintf(out, outlen, "%.*s", (int)strcspn(line, "\r\n"), line);
}

/* Parse the head at cn->buf (hlen bytes, "\r\n\r\n" included). HTTP
 * status of the problem, or 0. */
static long parse_head(conn_t *cn, size_t hlen, req_t *r, size_t *clen)
{
    char version[16], te[64] = "", cl[32] = "", conn[32] = "";
    cn->buf[hlen - 2] = '\0';
    if (sscanf(cn->buf, "%15s %4095s %15s", r->method, r->target, version) != 3 ||
        strncmp(version, "HTTP/1.", 7) != 0)
        return 400;
    for (char *l = strstr(cn->buf, "\r\n"); l && l[2]; l = strstr(l + 2, "\r\n")) {
        header_value(l + 2, "Content-Type", r->ctype, sizeof r->ctype);
        header_value(l + 2, "Accept", r->accept, sizeof r->accept);
        header_value(l + 2, "If-None-Match", r->inm, sizeof r->inm);
        header_value(l + 2, "Transfer-Encoding", te, sizeof te);
        header_value(l + 2, "Content-Length", cl, sizeof cl);
        header_value(l + 2, "Connection", conn, sizeof conn);
    }
    r->close = strcasecmp(conn, "close") == 0 || strcmp(version, "HTTP/1.0") == 0;
    if (te[0])
        return 411;
    char *end;
    unsigned long long n = cl[0] ? strtoull(cl, &end, 10) : 0;
    if (cl[0] && *end)
        return 400;
    if (n > BODY_MAX)
        return 413;
    *clen = (size_t)n;
    if (strncmp(r->target, "/v1/", 4) != 0)
        return 404;
    r->path = r->target + 4;
    char *q = strchr(r->path, '?');
    r->query = q ? (*q = '\0', q + 1) : (char *)"";
    return 0;
}

/* Read one request into r (body malloc'd). 0; -1 when the connection is
 * done (closed, or answered with an error). */
static int read_request(conn_t *cn, req_t *r)
{
    char *eoh;
    memset(r, 0, sizeof *r);
    while (!(cn->len && (eoh = memmem(cn->buf, cn->len, "\r\n\r\n", 4)) != NULL)) {
        if (cn->len >= HEAD_MAX) {
            send_error(cn->fd, 431, "BAD_REQUEST", "request head too large");
            return -1;
        }
        if (fill(cn, HEAD_MAX) < 0)
            return -1;
    }
    size_t hlen = (size_t)(eoh - cn->buf) + 4, clen = 0;
    long bad = parse_head(cn, hlen, r, &clen);
    if (bad) {
        send_error(cn->fd, bad, "BAD_REQUEST", "mesarun's proxy cannot read this request");
        return -1;
    }
    while (cn->len < hlen + clen)
        if (fill(cn, hlen + clen) < 0)
            return -1;
    if (!(r->body = malloc(clen + 1)))
        return -1;
    memcpy(r->body, cn->buf + hlen, clen);
    r->body[clen] = '\0';
    r->blen = clen;
    /* r->target and friends were copied out of the head already */
    memmove(cn->buf, cn->buf + hlen + clen, cn->len - hlen - clen);
    cn->len -= hlen + clen;
    return 0;
}

/* ------------------------------------------------------------ forwarding */

typedef struct fwd {
    int fd;
    int head_sent, failed;
    long status;
    char ctype[128], etag[128], retry[32];
} fwd_t;

static size_t on_header(char *b, size_t size, size_t n, void *ctx)
{
    fwd_t *f = ctx;
    size_t len = size * n;
    char line[512];
    snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), b);
    if (strncmp(line, "HTTP/", 5) == 0) {
        f->ctype[0] = f->etag[0] = f->retry[0] = '\0';
        f->status = strtol(strchr(line, ' ') ? strchr(line, ' ') : "0", NULL, 10);
    }
    header_value(line, "Content-Type", f->ctype, sizeof f->ctype);
    header_value(line, "ETag", f->etag, sizeof f->etag);
    header_value(line, "Retry-After", f->retry, sizeof f->retry);
    return len;
}

static int send_head(fwd_t *f, int chunked)
{
    char head[768];
    int n = snprintf(head, sizeof head, "HTTP/1.1 %ld %s\r\n", f->status, reason(f->status));
    if (f->ctype[0])
        n += snprintf(head + n, sizeof head - (size_t)n, "Content-Type: %s\r\n", f->ctype);
    if (f->etag[0])
        n += snprintf(head + n, sizeof head - (size_t)n, "ETag: %s\r\n", f->etag);
    if (f->retry[0])
        n += snprintf(head + n, sizeof head - (size_t)n, "Retry-After: %s\r\n", f->retry);
    n += snprintf(head + n, sizeof head - (size_t)n, "%s\r\n",
                  chunked ? "Transfer-Encoding: chunked\r\n" : "Content-Length: 0\r\n");
    f->head_sent = 1;
    return send_all(f->fd, head, (size_t)n);
}

static size_t on_body(char *b, size_t size, size_t n, void *ctx)
{
    fwd_t *f = ctx;
    size_t len = size * n;
    char hex[24];
    if (!len)
        return 0;
    int h = snprintf(hex, sizeof hex, "%zx\r\n", len);
    if ((!f->head_sent && send_head(f, 1) < 0) || send_all(f->fd, hex, (size_t)h) < 0 ||
        send_all(f->fd, b, len) < 0 || send_all(f->fd, "\r\n", 2) < 0) {
        f->failed = 1;
        return 0; /* the client is gone: abort */
    }
    return len;
}

static struct curl_slist *fwd_headers(const mr_proxy_t *p, const req_t *r)
{
    char h[300], *auth = NULL;
    struct curl_slist *l = NULL;
    if (asprintf(&auth, "Authorization: Bearer %s", p->c.token) < 0)
        return NULL;
    l = curl_slist_append(l, auth);
    free(auth);
    const struct {
        const char *name, *value;
    } pass[] = {{"Content-Type", r->ctype}, {"Accept", r->accept}, {"If-None-Match", r->inm}};
    for (size_t i = 0; i < sizeof pass / sizeof pass[0] && l; i++)
        if (pass[i].value[0]) {
            snprintf(h, sizeof h, "%s: %s", pass[i].name, pass[i].value);
            l = curl_slist_append(l, h);
        }
    return l ? curl_slist_append(l, "Expect:") : NULL;
}

/* Send r upstream with the token; stream the answer back. 0, or -1 when
 * the connection must end. */
static int forward(conn_t *cn, const req_t *r, int stream)
{
    const mr_proxy_t *p = cn->p;
    char url[8600];
    int unix_url = strncmp(p->c.url, "unix:", 5) == 0;
    snprintf(url, sizeof url, "%s/v1/%s%s%s", unix_url ? "http://mesad" : p->c.url, r->path,
             r->query[0] ? "?" : "", r->query);
    CURL *h = curl_easy_init();
    struct curl_slist *hl = fwd_headers(p, r);
    fwd_t f = {.fd = cn->fd};
    if (!h || !hl) {
        curl_slist_free_all(hl);
        if (h)
            curl_easy_cleanup(h);
        return send_error(cn->fd, 503, "UNAVAILABLE", "mesarun's proxy is out of memory");
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    if (unix_url)
        curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, p->c.url + 5);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
    if (strcmp(r->method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->blen);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, stream ? 0L : 300000L);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &f);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &f);
    CURLcode cc = curl_easy_perform(h);
    curl_easy_cleanup(h);
    curl_slist_free_all(hl);
    if (f.failed)
        return -1;
    if (f.head_sent) /* the last chunk, or the connection is unusable */
        return cc == CURLE_OK ? send_all(cn->fd, "0\r\n\r\n", 5) : -1;
    if (cc != CURLE_OK || f.status == 0)
        return send_error(cn->fd, 502, "UNAVAILABLE", curl_easy_strerror(cc));
    return send_head(&f, 0); /* no body: 204, 304, or an empty answer */
}

/* ------------------------------------------------------------ the mount's operations */

/* The value of query parameter name ("" if absent), %-decoded. */
static void query_get(const char *q, const char *name, char *out, size_t outlen)
{
    size_t n = strlen(name), o = 0;
    out[0] = '\0';
    for (const char *p = q; *p; p += strcspn(p, "&"), p += *p == '&') {
        if (strncmp(p, name, n) != 0 || p[n] != '=')
            continue;
        for (p += n + 1; *p && *p != '&' && o + 1 < outlen; o++) {
            unsigned v;
            if (*p == '%' && sscanf(p + 1, "%2x", &v) == 1) {
                out[o] = (char)v;
                p += 3;
            } else
                out[o] = *p == '+' ? ' ' : *p, p++;
        }
        out[o] = '\0';
        return;
    }
}

/* How many times parameter name is in query q. */
static int query_count(const char *q, const char *name)
{
    size_t n = strlen(name);
    int k = 0;
    for (const char *p = q; *p; p += strcspn(p, "&"), p += *p == '&')
        k += strncmp(p, name, n) == 0 && p[n] == '=';
    return k;
}

static pslot_t *find_slot(mr_proxy_t *p, const char *org, const char *repo)
{
    for (size_t i = 0; i < p->nslots; i++)
        if (strcmp(p->slot[i].org, org) == 0 && strcmp(p->slot[i].repo, repo) == 0)
            return &p->slot[i];
    return NULL;
}

static int is_oid(const char *s)
{
    return strlen(s) == 40 && strspn(s, "0123456789abcdef") == 40;
}

/* Are all of oids (a JSON array) blobs of the mount? NULL, or why not. */
static const char *blobs_ok(conn_t *cn, pslot_t *s, json_t *oids)
{
    size_t i;
    json_t *o;
    if (!json_is_array(oids))
        return "no list of blob ids";
    json_array_foreach(oids, i, o)
    {
        const char *oid = json_string_value(o);
        if (!oid || !is_oid(oid))
            return "not a blob id";
        if (!has_blob(cn, s, oid))
            return "a blob that is not in a tree the mount has been at";
    }
    return NULL;
}

/* Decide on a forwarded request. NULL if allowed, else why. (The slots'
 * names and modes never change; where the mount has been is read under
 * the lock.) */
static const char *allowed(conn_t *cn, const req_t *r, int *stream)
{
    char org[101], repo[101], rest[512] = "", v[300];
    int get = strcmp(r->method, "GET") == 0;
    if (get && strcmp(r->path, "whoami") == 0)
        return NULL;
    if (sscanf(r->path, "%100[^/]/%100[^/]/%511s", org, repo, rest) < 2)
        return "not a call on a mounted repository";
    pslot_t *s = find_slot(cn->p, org, repo);
    if (!s)
        return "the repository is not mounted";
    if (get && (!rest[0] || strcmp(rest, "events") == 0)) {
        *stream = rest[0] != '\0';
        return NULL;
    }
    if (get && (strcmp(rest, "tree") == 0 || strcmp(rest, "content") == 0)) {
        /* one value each: the server must see the state that was checked */
        if (query_count(r->query, "commit") > 1 || query_count(r->query, "change_id") > 1)
            return "a state named twice";
        query_get(r->query, "commit", v, sizeof v);
        if (v[0])
            return locked_check(cn->p, been_at_commit, s, v) ? NULL
                                                             : "a commit the mount has not been at";
        query_get(r->query, "change_id", v, sizeof v);
        return v[0] && locked_check(cn->p, been_at_change, s, v)
                   ? NULL
                   : "name the mounted change (change_id=)";
    }
    if (get && strncmp(rest, "blobs/", 6) == 0)
        return is_oid(rest + 6) && has_blob(cn, s, rest + 6)
                   ? NULL
                   : "a blob that is not in a tree the mount has been at";
    if (strcmp(r->method, "POST") == 0 && strcmp(rest, "blobs/batch") == 0) {
        json_t *j = json_loadb(r->body, r->blen, 0, NULL);
        const char *why = j ? blobs_ok(cn, s, json_object_get(j, "oids")) : "malformed JSON";
        json_decref(j);
        return why;
    }
    if (strncmp(rest, "changes/", 8) == 0 && (get || strcmp(r->method, "PATCH") == 0)) {
        if (!locked_check(cn->p, is_current, s, rest + 8))
            return "not the mounted change";
        return get || s->writable ? NULL : "the repository is mounted read-only";
    }
    if (strcmp(r->method, "POST") == 0 && strcmp(rest, "blobs") == 0)
        return s->writable ? NULL : "the repository is mounted read-only";
    /* per-path metadata (the mount's user.* xattrs): not versioned, so no
     * state to check; setting it (and carrying it on a rename) is a write */
    if (strcmp(rest, "metadata") == 0 && (get || strcmp(r->method, "PATCH") == 0))
        return get || s->writable ? NULL : "the repository is mounted read-only";
    return "only the mount's reads and writes to its current change go through";
}

/* POST /v1/_mesarun/{blobs,tree}: fill the caches for the sandbox. */
static int fill_cache(conn_t *cn, const req_t *r)
{
    json_t *j = json_loadb(r->body, r->blen, 0, NULL);
    const char *org = json_string_value(json_object_get(j, "org"));
    const char *repo = json_string_value(json_object_get(j, "repo"));
    const char *commit = json_string_value(json_object_get(j, "commit"));
    json_t *oids = json_object_get(j, "oids"), *sizes = json_object_get(j, "sizes");
    int tree = strcmp(r->path, "_mesarun/tree") == 0;
    const char *why = NULL;
    mesa_error_t e = {0};
    int rc = 0;
    pslot_t *s = org && repo ? find_slot(cn->p, org, repo) : NULL;
    if (!s)
        why = "the repository is not mounted";
    else if (tree)
        why = commit && locked_check(cn->p, been_at_commit, s, commit)
                  ? NULL
                  : "a commit the mount has not been at";
    else
        why = blobs_ok(cn, s, oids);
    if (!why && tree) {
        mesa_tree_t *t = NULL;
        rc = mesa_fetch_tree(cn->client, cn->p->c.cache, org, repo, commit, &t, &e);
        mesa_tree_close(t);
    } else if (!why) {
        size_t n = json_array_size(oids);
        const char **ids = calloc(n ? n : 1, sizeof *ids);
        uint64_t *sz = calloc(n ? n : 1, sizeof *sz);
        for (size_t i = 0; ids && sz && i < n; i++) {
            ids[i] = json_string_value(json_array_get(oids, i));
            sz[i] = (uint64_t)json_integer_value(json_array_get(sizes, i));
        }
        rc = ids && sz ? mesa_fetch_blobs(cn->client, cn->bc, org, repo, ids, sz, n, &e)
                       : mesa_error_set(&e, ENOMEM, "out of memory");
        free(ids);
        free(sz);
    }
    json_decref(j);
    if (why)
        return deny(cn, r, why);
    if (rc < 0)
        return send_error(cn->fd, e.status ? e.status : 502, e.code[0] ? e.code : "UNAVAILABLE",
                          e.message[0] ? e.message : strerror(-rc));
    return send_json(cn->fd, 200, "{}");
}

static int serve(conn_t *cn, const req_t *r)
{
    if (strcmp(r->method, "POST") == 0 &&
        (strcmp(r->path, "_mesarun/blobs") == 0 || strcmp(r->path, "_mesarun/tree") == 0))
        return fill_cache(cn, r);
    int stream = 0;
    const char *why = allowed(cn, r, &stream);
    return why ? deny(cn, r, why) : forward(cn, r, stream);
}

/* ------------------------------------------------------------ threads */

static void *conn_main(void *arg)
{
    conn_t *cn = arg;
    mr_proxy_t *p = cn->p;
    mesa_client_opts_t o = {.url = p->c.url, .bearer = p->c.token, .retries = 3};
    if (mesa_client_new(&o, &cn->client) == 0 &&
        mesa_blobcache_open(p->c.cache, p->c.cache_size, &cn->bc) == 0) {
        req_t r;
        while (read_request(cn, &r) == 0) {
            int rc = serve(cn, &r);
            free(r.body);
            if (rc < 0 || r.close)
                break;
        }
    } else
        send_error(cn->fd, 503, "UNAVAILABLE", "mesarun's proxy cannot reach its cache");
    close(cn->fd);
    mesa_client_free(cn->client);
    mesa_blobcache_close(cn->bc);
    free(cn->buf);
    free(cn);
    pthread_mutex_lock(&p->mu);
    if (--p->workers == 0)
        pthread_cond_broadcast(&p->idle);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void accept_one(mr_proxy_t *p)
{
    int fd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    conn_t *cn = calloc(1, sizeof *cn);
    pthread_t th;
    pthread_attr_t a;
    pthread_mutex_lock(&p->mu);
    int full = p->workers >= MAX_WORKERS;
    if (!full && cn)
        p->workers++;
    pthread_mutex_unlock(&p->mu);
    if (full || !cn) {
        send_error(fd, 503, "UNAVAILABLE", "mesarun's proxy is busy");
        close(fd);
        free(cn);
        return;
    }
    *cn = (conn_t){.p = p, .fd = fd};
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &a, conn_main, cn) != 0) {
        close(fd);
        free(cn);
        pthread_mutex_lock(&p->mu);
        p->workers--;
        pthread_mutex_unlock(&p->mu);
    }
    pthread_attr_destroy(&a);
}

static void *accept_main(void *arg)
{
    mr_proxy_t *p = arg;
    for (;;) {
        struct pollfd pf[2] = {{.fd = p->lfd, .events = POLLIN}, {.fd = p->stop[0], .events = POLLIN}};
        if (poll(pf, 2, -1) < 0 && errno != EINTR)
            break;
        if (pf[1].revents)
            break;
        if (pf[0].revents & POLLIN)
            accept_one(p);
    }
    return NULL;
}

/* ------------------------------------------------------------ API */

int mr_proxy_start(const mr_proxy_conf_t *c, mr_proxy_t **out)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(c->socket) >= sizeof sa.sun_path)
        return -ENAMETOOLONG;
    mr_proxy_t *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->c = *c;
    memcpy(p->sock, c->socket, strlen(c->socket) + 1);
    p->c.socket = p->sock;
    p->lfd = p->stop[0] = p->stop[1] = -1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->idle, NULL);
    mesa_state_t *st = NULL;
    int rc = mesa_state_open(c->state, &st);
    for (size_t i = 0; rc == 0 && i < mesa_state_count(st) && i < MR_PROXY_MAX_SLOTS; i++) {
        mesa_state_repo_t r;
        pslot_t *s = &p->slot[p->nslots++];
        mesa_state_get(st, i, &r);
        memcpy(s->org, r.org, sizeof s->org);
        memcpy(s->repo, r.repo, sizeof s->repo);
        memcpy(s->bookmark, r.bookmark, sizeof s->bookmark);
        s->writable = !(r.flags & MESA_STATE_RO);
        if (!(s->seen = calloc(MAX_COMMITS, sizeof *s->seen))) {
            rc = -ENOMEM;
            break;
        }
        if (r.base_commit[0])
            remember(s, r.change_id, r.base_commit);
        remember(s, r.change_id, r.commit);
    }
    mesa_state_close(st);
    memcpy(sa.sun_path, c->socket, strlen(c->socket) + 1);
    unlink(c->socket);
    if (rc == 0 && ((p->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
                    bind(p->lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(p->lfd, 64) < 0 ||
                    pipe2(p->stop, O_CLOEXEC) < 0))
        rc = -errno;
    if (rc == 0 && (rc = -pthread_create(&p->th, NULL, accept_main, p)) == 0)
        p->started = 1;
    if (rc < 0) {
        mr_proxy_stop(p);
        return rc;
    }
    mesa_state_observe(observer, p);
    *out = p;
    return 0;
}

void mr_proxy_stop(mr_proxy_t *p)
{
    if (!p)
        return;
    mesa_state_observe(NULL, NULL);
    if (p->started) {
        if (write(p->stop[1], "x", 1) < 0) {
            /* the thread then stops at its next connection */
        }
        pthread_join(p->th, NULL);
    }
    if (p->lfd >= 0) {
        close(p->lfd);
        unlink(p->c.socket);
    }
    /* connections end with their clients (every sandboxed process is gone
     * by now); wait a little for their threads, which use p */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 2;
    pthread_mutex_lock(&p->mu);
    while (p->workers > 0 && pthread_cond_timedwait(&p->idle, &p->mu, &until) == 0)
        ;
    int busy = p->workers > 0;
    pthread_mutex_unlock(&p->mu);
    if (busy)
        return; /* left to the process's exit */
    for (int i = 0; i < 2; i++)
        if (p->stop[i] >= 0)
            close(p->stop[i]);
    for (size_t i = 0; i < p->nslots; i++) {
        for (int k = 0; k < SETS; k++)
            set_free(&p->slot[i].set[k]);
        free(p->slot[i].seen);
    }
    free(p);
}
