/* core/sha1.h - SHA-1 (FIPS 180-4), for git object ids only (blob ids in
 * the caches are git's names, not a security boundary). Kept in core so
 * the shim, loaded into every process of a mount, does not pull libcrypto
 * (about half a millisecond per exec). */
#ifndef MESA_SHA1_H
#define MESA_SHA1_H

#include <stddef.h>
#include <stdint.h>

typedef struct mesa_sha1 {
    uint32_t h[5];
    uint64_t len; /* bytes hashed */
    unsigned char buf[64];
    size_t n; /* bytes in buf */
} mesa_sha1_t;

void mesa_sha1_init(mesa_sha1_t *c);
void mesa_sha1_update(mesa_sha1_t *c, const void *data, size_t len);
void mesa_sha1_final(mesa_sha1_t *c, unsigned char out[20]);

#endif
