/* Internals shared by the ctl client's files: ctl.c (commands and their output) and ctl_top.c
 * (the live dashboard). Not for other modules. */
#ifndef SPILLWAY_CTL_INT_H
#define SPILLWAY_CTL_INT_H

#include <jansson.h>

/* Sends one request to the admin socket at path and reads its one response (a new reference),
 * or NULL after saying why on stderr. */
json_t *ctl__roundtrip(const char *path, json_t *req);

/* An integer member of o (0 when absent). */
static inline long long ctl__ival(json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

/* `spillway ctl top`: iterations refreshes (0: until q). Returns the exit code. */
int ctl__top(const char *path, int iterations);

#endif
