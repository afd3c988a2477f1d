/* Thread names (what `top -H`, `ps -L`, perf and gdb show): "sw-worker-0", "sw-sink-events",
 * "sw-control", "sw-spill", "sw-kafka". Linux keeps 15 characters; a longer name is cut. */
#ifndef SPILLWAY_THREAD_H
#define SPILLWAY_THREAD_H

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

static inline void thread_name(pthread_t t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline void thread_name(pthread_t t, const char *fmt, ...)
{
    char name[16];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof(name), fmt, ap);
    va_end(ap);
    pthread_setname_np(t, name); /* only a name: a failure changes nothing else */
}

#endif
