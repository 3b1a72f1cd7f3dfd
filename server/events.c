/* server/events.c - event envelopes and the wake-up channel for streams.
 *
 * Events live in SQLite (store_db); this module adds Mesa's envelope and a
 * generation counter with a condition variable, bumped after each commit
 * that recorded events, so SSE and long-poll handlers sleep instead of
 * polling the database. Called by repo.c/api_* (record, notify) and
 * api_events.c (wait).
 */
#include "config.h"
#include "events.h"
#include "http.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static pthread_once_t cv_once = PTHREAD_ONCE_INIT;
static uint64_t generation;

static void cv_init(void)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&cv, &a);
    pthread_condattr_destroy(&a);
}

int events_record(const db_org_t *org, const db_repo_t *repo, const char *type, json_t *data,
                  int64_t *id)
{
    char when[32];
    util_fmt_time_ms(util_now_ms(), when);
    json_t *env = json_pack("{s:s, s:s, s:{s:s, s:s, s:s}, s:{s:s, s:s}, s:o}", "type", type,
                            "occurred_at", when, "organization", "id", org->id, "slug", org->slug,
                            "name", org->name, "repository", "id", repo->id, "name", repo->name,
                            "data", data);
    if (!env)
        return -ENOMEM;
    char *payload = json_dumps(env, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(env);
    if (!payload)
        return -ENOMEM;
    int rc = db_event_add(repo->id, type, payload, id);
    free(payload);
    return rc;
}

void events_notify(void)
{
    pthread_once(&cv_once, cv_init);
    pthread_mutex_lock(&mu);
    generation++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

uint64_t events_generation(void)
{
    pthread_mutex_lock(&mu);
    uint64_t g = generation;
    pthread_mutex_unlock(&mu);
    return g;
}

uint64_t events_wait(uint64_t seen_gen, int timeout_ms)
{
    pthread_once(&cv_once, cv_init);
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&mu);
    while (generation == seen_gen && !http_stopping) {
        if (pthread_cond_timedwait(&cv, &mu, &dl) == ETIMEDOUT)
            break;
    }
    uint64_t g = generation;
    pthread_mutex_unlock(&mu);
    return g;
}
