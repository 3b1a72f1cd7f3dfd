/* core/b64.c - base64 and base64url codecs (RFC 4648 §4 and §5).
 *
 * Invariant: decoding accepts exactly the strings the encoder produces, so
 * every byte string has one text form. That matters for JWTs: a token whose
 * parts could be spelled two ways would let a signed token be re-spelled, so
 * padding in base64url, stray trailing bits, foreign characters and
 * impossible lengths are all -EINVAL.
 * Callers: core/token.c (JWT parts), REST file content (standard base64).
 */
#include "b64.h"

#include <errno.h>
#include <stdlib.h>

static const char b64_std_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t mesa_b64url_enclen(size_t n)
{
    return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

size_t mesa_b64_enclen(size_t n)
{
    return n / 3 * 4 + (n % 3 ? 4 : 0);
}

/* Encode n bytes with alphabet abc; pad the last group with '=' when pad. */
static size_t encode(const char *abc, int pad, const unsigned char *in, size_t n, char *out)
{
    size_t i, o = 0;

    for (i = 0; i + 2 < n; i += 3) {
        unsigned long v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8 | in[i + 2];
        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
        out[o++] = abc[v >> 6 & 63];
        out[o++] = abc[v & 63];
    }
    if (n - i == 1) {
        out[o++] = abc[in[i] >> 2];
        out[o++] = abc[(in[i] & 3) << 4];
        if (pad) {
            out[o++] = '=';
            out[o++] = '=';
        }
    } else if (n - i == 2) {
        out[o++] = abc[in[i] >> 2];
        out[o++] = abc[(in[i] & 3) << 4 | in[i + 1] >> 4];
        out[o++] = abc[(in[i + 1] & 15) << 2];
        if (pad)
            out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

size_t mesa_b64url_encode(const void *in, size_t n, char *out)
{
    return encode(b64_url_alphabet, 0, in, n, out);
}

size_t mesa_b64_encode(const void *in, size_t n, char *out)
{
    return encode(b64_std_alphabet, 1, in, n, out);
}

/* Value of c in alphabet abc, or -1. Letters and digits are shared by both
 * alphabets; only the last two characters differ. */
static int sextet(const char *abc, char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == abc[62])
        return 62;
    if (c == abc[63])
        return 63;
    return -1;
}

/* Decode len unpadded characters. Rejects len % 4 == 1, characters outside
 * abc and non-zero bits below the last whole byte. */
static int decode(const char *abc, const char *in, size_t len, unsigned char **out, size_t *outlen)
{
    size_t rem = len % 4, n = len / 4 * 3 + (rem ? rem - 1 : 0), i, o = 0;
    unsigned long acc = 0;
    unsigned char *buf;
    int bits = 0, v;

    if (rem == 1)
        return -EINVAL;
    buf = malloc(n + 1);
    if (!buf)
        return -ENOMEM;
    for (i = 0; i < len; i++) {
        v = sextet(abc, in[i]);
        if (v < 0)
            goto bad;
        acc = (acc << 6 | (unsigned long)v) & 0xffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (unsigned char)(acc >> bits);
        }
    }
    if (acc & ((1UL << bits) - 1))
        goto bad; /* stray bits: a second spelling of the same bytes */
    buf[o] = '\0';
    *out = buf;
    *outlen = o;
    return 0;
bad:
    free(buf);
    return -EINVAL;
}

int mesa_b64url_decode(const char *in, size_t len, unsigned char **out, size_t *outlen)
{
    return decode(b64_url_alphabet, in, len, out, outlen);
}

int mesa_b64_decode(const char *in, size_t len, unsigned char **out, size_t *outlen)
{
    size_t pad = 0;

    if (len % 4)
        return -EINVAL;
    while (pad < 2 && pad < len && in[len - 1 - pad] == '=')
        pad++;
    /* A third '=' stays in the body and fails there as a foreign character. */
    return decode(b64_std_alphabet, in, len - pad, out, outlen);
}
