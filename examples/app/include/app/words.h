#ifndef APP_WORDS_H
#define APP_WORDS_H

/* Defined in src/words.c, which tools/mkwords.sh generates from data/words.txt. */
extern const char *const app_words[];
extern const unsigned app_nwords;

#endif
