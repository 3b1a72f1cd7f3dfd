/* server/http.h - mesad's HTTP front: libmicrohttpd daemons (TCP and Unix
 * sockets), request bodies with a size cap, routing to the api_* handlers,
 * JSON responses and errors, the per-credential rate limit, and drain on
 * shutdown.
 */
#ifndef MESA_HTTP_H
#define MESA_HTTP_H

#include <microhttpd.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "store_db.h"

typedef struct http_config {
    const char *data_dir;
    size_t max_body;     /* bytes */
    double rate_limit;   /* requests per second per credential; 0 = off */
    int keepalive;       /* seconds between SSE keep-alive comments */
} http_config_t;

extern http_config_t http_cfg;
/* Set when shutdown begins: long-running handlers (event streams) end. */
extern volatile int http_stopping;

#define HTTP_MAX_SEG 64

typedef struct req {
    struct MHD_Connection *conn;
    const char *method;
    char *url;            /* decoded path, owned */
    char *segbuf;         /* owned storage for seg[] */
    char *seg[HTTP_MAX_SEG];
    int nseg;             /* segments after "/v1" */
    char *body;           /* request body, NUL-terminated, owned */
    size_t body_len;
    int too_large;
    principal_t who;
    /* resolved by the router for /v1/{org}/{repo}/... */
    db_org_t org;
    db_repo_t repo;
    /* the response */
    unsigned status;
    struct MHD_Response *resp;
} req_t;

/* Query argument or NULL. */
const char *http_arg(req_t *r, const char *name);
const char *http_header(req_t *r, const char *name);

/* Responses: each sets r->status/r->resp and returns 0. http_json steals v. */
int http_json(req_t *r, unsigned status, json_t *v);
int http_error(req_t *r, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* An error with a details object (stolen). */
int http_error_details(req_t *r, unsigned status, const char *code, json_t *details,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Map a negative errno from storage to a response (404/409/400/500). */
int http_errno(req_t *r, int err, const char *what);
/* Raw bytes (copied). */
int http_bytes(req_t *r, unsigned status, const void *data, size_t len, const char *ctype);
/* List pagination: parse ?cursor= and ?limit= (default 50, 1..100); on a
 * bad value sets a 400 response and returns -1. */
int http_page_args(req_t *r, long *off, int *limit);
/* Respond {"<key>": items, "next_cursor", "has_more"} (items stolen). */
int http_page(req_t *r, const char *key, json_t *items, long off, int more);
/* Parse the body as a JSON object (NULL + error response set on failure). */
json_t *http_body_json(req_t *r);

/* Start listening on each address ("HOST:PORT" or "unix:PATH"); writes the
 * bound addresses, one per line, to ready_file if not NULL. */
int http_start(const char *const *listen, size_t n, const char *ready_file);
/* Stop accepting, finish in-flight requests, end event streams. */
void http_stop(void);

#endif
