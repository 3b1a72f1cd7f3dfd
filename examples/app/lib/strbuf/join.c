#include "strbuf.h"

void strbuf_join(struct strbuf *sb, const char *const *v, size_t n, const char *sep)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            strbuf_add(sb, sep);
        strbuf_add(sb, v[i]);
    }
}
