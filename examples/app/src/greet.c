#include <stdio.h>

#include "app/greet.h"

void greet(const char *who)
{
    printf("hello, %s\n", who);
}
