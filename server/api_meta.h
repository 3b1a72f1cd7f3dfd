/* server/api_meta.h - per-path metadata helpers for the content handlers
 * (server/api_meta.c), and its limits (docs/PROTOCOL.md "File metadata").
 */
#ifndef MESA_API_META_H
#define MESA_API_META_H

#include <jansson.h>

#include "http.h"

/* A key as an extended attribute name is "user." + key: 255 bytes at most. */
#define META_KEY_MAX 250
/* As the kernel's XATTR_SIZE_MAX. */
#define META_VALUE_MAX 65536
#define META_MAX_KEYS 128
#define META_STR_(x) #x
#define META_STR(x) META_STR_(x)

/* The ?metadata[key]=value filters of r: *out {key: [values]} (new
 * reference) or NULL when there are none. -1 with a 400 response set on a
 * malformed filter. */
int api_meta_filters(req_t *r, json_t **out);
/* Does meta (an object, may be NULL) satisfy every filter? */
int api_meta_match(json_t *filters, json_t *meta);

#endif
