/* core/utf8.h - UTF-8 checks for bytes that must travel in JSON. */
#ifndef MESA_UTF8_H
#define MESA_UTF8_H

/* Is s valid UTF-8 (no overlongs, surrogates or code points past U+10FFFF)? */
int mesa_utf8_valid(const char *s);
/* Replace every byte that is not part of valid UTF-8 with '?', in place. */
void mesa_utf8_sanitize(char *s);

#endif
