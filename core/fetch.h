/* core/fetch.h - filling the blob cache from the server (DESIGN §8: "batch
 * small-file fetches, a directory's worth per round trip").
 */
#ifndef MESA_FETCH_H
#define MESA_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "blobcache.h"
#include "client.h"
#include "treecache.h"

/* Make every blob of oids[0..n) present in the cache: the ones missing go
 * up to 1000 per POST .../blobs/batch while their known sizes (sizes may be
 * NULL) add up to at most 8 MiB; blobs over 1 MiB, and a single blob
 * asked for alone (its size unknown), are fetched with GET .../blobs/{oid}. Every blob is verified against its id before it
 * is published. 0, or a negative errno with e filled (-ENOENT: the server
 * does not have one of them). */
int mesa_fetch_blobs(mesa_client_t *c, mesa_blobcache_t *bc, const char *org, const char *repo,
                     const char *const *oids, const uint64_t *sizes, size_t n, mesa_error_t *e);

/* Make *t the listing of commit of org/repo: the cached one under dir
 * (<dir>/trees/<commit>), else GET .../tree?commit= written to the cache.
 * 0, or a negative errno with e filled. Close *t with mesa_tree_close. */
int mesa_fetch_tree(mesa_client_t *c, const char *dir, const char *org, const char *repo,
                    const char *commit, mesa_tree_t **t, mesa_error_t *e);

#endif
