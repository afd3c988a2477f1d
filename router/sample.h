/* The sampling decision shared by spillway.sample() and routes without a script: a key is kept
 * when its hash falls below rate * 2^64, so the same key (a trace id) always gets the same
 * answer at a given rate and a whole trace is kept or dropped together; raising the rate only
 * adds keys, never removes one. Events without a key get a random decision at the rate. */
#ifndef SPILLWAY_SAMPLE_H
#define SPILLWAY_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "core/hash.h"

static inline uint64_t sample_threshold(double rate)
{
    if (rate >= 1.0)
        return UINT64_MAX;
    if (rate <= 0.0)
        return 0;
    return (uint64_t)(rate * 18446744073709551616.0);
}

static inline int sample_keep(double rate, const void *key, size_t len)
{
    if (rate >= 1.0)
        return 1;
    return hash64(key, len) < sample_threshold(rate);
}

static inline int sample_random(double rate, uint64_t *state)
{
    if (rate >= 1.0)
        return 1;
    return rand64(state) < sample_threshold(rate);
}

#endif
