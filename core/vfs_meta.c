/* core/vfs_meta.c - extended attributes of mount paths (DESIGN §3; docs/
 * PROTOCOL.md "File metadata"): the user.* namespace is the server's
 * per-path metadata, read and written through GET/PATCH .../metadata with
 * the mount's client, so every mount (and `mesa meta`) sees the same
 * values. user.org and user.repo are the server's synthetic read-only keys.
 *
 * Invariant: nothing is cached, so a value set by another mount is seen at
 * once; a call that needs no server (a name outside user., a read-only
 * key, a missing path) never makes a request. Called by the shim's xattr
 * wrappers (shim/xattr.c) and by mesa_vfs_rename (core/vfs_ops.c).
 */
#include "config.h"
#include "vfs_int.h"
#include "jsondl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#define XNAME_MAX 255    /* XATTR_NAME_MAX */
#define XVALUE_MAX 65536 /* XATTR_SIZE_MAX */

typedef struct mtarget {
    int slot;
    char rel[MESA_PATH_MAX];
} mtarget_t;

/* The metadata key of an attribute name, or NULL with *err set. */
static const char *key_of(const char *name, int *err)
{
    if (!name || strlen(name) > XNAME_MAX) {
        *err = -ERANGE;
        return NULL;
    }
    if (strncmp(name, "user.", 5) != 0) {
        *err = -ENOTSUP; /* as a filesystem without that namespace */
        return NULL;
    }
    if (!name[5]) {
        *err = -EINVAL;
        return NULL;
    }
    return name + 5;
}

static int read_only_key(const char *key)
{
    return strcmp(key, "org") == 0 || strcmp(key, "repo") == 0;
}

/* Look path up: its slot and repo-relative path (-1 outside a repo). */
static int target(mesa_vfs_t *v, const char *path, int follow, mtarget_t *t)
{
    mesa_vnode_t *n = malloc(sizeof *n);
    if (!n)
        return -ENOMEM;
    int rc = mesa_vfs_lookup(v, path, follow, n);
    if (rc == -EXDEV) /* a symlink out of the mount */
        rc = -ENOTSUP;
    if (rc == 0) {
        t->slot = n->slot;
        snprintf(t->rel, sizeof t->rel, "%s", n->slot >= 0 ? n->rel : "");
    }
    free(n);
    return rc;
}

/* "/<org>/<repo>/metadata?path=<rel>" */
static int meta_url(mesa_vfs_t *v, const mtarget_t *t, char *out, size_t len)
{
    char esc[3 * MESA_PATH_MAX + 1];
    if (mesa_client_escape(t->rel, esc, sizeof esc) < 0)
        return -ENAMETOOLONG;
    int n = snprintf(out, len, "/%s/%s/metadata?path=%s", v->slot[t->slot].r.org,
                     v->slot[t->slot].r.repo, esc);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* One call on t's metadata: *meta the answer's "metadata" object (new
 * reference, the whole answer kept alive by *ans). */
static int meta_call(mesa_vfs_t *v, const mtarget_t *t, const char *method, json_t *body,
                     json_t **ans, json_t **meta)
{
    char url[4 * MESA_PATH_MAX];
    mesa_error_t e = {0};
    mesa_client_t *c = vfs_client(v);
    int rc = meta_url(v, t, url, sizeof url);
    if (rc < 0)
        return rc;
    if (!c)
        return -EIO;
    *ans = NULL;
    rc = mesa_client_json(c, method, url, body, ans, &e);
    if (rc < 0)
        return vfs_api_error(v, rc, &e);
    *meta = json_object_get(*ans, "metadata");
    if (!*meta || !json_is_object(*meta)) {
        json_decref(*ans);
        *ans = NULL;
        return -EIO;
    }
    return 0;
}

/* The client exists (and so jansson is loaded in the shim: core/jsondl.h)
 * before any json_* call. */
static int ready(mesa_vfs_t *v)
{
    return vfs_client(v) ? 0 : -EIO;
}

/* Copy a value or a list out as getxattr/listxattr do. */
static ssize_t out_bytes(const char *src, size_t len, void *buf, size_t size)
{
    if (size == 0)
        return (ssize_t)len;
    if (!buf)
        return -EFAULT;
    if (size < len)
        return -ERANGE;
    memcpy(buf, src, len);
    return (ssize_t)len;
}

ssize_t mesa_vfs_getxattr(mesa_vfs_t *v, const char *path, int follow, const char *name, void *buf,
                          size_t size)
{
    mtarget_t t;
    json_t *ans, *m;
    int err = 0;
    const char *key = key_of(name, &err);
    int rc = target(v, path, follow, &t);
    if (rc < 0)
        return rc;
    if (!key)
        return err;
    if (t.slot < 0)
        return -ENODATA;
    if ((rc = meta_call(v, &t, "GET", NULL, &ans, &m)) < 0)
        return rc;
    const char *val = json_string_value(json_object_get(m, key));
    ssize_t n = val ? out_bytes(val, strlen(val), buf, size) : -ENODATA;
    json_decref(ans);
    return n;
}

ssize_t mesa_vfs_listxattr(mesa_vfs_t *v, const char *path, int follow, char *buf, size_t size)
{
    mtarget_t t;
    json_t *ans, *m;
    int rc = target(v, path, follow, &t);
    if (rc < 0 || t.slot < 0)
        return rc < 0 ? rc : 0;
    if ((rc = meta_call(v, &t, "GET", NULL, &ans, &m)) < 0)
        return rc;
    size_t len = 0, cap = 4096;
    char *list = malloc(cap);
    for (void *it = json_object_iter(m); list && it; it = json_object_iter_next(m, it)) {
        const char *k = json_object_iter_key(it);
        size_t kl = strlen(k) + 6; /* "user." + key + NUL */
        if (len + kl > cap) {
            char *nl = realloc(list, cap = 2 * (len + kl));
            if (!nl)
                free(list);
            list = nl;
        }
        if (list)
            len += (size_t)sprintf(list + len, "user.%s", k) + 1;
    }
    json_decref(ans);
    if (!list)
        return -ENOMEM;
    ssize_t n = out_bytes(list, len, buf, size);
    free(list);
    return n;
}

/* The checks of set and remove that need no server. */
static int check_write(mesa_vfs_t *v, const char *path, int follow, const char *name, mtarget_t *t,
                       const char **key)
{
    int err = 0;
    int rc = target(v, path, follow, t);
    if (rc < 0)
        return rc;
    if (!(*key = key_of(name, &err)))
        return err;
    if (t->slot < 0)
        return -ENOTSUP; /* the prefix and org directories hold none */
    if (read_only_key(*key))
        return -EPERM;
    return (v->slot[t->slot].r.flags & MESA_STATE_RO) ? -EROFS : 0;
}

/* Does t have key? 1, 0, or a negative errno. */
static int has_key(mesa_vfs_t *v, const mtarget_t *t, const char *key)
{
    json_t *ans, *m;
    int rc = meta_call(v, t, "GET", NULL, &ans, &m);
    if (rc < 0)
        return rc;
    rc = json_object_get(m, key) != NULL;
    json_decref(ans);
    return rc;
}

int mesa_vfs_setxattr(mesa_vfs_t *v, const char *path, int follow, const char *name,
                      const void *val, size_t size, int flags)
{
    mtarget_t t;
    const char *key;
    json_t *ans, *m;
    if (flags & ~(XATTR_CREATE | XATTR_REPLACE))
        return -EINVAL;
    int rc = check_write(v, path, follow, name, &t, &key);
    if (rc < 0)
        return rc;
    if (strlen(key) > 250)
        return -ERANGE;
    if (size > XVALUE_MAX)
        return -E2BIG;
    if (size && (!val || memchr(val, 0, size)))
        return -EINVAL; /* values are UTF-8 strings (docs/PROTOCOL.md) */
    if (flags && (rc = has_key(v, &t, key)) >= 0) {
        if ((flags & XATTR_CREATE) && rc)
            return -EEXIST;
        if ((flags & XATTR_REPLACE) && !rc)
            return -ENODATA;
    }
    if (rc < 0 || (rc = ready(v)) < 0)
        return rc;
    json_t *body = json_pack("{s:{s:s%}}", "set", key, size ? (const char *)val : "", size);
    if (!body)
        return -EINVAL; /* not UTF-8 */
    rc = meta_call(v, &t, "PATCH", body, &ans, &m);
    json_decref(body);
    if (rc == 0)
        json_decref(ans);
    return rc;
}

int mesa_vfs_removexattr(mesa_vfs_t *v, const char *path, int follow, const char *name)
{
    mtarget_t t;
    const char *key;
    json_t *ans, *m;
    int rc = check_write(v, path, follow, name, &t, &key);
    if (rc < 0)
        return rc;
    if ((rc = has_key(v, &t, key)) <= 0)
        return rc < 0 ? rc : -ENODATA;
    json_t *body = json_pack("{s:[s]}", "remove", key);
    if (!body)
        return -EINVAL;
    rc = meta_call(v, &t, "PATCH", body, &ans, &m);
    json_decref(body);
    if (rc == 0)
        json_decref(ans);
    return rc;
}

void mesa_vfs_meta_moved(mesa_vfs_t *v, const char *from, const char *to)
{
    const char *rf, *rt;
    int sf = vfs_slot_of(v, from, &rf), st = vfs_slot_of(v, to, &rt);
    if (sf < 0 || sf != st || !*rf || !*rt || (v->slot[sf].r.flags & MESA_STATE_RO) || ready(v) < 0)
        return;
    mtarget_t t = {.slot = st};
    snprintf(t.rel, sizeof t.rel, "%s", rt);
    json_t *ans, *m, *body = json_pack("{s:s}", "rename_from", rf);
    if (body && meta_call(v, &t, "PATCH", body, &ans, &m) == 0)
        json_decref(ans);
    json_decref(body);
}
