#ifndef APP_GREET_H
#define APP_GREET_H

/* Print "hello, WHO" on stdout. */
void greet(const char *who);

#endif
