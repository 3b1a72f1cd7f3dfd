#ifndef STRBUF_H
#define STRBUF_H

#include <stddef.h>

/* A growable NUL-terminated string. */
struct strbuf {
    char *buf;
    size_t len, cap;
};

void strbuf_init(struct strbuf *sb);
void strbuf_add(struct strbuf *sb, const char *s);
const char *strbuf_str(const struct strbuf *sb);
void strbuf_free(struct strbuf *sb);

/* Append the n strings of v, separated by sep. */
void strbuf_join(struct strbuf *sb, const char *const *v, size_t n, const char *sep);

#endif
