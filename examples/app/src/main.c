#include <stdio.h>

#include "app/greet.h"
#include "app/words.h"
#include "strbuf.h"

int main(int argc, char **argv)
{
    struct strbuf sb;

    greet(argc > 1 ? argv[1] : "mesa");
    strbuf_init(&sb);
    strbuf_join(&sb, app_words, app_nwords, ", ");
    printf("%u words from data/words.txt: %s\n", app_nwords, strbuf_str(&sb));
    strbuf_free(&sb);
    return 0;
}
