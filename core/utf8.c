/* core/utf8.c - UTF-8 validation (utf8.h). Pure functions, no allocation.
 * Called by mesad (error messages, bookmark names) and anything that puts
 * bytes from outside into JSON.
 */
#include "config.h"
#include "utf8.h"

#include <string.h>

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    size_t len = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (s[0] >= 0xf5 || len == 0 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    unsigned cp = len == 2 ? (s[0] & 0x1fu) << 6 | (s[1] & 0x3fu)
                  : len == 3 ? (s[0] & 0x0fu) << 12 | (s[1] & 0x3fu) << 6 | (s[2] & 0x3fu)
                             : (s[0] & 0x07u) << 18 | (s[1] & 0x3fu) << 12 | (s[2] & 0x3fu) << 6 |
                                   (s[3] & 0x3fu);
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0; /* overlong, surrogate, or beyond Unicode */
    return len;
}

int mesa_utf8_valid(const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0, l; i < n; i += l)
        if ((l = utf8_seq((const unsigned char *)s + i, n - i)) == 0)
            return 0;
    return 1;
}

void mesa_utf8_sanitize(char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0, l; i < n; i += l)
        if ((l = utf8_seq((unsigned char *)s + i, n - i)) == 0) {
            s[i] = '?';
            l = 1;
        }
}
