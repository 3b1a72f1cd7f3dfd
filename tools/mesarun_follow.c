/* tools/mesarun_follow.c - the event follower (DESIGN §3, §5: reads are
 * realtime): one thread long-polls every slot's GET .../events at once
 * (one libcurl multi handle, so that stopping is immediate: a wakeup, not
 * the end of a 25 s poll) and, when another client rewrote a mounted
 * change, puts the new commit's listing in $CACHE/trees and then moves the
 * slot in $RUN/state to it.
 *
 * Invariant: a slot never goes back in time. An event is applied directly
 * only when it continues the slot's commit (previous_commit_oid equals it);
 * otherwise (the mount's own pushes, reordered or missed events) the
 * change's current commit is asked for, and the slot moves only if it
 * still holds the commit seen before asking. The mount's own pushes arrive
 * as events whose commit the pusher has put (or, while a push is in
 * flight, puts within half a second) in the slot: ignored, so that they
 * cost no listing.
 * Uses its own clients (one curl multi, one mesa client for listings).
 */
#include "config.h"
#include "mesarun.h"
#include "fetch.h"
#include "state.h"
#include "treecache.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POLL_WAIT_S 25
#define BACKOFF_MAX_MS 5000
#define OWN_PUSH_WAIT_MS 500

typedef struct fl_slot {
    size_t idx; /* state slot */
    char org[101], repo[101];
    char after[24]; /* event cursor */
    CURL *h;
    int active, fails;
    int64_t retry_at_ms;
    char *body;
    size_t len, cap;
    int oom;
} fl_slot_t;

struct mr_follow {
    CURLM *multi;
    struct curl_slist *headers;
    char base[4400];   /* ".../v1" */
    char socket[4400]; /* unix socket path, "" for TCP */
    char cache[PATH_MAX];
    mesa_state_t *st;
    mesa_client_t *client; /* changes and listings */
    mesa_pusher_t *pusher; /* the mount's (in flight: own events may be early) */
    int verbose;
    int stop; /* atomic */
    pthread_t th;
    int started;
    size_t n;
    fl_slot_t slots[MR_MAX_REPOS];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void say(const mr_follow_t *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const mr_follow_t *f, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    if (!f->verbose)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    mr_log(NULL, line);
}

/* ------------------------------------------------------------ applying */

/* The change's current commit, asked of the server. */
static int current_commit(mr_follow_t *f, const fl_slot_t *s, const char *change, char out[41])
{
    char path[400];
    json_t *v = NULL;
    mesa_error_t e = {0};
    snprintf(path, sizeof path, "/%s/%s/changes/%s", s->org, s->repo, change);
    int rc = mesa_client_json(f->client, "GET", path, NULL, &v, &e);
    const char *c = json_string_value(json_object_get(v, "current_commit_oid"));
    if (rc == 0 && (!c || strlen(c) != 40))
        rc = -EPROTO;
    if (rc == 0)
        memcpy(out, c, 41);
    json_decref(v);
    return rc;
}

/* Listing first, then the slot: a process that sees the new commit finds
 * its listing in the cache. Only if the slot still holds seen. */
static void move_slot(mr_follow_t *f, const fl_slot_t *s, const mesa_state_repo_t *seen,
                      const char *commit)
{
    mesa_tree_t *t = NULL;
    mesa_error_t e = {0};
    mesa_state_repo_t now;
    if (mesa_fetch_tree(f->client, f->cache, s->org, s->repo, commit, &t, &e) < 0) {
        say(f, "%s/%s: cannot list remote commit %.12s: %s", s->org, s->repo, commit, e.message);
        return;
    }
    mesa_tree_close(t);
    if (mesa_state_get(f->st, s->idx, &now) < 0 || strcmp(now.change_id, seen->change_id) != 0 ||
        strcmp(now.commit, seen->commit) != 0)
        return; /* the pusher moved it meanwhile: its commit is newer */
    mesa_state_set(f->st, s->idx, seen->change_id, commit, NULL);
    say(f, "%s/%s: remote write to change %.12s: now at commit %.12s", s->org, s->repo,
        seen->change_id, commit);
}

/* The event of the mount's own push can beat the pusher's answer: give
 * the slot up to OWN_PUSH_WAIT_MS to reach commit. 1 if it did; else *r is
 * the slot now. */
static int own_push(mr_follow_t *f, const fl_slot_t *s, const char *commit, mesa_state_repo_t *r)
{
    if (f->pusher && !mesa_pusher_inflight(f->pusher)) /* no push of ours under way */
        return mesa_state_get(f->st, s->idx, r) < 0 || strcmp(r->commit, commit) == 0;
    for (int waited = 0; waited < OWN_PUSH_WAIT_MS; waited += 10) {
        struct timespec ts = {0, 10000000L};
        if (__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE))
            return 1; /* stopping: leave the slot alone */
        nanosleep(&ts, NULL);
        if (mesa_state_get(f->st, s->idx, r) < 0 || strcmp(r->commit, commit) == 0)
            return 1;
    }
    return 0;
}

/* One change.* event. */
static void on_change(mr_follow_t *f, const fl_slot_t *s, json_t *data)
{
    const char *cid = json_string_value(json_object_get(data, "change_id"));
    const char *commit = json_string_value(json_object_get(data, "commit_oid"));
    const char *prev = json_string_value(json_object_get(data, "previous_commit_oid"));
    mesa_state_repo_t r;
    char cur[41];
    if (!cid || !commit || strlen(commit) != 40 || mesa_state_get(f->st, s->idx, &r) < 0)
        return;
    if (strcmp(cid, r.change_id) != 0 || strcmp(commit, r.commit) == 0)
        return; /* another change, or the mount's own push */
    if (own_push(f, s, commit, &r) || strcmp(cid, r.change_id) != 0)
        return;
    if (prev && strcmp(prev, r.commit) == 0) {
        move_slot(f, s, &r, commit);
        return;
    }
    if (current_commit(f, s, r.change_id, cur) == 0 && strcmp(cur, r.commit) != 0)
        move_slot(f, s, &r, cur);
}

/* A long-poll answer: apply its events, advance the cursor. */
static void on_answer(mr_follow_t *f, fl_slot_t *s)
{
    json_t *v = json_loadb(s->body ? s->body : "", s->len, 0, NULL), *ev;
    json_t *last = json_object_get(v, "last_event_id");
    size_t i;
    json_array_foreach(json_object_get(v, "events"), i, ev)
    {
        const char *type = json_string_value(json_object_get(ev, "type"));
        if (type && strncmp(type, "change.", 7) == 0)
            on_change(f, s, json_object_get(ev, "data"));
    }
    if (json_is_integer(last))
        snprintf(s->after, sizeof s->after, "%lld", (long long)json_integer_value(last));
    json_decref(v);
}

/* ------------------------------------------------------------ polling */

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    fl_slot_t *s = ud;
    size_t len = sz * n;
    if (s->len + len + 1 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8192;
        while (cap < s->len + len + 1)
            cap *= 2;
        char *nb = realloc(s->body, cap);
        if (!nb) {
            s->oom = 1;
            return 0;
        }
        s->body = nb;
        s->cap = cap;
    }
    memcpy(s->body + s->len, p, len);
    s->len += len;
    s->body[s->len] = '\0';
    return len;
}

/* Start the slot's next long poll. */
static void arm(mr_follow_t *f, fl_slot_t *s)
{
    char url[5200];
    snprintf(url, sizeof url, "%s/%s/%s/events?after=%s&wait=%d", f->base, s->org, s->repo,
             s->after, POLL_WAIT_S);
    s->len = 0;
    s->oom = 0;
    curl_easy_setopt(s->h, CURLOPT_URL, url);
    curl_easy_setopt(s->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(s->h, CURLOPT_TIMEOUT_MS, (long)(POLL_WAIT_S + 15) * 1000L);
    curl_easy_setopt(s->h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, f->headers);
    curl_easy_setopt(s->h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(s->h, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(s->h, CURLOPT_PRIVATE, s);
    if (f->socket[0])
        curl_easy_setopt(s->h, CURLOPT_UNIX_SOCKET_PATH, f->socket);
    if (curl_multi_add_handle(f->multi, s->h) == CURLM_OK)
        s->active = 1;
    else
        s->retry_at_ms = now_ms() + BACKOFF_MAX_MS;
}

/* A poll finished: apply it, or back off (token expired, server down). */
static void finished(mr_follow_t *f, fl_slot_t *s, CURLcode cc)
{
    long status = 0;
    curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(f->multi, s->h);
    s->active = 0;
    if (cc == CURLE_OK && !s->oom && status == 200) {
        on_answer(f, s);
        s->fails = 0;
        s->retry_at_ms = 0;
        return;
    }
    if (s->fails++ == 0)
        say(f, "%s/%s: following events failed (%s), retrying", s->org, s->repo,
            cc != CURLE_OK ? curl_easy_strerror(cc)
            : status       ? "HTTP error"
                           : "no answer");
    long ms = 250L << (s->fails < 5 ? s->fails : 5);
    s->retry_at_ms = now_ms() + (ms > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ms);
}

static void *follow_main(void *arg)
{
    mr_follow_t *f = arg;
    while (!__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE)) {
        int64_t now = now_ms();
        for (size_t i = 0; i < f->n; i++)
            if (!f->slots[i].active && now >= f->slots[i].retry_at_ms)
                arm(f, &f->slots[i]);
        int running = 0, left = 0;
        curl_multi_perform(f->multi, &running);
        CURLMsg *msg;
        while ((msg = curl_multi_info_read(f->multi, &left)) != NULL) {
            fl_slot_t *s = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            if (msg->msg == CURLMSG_DONE && s)
                finished(f, s, msg->data.result);
        }
        curl_multi_poll(f->multi, NULL, 0, 500, NULL);
    }
    return NULL;
}

/* ------------------------------------------------------------ lifecycle */

/* base URL, socket and the auth header from the mount's URL and token. */
static int connection(mr_follow_t *f, const mr_t *m)
{
    char auth[8300];
    if (strncmp(m->url, "unix:", 5) == 0) {
        snprintf(f->socket, sizeof f->socket, "%s", m->url + 5);
        snprintf(f->base, sizeof f->base, "http://mesad/v1");
    } else {
        size_t n = strlen(m->url);
        while (n > 0 && m->url[n - 1] == '/')
            n--;
        snprintf(f->base, sizeof f->base, "%.*s/v1", (int)n, m->url);
    }
    if ((size_t)snprintf(auth, sizeof auth, "Authorization: Bearer %s", m->token) >= sizeof auth)
        return -E2BIG;
    f->headers = curl_slist_append(NULL, auth);
    struct curl_slist *h =
        f->headers ? curl_slist_append(f->headers, "Accept: application/json") : NULL;
    if (!h)
        return -ENOMEM;
    f->headers = h;
    return 0;
}

static int setup(mr_follow_t *f, const mr_t *m)
{
    char path[PATH_MAX];
    mesa_client_opts_t o = {.url = m->url, .bearer = m->token, .timeout_ms = 15000, .retries = 1};
    int rc = connection(f, m);
    if (rc == 0)
        rc = mesa_client_new(&o, &f->client);
    if (rc == 0 && (rc = mr_path(path, "%s/state", m->run)) == 0)
        rc = mesa_state_open(path, &f->st);
    if (rc == 0 && !(f->multi = curl_multi_init()))
        rc = -ENOMEM;
    for (size_t i = 0; rc == 0 && i < m->o.nrepos; i++) {
        fl_slot_t *s = &f->slots[f->n];
        s->idx = i;
        snprintf(s->org, sizeof s->org, "%s", m->o.repos[i].org);
        snprintf(s->repo, sizeof s->repo, "%s", m->o.repos[i].name);
        snprintf(s->after, sizeof s->after, "%s", m->o.repos[i].after);
        if (!(s->h = curl_easy_init()))
            rc = -ENOMEM;
        else
            f->n++;
    }
    return rc;
}

static void follow_free(mr_follow_t *f)
{
    for (size_t i = 0; i < f->n; i++) {
        if (f->slots[i].active)
            curl_multi_remove_handle(f->multi, f->slots[i].h);
        curl_easy_cleanup(f->slots[i].h);
        free(f->slots[i].body);
    }
    if (f->multi)
        curl_multi_cleanup(f->multi);
    curl_slist_free_all(f->headers);
    mesa_client_free(f->client);
    mesa_state_close(f->st);
    free(f);
}

int mr_follow_start(mr_t *m, mr_follow_t **out)
{
    mr_follow_t *f = calloc(1, sizeof *f);
    *out = NULL;
    if (!f)
        return -ENOMEM;
    f->verbose = m->o.verbose;
    f->pusher = m->pusher;
    snprintf(f->cache, sizeof f->cache, "%s", m->cache);
    int rc = setup(f, m);
    if (rc == 0 && (rc = -pthread_create(&f->th, NULL, follow_main, f)) == 0)
        f->started = 1;
    if (rc < 0) {
        follow_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

void mr_follow_stop(mr_follow_t *f)
{
    if (!f)
        return;
    __atomic_store_n(&f->stop, 1, __ATOMIC_RELEASE);
    curl_multi_wakeup(f->multi);
    if (f->started)
        pthread_join(f->th, NULL);
    follow_free(f);
}
