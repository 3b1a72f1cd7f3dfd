/* core/errmap.h - the one place where API errors become errno values
 * (DESIGN §3: missing -> ENOENT, read-only -> EROFS, token expired or out of
 * scope -> EACCES, backend unreachable -> EIO, ...).
 */
#ifndef MESA_ERRMAP_H
#define MESA_ERRMAP_H

/* errno (positive) for an HTTP status and the error code of the JSON body
 * ({"error":{"code":...}}; code may be NULL or ""). 0 for 2xx/3xx. */
int mesa_errmap_http(long status, const char *code);

#endif
