/* core/blobcache.h - the content-addressed blob cache shared by every
 * process of every mount that uses the same cache directory.
 *
 * Layout: <dir>/blobs/<xx>/<oid> (xx = first two hex digits), read-only
 * files (0444) written once: temp file in <dir>/tmp, fsync, rename into
 * place, so a reader sees a whole blob or none. Concurrent publishers of the
 * same oid are harmless (same bytes; the rename is atomic). The cache is
 * capped in bytes; eviction removes the least recently used blobs (use =
 * lookup, which touches the file's mtime). An evicted blob that a process
 * still has open stays readable through its descriptor.
 * No threads, no globals: a handle is per process (or per thread).
 */
#ifndef MESA_BLOBCACHE_H
#define MESA_BLOBCACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct mesa_blobcache mesa_blobcache_t;

/* Open (creating dir/blobs and dir/tmp, mode 0700) with a size cap in
 * bytes; max_bytes == 0 means auto-size: 10% of the free space of dir's
 * filesystem, clamped to [256 MiB, 10 GiB]. Returns 0 or -errno. */
int mesa_blobcache_open(const char *dir, uint64_t max_bytes, mesa_blobcache_t **out);
void mesa_blobcache_close(mesa_blobcache_t *c);
uint64_t mesa_blobcache_cap(const mesa_blobcache_t *c);

/* The path of a cached blob (out: outlen bytes) if present: 0, and the
 * blob's use time is touched; -ENOENT if absent; -EINVAL for a bad oid. */
int mesa_blobcache_lookup(mesa_blobcache_t *c, const char *oid, char *out, size_t outlen);

/* Publish len bytes as blob oid, after checking that they hash to oid as a
 * git blob ("blob <len>\0" + data, SHA-1): -EBADMSG if not. Fills out with
 * the blob's path. May evict others to stay under the cap. 0 or -errno. */
int mesa_blobcache_put(mesa_blobcache_t *c, const char *oid, const void *data, size_t len,
                       char *out, size_t outlen);

/* put for n blobs at once (a batch answer): each checked as in put, the
 * new ones written and fsync'd, then renamed into place (blobs/<xx>/ made
 * only when a rename finds it missing). 0, or the first error:
 * a blob that fails its check (-EBADMSG) or cannot be written publishes
 * none of the batch; a failed rename keeps the ones renamed before it. */
int mesa_blobcache_put_many(mesa_blobcache_t *c, size_t n, const char *const *oids,
                            const void *const *data, const size_t *lens);

/* Evict least recently used blobs until the cache holds at most target
 * bytes (target > cap is clamped to the cap). *freed (may be NULL) gets the
 * bytes removed. 0 or -errno. */
int mesa_blobcache_evict(mesa_blobcache_t *c, uint64_t target, uint64_t *freed);

/* Bytes currently cached (a scan of the directory). */
int mesa_blobcache_usage(mesa_blobcache_t *c, uint64_t *bytes, uint64_t *count);

/* The git blob id of data (40 hex + NUL). */
void mesa_blob_oid(const void *data, size_t len, char out[41]);

#endif
