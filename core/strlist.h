/* Lists of names ended by NULL, as static tables of choices, members and commands are written. */
#ifndef SPILLWAY_STRLIST_H
#define SPILLWAY_STRLIST_H

#include <string.h>

/* Whether s is one of list's names. */
static inline int str_among(const char *s, const char *const *list)
{
    for (; *list; list++) {
        if (!strcmp(s, *list))
            return 1;
    }
    return 0;
}

#endif
