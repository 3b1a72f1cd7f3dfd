/* server/api_events.c - GET /v1/{org}/{repo}/events: the repo's event log as
 * server-sent events (resumable with Last-Event-ID, keep-alive comments) or
 * as a JSON long poll. Both sleep on events_wait() rather than polling, and
 * end when the server shuts down.
 */
#include "config.h"
#include "api.h"
#include "events.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sse {
    char repo_id[37];
    int64_t last;
    char *buf;
    size_t len, off;
    int64_t next_keepalive_ms;
} sse_t;

static int parse_id(const char *s, int64_t *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < 0)
        return -EINVAL;
    *out = v;
    return 0;
}

/* Format events (a JSON array) as SSE frames into a malloc'd buffer. */
static char *sse_format(json_t *events, size_t *len)
{
    char *out = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&out, &n);
    if (!f)
        return NULL;
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev)
    {
        char *data = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
        fprintf(f, "id: %s\nevent: %s\ndata: %s\n\n", json_string_value(json_object_get(ev, "id")),
                json_string_value(json_object_get(ev, "type")), data ? data : "{}");
        free(data);
    }
    fclose(f);
    *len = n;
    return out;
}

/* Fill s->buf with the next frames (events or a keep-alive); 0, or -1 at end. */
static int sse_next(sse_t *s)
{
    free(s->buf);
    s->buf = NULL;
    s->len = s->off = 0;
    while (!http_stopping) {
        uint64_t gen = events_generation();
        json_t *events = NULL;
        int64_t last = s->last;
        if (db_events_after(s->repo_id, s->last, 100, &events, &last) < 0)
            return -1;
        if (json_array_size(events) > 0) {
            s->buf = sse_format(events, &s->len);
            s->last = last;
            json_decref(events);
            return s->buf ? 0 : -1;
        }
        json_decref(events);
        int64_t now = util_now_ms();
        if (now >= s->next_keepalive_ms) {
            s->next_keepalive_ms = now + (int64_t)http_cfg.keepalive * 1000;
            s->buf = strdup(": keep-alive\n\n");
            s->len = strlen(s->buf);
            return 0;
        }
        int64_t left = s->next_keepalive_ms - now;
        events_wait(gen, (int)(left < 1000 ? left : 1000));
    }
    return -1;
}

static ssize_t sse_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    sse_t *s = cls;
    if (s->off >= s->len && sse_next(s) < 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = s->len - s->off < max ? s->len - s->off : max;
    memcpy(buf, s->buf + s->off, n);
    s->off += n;
    return (ssize_t)n;
}

static void sse_free(void *cls)
{
    sse_t *s = cls;
    free(s->buf);
    free(s);
}

static int events_sse(req_t *r, int64_t after, int have_after)
{
    sse_t *s = calloc(1, sizeof *s);
    if (!s)
        return http_errno(r, -ENOMEM, "stream");
    snprintf(s->repo_id, sizeof s->repo_id, "%s", r->repo.id);
    if (!have_after && db_events_last(r->repo.id, &after) < 0) {
        free(s);
        return http_errno(r, -EIO, "events");
    }
    s->last = after;
    s->buf = strdup("retry: 1000\n: connected\n\n");
    s->len = strlen(s->buf);
    s->next_keepalive_ms = util_now_ms() + (int64_t)http_cfg.keepalive * 1000;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_reader, s, sse_free);
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    r->status = 200;
    r->resp = resp;
    return 0;
}

static int events_poll(req_t *r, int64_t after)
{
    const char *w = http_arg(r, "wait");
    int64_t wait = 25;
    if (w && (parse_id(w, &wait) < 0 || wait > 60))
        return http_error(r, 400, "BAD_REQUEST", "wait must be 0..60 seconds");
    int64_t deadline = util_now_ms() + wait * 1000;
    for (;;) {
        uint64_t gen = events_generation();
        json_t *events = NULL;
        int64_t last = after;
        if (db_events_after(r->repo.id, after, 100, &events, &last) < 0)
            return http_errno(r, -EIO, "events");
        int64_t left = deadline - util_now_ms();
        if (json_array_size(events) > 0 || left <= 0 || http_stopping)
            return http_json(r, 200, json_pack("{s:o, s:I}", "events", events, "last_event_id",
                                               (json_int_t)last));
        json_decref(events);
        events_wait(gen, (int)(left < 1000 ? left : 1000));
    }
}

int api_events(req_t *r)
{
    const char *acc = http_header(r, "Accept"), *lei = http_header(r, "Last-Event-ID");
    const char *q = http_arg(r, "after");
    int64_t after = 0;
    int have_after = 0;
    if (!lei && q && strcmp(q, "now") == 0) { /* start from the newest event */
        if (db_events_last(r->repo.id, &after) < 0)
            return http_errno(r, -EIO, "events");
        have_after = 1;
    } else if (lei || q) {
        if (parse_id(lei ? lei : q, &after) < 0)
            return http_error(r, 400, "BAD_REQUEST", "event ids are non-negative integers");
        have_after = 1;
    }
    if (acc && strstr(acc, "text/event-stream"))
        return events_sse(r, after, have_after);
    return events_poll(r, after);
}
