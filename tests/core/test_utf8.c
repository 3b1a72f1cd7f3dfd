/* tests/core/test_utf8.c - UTF-8 validation and sanitising (core/utf8.c). */
#include "config.h"
#include "core/utf8.h"
#include "tests/lib/ctest.h"

int main(void)
{
    static const struct {
        const char *s;
        int valid;
        const char *sanitized;
        const char *what;
    } cases[] = {
        {"", 1, "", "empty"},
        {"plain ascii", 1, "plain ascii", "ASCII"},
        {"\xc3\xa9t\xc3\xa9", 1, "\xc3\xa9t\xc3\xa9", "two-byte sequences"},
        {"\xe2\x82\xac", 1, "\xe2\x82\xac", "three-byte sequence (euro)"},
        {"\xf0\x9f\x98\x80", 1, "\xf0\x9f\x98\x80", "four-byte sequence (emoji)"},
        {"\xff", 0, "?", "0xff is never UTF-8"},
        {"a\xc3(", 0, "a?(", "a truncated two-byte sequence"},
        {"\xc0\xaf", 0, "??", "overlong '/'"},
        {"\xe0\x80\xaf", 0, "???", "overlong three-byte"},
        {"\xed\xa0\x80", 0, "???", "UTF-16 surrogate"},
        {"\xf4\x90\x80\x80", 0, "????", "beyond U+10FFFF"},
        {"ok\xe2\x82", 0, "ok??", "cut in the middle of a character"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[64];
        CHECK_EQ_INT(mesa_utf8_valid(cases[i].s), cases[i].valid, cases[i].what);
        snprintf(buf, sizeof buf, "%s", cases[i].s);
        mesa_utf8_sanitize(buf);
        CHECK_EQ_STR(buf, cases[i].sanitized, cases[i].what);
        CHECK_EQ_INT(mesa_utf8_valid(buf), 1, "sanitized text is valid");
    }
    return ctest_done();
}
