/* core/sha1.c - SHA-1 as FIPS 180-4 specifies it (see sha1.h).
 * Checked against FIPS test vectors and git's blob ids in
 * tests/core/test_blobcache.c. Called by core/blobcache.c.
 */
#include "config.h"
#include "sha1.h"

#include <string.h>

static uint32_t rol(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static void block(mesa_sha1_t *c, const unsigned char *p)
{
    uint32_t w[80], a = c->h[0], b = c->h[1], d = c->h[3], e = c->h[4], cc = c->h[2];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20)
            f = (b & cc) | (~b & d), k = 0x5a827999;
        else if (i < 40)
            f = b ^ cc ^ d, k = 0x6ed9eba1;
        else if (i < 60)
            f = (b & cc) | (b & d) | (cc & d), k = 0x8f1bbcdc;
        else
            f = b ^ cc ^ d, k = 0xca62c1d6;
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d;
        d = cc;
        cc = rol(b, 30);
        b = a;
        a = t;
    }
    c->h[0] += a;
    c->h[1] += b;
    c->h[2] += cc;
    c->h[3] += d;
    c->h[4] += e;
}

void mesa_sha1_init(mesa_sha1_t *c)
{
    static const uint32_t iv[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    memcpy(c->h, iv, sizeof iv);
    c->len = 0;
    c->n = 0;
}

void mesa_sha1_update(mesa_sha1_t *c, const void *data, size_t len)
{
    const unsigned char *p = data;
    c->len += len;
    while (len > 0) {
        size_t take = 64 - c->n < len ? 64 - c->n : len;
        memcpy(c->buf + c->n, p, take);
        c->n += take;
        p += take;
        len -= take;
        if (c->n == 64) {
            block(c, c->buf);
            c->n = 0;
        }
    }
}

void mesa_sha1_final(mesa_sha1_t *c, unsigned char out[20])
{
    uint64_t bits = c->len * 8;
    unsigned char pad = 0x80, zero = 0, be[8];
    mesa_sha1_update(c, &pad, 1);
    while (c->n != 56)
        mesa_sha1_update(c, &zero, 1);
    for (int i = 0; i < 8; i++)
        be[i] = (unsigned char)(bits >> (56 - 8 * i));
    mesa_sha1_update(c, be, 8);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (unsigned char)(c->h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(c->h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(c->h[i] >> 8);
        out[4 * i + 3] = (unsigned char)c->h[i];
    }
}
