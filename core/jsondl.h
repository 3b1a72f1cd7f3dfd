/* core/jsondl.h - jansson through dlopen, for the shim's build of core
 * (MESA_JSON_DLOPEN): the shim is preloaded into every process of a mount
 * and most never talk to the server, so libjansson is loaded with libcurl
 * on the first client (core/client.c) instead of at every exec. Include
 * after <jansson.h>; without MESA_JSON_DLOPEN this header is empty. Only
 * the functions core/client.c, core/fetch.c and core/vfs_meta.c use are
 * covered.
 */
#ifndef MESA_JSONDL_H
#define MESA_JSONDL_H
#ifdef MESA_JSON_DLOPEN

#include <jansson.h>

typedef struct mesa_jsondl {
    json_t *(*loadb)(const char *, size_t, size_t, json_error_t *);
    char *(*dumps)(const json_t *, size_t);
    json_t *(*object_get)(const json_t *, const char *);
    const char *(*string_value)(const json_t *);
    json_int_t (*integer_value)(const json_t *);
    json_t *(*array)(void);
    size_t (*array_size)(const json_t *);
    json_t *(*array_get)(const json_t *, size_t);
    int (*array_append_new)(json_t *, json_t *);
    json_t *(*string)(const char *);
    json_t *(*pack)(const char *, ...);
    void (*del)(json_t *);
    void *(*object_iter)(json_t *);
    void *(*object_iter_next)(json_t *, void *);
    const char *(*object_iter_key)(void *);
    json_t *(*object_iter_value)(void *);
} mesa_jsondl_t;

extern mesa_jsondl_t mesa_jsondl;
/* Load libjansson.so.4 (once per process). 1 if usable. */
int mesa_jsondl_load(void);

static inline void mesa_json_decref(json_t *j)
{
    if (j && j->refcount != (size_t)-1 && JSON_INTERNAL_DECREF(j) == 0)
        mesa_jsondl.del(j);
}

#define json_loadb (*mesa_jsondl.loadb)
#define json_dumps (*mesa_jsondl.dumps)
#define json_object_get (*mesa_jsondl.object_get)
#define json_string_value (*mesa_jsondl.string_value)
#define json_integer_value (*mesa_jsondl.integer_value)
#define json_array (*mesa_jsondl.array)
#define json_array_size (*mesa_jsondl.array_size)
#define json_array_get (*mesa_jsondl.array_get)
#define json_array_append_new (*mesa_jsondl.array_append_new)
#define json_string (*mesa_jsondl.string)
#define json_pack (*mesa_jsondl.pack)
#define json_decref mesa_json_decref
#define json_object_iter (*mesa_jsondl.object_iter)
#define json_object_iter_next (*mesa_jsondl.object_iter_next)
#define json_object_iter_key (*mesa_jsondl.object_iter_key)
#define json_object_iter_value (*mesa_jsondl.object_iter_value)

#endif
#endif
