/* core/client.h - the HTTP/JSON client of Mesa's API (libcurl + jansson).
 *
 * One handle per process keeps its connections alive; after fork() the
 * child silently starts a fresh connection (it never touches the parent's).
 * Unix sockets ("unix:/path" URLs), timeouts, and retries with backoff on
 * connection errors, 5xx and 429 (honouring Retry-After), never on 4xx.
 * Errors reach callers as a negative errno (core/errmap.c) plus a message.
 */
#ifndef MESA_CLIENT_H
#define MESA_CLIENT_H

#include <jansson.h>
#include <stddef.h>

typedef struct mesa_client mesa_client_t;

typedef struct mesa_client_opts {
    const char *url;    /* "http(s)://host[:port]" or "unix:/path" (no /v1) */
    const char *bearer; /* access token or raw API key; "" for none (mesarun's proxy) */
    long timeout_ms;    /* whole request; 0 = 30000 */
    int retries;        /* extra attempts; < 0 = 4 */
    /* The server is `mesarun --sandbox`'s proxy, which fills the caches
     * (read-only to the sandbox): core/fetch.c asks it to instead of
     * fetching and writing them itself. */
    int delegate_fills;
} mesa_client_opts_t;

/* A new client (copies its options). 0, -EINVAL (bad URL), -ENOMEM. */
int mesa_client_new(const mesa_client_opts_t *o, mesa_client_t **out);
void mesa_client_free(mesa_client_t *c);
/* Was it made with delegate_fills? */
int mesa_client_delegates(const mesa_client_t *c);
/* A client with the same options and its own connection (for another
 * thread: a client is used by one thread at a time). */
int mesa_client_clone(const mesa_client_t *c, mesa_client_t **out);

typedef struct mesa_resp {
    long status;
    char *body; /* malloc'd, NUL-terminated; may be empty */
    size_t len;
    char etag[80];
    char content_type[80];
} mesa_resp_t;
void mesa_resp_free(mesa_resp_t *r);

/* What went wrong, for messages: status 0 for transport errors. */
typedef struct mesa_error {
    int err;       /* positive errno */
    long status;   /* HTTP status, 0 if none */
    char code[48]; /* API error code, "" if none */
    char message[512];
} mesa_error_t;

/* Fill e for a failure that is not an HTTP answer (status 0, no code) and
 * return -err: `return mesa_error_set(e, EINVAL, "...%s", x);`. */
int mesa_error_set(mesa_error_t *e, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* One request; path is below /v1 ("/acme/repos?limit=5"). headers: extra
 * "Name: value" lines, NULL-terminated (may be NULL). Returns 0 with any
 * HTTP status in *resp (free with mesa_resp_free), or a negative errno for
 * a transport failure after retries (-EIO unreachable, -ETIMEDOUT), with e
 * (may be NULL) describing it. */
int mesa_client_request(mesa_client_t *c, const char *method, const char *path,
                        const char *const *headers, const void *body, size_t len,
                        mesa_resp_t *resp, mesa_error_t *e);

/* Fill e (err, status, code, message) from an error response r whose body
 * is the API's {"error":{"code","message"}}. Returns -err. */
int mesa_client_error_from(const mesa_resp_t *r, mesa_error_t *e);

/* A JSON call: body (borrowed, may be NULL) sent as JSON. On 2xx returns 0
 * and *out (new reference, NULL for an empty body); otherwise a negative
 * errno mapped from status and error code, with e filled. */
int mesa_client_json(mesa_client_t *c, const char *method, const char *path, json_t *body,
                     json_t **out, mesa_error_t *e);

/* Percent-encode s for a query value or path segment into out. */
int mesa_client_escape(const char *s, char *out, size_t outlen);

#endif
