/* Threads with names: what `top -H`, `ps -L`, perf and gdb show ("worker-0", "sink:events",
 * "control", "spill", "kafka"). Linux keeps 15 characters of a name; a longer one is cut. */
#ifndef SPILLWAY_THREAD_H
#define SPILLWAY_THREAD_H

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

/* Starts fn(arg) on a new thread named as fmt says. Returns 0, or pthread_create's error (a
 * positive errno). */
static inline int thread_start(pthread_t *t, void *(*fn)(void *), void *arg, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static inline int thread_start(pthread_t *t, void *(*fn)(void *), void *arg, const char *fmt, ...)
{
    int rc = pthread_create(t, NULL, fn, arg);
    if (rc)
        return rc;
    char name[16];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof(name), fmt, ap);
    va_end(ap);
    pthread_setname_np(*t, name); /* only a name: a failure changes nothing else */
    return 0;
}

#endif
