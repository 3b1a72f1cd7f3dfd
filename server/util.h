/* server/util.h - small helpers shared by the server modules: clocks, time
 * formatting, JSON body parsing with strict field checks, pagination cursors.
 */
#ifndef MESA_SERVER_UTIL_H
#define MESA_SERVER_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

int64_t util_now_ms(void);
int64_t util_now_ns(void);
/* RFC 3339 UTC with milliseconds into out (>= 32 bytes). */
void util_fmt_time_ms(int64_t ms, char out[32]);
/* Parse RFC 3339 ("2026-01-02T03:04:05Z", "...+01:00", fractional seconds
 * ignored) into seconds and offset. Returns 0, -EINVAL, or -ERANGE for a
 * time git cannot store (before 1970 or after 2106-02-07). */
int util_parse_time(const char *s, int64_t *secs, int *offset_min);

/* 0 when every key of obj is in the NULL-terminated list allowed; otherwise
 * -EINVAL and *bad names the first unknown key. */
int util_json_only_keys(json_t *obj, const char *const *allowed, const char **bad);

/* Opaque list cursors: encode an offset; decode returns -EINVAL if malformed. */
void util_cursor_encode(long off, char out[32]);
int util_cursor_decode(const char *s, long *off);
/* Parse ?limit= (NULL -> def); -EINVAL unless 1..100. */
int util_parse_limit(const char *s, int def, int *out);

/* rm -rf. */
int util_rmtree(const char *path);
/* fsync a directory by path. */
int util_fsync_dir(const char *path);

#endif
