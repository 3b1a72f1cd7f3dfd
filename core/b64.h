/* core/b64.h - base64 and base64url codecs (RFC 4648).
 *
 * base64url without padding is what JWTs (RFC 7515) use; decoders reject
 * non-canonical input (padding, stray bits, wrong alphabet), as Mesa's do.
 * Standard base64 (with padding) is what REST file content uses.
 */
#ifndef MESA_B64_H
#define MESA_B64_H

#include <stddef.h>

/* Length of the encoded text (without NUL) for n input bytes. */
size_t mesa_b64url_enclen(size_t n);
size_t mesa_b64_enclen(size_t n);

/* Encode n bytes of in into out, which must hold enclen(n) + 1 bytes; NUL-terminates.
 * Returns the encoded length. */
size_t mesa_b64url_encode(const void *in, size_t n, char *out);
size_t mesa_b64_encode(const void *in, size_t n, char *out);

/* Decode len characters into a malloc'd buffer (caller frees *out; one extra
 * NUL byte is appended, not counted in *outlen). Returns 0, -EINVAL on
 * non-canonical or invalid input, -ENOMEM. */
int mesa_b64url_decode(const char *in, size_t len, unsigned char **out, size_t *outlen);
/* Standard alphabet, padding required when len % 4 != 0 would need it;
 * whitespace is not accepted. */
int mesa_b64_decode(const char *in, size_t len, unsigned char **out, size_t *outlen);

#endif
