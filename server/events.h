/* server/events.h - the event log: recording events (in the caller's SQLite
 * transaction) and waking the streams that wait for them.
 */
#ifndef MESA_EVENTS_H
#define MESA_EVENTS_H

#include <jansson.h>
#include <stdint.h>

#include "store_db.h"

/* Build Mesa's webhook envelope for repo (org from org) with type and data
 * (stolen) and append it to the log inside the current transaction.
 * *id receives the event id. Call events_notify() after the commit. */
int events_record(const db_org_t *org, const db_repo_t *repo, const char *type, json_t *data,
                  int64_t *id);
/* Wake every waiter: a new event exists. */
void events_notify(void);
/* Wait until an event newer than seen_gen may exist, or timeout_ms passes,
 * or shutdown begins. Returns the current generation. */
uint64_t events_wait(uint64_t seen_gen, int timeout_ms);
uint64_t events_generation(void);

#endif
